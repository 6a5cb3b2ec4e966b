"""History, overturn, escalations, second review and statistics on a real database (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.model.decisions import DecisionRequest, LeadError, sampled
from app.core.model.domain import DecisionMethod, ItemStatus, Role, Verdict, utcnow
from app.core.model.history_types import HistoryFilter
from app.core.model.roles import PermissionDenied
from app.storage.history_queries import HistoryService
from app.storage.leads import LeadService
from app.storage.models import Decision, HashListEntry, Item, Sighting, SignalRow
from app.storage.review import ReviewService
from app.storage.stats import StatsService
from tests.helpers import ingest, make_user, write_cluster, write_samples


@pytest.fixture
def team(db, store, tmp_path):
    paths = write_samples(tmp_path / "in", range(6))
    assert ingest(db, store, paths[:3], source="user_report").new == 3
    assert ingest(db, store, paths[3:], source="removal_order").new == 3
    review = ReviewService(db, lease_seconds=60, second_review_share=0.0)
    return (
        review,
        make_user(db, "mod1"),
        make_user(db, "mod2"),
        make_user(db, "lead1", Role.LEAD),
    )


def _decide(review, user, verdict, category=None, note=None, queue="review"):
    item = review.claim_next(user.id, queue=queue)
    assert item is not None
    method = DecisionMethod.SECOND_REVIEW if queue == "second_review" else DecisionMethod.MANUAL
    label = category.title() if category else None
    review.decide(DecisionRequest(item.id, user.id, verdict, category, label, note, method=method))
    return item


def _active(db, item_id):
    with db.session() as s:
        return s.scalars(
            select(HashListEntry).where(
                HashListEntry.item_id == item_id, HashListEntry.retracted_at.is_(None)
            )
        ).all()


def test_history_newest_first_with_keyset_pages_and_filters(db, team):
    review, mod1, mod2, lead = team
    a = _decide(review, mod1, Verdict.CONFIRM, "glorification", "flag wavers")
    b = _decide(review, mod2, Verdict.REJECT, note="news report")
    c = _decide(review, mod1, Verdict.CONFIRM, "manifesto")
    d = _decide(review, mod2, Verdict.ESCALATE, note="not sure: satire?")
    history = HistoryService(db)
    seen, cursor = [], None
    while True:
        page = history.page(lead, HistoryFilter(), cursor, limit=3)
        seen += [r.item_id for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [d.id, c.id, b.id, a.id]  # newest first, no gaps, no repeats

    def items(**kw):
        return [r.item_id for r in history.page(lead, HistoryFilter(**kw)).rows]

    assert items(usernames=("mod1",)) == [c.id, a.id]
    assert items(verdicts=(Verdict.REJECT, Verdict.ESCALATE)) == [d.id, b.id]
    assert items(categories=("manifesto",)) == [c.id]
    sources = {i: review.load_item(i).sightings[0].source for i in (a.id, b.id, c.id, d.id)}
    assert items(sources=("removal_order",)) == [
        i for i in (d.id, c.id, b.id, a.id) if sources[i] == "removal_order"
    ]
    assert items(methods=(DecisionMethod.AUTO_MATCH,)) == []
    assert items(text="SATIRE") == [d.id]  # note, case-insensitive
    assert items(text=b.sha256[:10]) == [b.id]  # SHA-256 prefix
    with db.session() as s:
        pdq = s.scalar(
            select(SignalRow.value).where(SignalRow.item_id == c.id, SignalRow.algorithm == "pdq")
        )
    assert items(text=pdq[:12]) == [c.id]  # PDQ prefix
    later = utcnow() + timedelta(hours=1)
    assert items(since=later) == [] and len(items(until=later)) == 4
    row = history.page(lead, HistoryFilter(usernames=("mod1",))).rows[0]
    assert row.username == "mod1" and row.category == "manifesto" and row.can_overturn
    with pytest.raises(PermissionDenied):
        history.page(mod1, HistoryFilter())
    assert "mod2" in history.options(lead).usernames


def test_external_id_search_and_timeline(db, team):
    review, mod1, _mod2, lead = team
    item = _decide(review, mod1, Verdict.CONFIRM, "glorification")
    with db.session() as s:
        from app.storage.models import Sighting

        s.execute(update(Sighting).where(Sighting.item_id == item.id).values(external_id="EXT-42"))
    history = HistoryService(db)
    assert [r.item_id for r in history.page(lead, HistoryFilter(text="EXT-42")).rows] == [item.id]
    tl = history.timeline(lead, item.id)
    kinds = [e.kind for e in tl.events]
    assert kinds[0] == "sighting" and "decision" in kinds and "hash_added" in kinds
    assert tl.active_hashes >= 4 and tl.sha256 == item.sha256


def test_overturn_confirm_retracts_and_reject_adds_hashes(db, team):
    review, mod1, _mod2, lead = team
    confirmed = _decide(review, mod1, Verdict.CONFIRM, "glorification")
    rejected = _decide(review, mod1, Verdict.REJECT)
    assert len(_active(db, confirmed.id)) >= 4 and _active(db, rejected.id) == []
    leads = LeadService(db)
    history = HistoryService(db)
    rows = {r.item_id: r for r in history.page(lead, HistoryFilter()).rows}
    with pytest.raises(LeadError, match="reason"):
        leads.overturn(lead, rows[confirmed.id].uuid, "  ")
    with pytest.raises(PermissionDenied):
        leads.overturn(mod1, rows[confirmed.id].uuid, "mine")
    out = leads.overturn(lead, rows[confirmed.id].uuid, "news footage, not glorification")
    assert out.was is Verdict.CONFIRM and out.now is Verdict.REJECT and out.hashes_retracted >= 4
    assert _active(db, confirmed.id) == []
    with db.session() as s:
        retracted = s.scalars(
            select(HashListEntry).where(HashListEntry.item_id == confirmed.id)
        ).all()
    assert all("overturned" in h.retraction_reason for h in retracted)
    assert all(h.retraction_decision_uuid == out.uuid for h in retracted)
    with pytest.raises(LeadError, match="category"):
        leads.overturn(lead, rows[rejected.id].uuid, "it is propaganda")
    out2 = leads.overturn(
        lead, rows[rejected.id].uuid, "it is propaganda", "branded", "Branded publication"
    )
    added = _active(db, rejected.id)
    assert out2.hashes_added == len(added) >= 4
    assert all(h.category == "branded" and h.decision_uuid == out2.uuid for h in added)
    assert not any(h.variant.startswith("dih:") for h in added)
    with pytest.raises(LeadError, match="no longer stands"):
        leads.overturn(lead, rows[rejected.id].uuid, "again")
    after = {r.uuid: r for r in history.page(lead, HistoryFilter()).rows}
    assert after[rows[confirmed.id].uuid].overturned
    assert not after[rows[confirmed.id].uuid].can_overturn
    assert after[out2.uuid].verdict is Verdict.OVERTURN and after[out2.uuid].can_overturn
    # An overturn can itself be overturned: back to not violating, hashes retracted again.
    out3 = leads.overturn(lead, out2.uuid, "on reflection: reporting")
    assert out3.now is Verdict.REJECT and _active(db, rejected.id) == []
    assert review.load_item(rejected.id).status is ItemStatus.DECIDED


def test_overturn_cluster_members_on_request(db, team):
    review, mod1, _mod2, lead = team
    rep = review.claim_next(mod1.id)
    with db.session() as s:
        others = s.scalars(select(Item).where(Item.id != rep.id).order_by(Item.id)).all()[:2]
        for item in (s.get(Item, rep.id), *others):
            item.cluster_id = rep.id
        member_ids = [o.id for o in others]
    out = review.decide(DecisionRequest(rep.id, mod1.id, Verdict.CONFIRM, "manifesto", "M"))
    assert out.cluster_members == 2
    leads = LeadService(db)
    assert leads.cluster_size_of(lead, out.uuid) == 2
    ov = leads.overturn(lead, out.uuid, "whole cluster is satire", include_cluster=True)
    assert ov.cluster_members == 2
    assert all(_active(db, i) == [] for i in [rep.id, *member_ids])


def test_escalation_queue_shows_the_note_and_the_lead_decides(db, team):
    review, mod1, _mod2, lead = team
    esc = _decide(review, mod1, Verdict.ESCALATE, note="possible satire account")
    with pytest.raises(PermissionDenied):
        review.claim_next(mod1.id, queue="escalations")
    got = review.claim_next(lead.id, queue="escalations")
    assert got is not None and got.id == esc.id
    assert got.escalation_note == "Escalated by mod1: possible satire account"
    assert review.counts(lead.id, queue="escalations").open_items == 1
    assert review.claim_next(lead.id, exclude={esc.id}, queue="escalations") is None
    # Skip leaves it with the leads.
    review.decide(DecisionRequest(esc.id, lead.id, Verdict.SKIP))
    assert review.load_item(esc.id).status is ItemStatus.ESCALATED
    again = review.claim_next(lead.id, queue="escalations")
    assert again.id == esc.id
    review.decide(DecisionRequest(esc.id, lead.id, Verdict.CONFIRM, "glorification", "G"))
    assert review.load_item(esc.id).status is ItemStatus.DECIDED
    assert len(_active(db, esc.id)) >= 4
    assert review.claim_next(lead.id, queue="escalations") is None
    # Release gives an escalated item back to the leads, still escalated.
    esc2 = _decide(review, mod1, Verdict.ESCALATE)
    assert review.claim_next(lead.id, queue="escalations").id == esc2.id
    assert review.release(lead.id, [esc2.id]) == 1
    assert review.load_item(esc2.id).status is ItemStatus.ESCALATED


def test_second_review_blind_disagreement_goes_to_lead(db, team):
    review, mod1, mod2, lead = team
    review.second_review_share = 1.0
    first = _decide(review, mod1, Verdict.CONFIRM, "glorification")
    # The author never gets their own decision back.
    assert review.claim_next(mod1.id, queue="second_review") is None
    got = review.claim_next(mod2.id, queue="second_review")
    assert got is not None and got.id == first.id and got.match_note is None
    assert review.counts(mod2.id, queue="second_review").open_items == 1
    review.decide(
        DecisionRequest(
            first.id, mod2.id, Verdict.REJECT, note="looks like news",
            method=DecisionMethod.SECOND_REVIEW,
        )
    )  # fmt: skip
    # The second opinion changes nothing in the hash list, but the item goes to the leads.
    assert len(_active(db, first.id)) >= 4
    assert review.load_item(first.id).status is ItemStatus.ESCALATED
    got = review.claim_next(lead.id, queue="escalations")
    assert got.escalation_note.startswith("Second review disagreed: mod1 decided confirm")
    # The lead sides with the second reviewer: that overturns the confirm.
    review.decide(DecisionRequest(first.id, lead.id, Verdict.REJECT, note="agree: news"))
    assert _active(db, first.id) == []
    with db.session() as s:
        verdicts = [d.verdict for d in s.scalars(select(Decision).order_by(Decision.id))]
    assert verdicts[-1] == "overturn"
    # Agreement: one pair, disagreed.
    st = StatsService(db).period(lead, utcnow() - timedelta(hours=1), utcnow() + timedelta(1))
    assert st.agreement.pairs == 1 and st.agreement.percent == 0.0
    assert st.overturns == 1
    # An agreeing second review leaves the item decided.
    second = _decide(review, mod2, Verdict.REJECT)
    _decide(review, mod1, Verdict.REJECT, queue="second_review")
    assert review.load_item(second.id).status is ItemStatus.DECIDED
    # Undone decisions leave the second-review queue.
    third = _decide(review, mod1, Verdict.REJECT)
    review.undo_last(mod1.id)
    review.release(mod1.id, [third.id])
    assert review.claim_next(mod2.id, queue="second_review") is None


def test_sampling_share_is_deterministic():
    import random
    import uuid

    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    share = sum(sampled(u, 0.05) for u in ids) / len(ids)
    assert 0.0 < share < 0.2
    assert all(sampled(u, 1.0) for u in ids[:50]) and not any(sampled(u, 0.0) for u in ids)


def test_stats_deadlines_and_throughput(db, team):
    review, mod1, mod2, lead = team
    now = utcnow()
    with db.session() as s:
        items = s.scalars(select(Item).order_by(Item.id)).all()
        for item in items:
            item.deadline = None
        items[0].deadline = now - timedelta(minutes=5)  # will be decided late
        items[1].deadline = now + timedelta(hours=1)  # decided in time
        items[5].deadline = now - timedelta(minutes=1)  # still open: overdue
        ids = [i.id for i in items]
    for uid, verdict in ((ids[0], Verdict.CONFIRM), (ids[1], Verdict.REJECT)):
        review.claim_next(mod1.id, exclude=[i for i in ids if i != uid])
        review.decide(DecisionRequest(uid, mod1.id, verdict, "manifesto", "Manifesto"))
    review.claim_next(mod2.id, exclude=[i for i in ids if i != ids[2]])
    review.decide(DecisionRequest(ids[2], mod2.id, Verdict.REJECT))
    st = StatsService(db).period(lead, now - timedelta(hours=1), now + timedelta(hours=1))
    assert (st.deadlines_met, st.deadlines_missed, st.overdue_open) == (1, 1, 1)
    assert st.by_verdict == {"confirm": 1, "reject": 2}
    assert dict(st.per_moderator)["mod1"] == {"confirm": 1, "reject": 1}
    assert sum(n for _, n in st.per_hour) == 3
    assert st.queue_open == 3 and st.human_decided == 3 and st.auto_matched == 0
    assert st.by_category == {"Manifesto": 1, "(not violating)": 2}
    assert st.flag_to_decision.count == 3
    rows = HistoryService(db).page(lead, HistoryFilter(usernames=("mod1",))).rows
    assert sorted(r.deadline_state for r in rows) == ["met", "missed"]
    with pytest.raises(PermissionDenied):
        StatsService(db).period(mod1, now, now)


def test_every_figure_of_the_period_agrees_with_the_others(db, store, tmp_path, team):
    """Issue 14: the card, the charts and the CSV are read from the same rows, so their totals
    agree: human decisions = per moderator = per hour = the human method bars; the queue's
    age is counted from the first flag; overdue-and-open deadlines are not met."""
    review, mod1, mod2, lead = team
    ingest(db, store, write_cluster(tmp_path / "cl", 61))  # one key, five items
    now = utcnow()
    with db.session() as s:
        items = s.scalars(select(Item).order_by(Item.id)).all()
        ids = [i.id for i in items]
        for item in items:
            item.deadline = None
        # Flagged hours before it was ingested (a feed that delivers late).
        s.execute(update(Sighting).values(flagged_at=now - timedelta(hours=6)))
        items[0].deadline = now + timedelta(hours=1)  # decided in time
        items[4].deadline = now - timedelta(hours=3)  # still open: overdue
    rep = review.claim_next(mod1.id, exclude=ids[:6])
    assert rep.cluster_size == 5
    review.decide(DecisionRequest(rep.id, mod1.id, Verdict.CONFIRM, "manifesto", "Manifesto"))

    def decide(user, item_id, verdict, category=None):
        assert review.claim_next(user.id, exclude=[i for i in ids if i != item_id]).id == item_id
        review.decide(DecisionRequest(item_id, user.id, verdict, category, category))

    decide(mod1, ids[0], Verdict.CONFIRM, "manifesto")  # in time: met
    decide(mod2, ids[1], Verdict.REJECT)
    decide(mod2, ids[2], Verdict.SKIP)  # not a decision
    decide(mod2, ids[3], Verdict.ESCALATE)  # not a decision either
    decide(mod1, ids[5], Verdict.REJECT)
    assert review.undo_last(mod1.id).item_id == ids[5]  # taken back: not counted
    review.release(mod1.id, [ids[5]])
    rejects = HistoryService(db).page(lead, HistoryFilter(usernames=("mod2",))).rows
    reject = next(r for r in rejects if r.verdict is Verdict.REJECT)
    LeadService(db).overturn(lead, reject.uuid, "a recruitment poster", "manifesto", "M")
    st = StatsService(db).period(lead, now - timedelta(hours=1), now + timedelta(hours=1))

    per_moderator = {name: sum(c.values()) for name, c in st.per_moderator}
    # 5 (cluster) + 1 confirm + 1 reject by the moderators, 1 overturn by the lead.
    assert per_moderator == {"mod1": 6, "mod2": 1, "lead1": 1}
    assert st.human_decided == 8 == sum(per_moderator.values())
    assert sum(n for _, n in st.per_hour) == st.human_decided
    human_bars = sum(n for m, n in st.by_method.items() if m != "auto_match")
    assert human_bars == st.human_decided
    assert st.by_method == {"manual": 4, "cluster": 4}

    # The queue: every open item flagged six hours ago sits in the 4-24 h bucket, and the
    # oldest open item is as old as that.
    assert st.queue_open == sum(n for _, n in st.queue_age) > 0
    assert dict(st.queue_age)["4–24 h"] == st.queue_open
    assert 6 * 3600 - 60 <= st.oldest_open_s <= 6 * 3600 + 60

    # Deadlines: one met, the overdue open one is not, so the rate is not 100 %.
    assert (st.deadlines_met, st.deadlines_missed, st.overdue_open) == (1, 0, 1)
    assert st.deadlines_judged == 2 and st.deadline_rate == 50.0


def test_removal_orders_get_the_default_deadline(db, store, tmp_path):
    paths = write_samples(tmp_path / "ro", [50])
    ingest(db, store, paths, source="removal_order")
    with db.session() as s:
        item = s.scalar(select(Item))
        assert item.deadline is not None
        assert timedelta(minutes=59) < item.deadline - item.created_at < timedelta(minutes=61)


def test_a_lead_disabled_while_signed_in_can_no_longer_act(db, team):
    """The window holds the UserInfo from sign-in; disabling the account must stop every lead
    path at once: overturn (hashes added or retracted), cluster lookup, escalations, history,
    statistics, the hash list. Nothing changes in the record."""
    from app.storage.hash_lists import HashListService
    from app.storage.users import UserService

    review, mod1, mod2, lead = team
    admin = make_user(db, "admin1", Role.ADMIN)
    confirmed = _decide(review, mod1, Verdict.CONFIRM, "glorification")
    rejected = _decide(review, mod2, Verdict.REJECT)
    escalated = _decide(review, mod1, Verdict.ESCALATE, note="unsure")
    rows = {
        r.item_id: r
        for r in HistoryService(db).page(lead, HistoryFilter()).rows
        if r.verdict in (Verdict.CONFIRM, Verdict.REJECT)
    }
    hashes_before = len(_active(db, confirmed.id)), len(_active(db, rejected.id))
    with db.session() as s:
        decisions_before = len(s.scalars(select(Decision)).all())

    UserService(db).disable(lead.username, actor=admin)

    leads = LeadService(db)
    with pytest.raises(PermissionDenied, match="disabled"):
        leads.overturn(lead, rows[confirmed.id].uuid, "not glorification after all")
    with pytest.raises(PermissionDenied, match="disabled"):
        leads.overturn(lead, rows[rejected.id].uuid, "propaganda", "glorification", "Glorif.")
    with pytest.raises(PermissionDenied, match="disabled"):
        leads.cluster_size_of(lead, rows[confirmed.id].uuid)
    with pytest.raises(PermissionDenied, match="disabled"):
        review.claim_next(lead.id, queue="escalations")
    with pytest.raises(PermissionDenied, match="disabled"):
        review.decide(DecisionRequest(escalated.id, lead.id, Verdict.CONFIRM, "glorification"))
    with pytest.raises(PermissionDenied, match="disabled"):
        HistoryService(db).page(lead, HistoryFilter())
    with pytest.raises(PermissionDenied, match="disabled"):
        StatsService(db).period(lead, utcnow() - timedelta(days=1), utcnow())
    with pytest.raises(PermissionDenied, match="disabled"):
        HashListService(db).retract([1], "because", actor=lead)

    assert (len(_active(db, confirmed.id)), len(_active(db, rejected.id))) == hashes_before
    with db.session() as s:
        assert len(s.scalars(select(Decision)).all()) == decisions_before
        assert s.get(Item, escalated.id).status == ItemStatus.ESCALATED.value
    # Enabled again, the same signed-in copy works: the check reads the account, not the copy.
    UserService(db).set_active(lead.username, True, actor=admin)
    out = leads.overturn(lead, rows[confirmed.id].uuid, "not glorification after all")
    assert out.hashes_retracted == hashes_before[0] > 0
