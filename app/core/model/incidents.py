"""Incidents: the first hours of an attack (issue 23). Plain data and the checks of what a lead
types; no Qt, no SQL. The storage side is app.storage.incidents; the server's is
app/storage/sql/api_incidents.sql, which checks the same values with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from app.core.errors import Refusal
from app.core.model.domain import Algorithm

#: An incident's name: what `hashdesk incident ...` and the banner call it.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LABEL_MAX = 255
#: How many days back a re-scan looks at items already out of the queue (the setting's default).
DEFAULT_RESCAN_DAYS = 7
#: Hash deltas out while an incident is active: every N minutes, in these formats (the deltas'
#: side reads them).
DEFAULT_DELTA_MINUTES = 5
DEFAULT_DELTA_FORMATS: tuple[str, ...] = ("pytx",)
DELTA_FORMATS = ("pytx", "pytx-csv", "tat", "vics")


class IncidentError(Refusal, ValueError):
    """A bad incident request: a name taken, an incident that is not there or is over, a bad
    seed hash. The message names the wrong value."""


@dataclass(frozen=True)
class SeedHash:
    algorithm: Algorithm
    value: str

    def text(self) -> str:
        return f"{self.algorithm.value}:{self.value}"


@dataclass(frozen=True)
class IncidentInfo:
    """An incident as the lead's views, the banner and the CLI show it."""

    id: int
    name: str
    label: str
    started_at: datetime
    ended_at: datetime | None
    declared_by: str | None
    concluded_by: str | None
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    seed_hashes: tuple[str, ...] = ()
    seed_items: tuple[int, ...] = ()
    delta_minutes: int = DEFAULT_DELTA_MINUTES
    delta_formats: tuple[str, ...] = DEFAULT_DELTA_FORMATS
    assigned: tuple[str, ...] = field(default=())

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def banner(self) -> str:
        """The review window's banner line."""
        return f"INCIDENT {self.name} · {self.label}"


@dataclass
class RescanReport:
    """What one re-scan did (app.storage.incidents.Rescanner): the hashes searched (only the
    new ones), the stored items looked at, and what became of those that matched."""

    trigger: str
    searched_hashes: int
    items_scanned: int
    matched: int = 0
    resolved: int = 0
    badged: int = 0
    tagged: int = 0
    flagged_misses: int = 0
    counted_decided: int = 0
    seconds: float = 0.0
    rescan_id: int | None = None

    def line(self) -> str:
        return (
            f"re-scan ({self.trigger}): {self.searched_hashes} new hash(es) searched over "
            f"{self.items_scanned} item(s): {self.matched} matched, {self.resolved} resolved, "
            f"{self.badged} badged, {self.tagged} put under an incident, "
            f"{self.flagged_misses} rejected flagged as possible misses, "
            f"{self.counted_decided} already decided (counted) in {self.seconds:.2f} s"
        )


@dataclass(frozen=True)
class PossibleMiss:
    """A rejected item a re-scan found matching a confirmed hash: for a lead to look at."""

    id: int
    item_id: int
    entry_id: int | None
    note: str | None
    flagged_at: datetime


def check_name(name: str) -> str:
    n = (name or "").strip()
    if not NAME_RE.match(n):
        raise IncidentError(
            f"incident name {n!r} is not allowed: 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return n


def check_label(label: str) -> str:
    lab = (label or "").strip()
    if not lab:
        raise IncidentError("an incident needs a label (e.g. a CIP reference)")
    if len(lab) > LABEL_MAX or any(c.isspace() for c in lab):
        raise IncidentError(
            f"incident label {lab[:40]!r} must be one word of at most {LABEL_MAX} characters "
            "(it becomes a hash-list label)"
        )
    return lab


def check_words(what: str, values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        w = (v or "").strip()
        if not w or len(w) > 128:
            raise IncidentError(f"{what} {v!r} is empty or longer than 128 characters")
        if w not in out:
            out.append(w)
    return tuple(out)


def check_delta(minutes: int, formats: list[str] | tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    if not 1 <= int(minutes) <= 1440:
        raise IncidentError(f"delta interval {minutes} minutes is out of range (1 to 1440)")
    fmts = tuple(dict.fromkeys(f.strip().lower() for f in formats)) or DEFAULT_DELTA_FORMATS
    for f in fmts:
        if f not in DELTA_FORMATS:
            raise IncidentError(f"delta format {f!r} is not one of {', '.join(DELTA_FORMATS)}")
    return int(minutes), fmts
