"""Configuration: ``Settings`` (environment over settings.toml over defaults) and the
settings file with the keyring. The only way configuration enters.
"""
