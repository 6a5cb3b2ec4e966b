"""Issue 25 (cosmetic): the HTML summary shows a category label whole, however long (the
GIFCT labels run past 40 characters)."""

from __future__ import annotations

from datetime import datetime

from app.core.model.history_types import PeriodStats
from app.core.reports import summary_html

LONG = "Livestreamed or recorded attack (Content Incident Protocol)"


def test_long_category_labels_are_shown_whole():
    st = PeriodStats(since=datetime(2026, 1, 1), until=datetime(2026, 1, 2))
    st.by_category = {LONG: 3, "Attacker manifesto": 1}
    st.by_method = {"manual": 4}
    page = summary_html(st)
    assert f"class='l'>{LONG}</text>" in page
    assert f"class='l'>{LONG[:40]}</text>" not in page
