"""The leads' escalation queue: items a moderator escalated or a second review disagreed on.
A lead claims one, reads why it is there, and decides it (overturning the standing decision
if the lead says otherwise). On a team server the server resolves it in one call
(``hd_api_resolve_escalation``, app/storage/sql/api_review2.sql)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.model.decisions import DecisionOutcome, DecisionRequest, ReviewError
from app.core.model.domain import ItemStatus, Verdict
from app.core.model.roles import Permission
from app.storage.models import Decision, Item, SecondReview, User
from app.storage.overturn import overturn_in_session
from app.storage.permissions import authorize
from app.storage.record import (
    append_confirm,
    append_decision,
    clear_claim,
    current_decision,
    outcome_of_row,
)
from app.storage.server_api import call_checked, on_server


def escalation_note(s: Session, item_id: int) -> str:
    """Why the item is with a lead: the moderator's escalation note, or the second review that
    disagreed with the first decision."""
    # int | None keys: a nullable user id column is looked up as it is, and None gets "?".
    names: dict[int | None, str] = dict(s.execute(select(User.id, User.username)).all())
    last_esc = s.scalar(
        select(Decision)
        .where(Decision.item_id == item_id, Decision.verdict == Verdict.ESCALATE)
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
        why = (
            f"Second review disagreed: {names.get(sr.first_user_id, '?')} decided "
            f"{sr.first_verdict}, {names.get(sr.second_user_id, '?')} said "
            f"{sr.second_verdict}{note}"
        )
        since = sr_decision.id
    elif last_esc is not None:
        who = names.get(last_esc.user_id, "?")
        why = (
            f"Escalated by {who}: {last_esc.note}"
            if last_esc.note
            else (f"Escalated by {who} (no note)")
        )
        since = last_esc.id
    else:
        return "Escalated"
    # A lead who passed it on (E on the escalation queue: a skip with a note) says why too.
    passed = s.scalar(
        select(Decision)
        .where(
            Decision.item_id == item_id,
            Decision.verdict == Verdict.SKIP,
            Decision.note.is_not(None),
            Decision.id > since,
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )
    if passed is not None:
        why += f". Passed on by {names.get(passed.user_id, '?')}: {passed.note}"
    return why


def resolve_escalation(s: Session, item: Item, req: DecisionRequest) -> DecisionOutcome:
    """A lead's verdict on an escalated item. Skip (or escalate) leaves it with the leads; a
    confirm or reject decides it, overturning the standing decision if it says otherwise."""
    authorize(s, req.user_id, Permission.HANDLE_ESCALATIONS)
    assert req.user_id is not None
    if on_server(s):
        r = call_checked(
            s,
            text(
                "SELECT * FROM hd_api_resolve_escalation(:item, :verdict, :category, :label, "
                ":note, :uuid)"
            ),
            {
                "item": item.id,
                "verdict": req.verdict.value,
                "category": req.category,
                "label": req.category_label,
                "note": req.note,
                "uuid": req.uuid,
            },
            ReviewError,
        )[0]
        return DecisionOutcome(
            req.uuid,
            item.id,
            Verdict(r.verdict),
            hashes_added=r.hashes_added,
            hashes_retracted=r.hashes_retracted,
            duplicate=bool(r.duplicate),
        )
    if req.verdict in (Verdict.SKIP, Verdict.ESCALATE):
        append_decision(s, replace(req, verdict=Verdict.SKIP))
        clear_claim(item)
        return DecisionOutcome(req.uuid, item.id, Verdict.SKIP)
    standing = current_decision(s, item.id)
    if standing is not None and outcome_of_row(standing) is not req.verdict:
        why = req.note or f"resolved on escalation: {req.verdict}"
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
    added = 0
    if req.verdict is Verdict.CONFIRM and standing is None:
        added = append_confirm(s, req, item)
    else:
        append_decision(s, req)
    item.status = ItemStatus.DECIDED
    clear_claim(item)
    return DecisionOutcome(req.uuid, item.id, req.verdict, hashes_added=added)
