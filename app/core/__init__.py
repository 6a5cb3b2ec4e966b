"""The domain: no Qt, no SQL (docs/ARCHITECTURE.md).

FFmpeg (inside OpenCV) writes decoder complaints about damaged streams ("[h264 @ 0x...]
Invalid NAL unit size") straight to the terminal. A damaged file is reported once, as the
item's reason; the library's own chatter is turned off before OpenCV loads FFmpeg (-8 is
AV_LOG_QUIET), and OpenCV's own warnings about a file it cannot open go too (it becomes an
unreadable item saying so). Set here, before any core module (pdq, imaging, video) imports
cv2, whichever comes first. Set OPENCV_FFMPEG_LOGLEVEL / OPENCV_LOG_LEVEL to see them again.
"""

import os

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
