"""The sound at ingest: the fingerprint of a video's sound, and the analysis of a file that is
sound alone (an item of kind ``audio``: no picture, nothing played, its fingerprint its only
signal besides the byte hashes).

Never raises: a video without sound, or whose sound cannot be decoded, keeps its picture's
signals (the reason is logged); a sound file whose sound cannot be decoded is an UNREADABLE
item with the reason. A sound shorter than the comparison window (3 s) keeps the blocks it has.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.core.audio.decode import decode_sound
from app.core.audio.signals import sound_signals
from app.core.errors import describe
from app.core.hashing.imaging import byte_signals, unreadable
from app.core.model.domain import MediaAnalysis, MediaKind

log = logging.getLogger(__name__)


def add_sound(path: str | Path, analysis: MediaAnalysis) -> MediaAnalysis:
    """``analysis`` (a video's) with its sound's signals added; unchanged when it has none."""
    try:
        sound = decode_sound(path)
        if sound.note:
            log.info("%s: %s", path, sound.note)
        if sound.samples.size:
            analysis.signals = [*analysis.signals, *sound_signals(sound.samples)]
    except Exception as e:  # the sound must not take the picture's item down
        log.warning("sound fingerprint failed for %s: %r", path, e)
    return analysis


def analyze_sound(
    path: str | Path, sha256: str, md5: str, size: int, mime: str | None
) -> MediaAnalysis | None:
    """A file of sound alone as an ``audio`` item, or None when it has no audio stream (the
    caller's own reason stands then). An audio stream that yields no sound is UNREADABLE."""
    try:
        sound = decode_sound(path)
    except Exception as e:
        log.warning("sound decoding failed for %s: %r", path, e)
        return unreadable(sha256, md5, size, f"sound analysis failed: {describe(e)}", mime)
    if not sound.has_stream:
        return None
    if not sound.samples.size:
        return unreadable(sha256, md5, size, sound.note or "no sound could be decoded", mime)
    try:
        signals = sound_signals(sound.samples)
    except Exception as e:
        log.warning("sound fingerprint failed for %s: %r", path, e)
        signals = []
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.AUDIO,
        mime=mime,
        duration=round(sound.seconds, 3),
        signals=byte_signals(sha256, md5) + signals,
    )
