"""Exposure rows (issue 13) on SQLite and PostgreSQL: journalled and landed once each, and the
statistics view's figures read from them (zero-exposure share, per decision, per person and day,
the daily limit passed), in the view's exports too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind, today_start
from app.core.model.roles import PermissionDenied
from app.core.reports import summary_csv, summary_html, to_text
from app.storage.exposure import ExposureService
from app.storage.journal import DecisionJournal, JournalSync
from app.storage.review import ReviewService
from app.storage.stats import StatsService
from tests.helpers import ingest, make_user, write_samples


@pytest.fixture
def team(db, store, tmp_path):
    ingest(db, store, write_samples(tmp_path / "in", range(3)))
    mod = make_user(db, "mod1")
    lead = make_user(db, "lead1", Role.LEAD)
    review = ReviewService(db)
    items = [review.claim_next(mod.id) for _ in range(3)]
    return mod, lead, review, items


def _event(user, item_id, seconds, when=None):
    return ExposureEvent(user.id, item_id, ExposureKind.REVEAL, when or utcnow(), seconds)


def test_journalled_exposure_lands_once(db, team, tmp_path):
    mod, _lead, review, items = team
    journal = DecisionJournal(tmp_path / "journal.sqlite3")
    event = _event(mod, items[0].id, 2.5)
    journal.record_exposure(event)
    journal.record_exposure(event)  # the same moment twice (a replay): one row
    sync = JournalSync(journal, review, ExposureService(db))
    report = sync.sync()
    assert report.error is None and journal.pending_count() == 0
    assert ExposureService(db).record(event) is False  # already there
    rows = ExposureService(db).events(mod)
    assert [(e.user_id, e.item_id, e.kind, e.seconds, e.uuid) for e in rows] == [
        (mod.id, items[0].id, ExposureKind.REVEAL, 2.5, event.uuid)
    ]
    assert ExposureService(db).today(mod.id) == (2.5, {items[0].id})


def test_period_figures_and_exports(db, team):
    mod, lead, review, items = team
    seen, unseen, open_ = items
    exposure = ExposureService(db)
    exposure.record(_event(mod, seen.id, 50.0))
    exposure.record(_event(mod, open_.id, 20.0))
    exposure.record(_event(mod, seen.id, 99.0, utcnow() - timedelta(days=3)))  # outside
    review.decide(DecisionRequest(seen.id, mod.id, Verdict.REJECT))
    review.decide(DecisionRequest(unseen.id, mod.id, Verdict.REJECT))
    now = utcnow()
    stats = StatsService(db, daily_exposure_limit_s=60.0)
    st = stats.period(lead, now - timedelta(hours=1), now + timedelta(hours=1))
    ex = st.exposure
    assert (ex.resolved, ex.resolved_unseen, ex.zero_exposure_share) == (2, 1, 50.0)
    assert ex.decisions == 2 and ex.seconds == 70.0 and ex.seconds_per_decision == 35.0
    assert [(d.user, d.seconds, d.items, d.limit_passed) for d in ex.days] == [
        ("mod1", 70.0, 2, True)
    ]
    csv = to_text(summary_csv, st)
    assert "exposure,zero_exposure_share,50.0%" in csv
    assert "exposure,unblurred_per_decision,35.0 s" in csv
    day = now.date().isoformat()
    assert f'exposure_limit_passed,mod1 {day},"1:10 unblurred, 2 items"' in csv
    html = summary_html(st)
    assert "Exposure: looking after people" in html and "never a speed metric" in html
    # A person's own trend: their days only, the earlier day included.
    trend = stats.my_exposure(mod, days=14)
    assert [d.seconds for d in trend.trend("mod1")] == [99.0, 70.0]
    assert trend.days and {d.user for d in trend.days} == {"mod1"}
    with pytest.raises(PermissionDenied):
        stats.period(mod, now - timedelta(hours=1), now)  # the team's figures are the leads'


def test_a_moderator_reads_only_their_own_rows(db, team):
    mod, lead, _review, items = team
    other = make_user(db, "mod2")
    exposure = ExposureService(db)
    exposure.record(_event(mod, items[0].id, 1.0))
    exposure.record(_event(other, items[1].id, 2.0))
    assert [e.seconds for e in exposure.events(mod)] == [1.0]
    with pytest.raises(PermissionDenied):
        exposure.events(mod, user_id=other.id)
    assert sorted(e.seconds for e in exposure.events(lead)) == [1.0, 2.0]


def test_today_before_a_session_leaves_out_the_session_own_moments(db, team):
    """A review window reads today's earlier exposure in the background while its own moments
    are already being synced: read up to the session's start, they are not counted twice."""
    mod, _lead, _review, items = team
    service = ExposureService(db)
    since = max(utcnow(), today_start() + timedelta(seconds=2))  # "today" both sides of it
    assert service.record(_event(mod, items[0].id, 4.0, since - timedelta(seconds=1)))
    assert service.record(_event(mod, items[1].id, 7.0, since + timedelta(seconds=1)))
    assert service.today(mod.id, before=since) == (4.0, {items[0].id})
    assert service.today(mod.id) == (11.0, {items[0].id, items[1].id})
