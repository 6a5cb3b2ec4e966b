"""The review screen's words: what a key press did, what an undo took back, why the screen is
empty, a person's own exposure days. Plain functions of plain data, shared by the presenter
and the window (and tested without either)."""

from __future__ import annotations

from app.core.model.decisions import DecisionOutcome, DecisionRequest, QueueCounts
from app.core.model.domain import Verdict
from app.core.model.exposure import ExposureSummary, format_exposure
from app.core.model.taxonomy import Taxonomy
from app.core.reports import plural

_DONE = {
    Verdict.CONFIRM: "Confirmed",
    Verdict.REJECT: "Rejected",
    Verdict.SKIP: "Skipped",
    Verdict.ESCALATE: "Escalated",
    Verdict.OVERTURN: "Overturned the standing decision on",
}


def _what(verdict: Verdict, item_id: int, members: int, queue: str) -> str:
    if verdict is Verdict.SKIP and queue == "escalations":
        what = f"Passed #{item_id} on to another lead"
    else:
        what = f"{_DONE.get(verdict, verdict.value)} #{item_id}"
    if members:
        what += f" and {plural(members, 'cluster member')}"
    if verdict is Verdict.ESCALATE:
        what += " to a lead"
    if verdict is Verdict.SKIP and queue == "review":
        what += " (back after the rest of the queue)"
    return what


def decision_feedback(
    verdict: Verdict,
    item_id: int,
    members: int,
    queue: str,
    outcome: DecisionOutcome | None = None,
) -> str:
    """One line saying what a key press did: "Confirmed #123 and 4 cluster members · 11 hashes
    added · U to undo". Without ``outcome`` the decision is journalled but not yet saved."""
    parts = [_what(outcome.verdict if outcome else verdict, item_id, members, queue)]
    if outcome is None:
        parts.append("saving…")
    elif outcome.late:
        parts.append("someone had already decided it: recorded, no hashes changed")
        if outcome.conflict:
            parts.append("the disagreement goes to a lead")
    else:
        if outcome.hashes_added:
            parts.append(f"{plural(outcome.hashes_added, 'hash', 'hashes')} added")
        if outcome.hashes_retracted:
            parts.append(f"{plural(outcome.hashes_retracted, 'hash', 'hashes')} retracted")
    if queue == "review":
        parts.append("U to undo")
    return " · ".join(parts)


def undo_feedback(undone: DecisionRequest | None, outcome: DecisionOutcome | None) -> str:
    """ "Undid: confirm of #123 and 4 cluster members · 11 hashes retracted"."""
    if undone is not None:
        what = f"{undone.verdict.value} of #{undone.item_id}"
    elif outcome is not None:
        what = f"your last decision on #{outcome.item_id}"
    else:
        return "Nothing to undo."
    parts = [f"Undid: {what}"]
    if outcome is None:
        parts.append("saving…")
    else:
        if outcome.cluster_members:
            parts[0] += f" and {plural(outcome.cluster_members, 'cluster member')}"
        if outcome.hashes_retracted:
            parts.append(f"{plural(outcome.hashes_retracted, 'hash', 'hashes')} retracted")
    return " · ".join(parts)


def category_range(taxonomy: Taxonomy) -> str:
    """The category keys as a moderator presses them: "1-7" (or the keys themselves)."""
    keys = [c.shortcut for c in taxonomy.categories]
    if not keys:
        return "none"
    if all(k.isdigit() for k in keys) and [int(k) for k in keys] == list(
        range(int(keys[0]), int(keys[0]) + len(keys))
    ):
        return keys[0] if len(keys) == 1 else f"{keys[0]}-{keys[-1]}"
    return ", ".join(keys)


def not_confirmed_text(taxonomy: Taxonomy) -> str:
    """The last-action line when Confirm was pressed with no category chosen: it says the
    confirm did not happen, so the previous action's line is not taken for this one's."""
    return f"Not confirmed: choose a category ({category_range(taxonomy)}) first"


def skipped_back_text(n: int) -> str:
    """The queue is served: the items skipped in this session come round again."""
    if n == 1:
        return "The rest of the queue is done: the item you skipped comes back now."
    return f"The rest of the queue is done: the {n} items you skipped come back now."


def empty_queue_text(counts: QueueCounts | None) -> str:
    """What the screen says with no item to show, in agreement with the count beside it."""
    if counts is None or counts.open_items == 0:
        return "The queue is empty. New items appear here."
    n = counts.open_items
    if n == 1:
        return (
            "Nothing for you right now: the 1 item left is with another reviewer or waits "
            "behind a cluster they are deciding. It appears here when it is free."
        )
    return (
        f"Nothing for you right now: the {n} items left are with other reviewers or wait "
        "behind a cluster they are deciding. They appear here when they are free."
    )


def my_exposure_text(summary: ExposureSummary) -> str:
    """A person's own days, newest first, said plainly and kindly."""
    lines = [
        "What you have seen unblurred, day by day. It is here so that you can look after "
        "yourself: less is better, and a high day is a reason for a break, not a failure.",
        "",
    ]
    for d in reversed(summary.days):
        past = "  · past the daily limit" if d.limit_passed else ""
        lines.append(
            f"{d.day.isoformat()}   {format_exposure(d.seconds)} unblurred, "
            f"{plural(d.items, 'item')}{past}"
        )
    if not summary.days:
        lines.append("Nothing unblurred in the last 14 days.")
    return "\n".join(lines)


def cluster_text(size: int, index: int | None = None) -> str:
    """The side pane's cluster line: its size, and which member shows when paging."""
    if index is not None:
        return (
            f"{plural(size, 'item')}: showing {index + 1} of {size} (PgUp/PgDn); "
            "one decision covers all"
        )
    if size > 1:
        return f"{size} items (PgUp/PgDn to look through them)"
    return "1 item"
