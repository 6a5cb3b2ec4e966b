"""The drop folder (app.core.ingest.dropfolder) with the real intake service, on SQLite and
PostgreSQL: files with and without sidecars taken once and moved aside, a bad sidecar kept aside
with its reason (never ingested without its metadata), a full media store keeping the file until
there is room, and a watcher that died after claiming, or after recording, finished by another
watcher without a second arrival."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.dropfolder import CLAIMED, REFUSED, TAKEN, DropFolder, ScanResult
from app.core.model.domain import utcnow
from app.storage.intake import IntakeService
from app.storage.models import IntakeReceipt, Item, Sighting
from tests.helpers import recorder, write_samples


def _intake(db, store) -> IntakeService:
    return IntakeService(db, store, lambda actor: recorder(db, store))


def _folder(root: Path, intake: IntakeService, said: list[str], **kw) -> DropFolder:
    def receive(path, meta, key, name) -> int:
        return intake.receive(
            path=path, meta=meta, via="drop", key=key, original_name=name
        ).receipt_id

    kw.setdefault("settle_s", 0)
    return DropFolder(root, receive, say=said.append, **kw)


def _receipts(db) -> list[IntakeReceipt]:
    with db.session() as s:
        return list(s.scalars(select(IntakeReceipt).order_by(IntakeReceipt.id)))


def _scan_until(folder: DropFolder, n: int = 3):
    taken, refused, kept = [], [], []
    for _ in range(n):
        r = folder.scan_once()
        taken += r.taken
        refused += r.refused
        kept += r.kept
    return taken, refused, kept


def test_files_with_and_without_sidecars_are_taken_once(db, store, tmp_path):
    drop = tmp_path / "drop"
    a, b = write_samples(drop, [1, 2])
    (drop / f"{a.name}.json").write_text(
        json.dumps({"source": "removal_order", "external_id": "TCO-1", "reporter": "europol"})
    )
    said: list[str] = []
    folder = _folder(drop, _intake(db, store), said)
    taken, refused, _ = _scan_until(folder)
    assert sorted(n for n, _ in taken) == [a.name, b.name] and refused == []
    rows = {r.original_name: r for r in _receipts(db)}
    assert set(rows) == {a.name, b.name}
    order = rows[a.name]
    assert (order.source, order.external_id, order.reporter) == (
        "removal_order",
        "TCO-1",
        "europol",
    )
    assert order.deadline == order.received_at + timedelta(hours=1)
    assert rows[b.name].source == "drop_folder" and rows[b.name].deadline is None
    aside = sorted(p.name for p in (drop / TAKEN).iterdir())
    assert aside == sorted(
        [f"{order.id}__{a.name}", f"{order.id}__{a.name}.json", f"{rows[b.name].id}__{b.name}"]
    )
    assert sorted(p.name for p in drop.iterdir()) == sorted([CLAIMED, TAKEN, REFUSED])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2


@pytest.mark.parametrize(
    ("sidecar", "why"),
    [
        ("{not json", "not valid JSON"),
        ('{"source": "x", "colour": "red"}', "unknown field colour"),
        ('{"deadline": "soon"}', "deadline 'soon' is not an ISO 8601 time"),
    ],
)
def test_a_bad_sidecar_keeps_the_file_aside_with_the_reason(
    sqlite_db, store, tmp_path, sidecar, why
):
    drop = tmp_path / "drop"
    (c,) = write_samples(drop, [3])
    content = c.read_bytes()
    (drop / f"{c.name}.json").write_text(sidecar)
    said: list[str] = []
    folder = _folder(drop, _intake(sqlite_db, store), said)
    taken, refused, _ = _scan_until(folder)
    assert taken == [] and [n for n, _ in refused] == [c.name]
    assert _receipts(sqlite_db) == []  # never ingested without its metadata
    kept = drop / REFUSED
    assert (kept / c.name).read_bytes() == content
    assert (kept / f"{c.name}.json").read_text() == sidecar
    reason = (kept / f"{c.name}.reason.txt").read_text()
    assert why in reason and f"sidecar {c.name}.json" in reason
    assert any(why in line and c.name in line and "refused" in line for line in said)


def test_a_sidecar_without_its_file_is_refused_after_a_while(sqlite_db, store, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "never.jpg.json").write_text('{"source": "x"}')
    said: list[str] = []
    folder = _folder(drop, _intake(sqlite_db, store), said, stale_s=0)
    _, refused, _ = _scan_until(folder)
    assert [n for n, _ in refused] == ["never.jpg.json"]
    assert "never arrived" in (drop / REFUSED / "never.jpg.json.reason.txt").read_text()


def test_a_full_media_store_keeps_the_file_until_there_is_room(sqlite_db, tmp_path):
    media = tmp_path / "small-media"
    media.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(media)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        store = ContentStore(media)
        filler = media / "filler"
        with open(filler, "wb", buffering=0) as f:  # the disk full but for a few bytes
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        drop = tmp_path / "drop"
        (d,) = write_samples(drop, [4])
        content = d.read_bytes()
        said: list[str] = []
        folder = _folder(drop, _intake(sqlite_db, store), said, retry_s=0)
        taken, _, kept = _scan_until(folder)
        assert taken == [] and [n for n, _ in kept][:1] == [d.name]
        assert any("is full" in line and d.name in line for line in said), said
        claims = [p for p in (drop / CLAIMED).rglob(f"*__{d.name}")]
        assert [p.read_bytes() for p in claims] == [content]  # nothing lost
        assert _receipts(sqlite_db) == []
        filler.unlink()  # room again
        taken, _, _ = _scan_until(folder, 1)
        assert [n for n, _ in taken] == [d.name]
        assert len(_receipts(sqlite_db)) == 1
    finally:
        subprocess.run(["umount", "-l", str(media)], check=False)


def test_a_dead_watchers_claims_are_finished_once_by_another(db, store, tmp_path):
    drop = tmp_path / "drop"
    e, f = write_samples(drop, [5, 6])
    intake = _intake(db, store)
    said: list[str] = []
    dead = _folder(drop, intake, said, watcher_id="dead", stale_s=0.0)
    dead._claim_ready(ScanResult())  # first look
    dead._claim_ready(ScanResult())  # claims both, then "dies"
    claims = sorted((drop / CLAIMED / "dead").glob("*__*"))
    assert sorted(p.name.split("__", 1)[1] for p in claims) == sorted([e.name, f.name])
    # It had recorded the first before dying, not moved it aside.
    first = claims[0]
    meta = dead._meta(first.with_name(first.name + ".json"), utcnow())
    key = "drop:" + first.name.split("__", 1)[0]
    got = intake.receive(path=first, meta=meta, via="drop", key=key, original_name="x")
    os.utime(drop / CLAIMED / "dead" / "ALIVE", (0, 0))  # its beat long stopped
    heir = _folder(drop, intake, said, watcher_id="heir", stale_s=30)
    taken, _, _ = _scan_until(heir, 2)
    assert len(taken) == 2
    rows = _receipts(db)
    assert len(rows) == 2 and got.receipt_id in {r.id for r in rows}  # no second arrival
    assert not (drop / CLAIMED / "dead").exists()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Sighting)) == 2
