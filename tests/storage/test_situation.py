"""Issue 23, 4 and 5: the situational view's figures and the debrief, read from a real record on
SQLite and PostgreSQL: an incident declared on a seed item and its cluster, a confirm resolving
the cluster, a copy auto-matched at upload, a moderator's reject, a delta sent, the exposure of
the person who decided; `hashdesk incident status` (figures, CSV, the update text) and
`hashdesk incident debrief` (HTML and CSV)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from app.core.exchange.deltas import DeltaCadence
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Verdict, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind
from app.core.model.situation import (
    DeltaFacts,
    ItemTimes,
    SituationEvents,
    figure_rows,
    situation,
    situation_csv,
    situation_text,
)
from app.core.reports import debrief_csv, debrief_html, to_text
from app.storage.exposure import ExposureService
from app.storage.incidents import IncidentService, tag_items
from app.storage.models import Item, Sighting
from app.storage.rescan import Rescanner
from app.storage.situation import SituationService
from tests.helpers import ingest, write_cluster, write_samples
from tests.storage.test_deltas import Team
from tests.storage.test_rescan import _variant


def _incident(db, store, tmp_path):
    """A team, a cluster of five variants, two unrelated items; the incident declared on the
    cluster's first item; its confirm, a copy matched at upload, a reject, a delta."""
    team = Team(db, store, tmp_path / "other", range(40, 42))
    cluster = write_cluster(tmp_path / "cluster", 7, size=5)
    ingest(db, store, cluster[:4])
    with db.session() as s:
        ids = {
            name: item_id
            for item_id, name in s.execute(
                select(Sighting.item_id, Sighting.original_name).order_by(Sighting.id)
            )
        }
    first = ids[cluster[0].name]
    incidents = IncidentService(db)
    inc = incidents.declare("christchurch", "CIP-2019-03", actor=team.lead, seed_items=[first])
    team.review.decide(
        DecisionRequest(first, team.mod.id, Verdict.CONFIRM, "attack_recording", "x")
    )
    ExposureService(db).record(
        ExposureEvent(team.mod.id, first, ExposureKind.REVEAL, utcnow(), 12.0)
    )
    # A copy uploaded after the confirm: matched at ingest, put under the incident.
    ingest(db, store, cluster[4:])
    with db.session() as s:
        copy = s.scalar(select(Sighting.item_id).where(Sighting.original_name == cluster[4].name))
        tag_items(s, inc.id, [copy])
        # One unrelated item a moderator rejects, under the incident too (a lead moved it).
        tag_items(s, inc.id, [team.items[0]])
    team.review.decide(DecisionRequest(team.items[0], team.mod.id, Verdict.REJECT, None, None))
    # An item under the incident escalated, its variant arriving meanwhile (waiting alone); the
    # lead confirms it and the re-scan resolves the variant.
    esc = write_samples(tmp_path / "esc", [23])[0]
    ingest(db, store, [esc])
    with db.session() as s:
        e_id = s.scalar(select(Sighting.item_id).where(Sighting.original_name == esc.name))
        tag_items(s, inc.id, [e_id])
    team.review.decide(DecisionRequest(e_id, team.mod.id, Verdict.ESCALATE, note="unsure"))
    ingest(db, store, [_variant(esc, tmp_path / "esc2.jpg")])
    rescanner = Rescanner(db, MatchPolicy(), actor=team.lead)
    done = team.review.decide(
        DecisionRequest(e_id, team.lead.id, Verdict.CONFIRM, "attack_recording")
    )
    assert rescanner.after_confirm(done.uuid).resolved == 1
    out = tmp_path / "deltas"
    out.mkdir()
    assert team.deltas.run_round(DeltaCadence(folder=out), actor=team.lead).written
    return team, inc, copy


def test_the_situation_counts_what_the_record_holds(db, store, tmp_path):
    team, inc, copy = _incident(db, store, tmp_path)
    with db.session() as s:
        under = s.scalars(select(Item.status).where(Item.incident_id == inc.id)).all()
        copy_status = s.get(Item, copy).status
    sit = SituationService(db).situation("christchurch", actor=team.lead)
    figures = dict(figure_rows(sit))
    # The cluster's five, the rejected one, the escalated one and its variant.
    assert len(under) == 8 and copy_status == "auto_matched"
    assert figures["distinct items seen"] == "8"
    assert figures["variants (clusters)"] == "3"
    assert figures["items confirmed"] == "7"
    assert figures["human decisions"] == "3"  # two confirms and the reject
    assert figures["resolved with a cluster confirm"] == "3"
    assert figures["copies resolved at ingest"] == "1"
    assert figures["copies resolved by re-scan"] == "1"
    assert figures["queue depth"] == "0"
    assert int(figures["hashes shared"]) > 0
    assert sit.first_sighting <= sit.first_confirm <= sit.first_delta
    assert sit.variants_by_kind == {"image": (3, 8)}
    assert sit.people == ["lead1", "mod1"]
    assert [d.user for d in sit.exposure.days] == ["mod1"]
    text = situation_text(sit)
    assert text.startswith("Situational update: christchurch (CIP-2019-03), active")
    assert "under label CIP-2019-03" in text and "first delta out" in text
    rows = list(csv.reader(io.StringIO(situation_csv(sit))))
    assert rows[0][:3] == ["at_utc", "items_seen", "variants"] and rows[12][1] == "8"
    # The debrief: timeline, figures, variants by kind, the deltas, the exposure.
    IncidentService(db).conclude("christchurch", actor=team.lead)
    done = SituationService(db).situation("christchurch", actor=team.lead)
    page = debrief_html(done)
    for part in ("Timeline", "Variants by kind", "What was shared", "mod1", "0:12", "<svg"):
        assert part in page
    debrief = list(csv.reader(io.StringIO(to_text(debrief_csv, done))))
    sections = {r[0] for r in debrief[1:]}
    assert {"incident", "timeline", "figures", "variants by kind", "deltas", "exposure"} <= sections
    assert ["figures", "distinct items seen", "8"] in debrief


def test_the_commands_status_and_debrief(tmp_path, monkeypatch, capsys, store):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    from app.cli import main
    from app.compose import open_context
    from app.core.settings.config import load_settings

    ctx = open_context(load_settings())
    try:
        _incident(ctx.db, store, tmp_path)
    finally:
        ctx.close()
    assert main(["incident", "status", "christchurch", "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "christchurch (CIP-2019-03): started" in out and "distinct items seen:" in out
    assert (tmp_path / "s.csv").read_text().startswith("at_utc,items_seen")
    assert main(["incident", "status", "christchurch", "--text"]) == 0
    assert capsys.readouterr().out.startswith("Situational update: christchurch")
    html_out, csv_out = tmp_path / "d.html", tmp_path / "d.csv"
    args = ["incident", "debrief", "christchurch", "--html", str(html_out), "--csv", str(csv_out)]
    assert main(args) == 0
    assert "still active" in capsys.readouterr().out
    assert html_out.read_text().startswith("<!DOCTYPE html>")
    assert main(["incident", "status", "nosuch"]) == 2
    assert "there is no incident 'nosuch'" in capsys.readouterr().err


def test_the_figures_over_time_from_plain_events():
    """Re-scan and ingest resolutions, the queue over time and the milestones, computed from
    times alone (what storage reads; the re-scan's decisions come from app.storage.rescan)."""
    t0 = utcnow().replace(microsecond=0)
    m = timedelta(minutes=1)
    ev = SituationEvents("x", "CIP-1", t0, t0 + 120 * m, t0 + 200 * m)
    ev.items = [
        ItemTimes(t0 + 5 * m, t0 + 40 * m, "video", 1),
        ItemTimes(t0 + 6 * m, t0 + 41 * m, "video", 1),
        ItemTimes(t0 + 50 * m, t0 + 50 * m, "image", 2),
        ItemTimes(t0 + 55 * m, None, "animated", -9),
    ]
    ev.confirmed = [t0 + 40 * m, t0 + 41 * m, t0 + 50 * m]
    ev.human = [t0 + 40 * m]
    ev.by_cluster = [t0 + 41 * m]
    ev.at_ingest = [t0 + 50 * m]
    ev.by_rescan = []
    ev.deltas = [DeltaFacts(1, t0 + 45 * m, t0 + 46 * m, 7, 0, "written")]
    sit = situation(ev, intervals=4)
    assert [p.items_seen for p in sit.points] == [2, 4, 4, 4]
    assert [p.queue for p in sit.points] == [2, 1, 1, 1]
    assert [p.hashes_shared for p in sit.points] == [0, 7, 7, 7]
    assert [(p.per_human, p.per_auto) for p in sit.points] == [(0, 0), (1, 2), (0, 0), (0, 0)]
    assert sit.variants_by_kind == {"image": (1, 1), "other": (1, 1), "video": (1, 2)}
    assert sit.automatic_share == 200 / 3
    assert (sit.first_sighting, sit.first_confirm, sit.first_delta) == (
        t0 + 5 * m,
        t0 + 40 * m,
        t0 + 46 * m,
    )
    assert sit.oldest_open == t0 + 55 * m
    assert dict(figure_rows(sit))["oldest open item"] == "1 h 05 min"
