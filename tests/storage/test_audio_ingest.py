"""The sound at ingest, through the real path (analysis, recorder, hash list, watcher) on SQLite,
plain PostgreSQL and a team server: a confirmed sound is found again in a sped-up, re-encoded
copy and in a video with other pictures that keeps the sound; only the sound as it is goes in
the hash list (never the speed variants); unrelated sound stays new; bad sound is a visible
item, never a crash. Real files, written with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.core.audio.decode import decode_sound
from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import analyze_file, jobs_from_paths
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Algorithm, ItemStatus, MediaKind, Role, Verdict
from app.storage.ingest_recorder import ingest_jobs
from app.storage.models import HashListEntry, Item
from app.storage.review import ReviewService
from app.storage.users import UserService
from app.tools import sound_writer as sw
from tests.helpers import recorder as make_recorder

RATE = 22050


def _frames(seed: int, n: int = 24) -> list[np.ndarray]:
    r = np.random.default_rng(seed)
    base = r.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((16, 16, 1), np.uint8))
    return [np.roll(big, 4 * i, axis=1) for i in range(n)]


def _files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    src = sw.music(20, 7, RATE)
    files = {
        "source": folder / "source.m4a",
        "faster": folder / "faster.mp3",
        "screen": folder / "screen.mp4",
        "other": folder / "other.ogg",
    }
    sw.write_sound(files["source"], src, RATE)
    sw.write_sound(files["faster"], sw.speed(sw.add_noise(src, 15), 1.25), RATE, bit_rate=48000)
    sw.write_video_with_sound(files["screen"], _frames(3), 12, sw.room(src, RATE), RATE)
    sw.write_sound(files["other"], sw.music(20, 8, RATE), RATE, bit_rate=32000)
    return files


def _confirm(db, mod, sha: str) -> int:
    review = ReviewService(db, second_review_share=0.0)
    with db.session() as s:
        target = s.scalar(select(Item.id).where(Item.sha256 == sha))
    held = []
    while (got := review.claim_next(mod.id, exclude=held)) is not None and got.id != target:
        held.append(got.id)
    assert got is not None
    review.release(mod.id, held)
    review.decide(DecisionRequest(got.id, mod.id, Verdict.CONFIRM, "glorification"))
    return got.id


def _scenario(admin_db, mod_db, admin, mod, tmp: Path) -> dict[str, Item]:
    files = _files(tmp / "in")
    store = ContentStore(tmp / "media")
    rec = make_recorder(admin_db, store, actor=admin)
    assert ingest_jobs(rec, jobs_from_paths([files["source"]]), workers=1).new == 1
    _confirm(mod_db, mod, analyze_file(files["source"]).sha256)
    rest = [files["faster"], files["screen"], files["other"]]
    ingest_jobs(make_recorder(admin_db, store, actor=admin), jobs_from_paths(rest), workers=1)
    with admin_db.session() as s:
        items = {
            p.stem: s.scalar(select(Item).where(Item.sha256 == analyze_file(p).sha256))
            for p in files.values()
        }
        s.expunge_all()
    return items


def _check(db, items: dict[str, Item]) -> None:
    assert items["source"].kind is MediaKind.AUDIO
    assert items["source"].status is ItemStatus.DECIDED
    assert items["faster"].status is ItemStatus.AUTO_MATCHED, items["faster"].match_note
    assert "audio (speed:" in (items["faster"].match_note or "")
    assert items["screen"].kind is MediaKind.VIDEO
    assert items["screen"].status is ItemStatus.AUTO_MATCHED, items["screen"].match_note
    assert items["other"].status is ItemStatus.QUEUED
    with db.session() as s:
        rows = s.execute(
            select(HashListEntry.algorithm, HashListEntry.variant).where(
                HashListEntry.item_id == items["source"].id
            )
        ).all()
    sound = [v for a, v in rows if a == Algorithm.AUDIO.value]
    assert len(sound) > 50 and set(sound) == {""}  # the sound as it is, no speed variant


def test_a_confirmed_sound_is_found_sped_up_and_in_a_screen_recording(db, tmp_path):
    users = UserService(db)
    admin = users.create_first_admin("root", "correct horse battery")
    mod = users.add("mo", "correct horse battery", Role.MODERATOR, actor=admin)
    _check(db, _scenario(db, db, admin, mod, tmp_path))


def test_the_same_on_a_team_server(team_server, tmp_path):
    root = team_server.add("root", Role.ADMIN)
    rootdb = team_server.connect("root")
    mo = team_server.add("mo", Role.MODERATOR, actor=root, via=rootdb)
    _check(team_server.owner, _scenario(rootdb, team_server.connect("mo"), root, mo, tmp_path))


def test_the_team_server_refuses_a_sound_claim_its_blocks_do_not_support(team_server):
    from sqlalchemy import text

    from app.core.matching.audio_match import block_hex, block_near

    r = np.random.default_rng(5)
    a = r.integers(0, 2**32, 7, dtype=np.uint64).tolist()
    near = [v ^ (1 << int(k)) for v, k in zip(a, r.integers(0, 32, 7), strict=True)]
    far = r.integers(0, 2**32, 7, dtype=np.uint64).tolist()
    cases = [
        (block_hex(0, a), block_hex(900, near)),  # one bit in each: near
        (block_hex(0, a), block_hex(0, far)),  # unrelated: not
        (block_hex(5, a), block_hex(9, [0, 0, *a[:5]])),  # shifted by 2: near
    ]
    with team_server.owner.engine.connect() as conn:
        for x, y in cases:
            on_server = conn.scalar(
                text("SELECT hd_near('audio', :a, 'audio', :b, 31, 10)"), {"a": x, "b": y}
            )
            assert on_server == block_near(x, y)
    assert [block_near(x, y) for x, y in cases] == [True, False, True]


@pytest.mark.parametrize(
    "what", ["no sound", "short", "broken", "sound of a video only", "variable frame rate"]
)
def test_bad_sound_is_a_visible_item(sqlite_db, tmp_path, what):
    folder = tmp_path / "in"
    folder.mkdir()
    if what == "no sound":
        path = folder / "silent-film.mp4"
        sw.write_video_with_sound(path, _frames(1), 12, None, RATE)
    elif what == "short":
        path = folder / "blip.m4a"
        sw.write_sound(path, sw.music(1.0, 2, RATE), RATE)
    elif what == "broken":
        whole = folder / "whole.m4a"
        sw.write_sound(whole, sw.music(10, 3, RATE), RATE)
        data = bytearray(whole.read_bytes())
        whole.unlink()
        mid = len(data) // 2
        data[mid : mid + 4000] = np.random.default_rng(4).bytes(4000)
        path = folder / "broken.m4a"
        path.write_bytes(bytes(data))
    elif what == "variable frame rate":
        path = folder / "vfr.mp4"
        times = np.cumsum(np.random.default_rng(6).integers(20, 400, 30)).tolist()
        sw.write_video_with_sound(path, _frames(4, 30), 12, sw.music(8, 6, RATE), RATE, times)
    else:
        path = folder / "film.mp4"
        sw.write_video_with_sound(path, _frames(2, 6), 3, sw.music(8, 5, RATE), RATE)
    summary = ingest_jobs(
        make_recorder(sqlite_db, ContentStore(tmp_path / "m")), jobs_from_paths([path]), workers=1
    )
    assert summary.new + len(summary.unreadable) == 1
    a = analyze_file(path)
    sound = [s for s in a.signals if s.algorithm is Algorithm.AUDIO and not s.variant]
    with sqlite_db.session() as s:
        item = s.scalar(select(Item).where(Item.sha256 == a.sha256))
    assert item is not None
    if what == "no sound":
        assert item.kind is MediaKind.VIDEO and not sound
    elif what == "short":
        assert item.kind is MediaKind.AUDIO and 0 < len(sound) < 10
    elif what == "broken":
        # what decoded before and after the damage is fingerprinted; the item is there
        assert item.kind is MediaKind.AUDIO, item.error
        assert len(sound) > 20
        assert "damaged sound packet" in (decode_sound(path).note or "")  # really broken
    else:
        assert item.kind is MediaKind.VIDEO and len(sound) > 20
        assert any(s.algorithm is Algorithm.PDQ_FRAME for s in a.signals)


def test_migration_0018_takes_audio_items_and_refuses_to_go_back_over_them(db, tmp_path):
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from app.storage.db import DatabaseError, alembic_config

    path = tmp_path / "in" / "s.m4a"
    path.parent.mkdir()
    sw.write_sound(path, sw.music(5, 9, RATE), RATE)
    ingest_jobs(make_recorder(db, ContentStore(tmp_path / "m")), jobs_from_paths([path]), workers=1)
    with db.session() as s:
        item = s.scalar(select(Item).where(Item.kind == MediaKind.AUDIO))
    assert item is not None
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE items SET kind = 'hologram' WHERE id = :i"), {"i": item.id})
    with pytest.raises(DatabaseError, match=rf"items of kind audio exist \(ids {item.id}\)"):
        command.downgrade(alembic_config(db.engine), "0013")
    # Nothing half-done: 0018 refused as a whole. The later revisions' downgrades may have run
    # before it (on SQLite a batch table rebuild is not rolled back with the refusal).
    assert db.current_revision() in ("0018", db.head_revision())
    with db.engine.connect() as conn:  # 0018 is still whole: its kind check takes audio
        assert conn.scalar(text("SELECT kind FROM items WHERE id = :i"), {"i": item.id}) == "audio"
    with db.engine.begin() as conn:  # without sound items it goes back, and up again
        conn.execute(text("UPDATE items SET kind = 'unreadable' WHERE id = :i"), {"i": item.id})
    command.downgrade(alembic_config(db.engine), "0013")
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE items SET kind = 'audio' WHERE id = :i"), {"i": item.id})
    command.upgrade(alembic_config(db.engine), "head")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE items SET kind = 'audio' WHERE id = :i"), {"i": item.id})
