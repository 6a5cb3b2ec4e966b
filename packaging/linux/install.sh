#!/bin/sh
# Install Hashdesk from this unpacked archive.
#   for this user:   ./install.sh                     (into ~/.local)
#   system-wide:     sudo PREFIX=/usr/local ./install.sh
# Uninstall: ./install.sh --uninstall (same PREFIX).
set -eu

APP_ID=org.hashdesk.Hashdesk
here=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
dest="$PREFIX/lib/hashdesk"
apps="$PREFIX/share/applications"
icons="$PREFIX/share/icons/hicolor/256x256/apps"

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$dest"
    rm -f "$PREFIX/bin/hashdesk" "$apps/$APP_ID.desktop" "$icons/$APP_ID.png"
    echo "Hashdesk removed from $PREFIX"
    exit 0
fi

mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$apps" "$icons"
rm -rf "$dest"
cp -R "$here/hashdesk" "$dest"
ln -sf "$dest/hashdesk" "$PREFIX/bin/hashdesk"
sed "s|^Exec=hashdesk|Exec=\"$dest/hashdesk\"|" "$here/$APP_ID.desktop" >"$apps/$APP_ID.desktop"
cp "$here/$APP_ID.png" "$icons/$APP_ID.png"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q "$PREFIX/share/icons/hicolor" 2>/dev/null || true

echo "Hashdesk installed in $dest"
echo "Check it:  $PREFIX/bin/hashdesk self-test"
echo "Start it from the applications menu, or: $PREFIX/bin/hashdesk"
