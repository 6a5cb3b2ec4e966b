__version__ = "0.1.0"
APP_ID = "org.hashdesk.Hashdesk"
APP_NAME = "Hashdesk"
