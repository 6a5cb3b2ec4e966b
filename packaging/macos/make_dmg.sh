#!/bin/sh
# Make the macOS disk image from dist/Hashdesk.app (built by packaging/build.py, which runs
# this script after the frozen self-test passes).
#   packaging/macos/make_dmg.sh VERSION
# Output: dist/hashdesk-VERSION-macos-ARCH.dmg, with Hashdesk.app and a link to /Applications
# to drag it onto. Signing and notarisation, when a Developer ID is available:
#   codesign --deep --force --options runtime --sign "Developer ID Application: ..." dist/Hashdesk.app
#   xcrun notarytool submit dist/hashdesk-VERSION-macos-ARCH.dmg --wait ... && xcrun stapler staple ...
set -eu

version=${1:?usage: make_dmg.sh VERSION}
root=$(cd "$(dirname "$0")/../.." && pwd)
app="$root/dist/Hashdesk.app"
arch=$(uname -m)
out="$root/dist/hashdesk-$version-macos-$arch.dmg"

[ -d "$app" ] || { echo "no $app: run packaging/build.py first" >&2; exit 1; }
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$out"
hdiutil create -volname "Hashdesk $version" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$out"
echo "$out"
