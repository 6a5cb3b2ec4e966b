"""A confirmed video's dense frames (app.storage.dense): hashed after the confirm and added to
the local list under it, on SQLite, on PostgreSQL, and through the team server's own function
(hd_api_add_dense_frames): idempotent, audited and checked by `audit verify`, refused to an
account that may not review, picked up by the in-memory index of this and other workstations,
and found again after a crash (a confirm without them is still pending)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from app.core.ingest.contentstore import ContentStore
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy, indexable
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Algorithm, Role, Signal, Verdict
from app.core.model.roles import PermissionDenied
from app.core.video.dense import dense_frame_signals
from app.storage.audit import verify_chains
from app.storage.dense import DenseRefused, DenseRunner, add_dense_frames, pending_dense
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.models import HashListEntry, Item
from app.storage.rescan import Rescanner
from app.storage.review import ReviewService
from app.storage.verification import verify_hash_list
from tests.helpers import ingest, make_user

CORPUS = Path(__file__).resolve().parents[2] / "../shared/corpus/videos"
VIDEO = CORPUS / "doorknob-hd-no-bar.mp4"
BARS = CORPUS / "chair-19-sd-bar.mp4"  # letterboxed: trimmed frames too


def _indexed_frames(db, item_id: int) -> int:
    """The item's active whole-frame rows that may match (the quality floor), from the
    record: what the video rule's frame count of the ref must be."""
    with db.session() as s:
        rows = s.execute(
            select(HashListEntry.value, HashListEntry.quality, HashListEntry.variant).where(
                HashListEntry.item_id == item_id,
                HashListEntry.algorithm == Algorithm.PDQ_FRAME.value,
                # whole pictures: as decoded, trimmed, and the stored centres (zoom:*)
                or_(
                    HashListEntry.variant.in_(["", "trimmed"]), HashListEntry.variant.like("zoom:%")
                ),
                HashListEntry.retracted_at.is_(None),
            )
        ).all()
    policy = MatchPolicy()
    return sum(indexable(Signal(Algorithm.PDQ_FRAME, v, q, 0.0, var), policy) for v, q, var in rows)


def _rows(db, item_id: int, *, dense: bool | None = None, active: bool = True) -> int:
    with db.session() as s:
        q = (
            select(func.count())
            .select_from(HashListEntry)
            .where(
                HashListEntry.item_id == item_id,
                HashListEntry.algorithm == Algorithm.PDQ_FRAME.value,
            )
        )
        if active:
            q = q.where(HashListEntry.retracted_at.is_(None))
        if dense is not None:
            q = q.where(
                HashListEntry.signal_id.is_(None) if dense else HashListEntry.signal_id.is_not(None)
            )
        return int(s.scalar(q) or 0)


def _confirm_video(db, store, user, video: Path = VIDEO) -> tuple[int, str]:
    ingest(db, store, [video])
    review = ReviewService(db, second_review_share=0.0)
    item = review.claim_next(user.id)
    out = review.decide(DecisionRequest(item.id, user.id, Verdict.CONFIRM, "glorification"))
    assert out.hashes_added > 0
    return item.id, out.uuid


def test_a_confirmed_video_gets_its_dense_frames_once(db, store):
    mo = make_user(db, "mo")
    watcher = HashListWatcher(db, HashIndex(), MatchPolicy())
    item_id, uuid = _confirm_video(db, store, mo)
    watcher.load_all()
    sparse = _rows(db, item_id)
    before = watcher.index.frame_count(item_id)
    assert before == _indexed_frames(db, item_id) > 0
    # Crash before the frames landed: the confirm is still pending.
    assert [t.decision_uuid for t in pending_dense(db)] == [uuid]

    rescanner = Rescanner(db, MatchPolicy(), actor=mo)
    runner = DenseRunner(db, store.path_for, mo.id, after=rescanner.after_entries)
    (target,) = runner.targets(uuid)
    result = runner.run(target)
    assert result.added > sparse  # every frame that moved, not one a second
    assert _rows(db, item_id, dense=True) == result.added
    assert _rows(db, item_id, dense=False) == sparse  # the sampled rows stay
    assert pending_dense(db) == []
    # The index of this (and any other) workstation takes them in: the video rule's frame
    # count of the ref is every frame row it holds.
    watcher.refresh(force=True)
    assert watcher.index.frame_count(item_id) == _indexed_frames(db, item_id) > before
    # The sampled frames are not added twice.
    with db.session() as s:
        keys = s.execute(
            select(HashListEntry.variant, HashListEntry.value, HashListEntry.frame_ts).where(
                HashListEntry.item_id == item_id
            )
        ).all()
    assert len(keys) == len(set(keys))

    # A retry (the worker died after the write, before it knew) adds nothing.
    again = add_dense_frames(db, uuid, dense_frame_signals(VIDEO), mo.id)
    assert again.duplicate and again.added == 0
    assert runner.targets(uuid) == []
    assert _rows(db, item_id, dense=True) == result.added
    assert verify_hash_list(db) == []
    assert all(r.ok for r in verify_chains(db))

    # A dense row altered by hand (the schema owner, a restore) is named by `audit verify`.
    with db.session() as s:
        victim = s.get(HashListEntry, result.entry_ids[len(result.entry_ids) // 2])
        value = victim.value
        victim.value = ("f" if value[0] != "f" else "0") + value[1:]
    problems = [str(p) for p in verify_hash_list(db)]
    assert len(problems) == 1 and "dense frames of decision" in problems[0]
    with db.session() as s:
        s.get(HashListEntry, victim.id).value = value
    assert verify_hash_list(db) == []

    # An undo takes them back with the confirm's own rows.
    ReviewService(db, second_review_share=0.0).undo_last(mo.id)
    assert _rows(db, item_id) == 0
    assert verify_hash_list(db) == []


def test_dense_frames_need_the_standing_confirm_and_the_right_to_review(db, store):
    mo = make_user(db, "mo")
    worker = make_user(db, "w", Role.WORKER)
    item_id, uuid = _confirm_video(db, store, mo)
    frames = dense_frame_signals(VIDEO)
    with pytest.raises(PermissionDenied):
        add_dense_frames(db, uuid, frames, worker.id)
    with pytest.raises(DenseRefused):  # not a video frame's hash
        add_dense_frames(db, uuid, [frames[0].__class__(Algorithm.PDQ, "0" * 64, 50, 0.0)], mo.id)
    ReviewService(db, second_review_share=0.0).undo_last(mo.id)
    with pytest.raises(DenseRefused):  # undone: no longer the standing confirm
        add_dense_frames(db, uuid, frames, mo.id)
    assert _rows(db, item_id, dense=True, active=False) == 0
    assert pending_dense(db) == []  # its rows are retracted: nothing to add to


def test_the_team_server_adds_them_itself(team_server, tmp_path):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    team_server.add("w", Role.WORKER, actor=root, via=rootdb)
    team_server.set_second_review_share(0.0)
    store = ContentStore(tmp_path / "media")
    modb = team_server.connect("mo")
    ingest(rootdb, store, [BARS])
    review = ReviewService(modb)
    item = review.claim_next(mo.id)
    out = review.decide(DecisionRequest(item.id, mo.id, Verdict.CONFIRM, "glorification"))
    other = HashListWatcher(team_server.connect("root"), HashIndex(), MatchPolicy())
    other.load_all()  # another workstation's index, loaded before the frames land
    before = other.index.frame_count(item.id)
    sparse = _rows(team_server.owner, item.id)
    frames = dense_frame_signals(BARS)

    with pytest.raises(PermissionDenied):
        add_dense_frames(team_server.connect("w"), out.uuid, frames, 0)
    assert [t.decision_uuid for t in pending_dense(modb)] == [out.uuid]
    got = DenseRunner(modb, store.path_for, mo.id).run(pending_dense(modb)[0])
    assert got.added > sparse and len(got.entry_ids) == got.added
    again = add_dense_frames(modb, out.uuid, frames, mo.id)
    assert again.duplicate and again.added == 0
    with team_server.owner.session() as s:
        rows = s.scalars(select(HashListEntry).where(HashListEntry.id.in_(got.entry_ids))).all()
        assert {r.added_by for r in rows} == {mo.id}  # the server's who, not the client's
        assert {r.decision_uuid for r in rows} == {out.uuid}
        assert {r.variant for r in rows} == {"", "trimmed"}  # the bars trimmed, too
        assert s.get(Item, item.id).kind == "video"
    assert _rows(team_server.owner, item.id, dense=True) == got.added
    other.refresh(force=True)
    assert other.index.frame_count(item.id) == _indexed_frames(team_server.owner, item.id)
    assert other.index.frame_count(item.id) > before
    assert verify_hash_list(team_server.owner) == []
    assert all(r.ok for r in verify_chains(team_server.owner))
    # Undone: its rows go, dense ones with them; a retry changes nothing.
    ReviewService(modb).undo_last(mo.id)
    assert _rows(team_server.owner, item.id) == 0
    assert add_dense_frames(modb, out.uuid, frames, mo.id).duplicate
    assert _rows(team_server.owner, item.id) == 0
    # A decision that is not a standing confirm of a video gets none.
    ingest(rootdb, store, [VIDEO.with_name("pattern-hd-no-bar.mp4")])
    second = review.claim_next(mo.id)
    rejected = review.decide(DecisionRequest(second.id, mo.id, Verdict.REJECT))
    with pytest.raises(DenseRefused):
        add_dense_frames(modb, rejected.uuid, frames, mo.id)
    assert verify_hash_list(team_server.owner) == []


def test_a_crash_before_the_frames_landed_is_made_up_by_dense_run(
    tmp_path, monkeypatch, capsys, store
):
    """The workstation stopped after the confirm landed, before its dense frames did: `hashdesk
    dense status` counts the confirm, `dense run` adds them, a second run adds nothing."""
    import io

    from app.cli import main
    from app.storage.db import open_database

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("HASHDESK_DATABASE_URL", url)
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    db = open_database(url)
    mo = make_user(db, "mo")
    item_id, _uuid = _confirm_video(db, store, mo)
    db.dispose()
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", "correct horse battery")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def run(*argv: str) -> str:
        assert main(list(argv)) == 0
        return capsys.readouterr().out

    assert run("dense", "status").startswith("1 confirmed video(s) without dense frames")
    assert "dense frames: 1 confirmed video(s)" in run("dense", "run", "--as", "mo")
    assert run("dense", "status").startswith("0 confirmed video(s)")
    assert run("dense", "run", "--as", "mo").strip() == (
        "dense frames: 0 confirmed video(s), 0 rows added"
    )
    db = open_database(url)
    assert _rows(db, item_id, dense=True) > 0
    assert verify_hash_list(db) == []
    db.dispose()


def test_a_waiting_clip_the_sampled_references_miss_is_found_by_the_dense_ones(db, store, tmp_path):
    """A clip of the video cut half a second off its samples waits in the queue. The confirm's
    re-scan (the sampled frames) does not find it; the re-scan on the dense frames does."""
    from tests.unit.test_video_dense import make_clip

    original = CORPUS / "chair-orig-22-sd-bar.mp4"
    mo = make_user(db, "mo")
    item_id, uuid = _confirm_video(db, store, mo, original)
    clip = make_clip(original, tmp_path / "clip.mp4", 5.5, 15.5)
    ingest(db, store, [clip])
    with db.session() as s:
        clip_id = s.scalar(select(Item.id).where(Item.id != item_id))
    rescanner = Rescanner(db, MatchPolicy(), actor=mo)
    rescanner.after_confirm(uuid)
    with db.session() as s:
        assert s.get(Item, clip_id).known_entry_id is None  # missed by the sampled frames
    (target,) = DenseRunner(db, store.path_for, mo.id).targets(uuid)
    result = DenseRunner(db, store.path_for, mo.id, after=rescanner.after_entries).run(target)
    assert result.added > 0
    with db.session() as s:
        found = s.get(Item, clip_id)
        assert found.known_entry_id is not None or found.status == "auto_matched"


def test_a_video_with_more_frames_than_one_write_takes_is_thinned_evenly(db, store, monkeypatch):
    import app.storage.dense as dense

    mo = make_user(db, "mo")
    _item_id, uuid = _confirm_video(db, store, mo)
    monkeypatch.setattr(dense, "MAX_DENSE_FRAMES", 25)
    runner = DenseRunner(db, store.path_for, mo.id)
    every = dense_frame_signals(VIDEO)
    assert len(every) > 25
    (target,) = runner.targets(uuid)
    result = runner.run(target)
    assert 0 < result.added <= 25
    with db.session() as s:
        times = sorted(
            s.scalars(select(HashListEntry.frame_ts).where(HashListEntry.id.in_(result.entry_ids)))
        )
    # spread over the whole video, not its first second
    assert times[-1] - times[0] > 0.5 * (every[-1].frame_ts - every[0].frame_ts)
    assert verify_hash_list(db) == []
