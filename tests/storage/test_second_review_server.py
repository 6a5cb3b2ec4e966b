"""Blind second review, escalations and overturns on the team server (issue 21, finding 4): the
server claims and closes a review with its decision in one call, never for the decision's own
author; the first verdict, the first decision, its hashes, the feedback and a later copy's
match note stay unreadable to other moderators while the review is pending (in a transaction
rolled back too); the leads resolve and overturn through the server, which adds or retracts the
hashes as the Python path does and writes the OVERTURN event."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select, text

from app.core.matching.signal_types import is_query_only
from app.core.model.chain import hash_rows_digest_v2
from app.core.model.decisions import DecisionRequest, LeadError, ReviewError
from app.core.model.domain import DecisionMethod, ItemStatus, Role, Verdict
from app.core.model.roles import PermissionDenied
from app.storage.audit import verify_chains
from app.storage.leads import LeadService
from app.storage.models import AuditEvent, Decision, HashListEntry, Item, SecondReview, SignalRow
from app.storage.review import ReviewService
from app.storage.verification import verify_hash_list
from tests.drills import insider, insider_review2

pytestmark = pytest.mark.postgres


@pytest.fixture
def facts(team_server, tmp_path):
    return insider_review2.setup(team_server, tmp_path)


def _review_of(server, item_id: int) -> SecondReview:
    with server.owner.session() as s:
        return s.scalars(select(SecondReview).where(SecondReview.item_id == item_id)).one()


def _owner_sees(server, sql: str, params: dict | None = None) -> list:
    with server.owner.engine.connect() as conn:
        return list(conn.execute(text(sql), params or {}))


def test_the_drill_every_attempt_answered_as_expected_and_nothing_changed(team_server, facts):
    # What the drill's "later copy" attempt reads, the owner does see.
    assert (
        len(_owner_sees(team_server, "SELECT 1 FROM items WHERE known_entry_id IS NOT NULL")) == 1
    )
    before = insider.fingerprint(team_server)
    with insider.psql(team_server, "max") as conn:
        outcomes = insider.run(conn, insider_review2.attempts(facts))
    assert [o for o in outcomes if not o.as_expected] == []
    by_label = {o.label: o.result for o in outcomes}
    for label in (
        "read the first verdict of a pending second review",
        "set the review done, read the first decision, roll back (one transaction)",
        "close every pending review as agreed without deciding",
        "DELETE second reviews",
        "queue a decision through the internal function",
        "overturn mo's decision (a moderator)",
    ):
        assert (
            by_label[label].startswith("refused: permission denied")
            or "may not" in (by_label[label])
        ), (label, by_label[label])
    assert insider.fingerprint(team_server) == before
    assert all(r.ok for r in verify_chains(team_server.owner))


def test_a_transaction_that_sets_the_review_done_and_rolls_back_reads_nothing(team_server, facts):
    c = facts["confirmed"]
    before = insider.fingerprint(team_server)
    with insider.psql(team_server, "max") as conn:
        conn.autocommit = False
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE second_reviews SET status = 'done' WHERE item_id = %s", [c.item_id]
            )
        conn.rollback()
        # Without the trick, in a transaction of its own: still nothing of the first decision.
        assert conn.execute(
            "SELECT count(*) FROM decisions WHERE item_id = %s", [c.item_id]
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM hash_list WHERE decision_uuid = %s", [c.uuid]
        ).fetchone() == (0,)
        conn.rollback()
    assert insider.fingerprint(team_server) == before


def test_blind_reads_per_role_until_the_review_is_done(team_server, facts, tmp_path):
    c, copy = facts["confirmed"], facts["copy"]

    # The copy resolved by the hash mo's confirm added: its auto-match decision names the row.
    with team_server.owner.engine.begin() as conn:
        conn.execute(
            text(
                "SELECT hd_append_decision(gen_random_uuid()::text, i.id, NULL, 'confirm', NULL, "
                "NULL, i.match_note, 'auto_match', NULL, NULL, i.known_entry_id, 3) "
                "FROM items i WHERE i.id = :copy"
            ),
            {"copy": copy},
        )

    def seen(name: str) -> tuple[int, ...]:
        with insider.psql(team_server, name) as conn:
            return tuple(
                conn.execute(sql, [arg]).fetchone()[0]
                for sql, arg in (
                    ("SELECT count(*) FROM decisions WHERE item_id = %s", c.item_id),
                    ("SELECT count(*) FROM hash_list WHERE item_id = %s", c.item_id),
                    ("SELECT count(*) FROM hash_list_feedback WHERE item_id = %s", c.item_id),
                    ("SELECT count(*) FROM items WHERE id = %s", copy),
                    ("SELECT count(*) FROM decisions WHERE item_id = %s", copy),
                )
            )

    hashes = len(
        _owner_sees(team_server, "SELECT 1 FROM hash_list WHERE item_id = :i", {"i": c.item_id})
    )
    assert hashes > 0
    assert seen("max") == (0, 0, 0, 0, 0)  # the blind second reviewer
    assert seen("mo") == (1, hashes, 1, 1, 1)  # the first decision's author
    assert seen("lena") == (1, hashes, 1, 1, 1)  # a lead reads everything
    with insider.psql(team_server, "lena") as conn:
        assert conn.execute(
            "SELECT first_verdict FROM second_reviews WHERE item_id = %s", [c.item_id]
        ).fetchone() == ("confirm",)

    # The review done (max agrees), the record of the item is everyone's again (the hashes
    # stay their author's and the leads').
    maxdb = team_server.connect("max")
    review = ReviewService(maxdb)
    card = review.claim_next(facts["max"].id, queue="second_review")
    assert card is not None and card.id == c.item_id and card.match_note is None
    review.decide(
        DecisionRequest(
            c.item_id,
            facts["max"].id,
            Verdict.CONFIRM,
            "glorification",
            method=DecisionMethod.SECOND_REVIEW,
        )
    )
    assert seen("max") == (2, 0, 1, 1, 1)


def test_second_review_through_the_service_closes_with_its_decision(team_server, facts):
    c, mo, max_, lead = facts["confirmed"], facts["mo"], facts["max"], facts["lead"]
    # mo's own decisions are the only ones waiting: mo gets none of them.
    mo_review = ReviewService(team_server.connect("mo"))
    assert mo_review.claim_next(mo.id, queue="second_review") is None
    review = ReviewService(team_server.connect("max"))
    assert review.counts(max_.id, queue="second_review").open_items == 2
    assert mo_review.counts(mo.id, queue="second_review").open_items == 0
    card = review.claim_next(max_.id, queue="second_review")
    assert card is not None and card.id == c.item_id
    assert review.my_claims(max_.id, queue="second_review") == [c.item_id]
    assert review.renew(max_.id, [c.item_id]) == 1
    # A confirm needs its category, on the server too: the review stays claimed, not done.
    with pytest.raises(ReviewError, match="category"):
        review.decide(
            DecisionRequest(
                c.item_id, max_.id, Verdict.CONFIRM, method=DecisionMethod.SECOND_REVIEW
            )
        )
    assert _review_of(team_server, c.item_id).status == "claimed"
    req = DecisionRequest(c.item_id, max_.id, Verdict.REJECT, method=DecisionMethod.SECOND_REVIEW)
    out = review.decide(req)
    assert out.verdict is Verdict.REJECT and not out.duplicate
    assert review.decide(req).duplicate
    sr = _review_of(team_server, c.item_id)
    assert (sr.status, sr.agreed, sr.second_user_id, sr.second_verdict) == (
        "done",
        False,
        max_.id,
        "reject",
    )
    with team_server.owner.session() as s:
        d = s.scalars(select(Decision).where(Decision.uuid == sr.second_decision_uuid)).one()
        assert (d.user_id, d.method, d.verdict) == (max_.id, "second_review", "reject")
        assert s.get(Item, c.item_id).status == ItemStatus.ESCALATED
        # Every done review has its decision on the chain.
        assert (
            s.scalar(
                text(
                    "SELECT count(*) FROM second_reviews r WHERE r.status = 'done' AND NOT EXISTS "
                    "(SELECT 1 FROM decisions d WHERE d.uuid = r.second_decision_uuid "
                    "AND d.method = 'second_review')"
                )
            )
            == 0
        )
    # The other review (mo's reject), claimed and given back.
    nxt = review.claim_next(max_.id, queue="second_review")
    assert nxt is not None and nxt.id != c.item_id
    assert review.release(max_.id, [nxt.id]) == 1
    assert _review_of(team_server, nxt.id).status == "pending"

    # The lead resolves the disagreement: a reject overturns mo's confirm, its hashes retracted.
    leaddb = team_server.connect("lena")
    lreview = ReviewService(leaddb)
    esc = lreview.claim_next(lead.id, queue="escalations")
    assert esc is not None and esc.id == c.item_id
    res = lreview.decide(DecisionRequest(esc.id, lead.id, Verdict.REJECT, note="news report"))
    assert res.verdict is Verdict.OVERTURN and res.hashes_retracted > 0
    with team_server.owner.session() as s:
        assert s.get(Item, c.item_id).status == ItemStatus.DECIDED
        active = s.scalars(
            select(HashListEntry).where(
                HashListEntry.item_id == c.item_id, HashListEntry.retracted_at.is_(None)
            )
        ).all()
        assert active == []
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.kind == "overturn", AuditEvent.subject == c.uuid)
        ).one()
        assert event.actor_name == "lena" and f'"overturn":"{res.uuid}"' in event.detail
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []


def test_overturn_to_confirm_adds_the_python_rows_and_digest(team_server, facts):
    lead, mo = facts["lead"], facts["mo"]
    with team_server.owner.session() as s:
        rejected = s.scalars(
            select(Decision).where(Decision.user_id == mo.id, Decision.verdict == "reject")
        ).one()
        signals = s.scalars(select(SignalRow).where(SignalRow.item_id == rejected.item_id)).all()
        listable = [g for g in signals if not is_query_only(g.variant)]
        digest = s.scalar(
            text("SELECT hd_item_hashes_digest(:i, 'glorification')"), {"i": rejected.item_id}
        )
    assert digest == hash_rows_digest_v2(
        (g.algorithm, g.variant, g.value, g.quality, g.frame_ts, "glorification", "local")
        for g in listable
    )
    leads = LeadService(team_server.connect("lena"))
    with pytest.raises(LeadError, match="choose a category"):
        leads.overturn(lead, rejected.uuid, "it is propaganda")
    out = leads.overturn(lead, rejected.uuid, "it is propaganda", "glorification", "Glorification")
    assert (out.was, out.now, out.hashes_added) == (Verdict.REJECT, Verdict.CONFIRM, len(listable))
    with team_server.owner.session() as s:
        d = s.scalars(select(Decision).where(Decision.uuid == out.uuid)).one()
        rows = s.scalars(select(HashListEntry).where(HashListEntry.decision_uuid == out.uuid)).all()
        assert d.hashes_digest == digest and d.supersedes == rejected.uuid
        assert sorted(r.signal_id for r in rows) == sorted(g.id for g in listable)
        assert {(r.added_by, r.category, r.list_name) for r in rows} == {
            (lead.id, "glorification", "local")
        }
        assert all(r.added_at == d.decided_at for r in rows)
    # Overturned already: it no longer stands.
    with pytest.raises(LeadError, match="no longer stands"):
        leads.overturn(lead, rejected.uuid, "again", "glorification")
    assert all(r.ok for r in verify_chains(team_server.owner))
    assert verify_hash_list(team_server.owner) == []


def test_a_moderator_cannot_overturn_nor_resolve(team_server, facts):
    c, mo = facts["confirmed"], facts["mo"]
    before = insider.fingerprint(team_server)
    with pytest.raises(PermissionDenied):
        LeadService(team_server.connect("mo")).overturn(mo, c.uuid, "mine to take back")
    with insider.psql(team_server, "mo") as conn:
        for sql in (
            f"SELECT * FROM hd_api_overturn('{c.uuid}', 'reject', NULL, 'mine')",
            f"SELECT * FROM hd_api_resolve_escalation({c.item_id}, 'reject', NULL, NULL, NULL, "
            "gen_random_uuid()::text)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not"):
                conn.execute(sql)
    assert insider.fingerprint(team_server) == before


def test_own_decisions_are_never_second_reviewed(team_server, facts):
    """Even a review the owner hands to its own author by hand cannot be decided by them."""
    c, mo = facts["confirmed"], facts["mo"]
    with team_server.owner.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE second_reviews SET status = 'claimed', claimed_by = :mo, "
                "lease_expires_at = hd_now() + interval '5 minutes' WHERE item_id = :i"
            ),
            {"mo": mo.id, "i": c.item_id},
        )
    before = insider.fingerprint(team_server)
    with pytest.raises(PermissionDenied, match="their own decision"):
        ReviewService(team_server.connect("mo")).decide(
            DecisionRequest(
                c.item_id, mo.id, Verdict.CONFIRM, "x", method=DecisionMethod.SECOND_REVIEW
            )
        )
    assert insider.fingerprint(team_server) == before


def test_the_draw_is_the_servers(team_server, tmp_path):
    """The server's share rules: a workstation asking for none gets its decisions reviewed at
    the server's share all the same (here 1, so the test does not depend on the draw)."""
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    from app.core.ingest.contentstore import ContentStore
    from tests.helpers import ingest, write_samples

    assert (
        ingest(rootdb, ContentStore(tmp_path / "m"), write_samples(tmp_path / "in", range(2))).new
        == 2
    )
    review = ReviewService(team_server.connect("mo"), second_review_share=0.0)
    with team_server.owner.engine.begin() as conn:
        conn.execute(text("UPDATE hd_second_review_setting SET share = 1"))
    first = review.claim_next(mo.id)
    review.decide(DecisionRequest(first.id, mo.id, Verdict.REJECT))
    with team_server.owner.engine.begin() as conn:
        conn.execute(text("UPDATE hd_second_review_setting SET share = 0"))
    second = review.claim_next(mo.id)
    review.decide(DecisionRequest(second.id, mo.id, Verdict.REJECT))
    with team_server.owner.session() as s:
        assert list(s.scalars(select(SecondReview.item_id))) == [first.id]
