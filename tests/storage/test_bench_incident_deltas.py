"""The surge drill runs the hash deltas on its simulated clock (app.tools.bench_incident's
DeltaStage, the application's DeltaService): every confirm's hashes go out in a delta within
one cadence (5 simulated minutes) of it, the deltas are on the record, numbered 1.. and written
to the folder with their manifests. A small drill (300 arrivals, SQLite); no timing asserted."""

from __future__ import annotations

import json
import random

from sqlalchemy import select

from app.core.exchange.deltas import manifest_name
from app.storage.models import Delta
from app.tools import bench_incident
from app.tools.bench_incident import DeltaStage


def test_the_surge_drill_reports_each_confirm_s_time_to_the_delta_that_carries_it():
    f = bench_incident.bench_surge(None, 300, hours=1.0, say=lambda _: None)
    assert f["confirms"] > 0 and f["delta_failures"] == []
    assert f["deltas"] >= 1
    assert f["confirms_carried"] == f["confirms"]
    assert 0.0 < f["to_delta_max_min"] <= 5.0  # the incident's cadence: 5 minutes
    assert f["delta_median_s"] is not None


def test_the_delta_stage_takes_a_delta_per_due_round_with_changes(tmp_path):
    ctx = bench_incident._context(f"sqlite:///{tmp_path / 'd.sqlite3'}", tmp_path)
    try:
        from app.core.model.decisions import DecisionRequest
        from app.core.model.domain import Role, SightingInfo, Verdict, utcnow

        lead = ctx.users.add("lead", "benchmark-password", Role.LEAD)
        mod = ctx.users.add("mod", "benchmark-password", Role.MODERATOR)
        incident = ctx.incidents.declare("t", "CIP-T", actor=lead, seed_hashes=[])
        stage = DeltaStage(ctx, lead, incident, tmp_path / "out")
        rng = random.Random(1)
        a = bench_incident._analysis(rng, bench_incident._rand(rng, 64), "0" * 16)
        ctx.recorder().record_many([(tmp_path / "a.jpg", a, SightingInfo(
            "upload", None, None, "t", None, utcnow()))])  # fmt: skip
        stage.until(299.0)
        assert stage.cut_at == {}  # no round due yet
        got = ctx.review.claim_next(mod.id)
        assert got is not None
        ctx.review.decide(DecisionRequest(got.id, mod.id, Verdict.CONFIRM, "glorification"))
        stage.until(900.0)  # three rounds due; only the first has anything to send
        assert stage.cut_at == {1: 300.0} and stage.failed == []
        manifest = json.loads((tmp_path / "out" / manifest_name(1)).read_text())
        assert manifest["label"] == "CIP-T"
        with ctx.db.session() as s:
            d = s.scalar(select(Delta))
            assert d.incident_id == incident.id and d.added >= 1 and d.written_at is not None
    finally:
        ctx.close()
