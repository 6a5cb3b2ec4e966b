; Inno Setup script for the Windows installer of Hashdesk.
;
; packaging\build.py runs it after building dist\hashdesk with PyInstaller and passing the
; frozen self-test, with the version read from app\__init__.py:
;   iscc /DAppVersion=0.1.0 /DAppId=org.hashdesk.Hashdesk packaging\windows\hashdesk.iss
; Output: dist\hashdesk-<version>-windows-x64-setup.exe
;
; Per-user install by default (no administrator rights needed); an administrator deploying to
; locked-down workstations can run it with /ALLUSERS /VERYSILENT.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z hashdesk.iss (packaging\build.py does)
#endif
#ifndef AppId
  #define AppId "org.hashdesk.Hashdesk"
#endif
#define AppName "Hashdesk"
#define DistDir "..\..\dist\hashdesk"

[Setup]
AppId={#AppId}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Hashdesk
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=hashdesk-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\hashdesk.exe
UninstallDisplayName={#AppName} {#AppVersion}
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole one-folder bundle: hashdesk.exe (windowed), hashdesk-cli.exe (console) and _internal\.
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A new version replaces the old bundle's libraries instead of mixing with them.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\hashdesk.exe"; AppUserModelID: "{#AppId}"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\hashdesk-cli.exe"" self-test"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\hashdesk.exe"; Tasks: desktopicon; AppUserModelID: "{#AppId}"

[Run]
Filename: "{app}\hashdesk.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
