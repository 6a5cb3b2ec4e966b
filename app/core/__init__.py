"""The domain: no Qt, no SQL (docs/ARCHITECTURE.md).

Video is decoded and encoded by PyAV, whose FFmpeg is the only one the application uses
(OpenCV only for the views' geometry, never to decode: tests/unit/test_opencv_use.py).
FFmpeg's own log lines (decoder complaints about damaged streams, "[h264 @ 0x...] Invalid NAL
unit size") stay off the terminal: PyAV leaves FFmpeg's logging off unless asked
(``av.logging.get_level()`` is None), and a damaged file is reported once, as the item's reason.
``av.logging.set_level(av.logging.VERBOSE)`` shows them again when debugging.
"""
