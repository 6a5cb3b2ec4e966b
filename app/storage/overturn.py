"""A lead overturns a decision: the confirm becomes a reject (its hashes retracted) or the
reject a confirm (the item's hashes added), optionally for the whole cluster it decided.
Appended through the decision record, with its OVERTURN audit event; the lead's account is
checked in the same transaction. On a team server the server does it all in one call
(``hd_api_overturn``, app/storage/sql/api_review2.sql); on SQLite, the same work here."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.model.decisions import DECIDING, DecisionRequest, LeadError, OverturnOutcome
from app.core.model.domain import DecisionMethod, ItemStatus, Verdict, utcnow
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.models import Decision
from app.storage.permissions import authorize
from app.storage.record import (
    append_confirm,
    append_decision,
    clear_claim,
    cluster_decisions,
    current_decision,
    lock_item,
    outcome_of_row,
    retract_item_hashes,
)
from app.storage.server_api import call_checked, on_server


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
    was = outcome_of_row(target)
    now = Verdict.REJECT if was is Verdict.CONFIRM else Verdict.CONFIRM
    req = DecisionRequest(
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
    )
    item = lock_item(s, target.item_id)
    assert item is not None
    added = retracted = 0
    if now is Verdict.REJECT:
        append_decision(s, req)
        retracted = retract_item_hashes(
            s, item.id, lead_id, at, f"decision overturned by a lead: {reason}", uuid
        )
    else:
        added = append_confirm(s, req, item)
    item.status = ItemStatus.DECIDED
    clear_claim(item)
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
    lead = authorize(s, lead_id, Permission.OVERTURN)
    uuid = uuid or str(uuidlib.uuid4())
    if on_server(s):
        r = call_checked(
            s,
            text(
                "SELECT * FROM hd_api_overturn(:target, NULL, :category, :reason, :label, "
                ":cluster, :uuid)"
            ),
            {
                "target": decision_uuid,
                "category": category,
                "reason": reason,
                "label": category_label,
                "cluster": include_cluster,
                "uuid": uuid,
            },
            LeadError,
        )[0]
        return OverturnOutcome(
            r.uuid,
            r.item_id,
            Verdict(r.was),
            Verdict(r.now),
            r.hashes_added,
            r.hashes_retracted,
            r.cluster_members,
        )
    at = at or utcnow()
    target = s.scalar(select(Decision).where(Decision.uuid == decision_uuid))
    if target is None:
        raise LeadError(f"decision {decision_uuid} does not exist")
    if target.method == DecisionMethod.SECOND_REVIEW:
        raise LeadError(
            "a second-review verdict is an opinion, not the outcome: overturn the "
            "item's decision instead"
        )
    if target.verdict not in DECIDING and target.verdict != Verdict.OVERTURN:
        raise LeadError(f"only a confirm or a reject can be overturned, not a {target.verdict}")
    standing = current_decision(s, target.item_id)
    if standing is None or standing.uuid != target.uuid:
        raise LeadError(
            f"decision {decision_uuid[:8]} no longer stands for item {target.item_id} (it was "
            "undone or overturned): overturn the item's current decision"
        )
    if outcome_of_row(target) is Verdict.REJECT and not category:
        raise LeadError("overturning a reject confirms the item: choose a category")
    was, now, added, retracted = _overturn_one(
        s, target, lead_id, reason, category, category_label, at, uuid
    )
    members = 0
    if include_cluster:
        for d in cluster_decisions(s, target.uuid):
            if current_decision(s, d.item_id) is not d:
                continue  # this member was decided again since
            _w, _n, more_added, more_retracted = _overturn_one(
                s, d, lead_id, reason, category, category_label, at, str(uuidlib.uuid4()), uuid
            )
            added, retracted = added + more_added, retracted + more_retracted
            members += 1
    append_event(
        s,
        AuditKind.OVERTURN,
        actor_id=lead.id,
        actor_name=lead.username,
        subject=target.uuid,
        detail={
            "overturn": uuid,
            "item": target.item_id,
            "was": was.value,
            "now": now.value,
            "hashes_added": added,
            "hashes_retracted": retracted,
            "cluster_members": members,
        },
        occurred_at=at,
    )
    return OverturnOutcome(uuid, target.item_id, was, now, added, retracted, members)
