"""One strategy per queue (app.core.model.queues.Queue): what it claims, in which order, how a
claim is taken and given back, what it counts. ``QUEUES`` holds one of each; the review service
dispatches through it, never by ``if queue == ...``.

The claim-with-lease query is written once, in :meth:`QueueStrategy.claim`: the first row the
queue's filter lets through, in the queue's order, locked with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (two workstations never take the same row; one claiming right now is skipped, not
waited for). SQLite has no row locks: its writer lock, taken at BEGIN (app.storage.db), makes
the read-then-write a unit. A claim holds its row until the lease runs out; a row whose lease
has run out is claimable again, so a crashed workstation's items come back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.model.domain import (
    IN_QUEUE_STATUSES,
    OPEN_STATUSES,
    ItemStatus,
    QueueItem,
    open_status_for,
    utcnow,
)
from app.core.model.queues import Queue, SecondReviewState
from app.core.model.roles import Permission
from app.storage import second_review
from app.storage.escalations import escalation_note
from app.storage.models import Incident, IncidentAssignment, Item, SecondReview
from app.storage.permissions import authorize
from app.storage.record import clear_claim, queue_order, to_queue_item
from app.storage.second_review import not_own, not_taken_back
from app.storage.server_api import call, on_server

#: A row a queue claims: an item (review, escalations) or a second review.
Claimable = Item | SecondReview

#: On a team server: how many candidates the client reads, in the queue's order, for the server
#: to claim the first still claimable of (hd_api_claim, app/storage/sql/api_review.sql).
CANDIDATES = 16
_CLAIM = text("SELECT hd_api_claim(:queue, :ids)")
_RENEW = text("SELECT hd_api_renew(:ids)")
_RELEASE = text("SELECT hd_api_release(:ids)")


class QueueStrategy:
    """A queue's behaviour. Subclasses say which rows (``model``, keyed to their item by
    ``item_key``), which of them are claimable now, in what order, and what taking and giving
    back a claim changes; the claim, renewal, release and the held rows are written here once.
    """

    queue: ClassVar[Queue]
    permission: ClassVar[Permission]
    model: ClassVar[type[Item] | type[SecondReview]]

    def item_key(self) -> InstrumentedAttribute[int]:
        """The column that names a row's item (what ``exclude`` and ``item_ids`` list)."""
        raise NotImplementedError

    def claimable(self, user_id: int, now: datetime) -> Any:
        """The filter of rows ``user_id`` may claim at ``now`` (expired leases included)."""
        raise NotImplementedError

    def order(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def held(self) -> Any:
        """The filter of rows under a claim in this queue (whoever holds it)."""
        raise NotImplementedError

    def take(self, row: Any, user_id: int, until: datetime) -> None:
        row.claimed_by = user_id
        row.lease_expires_at = until

    def give_back(self, row: Any) -> None:
        raise NotImplementedError

    def card(self, s: Session, row: Any) -> QueueItem:
        raise NotImplementedError

    def count(self, s: Session, user_id: int) -> int:
        """Rows waiting in the queue for ``user_id``, claimed ones included."""
        raise NotImplementedError

    # -- written once ------------------------------------------------------------------------

    def claim(
        self, s: Session, user_id: int, exclude: Collection[int], lease: timedelta
    ) -> QueueItem | None:
        """Claim the next row for ``user_id`` for ``lease``; None when the queue is empty.
        On a team server the server claims, for its own lease (:meth:`_claim_on_server`)."""
        if on_server(s):
            return self._claim_on_server(s, user_id, exclude)
        authorize(s, user_id, self.permission)
        now = utcnow()
        query = (
            select(self.model)
            .where(self.claimable(user_id, now))
            .order_by(*self.order())
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if exclude:
            query = query.where(self.item_key().not_in(list(exclude)))
        row = s.scalar(query)
        if row is None:
            return None
        self.take(row, user_id, now + lease)
        s.flush()
        return self.card(s, row)

    def _claim_on_server(
        self, s: Session, user_id: int, exclude: Collection[int]
    ) -> QueueItem | None:
        """Read the next candidates in the queue's order and have the server claim the first
        that is still claimable; again with the next ones if another workstation took them all
        meanwhile."""
        skip = list(exclude)
        while True:
            query = (
                select(self.item_key())
                .where(self.claimable(user_id, utcnow()))
                .order_by(*self.order())
                .limit(CANDIDATES)
            )
            if skip:
                query = query.where(self.item_key().not_in(skip))
            ids = list(dict.fromkeys(s.scalars(query)))
            if not ids:
                return None
            got = call(s, _CLAIM, {"queue": self.queue.value, "ids": ids})[0][0]
            if got is not None:
                return self.card(s, self.held_by(s, user_id, [got])[0])
            skip += ids

    def held_by(self, s: Session, user_id: int, item_ids: Collection[int] | None = None) -> list:
        """The rows ``user_id`` holds in this queue (of ``item_ids``, when given)."""
        query = select(self.model).where(self.model.claimed_by == user_id, self.held())
        if item_ids is not None:
            query = query.where(self.item_key().in_(list(item_ids)))
        return list(s.scalars(query))

    def held_item_ids(self, s: Session, user_id: int) -> list[int]:
        query = select(self.item_key()).where(self.model.claimed_by == user_id, self.held())
        return list(s.scalars(query))

    def renew(self, s: Session, user_id: int, item_ids: Collection[int], until: datetime) -> int:
        rows = self.held_by(s, user_id, item_ids)
        for row in rows:
            row.lease_expires_at = until
        return len(rows)

    def release(self, s: Session, user_id: int, item_ids: Collection[int]) -> int:
        rows = self.held_by(s, user_id, item_ids)
        for row in rows:
            self.give_back(row)
        return len(rows)


def _active_incidents() -> Any:
    return select(Incident.id).where(Incident.ended_at.is_(None))


def incident_first() -> Any:
    """The review order's first key: items under an active incident before everything else
    (the incident queue)."""
    return case((Item.incident_id.in_(_active_incidents()), 0), else_=1)


def assigned_only(user_id: int) -> Any:
    """Whom a lead moved onto an active incident claims only its items; everyone else, every
    item (the incident's first)."""
    mine = (
        select(IncidentAssignment.incident_id)
        .join(Incident, Incident.id == IncidentAssignment.incident_id)
        .where(IncidentAssignment.user_id == user_id, Incident.ended_at.is_(None))
    )
    return or_(~exists(mine), Item.incident_id.in_(mine))


class ReviewQueue(QueueStrategy):
    """The moderators' queue: open items (a cluster by its representative), the incident
    queue first (items under an active incident), then deadline first. Someone a lead moved
    onto an incident claims only its items."""

    queue = Queue.REVIEW
    permission = Permission.REVIEW
    model = Item

    def item_key(self) -> InstrumentedAttribute[int]:
        return Item.id

    def claimable(self, user_id: int, now: datetime) -> Any:
        return and_(
            or_(
                Item.status.in_(OPEN_STATUSES),
                and_(Item.status == ItemStatus.CLAIMED, Item.lease_expires_at < now),
            ),
            or_(Item.cluster_id.is_(None), Item.cluster_id == Item.id),
            assigned_only(user_id),
        )

    def order(self) -> tuple[Any, ...]:
        return (incident_first(), *queue_order(Item.created_at))

    def held(self) -> Any:
        return Item.status == ItemStatus.CLAIMED

    def take(self, row: Any, user_id: int, until: datetime) -> None:
        row.status = ItemStatus.CLAIMED
        super().take(row, user_id, until)

    def give_back(self, row: Any) -> None:
        row.status = open_status_for(row.kind)
        clear_claim(row)

    def card(self, s: Session, row: Any) -> QueueItem:
        return to_queue_item(s, row)

    def count(self, s: Session, user_id: int) -> int:
        q = (
            select(func.count())
            .select_from(Item)
            .where(Item.status.in_(IN_QUEUE_STATUSES), assigned_only(user_id))
        )
        return int(s.scalar(q) or 0)


class EscalationQueue(QueueStrategy):
    """The leads' queue: escalated items, the longest-waiting first. A claim leaves the status
    as it is (escalated): only the holder and the lease change."""

    queue = Queue.ESCALATIONS
    permission = Permission.HANDLE_ESCALATIONS
    model = Item

    def item_key(self) -> InstrumentedAttribute[int]:
        return Item.id

    def claimable(self, user_id: int, now: datetime) -> Any:
        return and_(
            Item.status == ItemStatus.ESCALATED,
            or_(Item.claimed_by.is_(None), Item.lease_expires_at < now),
        )

    def order(self) -> tuple[Any, ...]:
        return queue_order(Item.updated_at)

    def held(self) -> Any:
        return Item.status == ItemStatus.ESCALATED

    def give_back(self, row: Any) -> None:
        clear_claim(row)

    def card(self, s: Session, row: Any) -> QueueItem:
        return replace(to_queue_item(s, row), escalation_note=escalation_note(s, row.id))

    def count(self, s: Session, user_id: int) -> int:
        q = select(func.count()).select_from(Item).where(Item.status == ItemStatus.ESCALATED)
        return int(s.scalar(q) or 0)


class SecondReviewQueue(QueueStrategy):
    """Blind second review: sampled decisions still standing, never one's own, oldest first.
    The card says nothing of the first verdict."""

    queue = Queue.SECOND_REVIEW
    permission = Permission.SECOND_REVIEW
    model = SecondReview

    def item_key(self) -> InstrumentedAttribute[int]:
        return SecondReview.item_id

    def claimable(self, user_id: int, now: datetime) -> Any:
        return and_(
            or_(
                SecondReview.status == SecondReviewState.PENDING,
                and_(
                    SecondReview.status == SecondReviewState.CLAIMED,
                    SecondReview.lease_expires_at < now,
                ),
            ),
            not_own(user_id),
            not_taken_back(),
        )

    def order(self) -> tuple[Any, ...]:
        return (SecondReview.created_at, SecondReview.id)

    def held(self) -> Any:
        return SecondReview.status == SecondReviewState.CLAIMED

    def take(self, row: Any, user_id: int, until: datetime) -> None:
        row.status = SecondReviewState.CLAIMED
        super().take(row, user_id, until)

    def give_back(self, row: Any) -> None:
        row.status, row.claimed_by, row.lease_expires_at = SecondReviewState.PENDING, None, None

    def card(self, s: Session, row: Any) -> QueueItem:
        return self._card(s, row.item_id)

    def _card(self, s: Session, item_id: int) -> QueueItem:
        item = s.get(Item, item_id)
        assert item is not None
        # Blind: nothing on the card says what the first moderator decided.
        return replace(to_queue_item(s, item), match_note=None)

    # On a team server moderators cannot read the first verdict nor change a second review:
    # the claims are the server's (app.storage.second_review, api_review2.sql).

    def claim(
        self, s: Session, user_id: int, exclude: Collection[int], lease: timedelta
    ) -> QueueItem | None:
        if not on_server(s):
            return super().claim(s, user_id, exclude, lease)
        authorize(s, user_id, self.permission)
        item_id = second_review.claim_on_server(s, exclude, lease)
        return None if item_id is None else self._card(s, item_id)

    def renew(self, s: Session, user_id: int, item_ids: Collection[int], until: datetime) -> int:
        if not on_server(s):
            return super().renew(s, user_id, item_ids, until)
        return second_review.renew_on_server(s, item_ids, until - utcnow())

    def release(self, s: Session, user_id: int, item_ids: Collection[int]) -> int:
        if not on_server(s):
            return super().release(s, user_id, item_ids)
        return second_review.release_on_server(s, item_ids)

    def count(self, s: Session, user_id: int) -> int:
        q = (
            select(func.count())
            .select_from(SecondReview)
            .where(
                SecondReview.status.in_([SecondReviewState.PENDING, SecondReviewState.CLAIMED]),
                not_own(user_id),
                not_taken_back(),
            )
        )
        return int(s.scalar(q) or 0)


def renew_on_server(s: Session, item_ids: Collection[int]) -> int:
    """Extend the session's person's claims on ``item_ids`` in every queue, for the server's
    lease."""
    return int(call(s, _RENEW, {"ids": list(item_ids)})[0][0] or 0)


def release_on_server(s: Session, item_ids: Collection[int]) -> int:
    """Give the session's person's claims on ``item_ids`` back, in every queue."""
    return int(call(s, _RELEASE, {"ids": list(item_ids)})[0][0] or 0)


QUEUES: dict[Queue, QueueStrategy] = {
    q.queue: q for q in (ReviewQueue(), EscalationQueue(), SecondReviewQueue())
}
assert set(QUEUES) == set(Queue), "every queue has its strategy"
