"""Percent agreement and Cohen's kappa against hand-computed values; deadlines; reports."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from app.core.model.agreement import agreement, cohen_kappa, percent_agreement
from app.core.model.deadlines import (
    DeadlineConfigError,
    deadline_state,
    parse_source_deadlines,
    source_deadlines,
    with_source_deadline,
)
from app.core.model.domain import DecisionMethod, SightingInfo, Verdict
from app.core.model.history_types import HistoryRow, PeriodStats
from app.core.reports import history_csv, summary_csv, summary_html


def _pairs(counts: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    return [pair for pair, n in counts.items() for _ in range(n)]


def test_kappa_textbook_example():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    pairs = _pairs({("y", "y"): 20, ("y", "n"): 5, ("n", "y"): 10, ("n", "n"): 15})
    assert percent_agreement(pairs) == pytest.approx(70.0)
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_kappa_three_labels_by_hand():
    # 10 items, labels c/r/e. A: c c c c c r r r e e ; B: c c c r r r r e e e
    a = ["c", "c", "c", "c", "c", "r", "r", "r", "e", "e"]
    b = ["c", "c", "c", "r", "r", "r", "r", "e", "e", "e"]
    pairs = list(zip(a, b, strict=True))
    # p_o = (3 + 2 + 2)/10 = 0.7
    # p_e = (5*3 + 3*4 + 2*3)/100 = (15 + 12 + 6)/100 = 0.33
    # kappa = (0.7 - 0.33)/(0.67) = 0.552238...
    assert percent_agreement(pairs) == pytest.approx(70.0)
    assert cohen_kappa(pairs) == pytest.approx(0.37 / 0.67)


def test_kappa_edges():
    assert cohen_kappa([]) is None and percent_agreement([]) is None
    assert cohen_kappa([("c", "c")] * 4) is None  # chance agreement is certain: undefined
    assert cohen_kappa([("c", "r"), ("r", "c")]) == pytest.approx(-1.0)
    perfect = agreement([("c", "c"), ("r", "r")])
    assert (perfect.pairs, perfect.agreed, perfect.percent, perfect.kappa) == (2, 2, 100.0, 1.0)
    assert "100.0% of 2" in perfect.describe()


def test_source_default_deadline():
    t = datetime(2026, 1, 1, 12, 0)
    s = SightingInfo("removal_order", "RO-1", None, None, None, t)
    assert with_source_deadline(s, source_deadlines({})).deadline == t + timedelta(hours=1)
    explicit = SightingInfo("removal_order", None, None, None, None, t, t + timedelta(minutes=5))
    assert with_source_deadline(explicit, source_deadlines({})).deadline == explicit.deadline
    other = SightingInfo("user_report", None, None, None, None, t)
    assert with_source_deadline(other, source_deadlines({})).deadline is None
    env = {"HASHDESK_SOURCE_DEADLINES": "removal_order=30m, partner=2d"}
    assert source_deadlines(env) == {
        "removal_order": timedelta(minutes=30),
        "partner": timedelta(days=2),
    }
    with pytest.raises(DeadlineConfigError):
        parse_source_deadlines("removal_order=soon")
    assert deadline_state(t, t) == "met"
    assert deadline_state(t + timedelta(seconds=1), t) == "missed"
    assert deadline_state(t, None) == ""


def _row(note: str) -> HistoryRow:
    t = datetime(2026, 1, 1, 12, 0)
    return HistoryRow(
        1, "u-1", t, 7, "mod1", Verdict.CONFIRM, "glorification", "Glorification", note,
        DecisionMethod.MANUAL, None, None, None, "removal_order", "RO-1", t, "met",
    )  # fmt: skip


def test_history_csv_defuses_formulas():
    buf = io.StringIO()
    assert history_csv([_row('=HYPERLINK("http://x")'), _row("fine")], buf) == 2
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows[0][0] == "decided_at_utc"
    assert rows[1][-1].startswith("'=")
    assert rows[2][-1] == "fine"


def test_summary_html_is_self_contained_and_escaped():
    st = PeriodStats(datetime(2026, 1, 1), datetime(2026, 1, 2))
    st.by_verdict = {"confirm": 3, "reject": 1}
    st.by_source = {"<script>alert(1)</script>": 2}
    st.per_moderator = [("mod1", {"confirm": 3})]
    page = summary_html(st)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in page and "<link" not in page
    buf = io.StringIO()
    summary_csv(st, buf)
    assert "verdict,confirm,3" in buf.getvalue()
