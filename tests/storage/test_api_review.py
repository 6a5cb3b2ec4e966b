"""The moderators' writes as server functions (app/storage/sql/api_review.sql): the same
outcomes as the Python path on SQLite, and nothing a person can bend from psql: the lease, the
time, the chain, whose name a decision is in."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from PIL import Image
from sqlalchemy import select, text

from app.core.ingest.contentstore import ContentStore
from app.core.model.chain import rows_digest_matches
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.core.model.queues import DEFAULT_LEASE_SECONDS
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.db import open_database
from app.storage.models import Decision, HashListEntry, Item
from app.storage.review import ReviewService
from app.storage.verification import verify_hash_list
from tests.drills import insider
from tests.helpers import ingest, make_user, write_samples

pytestmark = pytest.mark.postgres


def _samples(tmp_path):
    """Three pictures and a near-duplicate of the first (it joins its cluster)."""
    paths = write_samples(tmp_path / "in", range(3))
    img = Image.open(paths[0]).convert("RGB")
    near = tmp_path / "in" / "near.jpg"
    img.resize((img.width - 8, img.height - 6)).save(near, quality=80)
    return [*paths, near]


def _work(review: ReviewService, me: int) -> list[tuple]:
    """One moderator's session: confirm a cluster, reject, skip, undo, confirm again."""
    out = []
    first = review.claim_next(me)
    d = review.decide(DecisionRequest(first.id, me, Verdict.CONFIRM, "glorification"))
    out.append(("confirm", d.hashes_added, d.cluster_members))
    second = review.claim_next(me)
    d = review.decide(DecisionRequest(second.id, me, Verdict.REJECT))
    out.append(("reject", d.hashes_added, d.cluster_members))
    third = review.claim_next(me)
    d = review.decide(DecisionRequest(third.id, me, Verdict.SKIP))
    out.append(("skip", d.hashes_added, d.cluster_members))
    u = review.undo_last(me)  # the skip
    out.append(("undo skip", u.hashes_retracted, u.cluster_members))
    u = review.undo_last(me)  # the reject
    out.append(("undo reject", u.hashes_retracted, u.cluster_members))
    u = review.undo_last(me)  # the cluster confirm, whole
    out.append(("undo confirm", u.hashes_retracted, u.cluster_members))
    d = review.decide(DecisionRequest(first.id, me, Verdict.CONFIRM, "recruitment", "again"))
    out.append(("confirm again", d.hashes_added, d.cluster_members))
    return out


def _state(db) -> tuple:
    """What the record says, without ids and times."""
    with db.session() as s:
        items = sorted(
            (i.sha256, i.status, i.claimed_by is not None) for i in s.scalars(select(Item))
        )
        sha = dict(s.execute(select(Item.id, Item.sha256)).all())
        decisions = sorted(
            (sha[d.item_id], d.verdict, d.method, d.category, d.hashes_digest)
            for d in s.scalars(select(Decision))
        )
        rows = sorted(
            (sha[h.item_id], h.algorithm, h.variant, h.value, h.quality, h.category,
             h.retracted_at is not None)
            for h in s.scalars(select(HashListEntry))
        )  # fmt: skip
    return items, decisions, rows


def test_the_server_decides_as_python_does(team_server, tmp_path):
    paths = _samples(tmp_path)
    # SQLite: the Python path.
    lite = open_database(f"sqlite:///{tmp_path / 'lite.sqlite3'}")
    ingest(lite, ContentStore(tmp_path / "m1"), paths)
    mo_lite = make_user(lite, "mo")
    want = _work(ReviewService(lite, second_review_share=0.0), mo_lite.id)
    # The team server: the moderator's own login, the server's functions.
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    team_server.set_second_review_share(0.0)
    ingest(rootdb, ContentStore(tmp_path / "m2"), paths)
    got = _work(ReviewService(team_server.connect("mo")), mo.id)
    assert got == want
    assert want[0][2] == 1 and want[0][1] > 0  # a cluster of two, hashes listed
    assert _state(team_server.owner) == _state(lite)
    # The digest the server computed is the one Python computes from the rows it added.
    with team_server.owner.session() as s:
        for d in s.scalars(select(Decision).where(Decision.hashes_digest.is_not(None))):
            rows = s.scalars(
                select(HashListEntry).where(HashListEntry.decision_uuid == d.uuid)
            ).all()
            assert rows_digest_matches(
                d.hashes_digest,
                [(r.algorithm, r.variant, r.value, r.quality, r.frame_ts, r.category,
                  r.list_name) for r in rows],
            )  # fmt: skip
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []
    lite.dispose()


@pytest.fixture
def two(team_server, tmp_path):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    max_ = team_server.add("max", Role.MODERATOR, actor=root, via=rootdb)
    team_server.set_second_review_share(0.0)
    ingest(rootdb, ContentStore(tmp_path / "media"), write_samples(tmp_path / "in", range(3)))
    return {"mo": mo, "max": max_}


def test_the_lease_is_the_servers(team_server, two):
    review = ReviewService(team_server.connect("mo"), lease_seconds=10**8)  # asks for years
    item = review.claim_next(two["mo"].id)
    with team_server.owner.session() as s:
        row = s.get(Item, item.id)
        now = s.scalar(text("SELECT hd_now()"))
    lease = (row.lease_expires_at - now).total_seconds()
    assert 0 < lease <= DEFAULT_LEASE_SECONDS
    assert review.renew(two["mo"].id, [item.id]) == 1
    with team_server.owner.session() as s:
        assert (s.get(Item, item.id).lease_expires_at - now).total_seconds() <= (
            DEFAULT_LEASE_SECONDS + 60
        )
    # Another moderator cannot take it while the lease runs, nor give it back for mo.
    other = ReviewService(team_server.connect("max"))
    got = other.claim_next(two["max"].id)
    assert got is not None and got.id != item.id
    assert other.release(two["max"].id, [item.id]) == 0
    assert review.release(two["mo"].id, [item.id]) == 1


def test_a_request_in_another_persons_name_is_refused(team_server, two):
    review = ReviewService(team_server.connect("mo"))
    item = review.claim_next(two["mo"].id)
    with pytest.raises(PermissionDenied, match="another person's name"):
        review.decide(DecisionRequest(item.id, two["max"].id, Verdict.REJECT))
    with pytest.raises(PermissionDenied, match="another person's name"):
        review.release(two["max"].id, [item.id])


def test_claims_cannot_be_parked_hoarded_or_stolen_from_psql(team_server, two):
    review = ReviewService(team_server.connect("mo"))
    held = review.claim_next(two["mo"].id)
    before = insider.fingerprint(team_server)
    with insider.psql(team_server, "max") as conn:
        outcomes = insider.run(
            conn,
            [
                insider.Attempt(
                    "steal a held claim",
                    f"SELECT hd_api_claim('review', ARRAY[{held.id}])",
                    "allowed (1 rows)",
                ),
                insider.Attempt(
                    "hoard: lease to 9999",
                    "UPDATE items SET lease_expires_at = '9999-01-01'",
                    "refused",
                ),
                insider.Attempt(
                    "lock every item from an idle transaction",
                    "SELECT id FROM items FOR UPDATE",
                    "refused",
                ),
                insider.Attempt(
                    "decide in another's name through the function's arguments",
                    f"SELECT * FROM hd_api_decide('{uuid.uuid4()}', {held.id}, 'confirm', "
                    "NULL, NULL, NULL)",
                    "refused",
                ),
                insider.Attempt(
                    "append a decision directly",
                    "SELECT hd_append_decision("
                    f"'{uuid.uuid4()}', {held.id}, NULL, 'reject', NULL, NULL, NULL, 'manual', "
                    "NULL)",
                    "refused",
                ),
                insider.Attempt(
                    "take the chain's lock",
                    "SELECT * FROM hd_chain_lock FOR UPDATE",
                    "refused",
                ),
            ],
        )
    results = {o.label: o.result for o in outcomes}
    # The claim function skips a held item: nothing claimed (NULL), nothing changed.
    with insider.psql(team_server, "max") as conn:
        assert conn.execute(f"SELECT hd_api_claim('review', ARRAY[{held.id}])").fetchone() == (
            None,
        )
    assert all(r.startswith("refused") for k, r in results.items() if k != "steal a held claim")
    assert (
        "confirmation needs a category"
        in results["decide in another's name through the function's arguments"]
    )
    assert insider.fingerprint(team_server) == before


def test_an_insider_cannot_stall_the_record_with_a_lock(team_server, two):
    """The app's chain lock is a row people cannot lock, and an advisory lock held by a
    person stalls nothing."""
    review = ReviewService(team_server.connect("mo"))
    item = review.claim_next(two["mo"].id)
    with insider.psql(team_server, "max") as conn:
        conn.autocommit = False
        conn.execute("SELECT pg_advisory_lock(1212240712), pg_advisory_lock(1096107092)")
        out = review.decide(DecisionRequest(item.id, two["mo"].id, Verdict.REJECT))
        assert not out.duplicate and not out.late
        conn.rollback()


def test_the_claim_limit(team_server, two, tmp_path):
    rootdb = team_server.connect("root")
    ingest(rootdb, ContentStore(tmp_path / "m2"), write_samples(tmp_path / "more", range(3, 30)))
    review = ReviewService(team_server.connect("mo"))
    with team_server.owner.engine.connect() as conn:
        limit = conn.execute(text("SELECT hd_max_claims()")).scalar_one()
    got = [review.claim_next(two["mo"].id) for _ in range(limit)]
    assert all(g is not None for g in got)
    with pytest.raises(PermissionDenied, match="claims"):
        review.claim_next(two["mo"].id)


def test_psql_sees_the_servers_refusals_plainly(team_server, two):
    with insider.psql(team_server, "mo") as conn, pytest.raises(psycopg.Error, match="queue"):
        conn.execute("SELECT hd_api_claim('everything', ARRAY[1])")


def test_a_stale_snapshot_cannot_fork_the_chain(team_server, two):
    """A REPEATABLE READ transaction that began before another decision landed cannot append
    after the head it saw: the server refuses it (a serialisation failure), the chain stays
    one chain."""
    mine = ReviewService(team_server.connect("mo"))
    item = mine.claim_next(two["mo"].id)
    other = ReviewService(team_server.connect("max"))
    theirs = other.claim_next(two["max"].id)
    with insider.psql(team_server, "mo") as conn:
        conn.autocommit = False
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT count(*) FROM decisions")  # the snapshot is taken here
        other.decide(DecisionRequest(theirs.id, two["max"].id, Verdict.REJECT))
        with pytest.raises(psycopg.errors.SerializationFailure):
            conn.execute(
                "SELECT * FROM hd_api_decide(%s, %s, 'reject', NULL, NULL, NULL)",
                (str(uuid.uuid4()), item.id),
            )
        conn.rollback()
    out = mine.decide(DecisionRequest(item.id, two["mo"].id, Verdict.REJECT))
    assert not out.late
    (decisions, _audit) = verify_chains(team_server.owner)
    assert decisions.ok and decisions.entries == 2


def test_a_late_conflicting_decision_goes_to_the_leads_on_the_server(team_server, two):
    """As app.storage.review does on SQLite (tests/storage/test_late_decisions.py): recorded as
    made, the standing decision and its hashes unchanged, the item escalated with both named."""
    mine = ReviewService(team_server.connect("mo"))
    theirs = ReviewService(team_server.connect("max"))
    item = theirs.claim_next(two["max"].id)
    first = theirs.decide(DecisionRequest(item.id, two["max"].id, Verdict.REJECT))
    assert not first.late
    late = mine.decide(DecisionRequest(item.id, two["mo"].id, Verdict.CONFIRM, "manifesto"))
    assert late.late and late.conflict and late.hashes_added == 0
    with team_server.owner.session() as s:
        status = s.get(Item, item.id).status
        notes = s.scalars(
            select(Decision.note).where(
                Decision.item_id == item.id,
                Decision.user_id.is_(None),
                Decision.verdict == "escalate",
            )
        ).all()
        listed = s.scalars(select(HashListEntry).where(HashListEntry.item_id == item.id)).all()
    assert status == "escalated" and listed == []
    assert len(notes) == 1 and "reject by max, then confirm by mo" in notes[0]
    again = mine.decide(DecisionRequest(item.id, two["mo"].id, Verdict.CONFIRM, "manifesto"))
    assert again.late and not again.conflict  # escalated already: recorded, nothing more
    assert all(r.ok for r in verify_chains(team_server.owner))
