"""Domain vocabulary shared by every layer: plain enums and dataclasses, no Qt, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    ANIMATED = "animated"
    UNREADABLE = "unreadable"


class ItemStatus(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    DECIDED = "decided"
    AUTO_MATCHED = "auto_matched"
    ESCALATED = "escalated"
    UNREADABLE = "unreadable"


class Verdict(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"
    SKIP = "skip"
    ESCALATE = "escalate"
    UNDO = "undo"
    OVERTURN = "overturn"


class DecisionMethod(StrEnum):
    MANUAL = "manual"
    CLUSTER = "cluster"
    AUTO_MATCH = "auto_match"
    SECOND_REVIEW = "second_review"


class Role(StrEnum):
    MODERATOR = "moderator"
    LEAD = "lead"
    ADMIN = "admin"


class Algorithm(StrEnum):
    PDQ = "pdq"
    PDQ_FRAME = "pdq_frame"
    PHASH = "phash"
    MD5 = "md5"
    SHA256 = "sha256"


@dataclass(frozen=True, slots=True)
class Signal:
    """One hash of an item. ``value`` is lowercase hex.

    ``variant`` tells hashes of the same algorithm apart: "" for the picture as decoded,
    "trimmed" for the picture with letterbox bars removed. ``frame_ts`` is the timestamp in
    seconds for a video frame hash.
    """

    algorithm: Algorithm
    value: str
    quality: int | None = None
    frame_ts: float | None = None
    variant: str = ""


@dataclass(slots=True)
class MediaAnalysis:
    """Everything ingest learns from one file. ``error`` is set for unreadable media, in which
    case ``kind`` is UNREADABLE and only the byte hashes are present."""

    sha256: str
    md5: str
    size: int
    kind: MediaKind
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    signals: list[Signal] = field(default_factory=list)
    preview: bytes | None = None  # JPEG, long side about 1000 px; a strip of frames for video
    preview_frames: int = 1  # number of equal-width frames laid side by side in ``preview``
    error: str | None = None


class UnreadableMedia(Exception):
    """Raised by decoders with a short human-readable reason ("truncated JPEG", ...)."""


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    label: str
    shortcut: str  # "1".."9"


@dataclass(frozen=True, slots=True)
class SightingInfo:
    source: str
    external_id: str | None
    source_url: str | None
    reason: str | None
    score: float | None
    flagged_at: datetime
    deadline: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueItem:
    """What the review screen needs to show one item. Plain data: crosses to the GUI thread."""

    id: int
    sha256: str
    kind: MediaKind
    status: ItemStatus
    size: int
    width: int | None
    height: int | None
    duration: float | None
    preview_key: str | None
    preview_frames: int
    error: str | None
    priority: int
    deadline: datetime | None
    cluster_id: int | None
    cluster_size: int
    sightings: tuple[SightingInfo, ...]
    match_note: str | None = None
    escalation_note: str | None = None  # why a lead sees it (escalation queue only)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    uuid: str
    item_id: int
    username: str
    verdict: Verdict
    category: str | None
    category_label: str | None
    note: str | None
    method: DecisionMethod
    decided_at: datetime
    supersedes: str | None = None
