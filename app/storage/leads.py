"""What leads do to the record: overturn a decision (retracting or adding hashes), work the
escalation queue, and the blind second review that measures agreement.

Everything is appended through ``append_decision`` (so the decision chain covers it); hash-list
rows are retracted, never deleted. Roles are checked here, where the data changes.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.core.domain import DecisionMethod, ItemStatus, QueueItem, Verdict
from app.core.roles import Permission, PermissionDenied, require
from app.storage.db import Database
from app.storage.models import (
    Decision,
    HashListEntry,
    Item,
    SecondReview,
    User,
    utcnow,
)
from app.storage.review import (
    DecisionOutcome,
    DecisionRequest,
    ReviewError,
    add_item_hashes,
    append_decision,
    queue_order,
    to_queue_item,
)
from app.storage.users import UserInfo

QUEUES = ("review", "escalations", "second_review")
DECIDING = (Verdict.CONFIRM.value, Verdict.REJECT.value)
SR_PENDING, SR_CLAIMED, SR_DONE = "pending", "claimed", "done"


class LeadError(RuntimeError):
    pass


@dataclass(frozen=True)
class OverturnOutcome:
    uuid: str
    item_id: int
    was: Verdict  # the outcome before: confirm or reject
    now: Verdict  # the outcome after
    hashes_added: int = 0
    hashes_retracted: int = 0
    cluster_members: int = 0


# -- helpers on a session ------------------------------------------------------------------


def _role_of(s: Session, user_id: int | None) -> tuple[str, str]:
    user = s.get(User, user_id) if user_id is not None else None
    if user is None:
        raise ReviewError(f"user {user_id} does not exist")
    return user.role, user.username


def outcome_of(d: Decision) -> Verdict:
    """The item outcome a confirm, reject or overturn stands for (an overturn to confirm carries
    the new category; an overturn to reject carries none)."""
    if d.verdict == Verdict.OVERTURN.value:
        return Verdict.CONFIRM if d.category else Verdict.REJECT
    return Verdict(d.verdict)


def current_decision(s: Session, item_id: int) -> Decision | None:
    """The decision that stands for the item now: its latest confirm, reject or overturn that no
    undo or overturn has taken back (second-review opinions never stand)."""
    rows = s.scalars(
        select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
    ).all()
    taken_back = {
        r.supersedes
        for r in rows
        if r.supersedes and r.verdict in (Verdict.UNDO.value, Verdict.OVERTURN.value)
    }
    standing = None
    for r in rows:
        if r.method == DecisionMethod.SECOND_REVIEW.value or r.uuid in taken_back:
            continue
        if r.verdict in DECIDING or r.verdict == Verdict.OVERTURN.value:
            standing = r
    return standing


def retract_item_hashes(
    s: Session, item_id: int, user_id: int, at: datetime, reason: str, by_uuid: str
) -> int:
    """Retract every active hash our own decisions put in the list for this item."""
    rows = s.scalars(
        select(HashListEntry).where(
            HashListEntry.item_id == item_id,
            HashListEntry.list_name == "local",
            HashListEntry.retracted_at.is_(None),
        )
    ).all()
    for e in rows:
        e.retracted_at = at
        e.retracted_by = user_id
        e.retraction_reason = reason
        e.retraction_decision_uuid = by_uuid
    return len(rows)


# -- overturn ------------------------------------------------------------------------------


def _overturn_one(
    s: Session,
    target: Decision,
    lead_id: int,
    reason: str,
    category: str | None,
    category_label: str | None,
    at: datetime,
    uuid: str,
    parent_uuid: str | None = None,
) -> tuple[Verdict, Verdict, int, int]:
    was = outcome_of(target)
    now = Verdict.REJECT if was is Verdict.CONFIRM else Verdict.CONFIRM
    append_decision(
        s,
        DecisionRequest(
            item_id=target.item_id,
            user_id=lead_id,
            verdict=Verdict.OVERTURN,
            category=category if now is Verdict.CONFIRM else None,
            category_label=category_label if now is Verdict.CONFIRM else None,
            note=reason,
            method=DecisionMethod.CLUSTER if parent_uuid else DecisionMethod.MANUAL,
            uuid=uuid,
            decided_at=at,
            supersedes=target.uuid,
            parent_uuid=parent_uuid,
        ),
    )
    item = s.scalar(select(Item).where(Item.id == target.item_id).with_for_update())
    assert item is not None
    item.status = ItemStatus.DECIDED.value
    item.claimed_by = None
    item.lease_expires_at = None
    added = retracted = 0
    if now is Verdict.REJECT:
        retracted = retract_item_hashes(
            s, item.id, lead_id, at, f"decision overturned by a lead: {reason}", uuid
        )
    else:
        added = add_item_hashes(s, item, uuid, category, lead_id, at)
    return was, now, added, retracted


def overturn_in_session(
    s: Session,
    lead_id: int,
    decision_uuid: str,
    reason: str,
    category: str | None = None,
    category_label: str | None = None,
    include_cluster: bool = False,
    uuid: str | None = None,
    at: datetime | None = None,
) -> OverturnOutcome:
    reason = (reason or "").strip()
    if not reason:
        raise LeadError("an overturn needs a reason")
    role, name = _role_of(s, lead_id)
    require(role, Permission.OVERTURN, name)
    uuid = uuid or str(uuidlib.uuid4())
    at = at or utcnow()
    target = s.scalar(select(Decision).where(Decision.uuid == decision_uuid))
    if target is None:
        raise LeadError(f"decision {decision_uuid} does not exist")
    if target.method == DecisionMethod.SECOND_REVIEW.value:
        raise LeadError(
            "a second-review verdict is an opinion, not the outcome: overturn the "
            "item's decision instead"
        )
    if target.verdict not in DECIDING and target.verdict != Verdict.OVERTURN.value:
        raise LeadError(f"only a confirm or a reject can be overturned, not a {target.verdict}")
    standing = current_decision(s, target.item_id)
    if standing is None or standing.uuid != target.uuid:
        raise LeadError(
            f"decision {decision_uuid[:8]} no longer stands for item {target.item_id} (it was "
            "undone or overturned): overturn the item's current decision"
        )
    if outcome_of(target) is Verdict.REJECT and not category:
        raise LeadError("overturning a reject confirms the item: choose a category")
    was, now, added, retracted = _overturn_one(
        s, target, lead_id, reason, category, category_label, at, uuid
    )
    members = 0
    if include_cluster:
        for d in s.scalars(
            select(Decision)
            .where(
                Decision.parent_uuid == target.uuid,
                Decision.method == DecisionMethod.CLUSTER.value,
            )
            .order_by(Decision.id)
        ).all():
            if current_decision(s, d.item_id) is not d:
                continue  # this member was decided again since
            _w, _n, a, r = _overturn_one(
                s, d, lead_id, reason, category, category_label, at, str(uuidlib.uuid4()), uuid
            )
            added, retracted, members = added + a, retracted + r, members + 1
    return OverturnOutcome(uuid, target.item_id, was, now, added, retracted, members)


# -- escalations ---------------------------------------------------------------------------


def escalation_note(s: Session, item_id: int) -> str:
    """Why the item is with a lead: the moderator's escalation note, or the second review that
    disagreed with the first decision."""
    # int | None keys: a nullable user id column is looked up as it is, and None gets "?".
    names: dict[int | None, str] = dict(s.execute(select(User.id, User.username)).all())
    last_esc = s.scalar(
        select(Decision)
        .where(Decision.item_id == item_id, Decision.verdict == Verdict.ESCALATE.value)
        .order_by(Decision.id.desc())
        .limit(1)
    )
    sr = s.scalar(
        select(SecondReview)
        .where(SecondReview.item_id == item_id, SecondReview.agreed.is_(False))
        .order_by(SecondReview.id.desc())
        .limit(1)
    )
    sr_decision = (
        s.scalar(select(Decision).where(Decision.uuid == sr.second_decision_uuid))
        if sr is not None
        else None
    )
    if (
        sr is not None
        and sr_decision is not None
        and (last_esc is None or sr_decision.id > last_esc.id)
    ):
        note = f": {sr_decision.note}" if sr_decision.note else ""
        return (
            f"Second review disagreed: {names.get(sr.first_user_id, '?')} decided "
            f"{sr.first_verdict}, {names.get(sr.second_user_id, '?')} said "
            f"{sr.second_verdict}{note}"
        )
    if last_esc is not None:
        who = names.get(last_esc.user_id, "?")
        return (
            f"Escalated by {who}: {last_esc.note}"
            if last_esc.note
            else (f"Escalated by {who} (no note)")
        )
    return "Escalated"


def resolve_escalation(s: Session, item: Item, req: DecisionRequest) -> DecisionOutcome:
    """A lead's verdict on an escalated item. Skip (or escalate) leaves it with the leads; a
    confirm or reject decides it, overturning the standing decision if it says otherwise."""
    role, name = _role_of(s, req.user_id)
    require(role, Permission.HANDLE_ESCALATIONS, name)
    assert req.user_id is not None
    if req.verdict in (Verdict.SKIP, Verdict.ESCALATE):
        append_decision(s, replace(req, verdict=Verdict.SKIP))
        item.claimed_by = None
        item.lease_expires_at = None
        return DecisionOutcome(req.uuid, item.id, Verdict.SKIP)
    standing = current_decision(s, item.id)
    if standing is not None and outcome_of(standing) is not req.verdict:
        why = req.note or f"resolved on escalation: {req.verdict.value}"
        out = overturn_in_session(
            s,
            req.user_id,
            standing.uuid,
            why,
            category=req.category,
            category_label=req.category_label,
            uuid=req.uuid,
            at=req.decided_at,
        )
        return DecisionOutcome(
            req.uuid,
            item.id,
            Verdict.OVERTURN,
            hashes_added=out.hashes_added,
            hashes_retracted=out.hashes_retracted,
        )
    append_decision(s, req)
    item.status = ItemStatus.DECIDED.value
    item.claimed_by = None
    item.lease_expires_at = None
    added = 0
    if req.verdict is Verdict.CONFIRM and standing is None:
        added = add_item_hashes(s, item, req.uuid, req.category, req.user_id, req.decided_at)
    return DecisionOutcome(req.uuid, item.id, req.verdict, hashes_added=added)


# -- second review -------------------------------------------------------------------------


def sampled(decision_uuid: str, share: float) -> bool:
    """Deterministic sampling by the decision's UUID: the same decision is always in or out,
    on every workstation, and a retried write cannot queue it twice."""
    if share <= 0:
        return False
    return int(decision_uuid.replace("-", "")[:8], 16) / 2**32 < share


def maybe_queue_second_review(s: Session, req: DecisionRequest, share: float) -> bool:
    if (
        req.method is not DecisionMethod.MANUAL
        or req.verdict not in (Verdict.CONFIRM, Verdict.REJECT)
        or not sampled(req.uuid, share)
    ):
        return False
    s.add(
        SecondReview(
            item_id=req.item_id,
            first_decision_uuid=req.uuid,
            first_user_id=req.user_id,
            first_verdict=req.verdict.value,
            status=SR_PENDING,
            created_at=req.decided_at,
        )
    )
    return True


def record_second_review(s: Session, req: DecisionRequest) -> DecisionOutcome:
    """The second moderator's blind verdict. It never changes the item or the hash list; a
    disagreement sends the item to the leads' escalation queue."""
    role, name = _role_of(s, req.user_id)
    require(role, Permission.SECOND_REVIEW, name)
    sr = s.scalar(
        select(SecondReview)
        .where(
            SecondReview.item_id == req.item_id,
            SecondReview.status == SR_CLAIMED,
            SecondReview.claimed_by == req.user_id,
        )
        .with_for_update()
    )
    if sr is None:
        raise ReviewError(f"no second review of item {req.item_id} is waiting for {name}")
    if req.verdict is Verdict.SKIP:
        sr.status, sr.claimed_by, sr.lease_expires_at = SR_PENDING, None, None
        return DecisionOutcome(req.uuid, req.item_id, Verdict.SKIP)
    append_decision(s, replace(req, method=DecisionMethod.SECOND_REVIEW))
    sr.status = SR_DONE
    sr.claimed_by = None
    sr.lease_expires_at = None
    sr.second_user_id = req.user_id
    sr.second_decision_uuid = req.uuid
    sr.second_verdict = req.verdict.value
    sr.agreed = req.verdict.value == sr.first_verdict
    sr.done_at = req.decided_at
    if not sr.agreed:
        item = s.scalar(select(Item).where(Item.id == req.item_id).with_for_update())
        if item is not None and item.status == ItemStatus.DECIDED.value:
            item.status = ItemStatus.ESCALATED.value
            item.claimed_by = None
            item.lease_expires_at = None
    return DecisionOutcome(req.uuid, req.item_id, req.verdict)


# -- the lead queues -----------------------------------------------------------------------


def _not_own(user_id: int):
    return or_(SecondReview.first_user_id.is_(None), SecondReview.first_user_id != user_id)


def _not_taken_back():
    return ~exists().where(
        Decision.supersedes == SecondReview.first_decision_uuid,
        Decision.verdict.in_([Verdict.UNDO.value, Verdict.OVERTURN.value]),
    )


def claim_from_queue(
    db: Database, user_id: int, exclude: Collection[int], queue: str, lease: timedelta
) -> QueueItem | None:
    now = utcnow()
    with db.session() as s:
        role, name = _role_of(s, user_id)
        if queue == "escalations":
            require(role, Permission.HANDLE_ESCALATIONS, name)
            q = (
                select(Item)
                .where(
                    Item.status == ItemStatus.ESCALATED.value,
                    or_(Item.claimed_by.is_(None), Item.lease_expires_at < now),
                )
                .order_by(*queue_order(Item.updated_at))
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if exclude:
                q = q.where(Item.id.not_in(list(exclude)))
            item = s.scalar(q)
            if item is None:
                return None
            item.claimed_by = user_id
            item.lease_expires_at = now + lease
            s.flush()
            return replace(to_queue_item(s, item), escalation_note=escalation_note(s, item.id))
        if queue == "second_review":
            require(role, Permission.SECOND_REVIEW, name)
            sr_q = (
                select(SecondReview)
                .where(
                    or_(
                        SecondReview.status == SR_PENDING,
                        and_(
                            SecondReview.status == SR_CLAIMED, SecondReview.lease_expires_at < now
                        ),
                    ),
                    or_(
                        SecondReview.first_user_id.is_(None), SecondReview.first_user_id != user_id
                    ),
                    _not_taken_back(),
                )
                .order_by(SecondReview.created_at, SecondReview.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if exclude:
                sr_q = sr_q.where(SecondReview.item_id.not_in(list(exclude)))
            sr = s.scalar(sr_q)
            if sr is None:
                return None
            sr.status = SR_CLAIMED
            sr.claimed_by = user_id
            sr.lease_expires_at = now + lease
            item = s.get(Item, sr.item_id)
            assert item is not None
            # Blind: nothing on the card says what the first moderator decided.
            return replace(to_queue_item(s, item), match_note=None)
        raise ReviewError(f"unknown queue {queue!r}: use one of {', '.join(QUEUES)}")


def _lead_claims(
    s: Session, user_id: int, item_ids: list[int]
) -> tuple[list[Item], list[SecondReview]]:
    """The escalated items and the second reviews among ``item_ids`` that ``user_id`` holds."""
    items = s.scalars(
        select(Item).where(
            Item.id.in_(item_ids),
            Item.claimed_by == user_id,
            Item.status == ItemStatus.ESCALATED.value,
        )
    ).all()
    reviews = s.scalars(
        select(SecondReview).where(
            SecondReview.item_id.in_(item_ids),
            SecondReview.claimed_by == user_id,
            SecondReview.status == SR_CLAIMED,
        )
    ).all()
    return list(items), list(reviews)


def renew_lead_claims(s: Session, user_id: int, item_ids: list[int], until: datetime) -> int:
    items, reviews = _lead_claims(s, user_id, item_ids)
    for item in items:
        item.lease_expires_at = until
    for sr in reviews:
        sr.lease_expires_at = until
    return len(items) + len(reviews)


def release_lead_claims(s: Session, user_id: int, item_ids: list[int]) -> int:
    items, reviews = _lead_claims(s, user_id, item_ids)
    for item in items:
        item.claimed_by = None
        item.lease_expires_at = None
    for sr in reviews:
        sr.status, sr.claimed_by, sr.lease_expires_at = SR_PENDING, None, None
    return len(items) + len(reviews)


def queue_count(s: Session, queue: str, user_id: int) -> int:
    if queue == "escalations":
        q = select(func.count()).select_from(Item).where(Item.status == ItemStatus.ESCALATED.value)
    else:
        q = (
            select(func.count())
            .select_from(SecondReview)
            .where(
                SecondReview.status.in_([SR_PENDING, SR_CLAIMED]),
                _not_own(user_id),
                _not_taken_back(),
            )
        )
    return int(s.scalar(q) or 0)


class LeadService:
    """The lead's operations, each one unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def overturn(
        self,
        lead: UserInfo,
        decision_uuid: str,
        reason: str,
        category: str | None = None,
        category_label: str | None = None,
        include_cluster: bool = False,
        uuid: str | None = None,
    ) -> OverturnOutcome:
        require(lead.role, Permission.OVERTURN, lead.username)
        with self.db.session() as s:
            if uuid and s.scalar(select(Decision.id).where(Decision.uuid == uuid)) is not None:
                raise LeadError(f"overturn {uuid} was already recorded")
            return overturn_in_session(
                s,
                lead.id,
                decision_uuid,
                reason,
                category,
                category_label,
                include_cluster,
                uuid,
            )

    def cluster_size_of(self, lead: UserInfo, decision_uuid: str) -> int:
        """How many cluster members were decided with this decision (for the overturn dialog)."""
        require(lead.role, Permission.OVERTURN, lead.username)
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Decision)
                    .where(
                        Decision.parent_uuid == decision_uuid,
                        Decision.method == DecisionMethod.CLUSTER.value,
                    )
                )
                or 0
            )


__all__ = [
    "QUEUES",
    "LeadError",
    "LeadService",
    "OverturnOutcome",
    "PermissionDenied",
    "claim_from_queue",
    "current_decision",
    "maybe_queue_second_review",
    "record_second_review",
    "resolve_escalation",
]
