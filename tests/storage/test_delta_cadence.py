"""Issue 23, 3: who sends the deltas and when. `hashdesk deltas run` sends one every N minutes
while an incident is active (its formats, its label), nothing outside incidents unless deltas
are always on, and the last one still after an incident concluded with changes not yet sent; a
delivery that fails is shown by `hashdesk deltas status` and taken again by the next round
before any new number. A partner imports with `hashdesk lists import --incremental`."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from sqlalchemy import update

from app.cli import main
from app.core.exchange.deltas import DeltaCadence, manifest_name, read_manifest
from app.core.matching.hash_lists import LOCAL_LIST
from app.storage.incidents import IncidentService
from app.storage.models import Delta
from tests.storage.test_deltas import Team, active

PW = "correct horse battery"


def _age_last_delta(db, minutes: int) -> None:
    """The last delta's cut ``minutes`` earlier (time passing, without waiting for it)."""
    with db.session() as s:
        last = s.query(Delta).order_by(Delta.seq.desc()).first()
        s.execute(
            update(Delta)
            .where(Delta.seq == last.seq)
            .values(span_end=last.span_end - timedelta(minutes=minutes))
        )


def test_deltas_follow_the_incident_and_the_last_one_is_sent_after_it_concludes(
    db, store, tmp_path
):
    team = Team(db, store, tmp_path / "flagged", range(1, 6))
    out = tmp_path / "out"
    out.mkdir()
    cadence = DeltaCadence(folder=out)
    team.confirm(0)
    # No incident, deltas not always on: nothing leaves.
    assert team.deltas.run_round(cadence, actor=team.lead).seq is None
    incidents = IncidentService(db)
    incidents.declare(
        "glendale",
        "CIP-2026-07",
        actor=team.lead,
        delta_minutes=5,
        delta_formats=["tat", "pytx-csv"],
    )
    first = team.deltas.run_round(cadence, actor=team.lead)
    assert first.written and first.seq == 1 and "(incident glendale)" in first.note
    m = read_manifest(out / manifest_name(1))
    assert m.label == "CIP-2026-07"
    assert {f["format"] for f in m.files} == {"tat", "pytx-csv"}
    raw = json.loads((out / manifest_name(1)).read_text())
    assert raw["incident"] == "glendale"
    # Within the five minutes: nothing new is taken even with changes waiting.
    team.confirm(1)
    assert team.deltas.run_round(cadence, actor=team.lead).seq is None
    _age_last_delta(db, 5)
    second = team.deltas.run_round(cadence, actor=team.lead)
    assert second.written and second.seq == 2
    # Concluded with a confirm not yet sent: the last delta still goes, at once.
    team.confirm(2)
    incidents.conclude("glendale", actor=team.lead)
    last = team.deltas.run_round(cadence, actor=team.lead)
    assert last.written and last.seq == 3 and "concluded" in last.note
    assert read_manifest(out / manifest_name(3)).label == "CIP-2026-07"
    # After it, nothing (deltas are not always on) ...
    team.confirm(3)
    assert team.deltas.run_round(cadence, actor=team.lead).seq is None
    # ... unless they are (every five minutes, by default).
    _age_last_delta(db, 5)
    always = team.deltas.run_round(
        DeltaCadence(folder=out, always=True, formats=("pytx",)), actor=team.lead
    )
    assert always.written and always.seq == 4
    assert read_manifest(out / manifest_name(4)).label is None
    # Every confirm of the incident's items carries its label into the list (i23core); the
    # deltas carry every change of the list, in order.
    got = team.deltas.import_deltas(out, "partner", actor=team.admin)
    assert [n for n, _ in got.imported] == [1, 2, 3, 4]
    assert active(db, "partner") == active(db, LOCAL_LIST)


def test_the_commands_run_status_write_and_import_incrementally(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    from app.compose import open_context
    from app.core.settings.config import load_settings

    ctx = open_context(load_settings())
    try:
        from app.core.ingest.contentstore import ContentStore

        team = Team(ctx.db, ContentStore(tmp_path / "media"), tmp_path / "flagged", range(1, 4))
        team.confirm(0)
    finally:
        ctx.close()
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", PW)
    monkeypatch.setattr("sys.stdin", io.StringIO(PW))
    out = tmp_path / "share"

    def run(*argv):
        code = main(list(argv))
        got = capsys.readouterr()
        return code, got.out, got.err

    base = ("deltas", "run", "--once", "--always", "--as", "lead1")
    code, _, err = run(*base, "--folder", str(out))
    assert code == 1
    assert f"FAILED (retried): delta 1 not written: the delta folder {out} does not exist" in err
    code, text, _ = run("deltas", "status")
    assert code == 0 and text.startswith("DELTA 1 NOT DELIVERED after 1 attempt(s)")
    assert "the delta folder" in text.splitlines()[0]
    out.mkdir()
    code, text, _ = run(*base, "--folder", str(out))
    assert code == 0 and f"wrote delta 1 to {out} (retrying)" in text
    code, text, _ = run("deltas", "status")
    assert "NOT DELIVERED" not in text and "     1 written" in text
    again = tmp_path / "again"
    again.mkdir()
    assert run("deltas", "write", "1", "--folder", str(again), "--as", "lead1")[0] == 0
    assert (again / manifest_name(1)).read_bytes() == (out / manifest_name(1)).read_bytes()
    code, _, err = run("deltas", "run", "--once", "--always", "--folder", str(out), "--as", "mod1")
    assert code == 2 and "mod1 (moderator) may not export" in err
    code, _, err = run("deltas", "status", "--as", "mod1")
    assert code == 2 and "mod1 (moderator) may not view stats" in err
    imp = ("lists", "import", "--incremental", "--list", "team-a", "--as", "admin1")
    code, text, _ = run(*imp[:3], str(out), *imp[3:])
    assert code == 0 and text.splitlines()[0].startswith("delta 1: ")
    assert "team-a: imported up to delta 1" in text
    code, text, _ = run(*imp[:3], str(out / manifest_name(1)), *imp[3:])
    assert code == 0 and "already imported, nothing done: delta 1" in text
    raw = json.loads((out / manifest_name(1)).read_text())
    (out / manifest_name(3)).write_text(json.dumps(raw | {"sequence": 3, "previous": 2}))
    code, _, err = run(*imp[:3], str(out), *imp[3:])
    assert code == 2 and err == (
        "hashdesk: error: delta 3 refused: the last imported into team-a is delta 1, so delta 2 "
        "is missing (a gap): nothing imported from delta 3\n"
    )


def test_an_incident_concluded_while_its_delta_is_failing_still_sends_it_and_the_last(
    db, store, tmp_path
):
    team = Team(db, store, tmp_path / "flagged", range(1, 5))
    share = tmp_path / "share"
    cadence = DeltaCadence(folder=share)
    incidents = IncidentService(db)
    incidents.declare("i1", "CIP-1", actor=team.lead, delta_formats=["pytx-csv"])
    team.confirm(0)
    failed = team.deltas.run_round(cadence, actor=team.lead)
    assert failed.seq == 1 and not failed.written and "does not exist" in failed.error
    team.confirm(1)
    incidents.conclude("i1", actor=team.lead)
    # Still failing after the conclusion: the same delta, retried, nothing new numbered.
    again = team.deltas.run_round(cadence, actor=team.lead)
    assert again.seq == 1 and not again.written
    share.mkdir()
    first = team.deltas.run_round(cadence, actor=team.lead)
    assert first.written and first.seq == 1 and "(retrying)" in first.note
    # Then the last one, with what came after the cut, under the concluded incident's label.
    last = team.deltas.run_round(cadence, actor=team.lead)
    assert last.written and last.seq == 2 and "concluded" in last.note
    assert read_manifest(share / manifest_name(2)).label == "CIP-1"
    assert team.deltas.run_round(cadence, actor=team.lead).seq is None
    got = team.deltas.import_deltas(share, "partner", actor=team.admin)
    assert [n for n, _ in got.imported] == [1, 2]
    assert active(db, "partner") == active(db, LOCAL_LIST)
