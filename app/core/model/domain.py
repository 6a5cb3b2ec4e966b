"""Domain vocabulary shared by every layer: plain enums and dataclasses, no Qt, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from app.core.errors import Refusal


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    ANIMATED = "animated"
    AUDIO = "audio"  # sound without a picture: fingerprinted, never played
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


#: Items a moderator can claim from the review queue.
OPEN_STATUSES: tuple[ItemStatus, ...] = (ItemStatus.QUEUED, ItemStatus.UNREADABLE)
#: Items in the open queue: claimable, or held by someone right now.
IN_QUEUE_STATUSES: tuple[ItemStatus, ...] = (*OPEN_STATUSES, ItemStatus.CLAIMED)


def open_status_for(kind: str) -> ItemStatus:
    """The status an item returns to when it goes back to the queue."""
    return ItemStatus.UNREADABLE if kind == MediaKind.UNREADABLE else ItemStatus.QUEUED


class IngestOutcome(StrEnum):
    """What ingest made of one file (app.storage.ingest_recorder), and the buckets of
    ``IngestSummary.files``: each file is counted in exactly one of new, copy, unreadable,
    missing, skipped; auto_matched is a new item that a known hash resolved without a human."""

    NEW = "new"  # a new item in the queue
    COPY = "copy"  # an exact copy of a known item: a sighting added to it
    AUTO_MATCHED = "auto_matched"  # a new item resolved by a hash-list match
    UNREADABLE = "unreadable"  # a new item whose media could not be read (or no bytes at all)
    MISSING = "missing"  # the file was not there
    SKIPPED = "skipped"  # not a file that can be read at all (a pipe, a broken link): reported


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo: the form every timestamp in the database has."""
    return datetime.now(UTC).replace(tzinfo=None)


class DecisionMethod(StrEnum):
    MANUAL = "manual"
    CLUSTER = "cluster"
    AUTO_MATCH = "auto_match"
    SECOND_REVIEW = "second_review"


class Role(StrEnum):
    MODERATOR = "moderator"
    LEAD = "lead"
    ADMIN = "admin"
    # An ingest worker's account (``hashdesk worker``): may ingest, nothing else; not a person.
    WORKER = "worker"


class Algorithm(StrEnum):
    PDQ = "pdq"
    PDQ_FRAME = "pdq_frame"
    PHASH = "phash"
    MD5 = "md5"
    SHA256 = "sha256"
    AUDIO = "audio"  # the sound's fingerprint (app.core.audio): local, no exchange format


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


class UnreadableMedia(Refusal):
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
    # The file's name as it arrived (default: the name of the path analysed); an intake
    # analyses its stored copy, named by its SHA-256.
    original_name: str | None = None
    # The intake arrival this sighting records (app.storage.intake): at most one sighting per
    # arrival, so a retried job never adds a second.
    receipt_id: int | None = None


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
    incident: str | None = None  # the active incident's banner ("INCIDENT name · label")
    # The categories that incident covers: the first one the taxonomy knows is the confirm's
    # category until the moderator picks another (app.core.review.presenter).
    incident_categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A signed-in person, as the services and windows pass it around. Plain data: the
    services judge permissions by the database's current record, never by this copy."""

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
