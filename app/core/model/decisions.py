"""What a decision is, as every layer speaks of it: the request a moderator's key makes, what
came of it, what an overturn did, the queue counts, and the pure rules about verdicts.
Plain data, no Qt, no SQL: these cross between the journal, the services and the windows.
Where they are written down: app.storage.record (docs/ARCHITECTURE.md, "A key press")."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime

from app.core.errors import Refusal
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.core.model.queues import Queue

#: Verdicts that end a moderator's work on an item and that undo can take back.
UNDOABLE = (Verdict.CONFIRM, Verdict.REJECT, Verdict.SKIP, Verdict.ESCALATE)
#: Verdicts that decide what an item is (an overturn also does: see ``outcome_of``).
DECIDING = (Verdict.CONFIRM, Verdict.REJECT)
#: The queues a reviewer can work: moderators' review, leads' escalations, blind second review.
QUEUES: tuple[Queue, ...] = tuple(Queue)


class ReviewError(Refusal, RuntimeError):
    """A decision or claim that cannot be made as asked (explained in one line)."""


class LeadError(Refusal, RuntimeError):
    """A lead's operation that cannot be made as asked (explained in one line)."""


@dataclass(frozen=True)
class DecisionRequest:
    item_id: int
    user_id: int | None  # None: made by the system (auto-match)
    verdict: Verdict
    category: str | None = None
    category_label: str | None = None
    note: str | None = None
    method: DecisionMethod = DecisionMethod.MANUAL
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    decided_at: datetime = field(default_factory=utcnow)
    supersedes: str | None = None
    parent_uuid: str | None = None
    matched_entry_id: int | None = None
    match_distance: int | None = None


@dataclass(frozen=True)
class DecisionOutcome:
    uuid: str
    item_id: int
    verdict: Verdict
    hashes_added: int = 0
    hashes_retracted: int = 0
    cluster_members: int = 0  # other items of the cluster decided with it
    duplicate: bool = False  # the UUID had already been recorded: nothing was written
    late: bool = False  # landed after the item was decided: recorded, nothing else changed
    conflict: bool = False  # ...and disagreed with the standing decision: sent to the leads


@dataclass(frozen=True)
class OverturnOutcome:
    uuid: str
    item_id: int
    was: Verdict  # the outcome before: confirm or reject
    now: Verdict  # the outcome after
    hashes_added: int = 0
    hashes_retracted: int = 0
    cluster_members: int = 0


@dataclass(frozen=True)
class QueueCounts:
    open_items: int
    decided_today: int


def outcome_of(verdict: str, category: str | None) -> Verdict:
    """The item outcome a confirm, reject or overturn stands for (an overturn to confirm carries
    the new category; an overturn to reject carries none)."""
    if verdict == Verdict.OVERTURN.value:
        return Verdict.CONFIRM if category else Verdict.REJECT
    return Verdict(verdict)


def sampled(decision_uuid: str, share: float) -> bool:
    """Whether a decision goes to blind second review: deterministic by its UUID, so the same
    decision is always in or out, on every workstation, and a retried write cannot queue it
    twice."""
    if share <= 0:
        return False
    return int(decision_uuid.replace("-", "")[:8], 16) / 2**32 < share
