"""A video item's sampled frames for the scrubber: their timestamps (the frame PDQ signals
written at ingest), which of them matched the known content it is badged with, and the span a
partial copy's match recorded (items.match_start, match_end: migration 0019).

The frames matched are found again here, from the item's frame PDQ and the hash-list rows of
the entry it matched (that entry's confirmed video, or the imported entry itself), within the
workstation's PDQ threshold: the same rule as at ingest, kept out of the stored record.
On a team server a moderator reads only the hash-list rows they may see (imported lists, their
own confirms), so a match on another person's confirm shows its badge without frame marks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from app.core.matching.hash_index import VIDEO_FRAMES, HashIndex
from app.core.model.domain import Algorithm, MediaKind
from app.core.video.scrub import SampledFrames
from app.storage.db import Database
from app.storage.models import HashListEntry, Item, SignalRow

PDQ_LIKE = (Algorithm.PDQ.value, Algorithm.PDQ_FRAME.value)


def sampled_frames(
    db: Database, item_id: int, store_path: Callable[[str], Path], threshold: int
) -> SampledFrames:
    """``store_path``: the content store's key -> path (the file is read on a worker)."""
    with db.session() as s:
        item = s.get(Item, item_id)
        if item is None or item.kind != MediaKind.VIDEO or not item.content_key:
            return SampledFrames(None)
        rows = s.execute(
            select(SignalRow.frame_ts, SignalRow.value)
            .where(
                SignalRow.item_id == item_id,
                SignalRow.algorithm == Algorithm.PDQ_FRAME.value,
                SignalRow.variant == "",
                SignalRow.frame_ts.is_not(None),
            )
            .order_by(SignalRow.frame_ts)
        ).all()
        refs: list[str] = []
        entry = s.get(HashListEntry, item.known_entry_id) if item.known_entry_id else None
        if entry is not None and entry.item_id is not None:
            refs = list(
                s.scalars(
                    select(HashListEntry.value).where(
                        HashListEntry.item_id == entry.item_id,
                        HashListEntry.algorithm.in_(PDQ_LIKE),
                        HashListEntry.retracted_at.is_(None),
                    )
                )
            )
        elif entry is not None and entry.algorithm in PDQ_LIKE:
            refs = [entry.value]
        content_key = item.content_key
        span = None
        if item.match_start is not None and item.match_end is not None:
            span = (float(item.match_start), float(item.match_end))
        duration = item.duration
    frames = [(float(ts), value) for ts, value in rows if ts is not None]
    times = sorted({ts for ts, _ in frames})
    near = _near_any([v for _, v in frames], refs, threshold)
    matched = frozenset(ts for (ts, _v), hit in zip(frames, near, strict=True) if hit)
    return SampledFrames(str(store_path(content_key)), tuple(times), matched, span, duration)


def _near_any(values: list[str], refs: list[str], threshold: int) -> list[bool]:
    """Whether each of ``values`` is within ``threshold`` bits of some of ``refs`` (a
    confirmed video's rows may be tens of thousands with its dense frames: one indexed
    search, not a comparison per pair)."""
    if not values or not refs:
        return [False] * len(values)
    index = HashIndex()
    index.add_many((i, VIDEO_FRAMES, r.lower(), None) for i, r in enumerate(refs))
    return [bool(hits) for hits in index.search_many(VIDEO_FRAMES, values, threshold)]
