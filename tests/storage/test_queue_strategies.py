"""One strategy per queue (app.storage.queues), on SQLite and PostgreSQL: each claims under a
lease, counts, renews and releases its own rows; an expired lease gives the row back; the
service dispatches by the queue's name; the claim-with-lease query exists once."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.core.model.decisions import DecisionRequest, ReviewError
from app.core.model.domain import ItemStatus, Role, Verdict, utcnow
from app.core.model.queues import Queue, SecondReviewState
from app.storage.models import Item, SecondReview
from app.storage.queues import QUEUES, QueueStrategy
from app.storage.review import ReviewService
from tests.helpers import ingest, make_user, write_samples

STORAGE = Path(__file__).resolve().parents[2] / "app" / "storage"


def test_every_queue_has_exactly_one_strategy():
    assert set(QUEUES) == set(Queue) and len(QUEUES) == 3
    for queue, strategy in QUEUES.items():
        assert isinstance(strategy, QueueStrategy) and strategy.queue is queue
    # A StrEnum: the names windows and settings still hold compare equal.
    assert Queue.ESCALATIONS == "escalations" and Queue("second_review") is Queue.SECOND_REVIEW


def test_the_claim_with_lease_query_is_written_once():
    """FOR UPDATE SKIP LOCKED appears in the queue strategies' one claim, nowhere else in the
    queue paths (the review, escalation and second-review modules used to have one each)."""
    counts = {
        p.name: len(re.findall(r"skip_locked\s*=\s*True", p.read_text()))
        for p in STORAGE.glob("*.py")
    }
    assert counts["queues.py"] == 1
    assert counts["review.py"] == counts["escalations.py"] == counts["second_review.py"] == 0


def _items(db, store, tmp_path, n):
    assert ingest(db, store, write_samples(tmp_path / "in", range(n))).new == n


def _fill(queue: Queue, db, store, tmp_path):
    """Two rows waiting in ``queue``; returns the service, two people who may claim them and
    the first person (the one who put them there, for second review)."""
    _items(db, store, tmp_path, 2)
    review = ReviewService(db, lease_seconds=60, second_review_share=1.0)
    author = make_user(db, "author")
    if queue is Queue.REVIEW:
        return review, make_user(db, "mod1"), make_user(db, "mod2")
    verdict = Verdict.ESCALATE if queue is Queue.ESCALATIONS else Verdict.REJECT
    for _ in range(2):
        item = review.claim_next(author.id)
        assert item is not None
        review.decide(DecisionRequest(item.id, author.id, verdict))
    role = Role.LEAD if queue is Queue.ESCALATIONS else Role.MODERATOR
    return review, make_user(db, "one", role), make_user(db, "two", role)


def _expire(db, queue: Queue) -> None:
    model = SecondReview if queue is Queue.SECOND_REVIEW else Item
    with db.session() as s:
        s.execute(update(model).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


@pytest.mark.parametrize("queue", list(Queue))
def test_each_queue_claims_counts_renews_and_releases_its_own_rows(db, store, tmp_path, queue):
    review, one, two = _fill(queue, db, store, tmp_path)
    assert review.counts(one.id, queue).open_items == 2
    first = review.claim_next(one.id, queue=queue)
    second = review.claim_next(two.id, queue=queue.value)  # the plain name works too
    assert first is not None and second is not None and first.id != second.id
    assert review.claim_next(two.id, queue=queue) is None  # both are held
    assert review.counts(one.id, queue).open_items == 2  # held rows still count
    assert review.my_claims(one.id, queue) == [first.id]
    assert review.my_claims(one.id) == [first.id]  # every queue
    other = next(q for q in Queue if q is not queue and q is not Queue.SECOND_REVIEW)
    if queue is not Queue.SECOND_REVIEW:
        assert review.my_claims(one.id, other) == []  # held in its own queue only
    # Renew and release touch the holder's own claims only.
    assert review.renew(one.id, [first.id, second.id]) == 1
    assert review.release(one.id, [second.id]) == 0
    assert review.release(one.id, [first.id]) == 1
    assert review.my_claims(one.id, queue) == []
    again = review.claim_next(two.id, queue=queue)
    assert again is not None and again.id == first.id  # back in the queue
    # A lapsed lease gives the row back to someone else.
    _expire(db, queue)
    taken = review.claim_next(one.id, queue=queue)
    assert taken is not None and taken.id in {first.id, second.id}
    assert review.my_claims(one.id, queue) == [taken.id]


@pytest.mark.parametrize("queue", list(Queue))
def test_a_claim_leaves_the_row_in_its_queue_state(db, store, tmp_path, queue):
    review, one, _two = _fill(queue, db, store, tmp_path)
    got = review.claim_next(one.id, queue=queue)
    assert got is not None
    with db.session() as s:
        item = s.get(Item, got.id)
        assert item is not None
        sr = s.query(SecondReview).filter_by(item_id=got.id).one_or_none()
        expected = {
            Queue.REVIEW: ItemStatus.CLAIMED,
            Queue.ESCALATIONS: ItemStatus.ESCALATED,
            Queue.SECOND_REVIEW: ItemStatus.DECIDED,
        }[queue]
        assert item.status is expected  # the ORM reads the enum member back
        if queue is Queue.SECOND_REVIEW:
            assert sr is not None and sr.status is SecondReviewState.CLAIMED
            assert sr.claimed_by == one.id and item.claimed_by is None
        else:
            assert item.claimed_by == one.id and item.lease_expires_at > utcnow()
    review.release(one.id, [got.id])
    with db.session() as s:
        item = s.get(Item, got.id)
        sr = s.query(SecondReview).filter_by(item_id=got.id).one_or_none()
        assert item is not None and item.claimed_by is None and item.lease_expires_at is None
        if queue is Queue.SECOND_REVIEW:
            assert sr is not None and sr.status is SecondReviewState.PENDING
        else:
            assert (
                item.status
                is {
                    Queue.REVIEW: ItemStatus.QUEUED,
                    Queue.ESCALATIONS: ItemStatus.ESCALATED,
                }[queue]
            )


def test_an_unknown_queue_is_refused_by_name(db):
    review = ReviewService(db)
    with pytest.raises(ReviewError, match="unknown queue 'inbox': use one of review, escal"):
        review.claim_next(1, queue="inbox")
    with pytest.raises(ReviewError, match="unknown queue"):
        review.counts(1, "inbox")


@pytest.mark.parametrize("queue", list(Queue))
def test_a_row_another_workstation_is_claiming_is_skipped_not_waited_for(
    db, store, tmp_path, queue
):
    """PostgreSQL: FOR UPDATE SKIP LOCKED. While one transaction holds the queue's first row,
    another workstation's claim takes the next one at once (without SKIP LOCKED it would wait
    for the lock: the lock timeout below turns that wait into a failure, not a hang)."""
    if db.dialect != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite serialises writers at BEGIN)")
    from sqlalchemy import select

    from app.storage.db import open_database

    _review, one, _two = _fill(queue, db, store, tmp_path)
    url = db.engine.url
    options = f"{url.query.get('options', '')} -clock_timeout=3000".strip()
    other_db = open_database(
        url.update_query_dict({"options": options}).render_as_string(hide_password=False),
        upgrade=False,
    )
    model = SecondReview if queue is Queue.SECOND_REVIEW else Item
    key = SecondReview.item_id if queue is Queue.SECOND_REVIEW else Item.id
    try:
        with db.session() as s:
            first_row = s.scalars(select(model).order_by(model.id).limit(1).with_for_update())
            locked = s.scalar(select(key).where(model.id == first_row.one().id))
            got = ReviewService(other_db, lease_seconds=60).claim_next(one.id, queue=queue)
            assert got is not None and got.id != locked
    finally:
        other_db.dispose()
