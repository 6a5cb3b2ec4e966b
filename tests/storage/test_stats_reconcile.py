"""Issue 25 (2): every section of the period export adds up to the cards, on SQLite and
PostgreSQL, after a history with an undo, an overturn, second reviews and an item flagged by
two sources."""

from __future__ import annotations

from datetime import timedelta

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, Role, Verdict, utcnow
from app.core.model.history_types import HistoryFilter
from app.core.reports import summary_html, summary_rows
from app.storage.history_queries import HistoryService
from app.storage.leads import LeadService
from app.storage.review import ReviewService
from app.storage.stats import StatsService
from tests.helpers import ingest, make_user, write_samples


def test_every_export_section_adds_up_to_the_cards(db, store, tmp_path):
    paths = write_samples(tmp_path / "in", range(5))
    assert ingest(db, store, paths, source="user_report").new == 5
    # The first item is flagged again by another source: one item, two sightings.
    ingest(db, store, paths[:1], source="partner_feed")
    review = ReviewService(db, lease_seconds=60, second_review_share=1.0)
    mod1, mod2 = make_user(db, "mod1"), make_user(db, "mod2")
    lead = make_user(db, "lead1", Role.LEAD)

    def decide(user, verdict, category=None, queue="review"):
        item = review.claim_next(user.id, queue=queue)
        assert item is not None
        method = DecisionMethod.SECOND_REVIEW if queue == "second_review" else None
        kw = {"method": method} if method else {}
        review.decide(DecisionRequest(item.id, user.id, verdict, category, category, **kw))
        return item

    first = decide(mod1, Verdict.CONFIRM, "manifesto")
    assert review.undo_last(mod1.id).item_id == first.id  # the undone confirm counts nowhere
    review.release(mod1.id, [first.id])
    decide(mod1, Verdict.CONFIRM, "manifesto")  # confirmed again
    decide(mod2, Verdict.REJECT)
    decide(mod1, Verdict.CONFIRM, "glorification")
    decide(mod2, Verdict.REJECT)
    reject = next(
        r
        for r in HistoryService(db).page(lead, HistoryFilter(usernames=("mod2",))).rows
        if r.verdict is Verdict.REJECT
    )
    LeadService(db).overturn(lead, reject.uuid, "recruitment poster", "recruitment", "Recr.")
    decide(mod2, Verdict.CONFIRM, "manifesto", queue="second_review")
    decide(mod1, Verdict.REJECT, queue="second_review")

    now = utcnow()
    st = StatsService(db).period(lead, now - timedelta(hours=1), now + timedelta(hours=1))
    # 2 confirms + 2 rejects by the moderators, 1 overturn, 2 second reviews.
    assert st.human_decided == 7
    assert st.by_verdict == {"confirm": 3, "reject": 3, "overturn": 1}
    assert st.by_category == {
        "manifesto": 2, "glorification": 1, "Recr.": 1, "(not violating)": 3
    }  # fmt: skip
    # Each decision once, under the source that first flagged its item.
    assert st.by_source == {"user_report": 7}

    sections: dict[str, dict[str, int]] = {}
    cards: dict[str, int] = {}
    for section, key, value in summary_rows(st):
        if section == "cards":
            cards[key] = int(value)
        elif section in ("verdict", "category", "source", "method", "moderator"):
            sections.setdefault(section, {})[key] = int(value)
    assert cards == {"human_decisions": 7, "auto_matched": 0}
    for name in ("verdict", "category", "source", "moderator"):
        assert sum(sections[name].values()) == cards["human_decisions"], name
    assert sum(sections["method"].values()) == cards["human_decisions"] + cards["auto_matched"]
    assert sum(n for _, n in st.per_hour) == cards["human_decisions"]
    # The HTML's table is the same rows.
    page = summary_html(st)
    assert "<td>cards</td><td>human_decisions</td><td>7</td>" in page
    assert "<td>verdict</td><td>confirm</td><td>3</td>" in page
