"""The queue and decisions on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.model.chain import GENESIS_HASH, chain_hash
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Algorithm, ItemStatus, Role, Verdict, utcnow
from app.storage.models import Decision, HashListEntry, Item, Sighting
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_cluster, write_samples


def _setup(db, store, tmp_path, n=3):
    paths = write_samples(tmp_path / "in", range(n))
    summary = ingest(db, store, paths)
    assert summary.new == n
    return ReviewService(db, lease_seconds=60), make_user(db)


def test_confirm_writes_every_signal_to_the_hash_list(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path)
    item = review.claim_next(user.id)
    assert item is not None and item.status is ItemStatus.CLAIMED
    out = review.decide(
        DecisionRequest(item.id, user.id, Verdict.CONFIRM, "manifesto", "Attacker manifesto")
    )
    hashes = review.active_hashes_for_item(item.id)
    algos = sorted(h.algorithm for h in hashes)
    assert {"pdq", "phash", "md5", "sha256"} <= set(algos)
    assert out.hashes_added == len(hashes)
    assert all(h.category == "manifesto" and h.list_name == "local" for h in hashes)
    assert all(h.decision_uuid == out.uuid and h.added_by == user.id for h in hashes)
    sha = next(h.value for h in hashes if h.algorithm == Algorithm.SHA256)
    assert sha == item.sha256
    assert review.load_item(item.id).status is ItemStatus.DECIDED


def test_reject_writes_no_hashes_and_decision_is_idempotent(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path)
    item = review.claim_next(user.id)
    req = DecisionRequest(item.id, user.id, Verdict.REJECT)
    first = review.decide(req)
    again = review.decide(req)  # the same UUID, e.g. a retry after a lost reply
    assert not first.duplicate and again.duplicate
    assert review.active_hashes_for_item(item.id) == []
    assert len(review.decisions_for_item(item.id)) == 1


def test_undo_retracts_hashes_and_returns_item(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path)
    item = review.claim_next(user.id)
    review.decide(DecisionRequest(item.id, user.id, Verdict.CONFIRM, "manifesto", "M"))
    undo = review.undo_last(user.id)
    assert undo is not None and undo.item_id == item.id and undo.hashes_retracted >= 4
    assert review.active_hashes_for_item(item.id) == []
    with db.session() as s:
        rows = s.scalars(select(HashListEntry).where(HashListEntry.item_id == item.id)).all()
        assert rows and all(r.retracted_at is not None for r in rows)  # kept, not deleted
        assert all(r.retraction_decision_uuid == undo.uuid for r in rows)
    verdicts = [d.verdict for d in review.decisions_for_item(item.id)]
    assert verdicts == ["confirm", "undo"]
    again = review.load_item(item.id)
    assert again.status is ItemStatus.CLAIMED
    # Nothing left to undo once the only decision is undone.
    assert review.undo_last(user.id) is None


def test_two_moderators_never_claim_the_same_item(db, store, tmp_path):
    review, a = _setup(db, store, tmp_path, n=3)
    b = make_user(db, "mod2")
    claims = [review.claim_next(u.id) for u in (a, b, a, b)]
    ids = [c.id for c in claims if c is not None]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert claims[3] is None


def test_expired_lease_returns_item_to_queue(db, store, tmp_path):
    review, a = _setup(db, store, tmp_path, n=1)
    b = make_user(db, "mod2")
    item = review.claim_next(a.id)
    assert review.claim_next(b.id) is None
    with db.session() as s:
        s.execute(
            update(Item)
            .where(Item.id == item.id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    again = review.claim_next(b.id)
    assert again is not None and again.id == item.id


def test_skip_and_release_put_items_back(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=2)
    first = review.claim_next(user.id)
    review.decide(DecisionRequest(first.id, user.id, Verdict.SKIP))
    assert review.load_item(first.id).status is ItemStatus.QUEUED
    second = review.claim_next(user.id, exclude={first.id})
    assert second.id != first.id
    assert review.release(user.id, [second.id]) == 1
    assert review.load_item(second.id).status is ItemStatus.QUEUED


def test_decisions_form_a_hash_chain(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=3)
    for verdict in (Verdict.REJECT, Verdict.ESCALATE, Verdict.SKIP):
        item = review.claim_next(user.id)
        review.decide(DecisionRequest(item.id, user.id, verdict))
    review.undo_last(user.id)
    with db.session() as s:
        rows = s.scalars(select(Decision).order_by(Decision.id)).all()
    assert len(rows) == 4
    prev = GENESIS_HASH
    for r in rows:
        fields = {
            "uuid": r.uuid,
            "item_id": r.item_id,
            "user_id": r.user_id,
            "verdict": r.verdict,
            "category": r.category,
            "note": r.note,
            "method": r.method,
            "supersedes": r.supersedes,
            "decided_at": r.decided_at.isoformat(timespec="microseconds"),
        }
        assert r.prev_hash == prev
        assert r.entry_hash == chain_hash(prev, fields)
        prev = r.entry_hash


def test_exact_copies_add_sightings_not_items(db, store, tmp_path):
    paths = write_samples(tmp_path / "in", [5])
    copy = tmp_path / "in" / "renamed-copy.bin"
    copy.write_bytes(paths[0].read_bytes())
    summary = ingest(db, store, [paths[0], copy])
    assert (summary.new, summary.copies) == (1, 1)
    with db.session() as s:
        assert len(s.scalars(select(Item)).all()) == 1
        names = sorted(x.original_name for x in s.scalars(select(Sighting)))
    assert names == ["renamed-copy.bin", "sample-0005.jpg"]


def test_unreadable_file_is_a_visible_item(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=0)
    bad = tmp_path / "broken.jpg"
    good = write_samples(tmp_path / "in2", [9])[0]
    bad.write_bytes(good.read_bytes()[:300])
    summary = ingest(db, store, [bad])
    assert summary.new == 1 and len(summary.unreadable) == 1
    item = review.claim_next(user.id)
    assert item is not None and item.error and "truncated" in item.error.lower()
    # A human can still act on it: confirming stores its byte hashes.
    review.decide(DecisionRequest(item.id, user.id, Verdict.CONFIRM, "manifesto", "M"))
    algos = {h.algorithm for h in review.active_hashes_for_item(item.id)}
    assert algos == {"md5", "sha256"}


def test_counts(db, store, tmp_path):
    review, user = _setup(db, store, tmp_path, n=3)
    assert review.counts(user.id).open_items == 3
    item = review.claim_next(user.id)
    review.decide(DecisionRequest(item.id, user.id, Verdict.REJECT))
    c = review.counts(user.id)
    assert (c.open_items, c.decided_today) == (2, 1)


def test_decided_today_counts_the_decisions_that_stand(db, store, tmp_path):
    """Issue 14's sequence: confirm a 5-item cluster, N, S, E, then U three times, then N.
    Decided today counts confirm/reject rows (cluster members too) no undo took back; skips,
    escalations (issue 25: handing an item to a lead is not a decision) and undos of either
    change nothing."""
    ingest(db, store, write_cluster(tmp_path / "c", 900))
    ingest(db, store, write_samples(tmp_path / "in", range(4)))
    review, user = ReviewService(db, lease_seconds=60), make_user(db)
    seen = []

    def decide(verdict, category=None):
        item = review.claim_next(user.id)
        review.decide(DecisionRequest(item.id, user.id, verdict, category, category))
        seen.append(review.counts(user.id).decided_today)
        return item

    rep = decide(Verdict.CONFIRM, "manifesto")
    assert rep.cluster_size == 5
    decide(Verdict.REJECT)
    decide(Verdict.SKIP)
    decide(Verdict.ESCALATE)
    for _ in range(3):
        assert review.undo_last(user.id) is not None
        seen.append(review.counts(user.id).decided_today)
    decide(Verdict.REJECT)
    assert seen == [5, 6, 6, 6, 6, 6, 5, 6]
    # The figure is the rows': every standing confirm/reject of this user today.
    with db.session() as s:
        rows = s.scalars(select(Decision).where(Decision.user_id == user.id)).all()
    undone = {r.supersedes for r in rows if r.verdict == "undo"}
    standing = [r for r in rows if r.verdict in ("confirm", "reject") and r.uuid not in undone]
    assert len(standing) == seen[-1]


def test_an_escalation_is_not_counted_as_decided_today(db, store, tmp_path):
    """Issue 25: escalating hands the item to a lead; the status bar's "decided today" must not
    grow, while a confirm and a reject each add one."""
    review, user = _setup(db, store, tmp_path, n=3)
    first = review.claim_next(user.id)
    review.decide(DecisionRequest(first.id, user.id, Verdict.ESCALATE, note="not sure"))
    assert review.counts(user.id).decided_today == 0
    second = review.claim_next(user.id)
    review.decide(DecisionRequest(second.id, user.id, Verdict.CONFIRM, "manifesto", "M"))
    third = review.claim_next(user.id)
    review.decide(DecisionRequest(third.id, user.id, Verdict.REJECT))
    assert review.counts(user.id).decided_today == 2


def test_lead_role_is_stored(db):
    u = make_user(db, "lead1", Role.LEAD)
    assert u.role is Role.LEAD
