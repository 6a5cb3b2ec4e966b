#!/bin/sh
# Start the frozen app under Xvfb as a user would (`hashdesk`, the GUI, on a fresh database with
# one user), time how long its sign-in dialog takes to appear, take a screenshot of it, and show
# what it printed on stderr (missing Qt plugins, fonts or libraries would show there).
#   packaging/linux/check_startup.sh [RUNS] [SCREENSHOT]
# Needs Xvfb, xdotool and ImageMagick's import. Defaults: 3 runs, docs/login-frozen.png.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
exe="$root/dist/hashdesk/hashdesk"
runs=${1:-3}
shot=${2:-$root/docs/login-frozen.png}
title="Hashdesk — sign in"

[ -x "$exe" ] || { echo "no $exe: run packaging/build.py first" >&2; exit 1; }
tmp=$(mktemp -d)
# A display number of Xvfb's choosing (-displayfd), so a concurrent Xvfb cannot collide.
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp -noreset 3>"$tmp/display" >"$tmp/xvfb.log" 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true; rm -rf "$tmp"' EXIT
n=0
while [ ! -s "$tmp/display" ]; do
    n=$((n + 1))
    [ "$n" -le 500 ] || { echo "Xvfb did not start:" >&2; cat "$tmp/xvfb.log" >&2; exit 1; }
    sleep 0.01
done
display=":$(cat "$tmp/display")"
echo "Xvfb on $display"

export HASHDESK_DATABASE_URL="sqlite:///$tmp/hashdesk.sqlite3" HASHDESK_MEDIA_ROOT="$tmp/media"
echo "startup-check-pw" | "$exe" users add admin --role admin --password-stdin >/dev/null

now_ms() { date +%s%3N; }
i=1
while [ "$i" -le "$runs" ]; do
    start=$(now_ms)
    DISPLAY=$display "$exe" 2>"$tmp/stderr.$i" &
    app=$!
    while ! DISPLAY=$display xdotool search --onlyvisible --name "$title" >/dev/null 2>&1; do
        if ! kill -0 "$app" 2>/dev/null; then
            echo "the app exited before its sign-in dialog appeared:" >&2
            kill -0 "$xvfb" 2>/dev/null || { echo "(Xvfb had exited:)" >&2; cat "$tmp/xvfb.log" >&2; }
            cat "$tmp/stderr.$i" >&2
            exit 1
        fi
        sleep 0.01
    done
    echo "run $i: sign-in dialog visible after $(($(now_ms) - start)) ms"
    if [ "$i" -eq "$runs" ]; then
        sleep 1  # let it paint
        mkdir -p "$(dirname "$shot")"
        DISPLAY=$display import -window root "$shot"
        echo "screenshot: $shot"
    fi
    kill "$app"
    wait "$app" 2>/dev/null || true
    i=$((i + 1))
done
echo "stderr of the last run:"
if [ -s "$tmp/stderr.$runs" ]; then cat "$tmp/stderr.$runs"; else echo "  (empty)"; fi
