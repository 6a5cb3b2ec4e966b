"""Exports a lead can send on: the filtered history as CSV, and a period summary as CSV and as
one self-contained HTML file (inline CSS and SVG, no scripts, no external URLs).

Flagged text (notes, external ids) is untrusted: CSV cells that a spreadsheet would run as a
formula are prefixed with an apostrophe, and HTML is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

from app.core.model.exposure import format_exposure
from app.core.model.history_types import HistoryRow, PeriodStats
from app.core.model.situation import Situation, figure_rows, milestones

HISTORY_COLUMNS = (
    "decided_at_utc",
    "decision_uuid",
    "item_id",
    "moderator",
    "verdict",
    "category",
    "category_label",
    "method",
    "source",
    "external_id",
    "deadline_utc",
    "deadline",
    "superseded_by",
    "supersedes",
    "note",
)


def safe_cell(value: object) -> str:
    if value is None:
        return ""
    text = (
        value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else str(value)
    )
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def history_csv(rows: Iterable[HistoryRow], out: TextIO) -> int:
    """Write ``rows`` as CSV with a header; returns how many rows were written."""
    w = csv.writer(out)
    w.writerow(HISTORY_COLUMNS)
    n = 0
    for r in rows:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    r.decided_at,
                    r.uuid,
                    r.item_id,
                    r.username,
                    r.verdict.value,
                    r.category,
                    r.category_label,
                    r.method.value,
                    r.source,
                    r.external_id,
                    r.deadline,
                    r.deadline_state,
                    r.superseded_by,
                    r.supersedes,
                    r.note,
                )
            ]
        )
        n += 1
    return n


def plural(n: int, one: str, many: str | None = None) -> str:
    """``n`` with its noun: "1 file", "3 files", "2 copies" (``many`` when not ``one`` + s)."""
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def format_duration(s: float | None) -> str:
    """A duration as the statistics view and its exports both show it: seconds up to two
    minutes, then minutes to a tenth, then hours to a tenth."""
    if s is None:
        return "—"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def format_percent(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}%"


def summary_rows(st: PeriodStats) -> list[tuple[str, str, str]]:
    """The period summary as (section, key, value) rows: the CSV, and the HTML tables."""
    rows: list[tuple[str, str, str]] = [
        ("period", "from_utc", safe_cell(st.since)),
        ("period", "until_utc", safe_cell(st.until)),
        ("cards", "human_decisions", str(st.human_decided)),
        ("cards", "auto_matched", str(st.auto_matched)),
    ]
    # verdict, category, source: the human decisions, each adding up to the card; method: the
    # human decisions and the auto-matches, adding up to the two cards.
    for section, counts in (
        ("verdict", st.by_verdict),
        ("category", st.by_category),
        ("source", st.by_source),
        ("method", st.by_method),
        ("not_a_decision", st.other_actions),
    ):
        for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append((section, key, str(n)))
    ftd = st.flag_to_decision
    rows += [
        ("flag_to_decision", "decisions", str(ftd.count)),
        ("flag_to_decision", "median", format_duration(ftd.median_s)),
        ("flag_to_decision", "p90", format_duration(ftd.p90_s)),
        ("flag_to_decision", "mean", format_duration(ftd.mean_s)),
        ("deadlines", "met", str(st.deadlines_met)),
        ("deadlines", "missed", str(st.deadlines_missed)),
        ("deadlines", "overdue_open_now", str(st.overdue_open)),
        ("deadlines", "judged", str(st.deadlines_judged)),
        ("deadlines", "met_rate", format_percent(st.deadline_rate)),
        ("overturns", "count", str(st.overturns)),
        ("overturns", "rate", format_percent(st.overturn_rate)),
        ("queue", "open_now", str(st.queue_open)),
        ("queue", "escalated_now", str(st.queue_escalated)),
        ("queue", "second_review_waiting", str(st.queue_second_review)),
        ("queue", "oldest_open", format_duration(st.oldest_open_s)),
    ]
    if st.agreement is not None:
        rows.append(("agreement", "overall", st.agreement.describe()))
    for name, agr in st.agreement_by_moderator:
        rows.append(("agreement", name, agr.describe()))
    for name, counts in st.per_moderator:
        rows.append(("moderator", name, str(sum(counts.values()))))
    return rows + exposure_rows(st)


EXPOSURE_CARE = (
    "What people saw unblurred, so that no one carries more than they should: the best "
    "exposure is none. These figures are for looking after people, never a speed metric."
)


def exposure_rows(st: PeriodStats) -> list[tuple[str, str, str]]:
    """The exposure section of the summary: the share resolved unseen, per decision, per day."""
    ex = st.exposure
    rows = [
        ("exposure", "items_resolved", str(ex.resolved)),
        ("exposure", "resolved_with_zero_exposure", str(ex.resolved_unseen)),
        ("exposure", "zero_exposure_share", format_percent(ex.zero_exposure_share)),
        ("exposure", "unblurred_total", format_exposure(ex.seconds)),
        ("exposure", "unblurred_per_decision", _per_decision(ex.seconds_per_decision)),
        (
            "exposure",
            "daily_limit",
            format_exposure(ex.daily_limit_s) if ex.daily_limit_s else "none",
        ),
        ("exposure", "days_limit_passed", str(len(ex.limit_passed))),
    ]
    for d in ex.days:
        value = f"{format_exposure(d.seconds)} unblurred, {d.items} items"
        rows.append(("exposure_day", f"{d.user} {d.day.isoformat()}", value))
        if d.limit_passed:
            rows.append(("exposure_limit_passed", f"{d.user} {d.day.isoformat()}", value))
    return rows


def _per_decision(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


def summary_csv(st: PeriodStats, out: TextIO) -> None:
    w = csv.writer(out)
    w.writerow(("section", "key", "value"))
    for row in summary_rows(st):
        w.writerow([safe_cell(v) for v in row])


def _svg_bars(title: str, items: list[tuple[str, int]], color: str = "#3d7bd9") -> str:
    """A horizontal bar chart as inline SVG: each label whole on its own line, its bar below."""
    if not items:
        return f"<p class='empty'>{html.escape(title)}: nothing in this period.</p>"
    top = max(n for _, n in items) or 1
    label_h, bar_h, gap, width = 15, 14, 8, 640
    row = label_h + bar_h + gap
    height = len(items) * row + 30
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(title, quote=True)}'>",
        f"<text x='0' y='14' class='t'>{html.escape(title)}</text>",
    ]
    for i, (label, n) in enumerate(items):
        y = 26 + i * row
        w = max(1, int((width - 60) * n / top)) if n else 0
        parts.append(
            f"<text x='0' y='{y + 12}' class='l'>{html.escape(label)}</text>"
            f"<rect x='0' y='{y + label_h}' width='{w}' height='{bar_h}' fill='{color}'/>"
            f"<text x='{w + 6}' y='{y + label_h + 11}' class='l'>{n}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1f23}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.sub{color:#555;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d5d8de;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #d5d8de;padding:4px 8px;
text-align:left} th{background:#f1f3f6}
svg .t{font-size:13px;font-weight:600} svg .l{font-size:12px} .empty{color:#777}
"""


def summary_html(st: PeriodStats, title: str = "Hashdesk period summary") -> str:
    esc = html.escape
    cards = [
        ("Human decisions", str(st.human_decided)),
        ("Auto-matched", str(st.auto_matched)),
        ("Deadlines met", format_percent(st.deadline_rate)),
        ("Overturn rate", format_percent(st.overturn_rate)),
        (
            "Agreement",
            st.agreement.describe() if st.agreement and st.agreement.pairs else "—",
        ),
        ("Median flag → decision", format_duration(st.flag_to_decision.median_s)),
        ("Open in queue now", str(st.queue_open)),
        ("Escalated now", str(st.queue_escalated)),
    ]
    body = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<div class='sub'>{esc(safe_cell(st.since))} to {esc(safe_cell(st.until))} UTC</div>",
        "<div class='cards'>",
        *(f"<div class='card'>{esc(k)}<b>{esc(v)}</b></div>" for k, v in cards),
        "</div>",
        "<h2>Decisions</h2>",
        "<p class='sub'>Each chart breaks down the same human decisions as the card.</p>",
        _svg_bars("By verdict", sorted(st.by_verdict.items(), key=lambda kv: -kv[1])),
        _svg_bars("By category", sorted(st.by_category.items(), key=lambda kv: -kv[1])),
        _svg_bars(
            "By source (first flagged by)",
            sorted(st.by_source.items(), key=lambda kv: -kv[1]),
            "#7a55c7",
        ),
        _svg_bars("By moderator", [(n, sum(c.values())) for n, c in st.per_moderator], "#2e9b6a"),
        "<h2>Exposure: looking after people</h2>",
        f"<p class='sub'>{esc(EXPOSURE_CARE)}</p><div class='cards'>",
        *(
            f"<div class='card'>{esc(k)}<b>{esc(v)}</b></div>"
            for k, v in (
                ("Resolved with zero exposure", format_percent(st.exposure.zero_exposure_share)),
                ("Unblurred per decision", _per_decision(st.exposure.seconds_per_decision)),
                ("Unblurred in total", format_exposure(st.exposure.seconds)),
                ("Days past the limit", str(len(st.exposure.limit_passed))),
            )
        ),
        "</div>",
        "<h2>Summary table</h2><table><tr><th>Section</th><th>Key</th><th>Value</th></tr>",
        *(
            f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>"
            for a, b, c in summary_rows(st)
        ),
        "</table></body></html>",
    ]
    return "\n".join(body)


def to_text(writer, *args) -> str:
    buf = io.StringIO()
    writer(*args, buf)
    return buf.getvalue()


# -- an incident's debrief (issue 23, 5) -----------------------------------------------------


def _svg_stacked(title: str, labels: list[str], parts: list[tuple[str, str, list[int]]]) -> str:
    """Vertical stacked bars as inline SVG: ``parts`` (name, colour, one value per label)."""
    totals = [sum(p[2][i] for p in parts) for i in range(len(labels))]
    if not labels or not any(totals):
        return f"<p class='empty'>{html.escape(title)}: nothing yet.</p>"
    top = max(totals) or 1
    width, height, left, base = 640, 230, 34, 190
    step = (width - left) / len(labels)
    bar = max(4.0, step * 0.7)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 20}' "
        f"role='img' aria-label='{html.escape(title, quote=True)}'>",
        f"<text x='0' y='14' class='t'>{html.escape(title)}</text>",
        f"<text x='0' y='{base - 150 + 4}' class='l'>{top}</text>",
        f"<line x1='{left - 4}' y1='{base}' x2='{width}' y2='{base}' stroke='#999'/>",
    ]
    for i, label in enumerate(labels):
        x = left + i * step
        y = float(base)
        for _name, colour, values in parts:
            h = 150 * values[i] / top
            if h:
                y -= h
                out.append(
                    f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar:.1f}' height='{h:.1f}' "
                    f"fill='{colour}'/>"
                )
        if i % max(1, len(labels) // 6) == 0:
            out.append(f"<text x='{x:.1f}' y='{base + 14}' class='l'>{html.escape(label)}</text>")
    lx = left
    for name, colour, _values in parts:
        out.append(
            f"<rect x='{lx}' y='{height - 2}' width='10' height='10' fill='{colour}'/>"
            f"<text x='{lx + 14}' y='{height + 7}' class='l'>{html.escape(name)}</text>"
        )
        lx += 16 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _table(head: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> str:
    esc = html.escape
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(safe_cell(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + body + "</table>"


def _delta_rows(s: Situation) -> list[tuple[object, ...]]:
    return [(d.seq, d.cut, d.written_at or "", d.added, d.retracted, d.status) for d in s.deltas]


def _exposure_people(s: Situation) -> list[tuple[object, ...]]:
    if s.exposure is None:
        return []
    per: dict[str, list[float]] = {}
    for d in s.exposure.days:
        row = per.setdefault(d.user, [0.0, 0, 0])
        row[0] += d.seconds
        row[1] += d.items
        row[2] += 1 if d.limit_passed else 0
    return [
        (name, format_exposure(v[0]), int(v[1]), int(v[2]))
        for name, v in sorted(per.items(), key=lambda kv: -kv[1][0])
    ]


def debrief_rows(s: Situation) -> list[tuple[str, str, str]]:
    """(section, key, value): everything the debrief says, for its CSV."""
    rows: list[tuple[str, str, str]] = [
        ("incident", "name", s.name),
        ("incident", "label", s.label),
        ("incident", "started_utc", safe_cell(s.started_at)),
        ("incident", "ended_utc", safe_cell(s.ended_at) or "still active"),
    ]
    rows += [
        ("timeline", what, f"{when} ({after})" if after else when)
        for what, when, after in milestones(s)
    ]
    rows += [("figures", k, v) for k, v in figure_rows(s)]
    rows += [
        ("variants by kind", kind, f"{v} variants, {n} items")
        for kind, (v, n) in s.variants_by_kind.items()
    ]
    rows += [
        (
            "deltas",
            f"delta {seq}",
            f"cut {safe_cell(cut)}, written {safe_cell(w) or '-'}: +{a} -{r} ({st})",
        )
        for seq, cut, w, a, r, st in _delta_rows(s)
    ]
    if s.exposure is not None:
        rows.append(
            (
                "exposure",
                "resolved with zero exposure",
                format_percent(s.exposure.zero_exposure_share),
            )
        )
        rows += [
            ("exposure", str(name), f"{t} unblurred, {n} items, {lim} day(s) past the limit")
            for name, t, n, lim in _exposure_people(s)
        ]
    for p in s.points:
        rows.append(
            (
                "over time",
                safe_cell(p.at),
                f"seen {p.items_seen}, variants {p.variants}, confirmed {p.confirmed}, "
                f"shared {p.hashes_shared}, human {p.human}, automatic "
                f"{p.by_cluster + p.at_ingest + p.by_rescan}, queue {p.queue}",
            )
        )
    return rows


def debrief_csv(s: Situation, out: TextIO) -> None:
    w = csv.writer(out)
    w.writerow(("section", "key", "value"))
    for row in debrief_rows(s):
        w.writerow([safe_cell(v) for v in row])


def debrief_html(s: Situation) -> str:
    """The debrief of a concluded (or still running) incident: one self-contained HTML file."""
    esc = html.escape
    title = f"Incident debrief: {s.name} ({s.label})"
    labels = [p.at.strftime("%H:%M") for p in s.points]
    cards = [(k, v) for k, v in figure_rows(s)][:9]
    body = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<div class='sub'>{esc(safe_cell(s.started_at))} to "
        f"{esc(safe_cell(s.ended_at) or 'now (still active)')} UTC"
        + (f"; worked by {esc(', '.join(s.people))}" if s.people else "")
        + "</div>",
        "<div class='cards'>",
        *(f"<div class='card'>{esc(k)}<b>{esc(v)}</b></div>" for k, v in cards),
        "</div>",
        "<h2>Timeline</h2>",
        _table(("milestone", "when", "after the one before"), milestones(s)),
        "<h2>Decisions over time</h2>",
        _svg_stacked(
            "Resolved per interval: by a person, and without one",
            labels,
            [
                ("human decisions", "#3d7bd9", [p.per_human for p in s.points]),
                ("automatic", "#2e9b6a", [p.per_auto for p in s.points]),
            ],
        ),
        _svg_stacked(
            "Queue depth at the end of each interval",
            labels,
            [("open items", "#b7791f", [p.queue for p in s.points])],
        ),
        "<h2>Variants by kind</h2>",
        _table(
            ("kind", "variants", "items"),
            [(k, v, n) for k, (v, n) in s.variants_by_kind.items()],
        ),
        "<h2>What was shared, and when</h2>",
        _table(
            ("delta", "cut (UTC)", "written (UTC)", "added", "retracted", "status"), _delta_rows(s)
        )
        if s.deltas
        else "<p class='empty'>No delta.</p>",
        "<h2>Exposure of the people who worked it</h2>",
        f"<p class='sub'>{esc(EXPOSURE_CARE)}</p>",
        _table(
            ("person", "unblurred", "items seen unblurred", "days past the limit"),
            _exposure_people(s),
        )
        + (
            f"<p>Resolved with zero exposure: "
            f"{esc(format_percent(s.exposure.zero_exposure_share))}</p>"
            if s.exposure is not None
            else ""
        ),
        "<h2>Figures over time</h2>",
        _table(
            (
                "end of interval (UTC)",
                "seen",
                "variants",
                "confirmed",
                "shared",
                "human",
                "automatic",
                "queue",
            ),
            [
                (
                    p.at,
                    p.items_seen,
                    p.variants,
                    p.confirmed,
                    p.hashes_shared,
                    p.human,
                    p.by_cluster + p.at_ingest + p.by_rescan,
                    p.queue,
                )
                for p in s.points
            ],
        ),
        "</body></html>",
    ]
    return "\n".join(body)
