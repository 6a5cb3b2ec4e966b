"""The analysis of a video that cannot be decoded: the byte hashes and a short reason, so the
item stays visible and actionable. Nothing in video analysis raises for bad media.
"""

from __future__ import annotations

from app.core.model.domain import Algorithm, MediaAnalysis, MediaKind, Signal


def _unreadable(sha256: str, md5: str, size: int, why: str) -> MediaAnalysis:
    return MediaAnalysis(
        sha256=sha256,
        md5=md5,
        size=size,
        kind=MediaKind.UNREADABLE,
        signals=[Signal(Algorithm.MD5, md5), Signal(Algorithm.SHA256, sha256)],
        preview=None,
        preview_frames=0,
        error=why,  # the reason alone, as for pictures: screens and summaries add "unreadable"
    )
