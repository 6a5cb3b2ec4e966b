"""Agree/disagree feedback on imported hash-list entries, kept for the list's owner.

Recorded explicitly (``HashListService.feedback``) and from the review screen: a moderator's
confirm of an item that waited with a known-match badge from an imported entry agrees with
the entry, a reject disagrees, in the same transaction as the decision. On a team server the
row is written by the server (hd_api_list_feedback: in the session's own name, at the server's
time); elsewhere here."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.matching.hash_lists import LOCAL_LIST, FeedbackVerdict
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, Verdict, utcnow
from app.storage.models import HashListEntry, HashListFeedback, Item
from app.storage.server_api import call, on_server

#: The most characters a feedback note may have (the server holds the same limit).
NOTE_MAX = 4000


def add_feedback(
    s: Session,
    entry_id: int,
    verdict: FeedbackVerdict,
    user_id: int | None,
    item_id: int | None = None,
    note: str | None = None,
) -> HashListFeedback:
    """Record ``user_id``'s feedback on entry ``entry_id`` (on a team server: the session's
    own account's, whoever ``user_id`` names). The entry exists and is imported: the callers
    check, and so does the server."""
    note = note[:NOTE_MAX] if note else note
    if on_server(s):
        ((fid,),) = call(
            s,
            text("SELECT hd_api_list_feedback(:entry, :verdict, :item, :note)"),
            {
                "entry": entry_id,
                "verdict": FeedbackVerdict(verdict).value,
                "item": item_id,
                "note": note,
            },
        )
        row = s.get(HashListFeedback, fid)
        assert row is not None
        return row
    row = HashListFeedback(
        entry_id=entry_id,
        item_id=item_id,
        user_id=user_id,
        verdict=verdict,
        note=note,
        created_at=utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def feedback_from_decision(s: Session, item: Item, req: DecisionRequest) -> bool:
    """Record a manual confirm or reject of a badged item as feedback on the imported entry
    that badged it. Returns whether feedback was recorded."""
    if item.known_entry_id is None or req.method is not DecisionMethod.MANUAL:
        return False
    if req.verdict not in (Verdict.CONFIRM, Verdict.REJECT):
        return False
    list_name = s.scalar(
        select(HashListEntry.list_name).where(HashListEntry.id == item.known_entry_id)
    )
    if list_name is None or list_name == LOCAL_LIST:
        return False
    verdict = FeedbackVerdict.AGREE if req.verdict is Verdict.CONFIRM else FeedbackVerdict.DISAGREE
    add_feedback(s, item.known_entry_id, verdict, req.user_id, item.id, req.note)
    return True
