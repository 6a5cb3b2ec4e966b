"""Ingest's recording rate: items per second written to the database, the analysis left out
(done once, before the clock starts). On SQLite, on PostgreSQL without the server program (the
Python path) and on an enforced team server as an admin (the server's write API); each with
matching on (as ingest runs) and off (the writes alone), on a fresh database each. Prints one
line per figure. Needs HASHDESK_TEST_POSTGRES_URL for the PostgreSQL lines.

    python -m tests.drills.ingest_rate [N]     (default 500 small pictures)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import analyze_jobs, jobs_from_paths
from app.core.model.domain import Role
from app.storage.db import open_database
from app.tools.demo import sample_picture
from tests.helpers import recorder as make_recorder


def _pictures(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(n):
        p = folder / f"s-{seed:05d}.jpg"
        sample_picture(seed, (160, 120)).save(p, "JPEG", quality=85)
        paths.append(p)
    return paths


def _rate(db, store: ContentStore, analysed, actor=None, match=True) -> float:
    rec = make_recorder(db, store, actor=actor, match=match)
    rec._indexes()  # the hash list and the queue loaded before the clock starts
    many = getattr(rec, "record_many", None)
    t0 = time.perf_counter()
    if many is not None:
        many([(job.path, a, job.sighting) for job, a in analysed])
    else:
        for job, a in analysed:
            rec.record(job.path, a, job.sighting)
    return len(analysed) / (time.perf_counter() - t0)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 500
    tmp = Path(tempfile.mkdtemp(prefix="ingest-rate-"))
    analysed = list(analyze_jobs(jobs_from_paths(_pictures(tmp / "in", n)), workers=os.cpu_count()))
    for match in (True, False):
        what = "matching on" if match else "matching off"
        sqlite = open_database(f"sqlite:///{tmp / f'rate-{match}.sqlite3'}")
        rate = _rate(sqlite, ContentStore(tmp / "m1"), analysed, match=match)
        print(f"SQLite, {what}: {rate:.0f} items/s ({n})")
        sqlite.dispose()
        if not os.environ.get("HASHDESK_TEST_POSTGRES_URL"):
            continue
        from tests import conftest

        plain_db, cleanup = conftest._make_pg_database()
        try:
            rate = _rate(plain_db, ContentStore(tmp / "m2"), analysed, match=match)
            print(f"PostgreSQL, no server program, {what}: {rate:.0f} items/s ({n})")
        finally:
            cleanup()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        server = conftest.TeamServer(schema, owner=conftest.create_team_schema(schema))
        try:
            root = server.add("root", Role.ADMIN)
            db = server.connect("root")
            rate = _rate(db, ContentStore(tmp / "m3"), analysed, actor=root, match=match)
            print(f"PostgreSQL, enforced, as an admin, {what}: {rate:.0f} items/s ({n})")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
