"""Hash lists that travel, on SQLite and PostgreSQL: round trips through python-threatexchange
with the corpus's bridge edits, idempotent re-import, deletions retracting, per-list policy and
threshold, the allow list, disabling an entry, feedback and the flood guard."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout
from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from threatexchange.cli.dataset_cmd import DatasetCommand
from threatexchange.exchanges.impl.file_api import (
    FileCollaborationConfig,
    LocalFileSignalExchangeAPI,
)
from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2
from threatexchange.signal_type.pdq.signal import PdqSignal

from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import EntryFilter, FeedbackVerdict, ListPolicy
from app.core.matching.match_rules import MatchPolicy
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import DecisionMethod, ItemStatus, Role, Verdict
from app.core.model.roles import PermissionDenied
from app.storage.audit import AuditKind
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.hash_lists import HashListError, HashListService
from app.storage.list_import import ListSettings
from app.storage.models import AuditEvent, Decision, HashListEntry, HashListFeedback
from app.storage.review import ReviewService
from tests.helpers import make_user
from tests.storage.test_known_content import confirm, item_by_name, record

pytestmark = pytest.mark.corpus


def reference_pdq(corpus) -> dict[str, str]:
    with (corpus / "pdq-reference.csv").open() as f:
        return {r["file"]: r["pdq_hex"] for r in csv.DictReader(f)}


def bridge(corpus):
    imgs = corpus / "pdq-images"
    return imgs / "bridge-mods__aaa-orig.jpg", sorted(imgs.glob("bridge-mods__*"))[1:]


def pytx_file(tmp_path, name: str, hashes: list[str]):
    """A local list file as python-threatexchange itself prints it (`dataset -P`)."""
    cmd = SimpleNamespace(only_signals=(), print_signals_only=True, only_collabs=set())
    buf = io.StringIO()
    with redirect_stdout(buf):
        for v in hashes:
            DatasetCommand._print_stdout(cmd, "partner", PdqSignal, v, None)
    path = tmp_path / name
    path.write_text(buf.getvalue())
    return path


@pytest.fixture
def admin(db):
    return make_user(db, "admin1", Role.ADMIN)


def test_our_export_is_read_by_pytx_and_its_pdq_matcher_finds_the_bridge_edits(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    record(db, store, [orig])
    confirm(db, orig.name, "attack_recording")
    out = tmp_path / "ours.txt"
    summary = HashListService(db).export_file(out, "pytx", actor=admin)
    assert summary.entries >= 1
    api = LocalFileSignalExchangeAPI(
        FileCollaborationConfig(name="ours", api="local_file", enabled=True, filename=str(out))
    )
    (delta,) = list(api.fetch_iter([PdqSignal], None))
    pdqs = [sig for (stype, sig) in delta.updates if stype == PdqSignal.get_name()]
    assert pdqs, "python-threatexchange found no PDQ in our export"
    for sig in pdqs:
        PdqSignal.validate_signal_str(sig)
    index = PDQIndex2(entries=[(h, h) for h in pdqs])
    ref = reference_pdq(corpus)
    missed = [p.name for p in edits if not index.query(ref[p.name])]
    assert missed == []
    unrelated = [f for f in ref if f.startswith("labelme-subset__")]
    assert all(not index.query(ref[f]) for f in unrelated)
    # The CSV form carries our category as a tag; the export is an audited event.
    csv_out = tmp_path / "ours.csv"
    HashListService(db).export_file(csv_out, "pytx-csv", actor=admin)
    rows = list(csv.DictReader(csv_out.open()))
    assert all("attack_recording" in r["tags"].split() for r in rows)
    with db.session() as s:
        n = s.scalar(select(func.count()).where(AuditEvent.kind == AuditKind.EXPORT.value))
    assert n == 2


def test_a_pytx_file_imported_makes_the_bridge_edits_known_matches_naming_the_list(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    path = pytx_file(tmp_path, "partner.txt", [ref[orig.name]])
    svc = HashListService(db)
    summary = svc.import_file(path, "partner-pytx", actor=admin)
    assert (summary.fmt, summary.added, summary.problems) == ("pytx", 1, [])
    outcome = record(db, store, edits)
    assert set(outcome.values()) == {"new"}  # a partner's list queues by default
    for p in edits:
        item = item_by_name(db, p.name)
        assert item.status == ItemStatus.QUEUED.value
        assert item.match_note.startswith("known match: matches hash-list entry #")
        assert "(list partner-pytx)" in item.match_note and "distance" in item.match_note
    # With the list's policy at "resolve", the next copy is resolved without a human, the
    # decision naming the list and the distance.
    svc.set_rule("partner-pytx", actor=admin, policy=ListPolicy.RESOLVE)
    orig_outcome = record(db, store, [orig])
    assert orig_outcome[orig.name] == "auto_matched"
    with db.session() as s:
        d = s.scalar(select(Decision).where(Decision.item_id == item_by_name(db, orig.name).id))
    assert d.method == DecisionMethod.AUTO_MATCH.value and "list partner-pytx" in d.note
    assert d.match_distance <= 31 and f"distance {d.match_distance}" in d.note


def test_reimport_is_idempotent_and_deletions_retract_with_the_import_as_reason(
    db, tmp_path, admin
):
    records = [
        {"hash_digest": f"{i:064x}", "algorithm": "PDQ", "ideology": "islamist",
         "file_type": "jpg", "deleted": False, "updated_on": 1704085200.0 + i,
         "created_on": "2024-01-01T00:00:00Z", "id": i}
        for i in range(1, 6)
    ]  # fmt: skip
    path = tmp_path / "tat.json"
    path.write_text(json.dumps({"results": records}))
    svc = HashListService(db)
    first = svc.import_file(path, "tat", actor=admin)
    assert (first.added, first.retracted) == (5, 0)

    def snapshot():
        with db.session() as s:
            return [
                (e.id, e.value, e.labels, e.meta, e.last_seen, e.retracted_at)
                for e in s.scalars(select(HashListEntry).order_by(HashListEntry.id))
            ]

    before = snapshot()
    again = svc.import_file(path, "tat", actor=admin)
    assert (again.added, again.updated, again.unchanged, again.retracted) == (0, 0, 5, 0)
    assert snapshot() == before

    records[1]["deleted"] = True  # marked deleted in the source
    del records[4]  # gone from a newer full export
    records[0]["ideology"] = "far-right"  # relabelled
    path.write_text(json.dumps({"results": records}))
    third = svc.import_file(path, "tat", actor=admin)
    assert (third.added, third.updated, third.retracted) == (0, 1, 2)
    with db.session() as s:
        gone = {
            e.external_id: e
            for e in s.scalars(select(HashListEntry).where(HashListEntry.retracted_at.is_not(None)))
        }
        labels = s.scalar(select(HashListEntry.labels).where(HashListEntry.external_id == "1"))
    assert set(gone) == {"2", "5"}
    assert all(e.retraction_decision_uuid == third.import_id for e in gone.values())
    assert "marked deleted in import" in gone["2"].retraction_reason
    assert "gone from the list in import" in gone["5"].retraction_reason
    assert labels == "far-right"
    # An incremental file (changes only) retracts nothing it does not mention.
    path.write_text(json.dumps({"results": records[:1]}))
    assert svc.import_file(path, "tat", actor=admin, complete=False).retracted == 0


def test_bad_lines_are_reported_and_the_good_ones_land(db, tmp_path, admin):
    path = tmp_path / "list.txt"
    good = [f"{i:064x}" for i in range(1, 4)]
    path.write_text(
        f"pdq {good[0]}\npdq nothex\npdq {good[1]}\nsomething odd here\npdq {good[2]}\n"
    )
    summary = HashListService(db).import_file(path, "p", actor=admin)
    assert [n for n, _ in summary.problems] == [2, 4]
    assert summary.added == 3
    with db.session() as s:
        assert sorted(s.scalars(select(HashListEntry.value))) == good


def test_importing_needs_the_import_permission(db, tmp_path):
    lead = make_user(db, "lead1", Role.LEAD)
    path = tmp_path / "list.txt"
    path.write_text(f"pdq {'a' * 64}\n")
    with pytest.raises(PermissionDenied):
        HashListService(db).import_file(path, "p", actor=lead)
    with pytest.raises(HashListError, match="local list holds our own"):
        HashListService(db).import_file(path, "local", actor=make_user(db, "a", Role.ADMIN))


def test_a_list_threshold_and_off_policy_apply_to_its_entries_only(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    far = max(edits, key=lambda p: (int(ref[p.name], 16) ^ int(ref[orig.name], 16)).bit_count())
    path = pytx_file(tmp_path, "strict.txt", [ref[orig.name]])
    svc = HashListService(db)
    svc.import_file(path, "strict", actor=admin, settings=ListSettings(pdq_threshold=0))
    assert record(db, store, [far])[far.name] == "new"
    assert item_by_name(db, far.name).match_note is None  # beyond the list's own threshold
    svc.set_rule("strict", actor=admin, pdq_threshold=31, policy=ListPolicy.OFF)
    near = next(p for p in edits if p != far)
    record(db, store, [near])
    assert item_by_name(db, near.name).match_note is None  # the list is off
    svc.set_rule("strict", actor=admin, policy=ListPolicy.QUEUE)
    other = next(p for p in edits if p not in (far, near))
    record(db, store, [other])
    assert "(list strict)" in item_by_name(db, other.name).match_note


def test_an_allow_list_match_keeps_known_content_for_a_human(db, store, corpus, tmp_path, admin):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    record(db, store, [orig])
    confirm(db, orig.name)  # our own list resolves without a human by default
    assert record(db, store, edits[:1])[edits[0].name] == "auto_matched"
    path = pytx_file(tmp_path, "news.txt", [ref[orig.name]])
    HashListService(db).import_file(
        path, "news-footage", actor=admin, settings=ListSettings(allow=True)
    )
    outcome = record(db, store, edits[1:3])
    assert set(outcome.values()) == {"new"}
    note = item_by_name(db, edits[1].name).match_note
    assert note.startswith("known match: matches hash-list entry #")
    assert "allow list news-footage matches" in note and "not resolved automatically" in note


def test_a_disabled_entry_stops_matching_everywhere_and_enabling_brings_it_back(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    path = pytx_file(tmp_path, "p.txt", [ref[orig.name]])
    svc = HashListService(db)
    svc.import_file(path, "partner", actor=admin)
    other = HashListWatcher(db, HashIndex(), MatchPolicy())  # another workstation
    other.load_all()
    with db.session() as s:
        entry_id = s.scalar(select(HashListEntry.id))
    assert entry_id in other.index
    lead = make_user(db, "lead1", Role.LEAD)
    with pytest.raises(HashListError, match="needs a reason"):
        svc.set_enabled([entry_id], False, " ", actor=lead)
    assert svc.set_enabled([entry_id], False, "matches a news photo", actor=lead) == 1
    other.refresh()
    assert entry_id not in other.index
    record(db, store, edits[:1])
    assert item_by_name(db, edits[0].name).match_note is None
    page = svc.entries_page(EntryFilter(list_name="partner"), actor=lead)
    assert [(r.state, r.reason) for r in page.rows] == [("disabled", "matches a news photo")]
    assert svc.set_enabled([entry_id], True, "checked again", actor=lead) == 1
    other.refresh()
    assert entry_id in other.index
    record(db, store, edits[1:2])
    assert "(list partner)" in item_by_name(db, edits[1].name).match_note
    with db.session() as s:
        kinds = list(
            s.scalars(
                select(AuditEvent.kind)
                .where(AuditEvent.subject == f"entry:{entry_id}")
                .order_by(AuditEvent.id)
            )
        )
    assert kinds == [AuditKind.ENTRY_DISABLED.value, AuditKind.ENTRY_ENABLED.value]


def test_feedback_is_recorded_from_review_decisions_and_exported(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    path = pytx_file(tmp_path, "p.txt", [ref[orig.name]])
    svc = HashListService(db)
    svc.import_file(path, "partner", actor=admin)
    record(db, store, edits[:2])
    review = ReviewService(db)
    mod = make_user(db, "mod1")
    a, b = (item_by_name(db, p.name) for p in edits[:2])
    review.decide(DecisionRequest(a.id, mod.id, Verdict.CONFIRM, "attack_recording"))
    review.decide(DecisionRequest(b.id, mod.id, Verdict.REJECT, None, "news report"))
    with db.session() as s:
        entry_id = s.scalar(select(HashListEntry.id).where(HashListEntry.list_name == "partner"))
    svc.feedback(entry_id, FeedbackVerdict.AGREE, actor=mod)
    with db.session() as s:
        rows = s.execute(
            select(HashListFeedback.verdict, HashListFeedback.item_id).order_by(HashListFeedback.id)
        ).all()
    assert rows == [("agree", a.id), ("disagree", b.id), ("agree", None)]
    out = tmp_path / "feedback.csv"
    assert svc.export_feedback(out, "partner", actor=admin) == 1
    (row,) = list(csv.DictReader(out.open()))
    assert (row["signal_type"], row["signal_str"]) == ("pdq", ref[orig.name])
    assert (row["agree"], row["disagree"]) == ("2", "1")
    f = EntryFilter(list_name="partner", hash_prefix=ref[orig.name][:8].upper())
    page = svc.entries_page(f, actor=admin)
    assert [(r.agree, r.disagree) for r in page.rows] == [(2, 1)]


def test_the_flood_guard_switches_a_busy_entry_to_queue_and_tells_the_leads(
    db, store, corpus, tmp_path, admin
):
    orig, edits = bridge(corpus)
    ref = reference_pdq(corpus)
    path = pytx_file(tmp_path, "p.txt", [ref[orig.name]])
    HashListService(db).import_file(
        path, "partner", actor=admin, settings=ListSettings(policy=ListPolicy.RESOLVE)
    )
    policy = replace(MatchPolicy(), flood_per_hour=3)
    outcome = record(db, store, edits[:6], policy=policy)
    got = [outcome[p.name] for p in edits[:6]]
    assert got == ["auto_matched"] * 3 + ["new"] * 3
    note = item_by_name(db, edits[3].name).match_note
    assert note.startswith("known match:") and "flood" not in note  # switched by this one
    assert "flood guard" in item_by_name(db, edits[4].name).match_note
    with db.session() as s:
        entry = s.scalar(select(HashListEntry).where(HashListEntry.list_name == "partner"))
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.kind == AuditKind.FLOOD_GUARD.value)
        ).all()
    assert entry.flood_guarded_at is not None
    assert len(events) == 1 and json.loads(events[0].detail)["list"] == "partner"
    (info,) = [li for li in HashListService(db).lists(actor=admin) if li.name == "partner"]
    assert info.flood_guarded == 1 and info.active == 1


def test_a_vpdq_reference_frame_list_matches_its_edits_by_the_video_rule(db, store, corpus, admin):
    frames = corpus / "vpdq-hashes" / "chair-orig-22-sd-bar.txt"
    summary = HashListService(db).import_file(
        frames, "partner-video", actor=admin, settings=ListSettings(policy=ListPolicy.RESOLVE)
    )
    assert summary.fmt == "vpdq" and summary.problems == [] and summary.added > 10
    videos = corpus / "videos"
    grey, doorknob = videos / "chair-22-sd-grey-bar.mp4", videos / "doorknob-hd-no-bar.mp4"
    outcome = record(db, store, [grey, doorknob])
    assert outcome == {grey.name: "auto_matched", doorknob.name: "new"}
    with db.session() as s:
        d = s.scalar(select(Decision).where(Decision.item_id == item_by_name(db, grey.name).id))
    assert "(list partner-video)" in d.note and "of frames within distance" in d.note
    assert d.matched_entry_id is not None


def test_the_lists_commands_import_show_and_export(tmp_path, monkeypatch, capsys):
    import io as _io

    from app.cli import main

    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    pw = "correct horse battery"
    monkeypatch.setattr("sys.stdin", _io.StringIO(pw))
    assert main(["users", "add", "root", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", pw)
    src = tmp_path / "list.csv"
    src.write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{'ab' * 32},gifct,POSITIVE_CLASS,attack_recording\n"
        "pdq,short,gifct,POSITIVE_CLASS,\n"
    )
    capsys.readouterr()
    assert main(["lists", "import", str(src), "--list", "gifct", "--policy", "resolve"]) == 2
    assert "needs an admin: give --as" in capsys.readouterr().err
    argv = ["lists", "import", str(src), "--list", "gifct", "--policy", "resolve", "--as", "root"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "into gifct (pytx-csv): 1 added" in out and "line 3: PDQ hash 'short'" in out
    assert main(["lists"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert any(line.split()[:4] == ["gifct", "resolve", "-", "1"] for line in shown)
    dest = tmp_path / "out.txt"
    argv = ["lists", "export", str(dest), "--format", "pytx", "--list", "gifct", "--as", "root"]
    assert main([*argv, "--since", "yesterday"]) == 2
    assert "--since 'yesterday' is not a date" in capsys.readouterr().err
    assert main([*argv, "--since", "2020-01-01"]) == 0
    assert dest.read_text() == f"pdq {'ab' * 32}\n"
