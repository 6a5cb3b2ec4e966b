"""Factories used by several test modules."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import jobs_from_paths
from app.core.matching.hash_index import HashIndex
from app.core.matching.match_rules import MatchPolicy
from app.core.model.domain import Role, UserInfo
from app.storage.db import Database
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.ingest_recorder import IngestRecorder, ingest_jobs
from app.storage.users import UserService
from app.tools.demo import sample_picture


def write_samples(folder: Path, seeds: range | list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        p = folder / f"sample-{seed:04d}.jpg"
        sample_picture(seed, (480, 320)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def write_cluster(folder: Path, seed: int, size: int = 5) -> list[Path]:
    """A picture and ``size - 1`` near-duplicates (smaller, recompressed, brighter, cropped),
    which ingest puts in one cluster behind the first."""
    from PIL import ImageEnhance

    folder.mkdir(parents=True, exist_ok=True)
    base = sample_picture(seed, (480, 320))
    variants = [
        base,
        base.resize((360, 240)),
        base,
        ImageEnhance.Brightness(base).enhance(1.2),
        base.crop((6, 4, 474, 316)),
    ]
    paths = []
    for i, img in enumerate(variants[:size]):
        p = folder / f"cluster-{seed:04d}-{i}.jpg"
        img.save(p, "JPEG", quality=35 if i == 2 else 90)
        paths.append(p)
    return paths


def recorder(db: Database, store: ContentStore, policy: MatchPolicy | None = None, **kw):
    """An ingest recorder with a hash-list watcher of its own (the application passes the
    process's: AppContext.recorder)."""
    watcher = HashListWatcher(db, HashIndex(), policy=policy)
    return IngestRecorder(db, store, policy=policy, watcher=watcher, **kw)


def ingest(db: Database, store: ContentStore, paths, source="test", reason="test flag"):
    jobs = jobs_from_paths(paths, source=source, reason=reason)
    return ingest_jobs(recorder(db, store), jobs, workers=1)


def make_user(db: Database, name="mod1", role=Role.MODERATOR) -> UserInfo:
    return UserService(db).add(name, "correct horse battery", role)


#: EXIF orientation tag -> the transform that turns an upright picture into what a camera
#: stores with that tag (the inverse of what a reader applies; tag 1 stores it as it is).
EXIF_STORED_AS: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
