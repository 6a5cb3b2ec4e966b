"""Hash lists as plain data: which lists there are, what a match on each does, and what the lists
view and the import/export commands read. No Qt, no SQL (storage/hash_lists.py keeps them).

Every hash-list entry belongs to one list. ``local`` holds our own confirms (its policy is the
workstation's ``known_content`` setting). Every other list was imported from a partner, with
its provenance (source, labels, external id, first and last seen), a policy for what a match
does and, optionally, its own PDQ threshold. An *allow* list holds known-benign content (news
footage of an attack, say): an item that matches it is never resolved without a human, even
when it also matches a block list. See docs/ARCHITECTURE.md, "Hash lists and exchange".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

#: Our own confirmed hashes.
LOCAL_LIST = "local"
#: Entries of imported lists live in their own space of the in-memory index, so that each
#: list's threshold and policy apply to its entries only.
LIST_SPACE_PREFIX = "list:"


class ListPolicy(StrEnum):
    """What a match on a list does."""

    RESOLVE = "resolve"  # auto-matched, no human
    QUEUE = "queue"  # queued with a "known match" badge for verification
    OFF = "off"  # kept, never matched


class FeedbackVerdict(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"


def list_space(name: str) -> str:
    """The index space of a list's entries: the root for ``local``, ``list:<name>`` otherwise."""
    return "" if name == LOCAL_LIST else LIST_SPACE_PREFIX + name


def check_list_name(name: str) -> str:
    """A list name as stored; ValueError with the reason when it cannot be one."""
    name = name.strip()
    if not name:
        raise ValueError("a list needs a name")
    if len(name) > 64:
        raise ValueError(f"list name {name[:20]!r}... is longer than 64 characters")
    if any(c.isspace() for c in name) or ":" in name:
        raise ValueError(f"list name {name!r} may not contain spaces or ':'")
    return name


#: A list's own PDQ threshold, in bits of 256 (the database holds the same CHECK).
PDQ_THRESHOLD_MIN, PDQ_THRESHOLD_MAX = 0, 64


def check_pdq_threshold(value: int | None) -> int | None:
    """A list's PDQ threshold as stored (None: the workstation's); ValueError with the reason
    when it cannot be one. The one check every path that sets a list rule goes through: the
    CLI (`lists set`, `lists import`), the lists view, the import, and the rule itself."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"PDQ threshold {value!r} is not a whole number")
    if not PDQ_THRESHOLD_MIN <= value <= PDQ_THRESHOLD_MAX:
        raise ValueError(
            f"PDQ threshold {value} is out of range: use {PDQ_THRESHOLD_MIN} to "
            f"{PDQ_THRESHOLD_MAX} (bits of 256; 31 is the usual)"
        )
    return value


@dataclass(frozen=True)
class ListRule:
    """How matches on one list count (read by the matcher at ingest)."""

    name: str
    policy: ListPolicy
    pdq_threshold: int | None = None  # None: the workstation's threshold
    allow: bool = False

    def __post_init__(self) -> None:
        check_pdq_threshold(self.pdq_threshold)

    @property
    def space(self) -> str:
        return list_space(self.name)


@dataclass(frozen=True)
class ListInfo:
    """One list as the lists view and ``hashdesk lists`` show it."""

    name: str
    source: str | None
    policy: ListPolicy
    pdq_threshold: int | None
    allow: bool
    active: int
    disabled: int
    retracted: int
    flood_guarded: int
    last_import_at: datetime | None
    last_import_note: str | None


@dataclass(frozen=True)
class EntryRow:
    """One entry of a list, for the lists view."""

    id: int
    list_name: str
    algorithm: str
    value: str
    variant: str
    labels: str
    external_id: str | None
    category: str | None
    added_at: datetime
    last_seen: datetime | None
    state: str  # active / disabled / retracted
    reason: str | None  # why disabled or retracted
    flood_guarded: bool
    agree: int = 0
    disagree: int = 0


@dataclass(frozen=True)
class EntryFilter:
    """Which entries the lists view shows: a list, a hash prefix, a label (all optional)."""

    list_name: str | None = None
    hash_prefix: str = ""
    label: str = ""
    include_retracted: bool = False


@dataclass(frozen=True)
class EntryPage:
    rows: tuple[EntryRow, ...]
    next_cursor: int | None  # the last id shown: the next page starts below it


@dataclass
class ImportSummary:
    """What an import did, line by line problems included."""

    list_name: str
    fmt: str
    lines: int = 0
    added: int = 0
    unchanged: int = 0
    updated: int = 0
    retracted: int = 0
    duplicates: int = 0
    unsupported: dict[str, int] | None = None
    problems: list[tuple[int, str]] | None = None
    import_id: str = ""
    seconds: float = 0.0

    def lines_text(self) -> list[str]:
        out = [
            f"imported {self.lines} line(s) into {self.list_name} ({self.fmt}): "
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.retracted} retracted, {self.duplicates} duplicate(s), "
            f"{len(self.problems or [])} bad line(s)"
        ]
        for name, n in sorted((self.unsupported or {}).items()):
            out.append(f"  {n} hash(es) of type {name!r}: Hashdesk cannot match it, not imported")
        for line, why in self.problems or []:
            out.append(f"  line {line}: {why}")
        return out


@dataclass(frozen=True)
class ExportSummary:
    path: str
    fmt: str
    entries: int
    skipped: dict[str, int]  # hash types the format cannot carry
