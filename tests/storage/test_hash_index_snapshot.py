"""The hash list's index snapshot: saved after a load, read back at the next start and brought
up to date (rows added, retracted, disabled since), never trusted when it does not match the
database (damaged, another database's, tampered with). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
from sqlalchemy import select, update

from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import list_space
from app.core.matching.match_rules import MatchPolicy
from app.core.model.domain import Role
from app.storage.hash_index_snapshot import write_snapshot
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.hash_lists import HashListService
from app.storage.models import HashListEntry
from app.tools.benchdata import fill_hash_list
from tests.helpers import make_user


def watcher(db, path) -> HashListWatcher:
    return HashListWatcher(db, HashIndex(), MatchPolicy(), snapshot=path, snapshot_min_entries=1)


def content(index: HashIndex) -> set[tuple]:
    """Every entry as (space path, id, hash, ref, frame time): what a search can find."""
    d = index.dump()
    paths = [tuple(json.loads(p)) for p in d["spaces"].tolist()]
    out = set()
    for i, path in enumerate(paths):
        for key in ("b256", "b64"):
            cols, ids, refs = d[f"{i}.{key}.cols"], d[f"{i}.{key}.ids"], d[f"{i}.{key}.refs"]
            ts = np.nan_to_num(d[f"{i}.{key}.ts"], nan=-1.0)
            for j in range(ids.size):
                row = (path, int(ids[j]), tuple(cols[:, j].tolist()), int(refs[j]))
                out.add((*row, float(ts[j])))
        for key in ("md5", "sha256"):
            ids, values = d[f"{i}.{key}.ids"], d[f"{i}.{key}.values"]
            out |= {
                (path, int(e), v, None) for e, v in zip(ids.tolist(), values.tolist(), strict=True)
            }
    return out


def fresh(db) -> set[tuple]:
    """What a full load from the database gives now."""
    w = HashListWatcher(db, HashIndex(), MatchPolicy())
    w.load_all()
    return content(w.index)


def seed(db) -> list[int]:
    fill_hash_list(db, 3000)
    with db.session() as s:
        s.add(HashListEntry(algorithm="md5", value="ab" * 16, list_name="bench"))
        s.add(HashListEntry(algorithm="pdq", value="cd" * 32, list_name="local"))
        # Video frames with their times: one of ours (the bulk path), one imported video's
        # (read row by row): the times come back from a snapshot as from the database.
        s.add(
            HashListEntry(algorithm="pdq_frame", value="ef" * 32, list_name="local", frame_ts=3.25)
        )
        s.add(
            HashListEntry(
                algorithm="pdq_frame", value="a1" * 32, list_name="bench", frame_ts=7.5,
                external_id="video-1",
            )
        )  # fmt: skip
        return list(s.scalars(select(HashListEntry.id).order_by(HashListEntry.id)))


def test_a_load_from_the_database_starts_from_an_empty_index(db, tmp_path):
    """What the index held before a full load (a snapshot restored, then its update failed:
    the next start loads from the database) does not survive it: an entry retracted since,
    or never in this database, would keep matching."""
    seed(db)
    w = watcher(db, tmp_path / "index.npz")
    w.index.add(10**9, "pdq", "ef" * 32)  # no such row in the database
    w.load_all()
    assert 10**9 not in w.index
    assert content(w.index) == fresh(db)


def test_snapshot_saved_read_back_and_topped_up_with_changes_since(db, tmp_path):
    ids = seed(db)
    path = tmp_path / "index.npz"
    first = watcher(db, path)
    assert first.ensure_loaded() and not first.restored
    assert path.is_file()  # written after the load from the database
    assert content(first.index) == fresh(db)

    # Changes after the snapshot: added, retracted, disabled.
    fill_hash_list(db, 3200)
    lead = make_user(db, "lead1", Role.LEAD)
    service = HashListService(db)
    assert service.retract(ids[10:15], "wrong", actor=lead) == 5
    assert service.set_enabled(ids[20:23], False, "unsure", actor=lead) == 3

    second = watcher(db, path)
    second.load_all()
    assert second.restored
    got = content(second.index)
    assert got == fresh(db)
    gone = set(ids[10:15]) | set(ids[20:23])
    assert not gone & {e[1] for e in got}
    assert len(second.index) == 3200 + 2 - 8  # the bench list (its md5 and a frame), local's 2
    # The frames' times came back from the file (and the row-by-row read of an imported one).
    (mine,) = second.index.search("pdq_frame", "ef" * 32, 0)
    (theirs,) = second.index.space(list_space("bench")).search("pdq_frame", "a1" * 32, 0)
    assert (mine.ts, theirs.ts) == (3.25, 7.5)

    # Enabled again, after a second snapshot: back in.
    assert second.save_snapshot(force=True)
    assert service.set_enabled(ids[20:23], True, "fine", actor=lead) == 3
    third = watcher(db, path)
    third.load_all()
    assert third.restored and content(third.index) == fresh(db)
    assert set(ids[20:23]) <= {e[1] for e in content(third.index)}


def test_damaged_snapshot_is_not_used(db, tmp_path, caplog):
    seed(db)
    path = tmp_path / "index.npz"
    watcher(db, path).ensure_loaded()
    raw = bytearray(path.read_bytes())
    for cut in (len(raw) // 2, 100):
        bad = raw.copy()
        bad[cut : cut + 64] = bytes(64)  # zeroes over part of the file
        path.write_bytes(bytes(bad))
        w = watcher(db, path)
        with caplog.at_level(logging.WARNING, logger="app.storage.hash_list_watcher"):
            w.load_all()
        assert not w.restored and content(w.index) == fresh(db)
        assert "not used" in caplog.text
    path.write_bytes(raw[: len(raw) // 3])  # cut short
    w = watcher(db, path)
    w.load_all()
    assert not w.restored and content(w.index) == fresh(db)
    path.write_bytes(b"not a snapshot")
    w = watcher(db, path)
    w.load_all()
    assert not w.restored and content(w.index) == fresh(db)


def test_snapshot_that_does_not_match_the_database_is_not_used(db, tmp_path):
    seed(db)
    path = tmp_path / "index.npz"
    w = watcher(db, path)
    w.ensure_loaded()
    key = {
        k: v
        for k, v in __import__("json").loads(bytes(np.load(path)["meta"]).decode()).items()
        if k in ("format", "database", "min_quality")
    }
    # One hash changed in a well-formed file (a database rebuilt under the same name, or a
    # file edited): the sample check against the database catches it.
    arrays = w.index.dump()
    bench = next(i for i, p in enumerate(arrays["spaces"].tolist()) if "bench" in p)
    first_id = int(arrays[f"{bench}.b256.ids"][0])
    tampered = HashIndex()
    tampered.restore(arrays)
    tampered.remove(first_id)
    tampered.space("list:bench").add(first_id, "pdq", "ef" * 32, -first_id)
    write_snapshot(path, tampered, w.mark, key)
    again = watcher(db, path)
    again.load_all()
    assert not again.restored and content(again.index) == fresh(db)

    # Written for other settings (another quality gate), or ahead of the database.
    write_snapshot(path, w.index, w.mark, {**key, "min_quality": 10})
    again = watcher(db, path)
    again.load_all()
    assert not again.restored
    ahead = replace(w.mark, max_seq=w.mark.max_seq + 50)
    write_snapshot(path, w.index, ahead, key)
    again = watcher(db, path)
    again.load_all()
    assert not again.restored and content(again.index) == fresh(db)
    # The same file, unchanged, is used.
    write_snapshot(path, w.index, w.mark, key)
    again = watcher(db, path)
    again.load_all()
    assert again.restored and content(again.index) == fresh(db)


def test_entry_changed_in_place_is_caught(db, tmp_path):
    """An entry whose hash differs in the database (restored from another backup): the
    snapshot is not used."""
    ids = seed(db)
    path = tmp_path / "index.npz"
    watcher(db, path).ensure_loaded()
    with db.session() as s:
        s.execute(update(HashListEntry).where(HashListEntry.id == ids[0]).values(value="0" * 64))
    w = watcher(db, path)
    w.load_all()
    assert not w.restored and content(w.index) == fresh(db)


def test_entries_missing_from_the_file_are_caught(db, tmp_path):
    """A well-formed file with entries dropped (edited by hand, or a retraction older than the
    watcher's lookbacks): the count after the update differs from the database's, so the list
    is loaded from the database, and the dropped entries match again."""
    seed(db)
    path = tmp_path / "index.npz"
    w = watcher(db, path)
    w.ensure_loaded()
    meta = json.loads(bytes(np.load(path)["meta"]).decode())
    key = {k: meta[k] for k in ("format", "database", "min_quality")}
    arrays = w.index.dump()
    bench = next(i for i, p in enumerate(arrays["spaces"].tolist()) if "bench" in p)
    ids = arrays[f"{bench}.b256.ids"]
    # Not the first or the last row: the sample check alone would pass this file.
    dropped = [int(ids[ids.size // 3 + 1]), int(ids[2 * ids.size // 3 + 1])]
    thinned = HashIndex()
    thinned.restore(arrays)
    thinned.remove_many(dropped)
    write_snapshot(path, thinned, w.mark, key)
    again = watcher(db, path)
    again.load_all()
    assert not again.restored
    assert all(i in again.index for i in dropped)
    assert content(again.index) == fresh(db)


def test_snapshot_of_the_older_format_is_not_used(db, tmp_path, caplog):
    """A file of format 1 (its watermark in dates, before change_seq): the list is loaded
    from the database, and the log says why."""
    seed(db)
    path = tmp_path / "index.npz"
    w = watcher(db, path)
    w.ensure_loaded()
    meta = json.loads(bytes(np.load(path)["meta"]).decode())
    arrays = w.index.dump()
    meta["format"] = 1
    meta["mark"] = {
        "max_id": w.mark.max_id,
        "max_retracted": None,
        "max_changed": None,
        "lists_changed": "2026-12-01T00:00:00",
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    again = watcher(db, path)
    with caplog.at_level(logging.WARNING, logger="app.storage.hash_list_watcher"):
        again.load_all()
    assert not again.restored and content(again.index) == fresh(db)
    assert "format 1, this Hashdesk reads 3" in caplog.text
