#!/bin/bash
# The README's partial-copy screenshot (docs/partial-copy-badge.png), as a user gets there: a
# video ingested and confirmed with keys in the review window, then a compilation holding it
# ingested (HASHDESK_KNOWN_CONTENT=queue, so it waits with its badge), and the review window on
# it, all under Xvfb (display :77) with xdotool. The clips are the video evasion set's
# (`hashdesk bench evasion --video` writes them first). Screens land in /tmp/shot22.
set -e
W=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$W/.venv/bin/python}
D=/tmp/shot22; rm -rf $D; mkdir -p $D
export HASHDESK_DATABASE_URL=sqlite:///$D/db.sqlite3 HASHDESK_MEDIA_ROOT=$D/media HASHDESK_KNOWN_CONTENT=queue
export PYTHONPATH=$W
cd $W
echo "demo-password" | $PY -m app users add admin --role admin --password-stdin 2>&1 | tail -1
echo "demo-password" | HASHDESK_ADMIN_PASSWORD=demo-password $PY -m app users add mod --role moderator --password-stdin --as admin 2>&1 | tail -1
C=$($PY -c "from app.tools.video_evasion import cache_dir; print(cache_dir())")
$PY -m app ingest $C/video-chair-orig-22-sd-bar.mp4 --source upload 2>&1 | tail -2
focus_main() {
  for w in $(xdotool search --onlyvisible --name Hashdesk); do MW=$w; done
  xdotool windowactivate --sync $MW 2>/dev/null || xdotool windowfocus --sync $MW
  xdotool mousemove 700 790 click 1; sleep 0.5
}
wait_window() {  # the first Hashdesk window (the sign-in dialog), focused
  for i in $(seq 1 60); do WID=$(xdotool search --onlyvisible --name Hashdesk 2>/dev/null | head -1); [ -n "$WID" ] && break; sleep 1; done
  sleep 2
  xdotool windowfocus --sync $WID; sleep 0.5
}
sign_in() {
  xdotool type --delay 50 mod; xdotool key Tab; xdotool type --delay 50 demo-password; xdotool key Return
}
# The review window: sign in as mod, choose category 1, confirm with Y, quit.
Xvfb :77 -screen 0 1400x900x24 >/dev/null 2>&1 & XP=$!
sleep 2
export DISPLAY=:77
$PY -m app gui > $D/gui1.log 2>&1 & GP=$!
wait_window
import -window root $D/01-signin.png
sign_in
sleep 8
focus_main
import -window root $D/02-original.png
xdotool key 1; sleep 1; xdotool key y; sleep 6
import -window root $D/03-confirmed.png
xdotool key ctrl+q; sleep 3; kill $GP 2>/dev/null || true
# Dense frames land in the background; give them time, then take the compilation.
$PY -m app dense status 2>&1 | tail -3 || true
$PY -m app ingest $C/video-chair-orig-22-sd-bar--compilation--a-third.mp4 --source upload 2>&1 | tail -2
$PY -m app gui > $D/gui2.log 2>&1 & GP=$!
wait_window
sign_in
sleep 10
focus_main
import -window root $D/04-compilation.png
# Step through the frames with Right, held down (X11 key auto-repeat), into the matched span.
xdotool keydown Right; sleep 1.2; xdotool keyup Right; sleep 2
import -window root $D/05-stepped.png
xdotool key ctrl+q; sleep 3; kill $GP 2>/dev/null || true
kill $XP
convert $D/04-compilation.png -crop 1280x800+0+0 +repage $W/docs/partial-copy-badge.png
