"""What a new user hit on the review screen (issue 14): skipped items come back, the empty
message agrees with the count, cluster paging shows each member's facts, every key says what
it did, the chosen category is unmistakable, and E asks why. Real database, real widgets."""

from __future__ import annotations

from sqlalchemy import select

from app.core.model.decisions import DecisionOutcome, DecisionRequest
from app.core.model.domain import ItemStatus, Verdict
from app.storage.models import Decision
from app.ui.review_controller import category_range, decision_feedback, undo_feedback
from tests.helpers import ingest, make_user, write_cluster, write_samples
from tests.ui.conftest import KEY, press


def _decisions(db):
    with db.session() as s:
        return s.scalars(select(Decision).order_by(Decision.id)).all()


def _next_item(qtbot, w, after_id=None):
    qtbot.waitUntil(
        lambda: w.controller.current is not None and w.controller.current.item.id != after_id,
        timeout=10000,
    )
    return w.controller.current.item


def test_skipped_items_come_back_after_the_rest_of_the_queue(qtbot, make_window, db):
    w = make_window(db, n=3)
    order = []
    shown = None
    for _ in range(3):
        shown = _next_item(qtbot, w, shown.id if shown else None)
        order.append(shown.id)
        with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
            press(qtbot, w, KEY.Key_S)
    # Everything was skipped: the first skipped item is on screen again, never "empty".
    again = _next_item(qtbot, w, order[-1])
    assert again.id == order[0]
    assert "you skipped come" in w.statusBar().currentMessage()  # "comes back" for one
    assert [r.verdict for r in _decisions(db)] == ["skip"] * 3
    # And they keep coming round, in queue order, until decided.
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_N)
    assert _next_item(qtbot, w, order[0]).id == order[1]


def test_the_empty_message_agrees_with_the_count(qtbot, make_window, db, store, tmp_path):
    w = make_window(db, n=1)
    # Another moderator holds a second item: nothing is claimable here, yet 1 is left.
    ingest(db, store, write_samples(tmp_path / "more", [77]))
    other = make_user(db, "mod2")
    held = w.ctx.review.claim_next(other.id)
    assert held is not None and held.id != w.controller.current.item.id
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        press(qtbot, w, KEY.Key_N)
    qtbot.waitUntil(lambda: w.controller.current is None, timeout=10000)
    qtbot.waitUntil(lambda: w.status_left.text().startswith("1 left"), timeout=10000)
    message = w.preview._message
    assert "empty" not in message and "the 1 item left is" in message
    # The other moderator decides it: now the queue is empty, and says so.
    w.ctx.review.decide(DecisionRequest(held.id, other.id, Verdict.REJECT))
    w.controller.refresh_counts()
    qtbot.waitUntil(lambda: w.status_left.text().startswith("0 left"), timeout=10000)
    assert w.preview._message == "The queue is empty. New items appear here."


def test_paging_a_cluster_shows_each_members_facts(qtbot, make_window, db, tmp_path):
    paths = write_cluster(tmp_path / "cl", 41)
    w = make_window(db, paths=paths)
    rep = w.controller.current.item
    assert rep.cluster_size == 5
    assert w.facts["item"].text() == f"#{rep.id}"
    rep_sha = w.facts["sha256"].text()
    seen = {rep.id: (rep_sha, w.facts["kind"].text())}
    for _ in range(4):
        with qtbot.waitSignal(w.controller.member_changed, timeout=10000) as shown:
            press(qtbot, w, KEY.Key_PageDown)
        member = shown.args[0].item
        assert w.facts["item"].text() == f"#{member.id}"
        assert w.facts["sha256"].text() == member.sha256[:16] + "…"
        seen[member.id] = (w.facts["sha256"].text(), w.facts["kind"].text())
    assert len(seen) == 5 and len({sha for sha, _ in seen.values()}) == 5
    # The resized member's size shows as its own, not the representative's.
    assert len({kind for _, kind in seen.values()}) > 1
    with qtbot.waitSignal(w.controller.member_changed, timeout=10000):
        press(qtbot, w, KEY.Key_PageDown)  # round to the representative
    assert w.facts["sha256"].text() == rep_sha and w.facts["item"].text() == f"#{rep.id}"


def test_each_key_says_what_it_did(qtbot, make_window, db, tmp_path):
    paths = write_cluster(tmp_path / "cl", 42)
    w = make_window(db, paths=paths)
    rep = w.controller.current.item
    press(qtbot, w, KEY.Key_Y)  # no category yet
    n = len(w.ctx.taxonomy.categories)
    assert w.statusBar().currentMessage() == f"Choose a category (1-{n}) before confirming."
    # Issue 25: the last-action line says so too, not the previous action, and does not fade.
    assert w.feedback.text() == f"Not confirmed: choose a category (1-{n}) first"
    assert not w._feedback_timer.isActive()
    press(qtbot, w, KEY.Key_1)
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000) as done:
        press(qtbot, w, KEY.Key_Y)
    out = done.args[0]
    assert out.cluster_members == 4 and out.hashes_added > 0
    qtbot.waitUntil(lambda: "hashes added" in w.feedback.text(), timeout=10000)
    assert w.feedback.text() == (
        f"Confirmed #{rep.id} and 4 cluster members · {out.hashes_added} hashes added · U to undo"
    )
    assert w.preview.hasFocus()  # told, not interrupted
    with qtbot.waitSignal(w.controller.undo_done, timeout=10000):
        press(qtbot, w, KEY.Key_U)
    qtbot.waitUntil(lambda: "retracted" in w.feedback.text(), timeout=10000)
    assert w.feedback.text() == (
        f"Undid: confirm of #{rep.id} and 4 cluster members · {out.hashes_added} hashes retracted"
    )
    assert w.controller.current.item.id == rep.id and w.preview.hasFocus()


def test_feedback_lines():
    out = DecisionOutcome("u", 7, Verdict.REJECT)
    assert decision_feedback(Verdict.REJECT, 7, 0, "review", out) == "Rejected #7 · U to undo"
    assert decision_feedback(Verdict.REJECT, 7, 0, "review") == "Rejected #7 · saving… · U to undo"
    assert decision_feedback(Verdict.SKIP, 7, 0, "review", DecisionOutcome("u", 7, Verdict.SKIP))
    assert (
        decision_feedback(Verdict.SKIP, 7, 0, "escalations", DecisionOutcome("u", 7, Verdict.SKIP))
        == "Passed #7 on to another lead"
    )
    esc = DecisionOutcome("u", 7, Verdict.ESCALATE)
    assert decision_feedback(Verdict.ESCALATE, 7, 0, "review", esc).startswith(
        "Escalated #7 to a lead"
    )
    late = DecisionOutcome("u", 7, Verdict.CONFIRM, late=True, conflict=True)
    assert "goes to a lead" in decision_feedback(Verdict.CONFIRM, 7, 0, "review", late)
    one = DecisionOutcome("u", 7, Verdict.UNDO, hashes_retracted=1)
    assert undo_feedback(None, one) == "Undid: your last decision on #7 · 1 hash retracted"
    assert undo_feedback(None, None) == "Nothing to undo."


def test_category_range_is_the_taxonomys(taxonomy):
    assert category_range(taxonomy) == f"1-{len(taxonomy.categories)}"


def test_the_chosen_category_is_unmistakable(qtbot, make_window, db):
    w = make_window(db, n=1)
    press(qtbot, w, KEY.Key_3)
    chosen = w.category_buttons["glorification"]
    other = next(b for k, b in w.category_buttons.items() if k != "glorification")
    assert chosen.isChecked() and chosen.text().startswith("✔")
    assert not other.text().startswith("✔")
    # A strong fill: far from the unchosen button's background, not grey on grey.
    img = chosen.grab().toImage()
    c = img.pixelColor(img.width() - 6, img.height() // 2)
    o_img = other.grab().toImage()
    o = o_img.pixelColor(o_img.width() - 6, o_img.height() // 2)
    distance = abs(c.red() - o.red()) + abs(c.green() - o.green()) + abs(c.blue() - o.blue())
    assert distance > 200, (c.name(), o.name())
    press(qtbot, w, KEY.Key_5)
    assert not chosen.isChecked() and not chosen.text().startswith("✔")


def test_escalate_asks_why_enter_sends_esc_cancels(qtbot, make_window, db):
    w = make_window(db, n=2)
    item = w.controller.current.item
    press(qtbot, w, KEY.Key_E)
    dialog = w._reason_dialog
    assert dialog.isVisible() and f"#{item.id}" in dialog.findChild(type(w.status_left)).text()
    qtbot.keyClick(dialog.reason, KEY.Key_Return)  # empty: refused, the dialog stays
    assert dialog.isVisible() and "required" in dialog.hint.text()
    qtbot.keyClicks(dialog.reason, "nope")
    qtbot.keyClick(dialog.reason, KEY.Key_Escape)  # Esc cancels: nothing recorded
    assert not dialog.isVisible()
    assert w.controller.current.item.id == item.id and _decisions(db) == []
    press(qtbot, w, KEY.Key_E)
    dialog = w._reason_dialog
    qtbot.keyClicks(dialog.reason, "flag on the wall, could be a museum")
    with qtbot.waitSignal(w.controller.decision_recorded, timeout=10000):
        qtbot.keyClick(dialog.reason, KEY.Key_Return)
    rows = _decisions(db)
    assert [(r.verdict, r.item_id, r.note) for r in rows] == [
        ("escalate", item.id, "flag on the wall, could be a museum")
    ]
    assert w.ctx.review.load_item(item.id).status is ItemStatus.ESCALATED


def test_cheat_sheet_rows_pair_related_keys_only(qtbot, make_window, db):
    from app.ui.actions import RELATED_KEYS

    w = make_window(db, n=1)
    press(qtbot, w, KEY.Key_Question)
    sheet = w._cheatsheet
    label_of = {a.text(): i for i, a in w.actions_by_id.items()}
    related = {frozenset(p) for p in RELATED_KEYS}
    pairs = [row for row in sheet.row_groups if len(row) == 2]
    assert pairs
    for row in pairs:
        ids = [label_of[label] for _key, label in row]
        both_categories = all(i.startswith("category:") for i in ids)
        assert both_categories or frozenset(ids) in related, row
    # Every action is on the sheet exactly once.
    labels = [label for _key, label in sheet.rows]
    assert sorted(label_of[lb] for lb in labels if lb in label_of) == sorted(
        i for i in w.actions_by_id if i != "queue_second_review"
    )
