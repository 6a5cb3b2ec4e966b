"""The team drill on a team server: 16 workstations, each on its own moderator's login, claim
and decide a shared queue at once; decisions per second. Used by tests/drills/test_drills.py
and printable: ``python -m tests.drills.team_rate [ITEMS] [PROCESSES]`` (needs
HASHDESK_TEST_POSTGRES_URL)."""

from __future__ import annotations

import multiprocessing
import sys
import time
import uuid

from sqlalchemy import create_engine, insert, text

from app.core.model.domain import ItemStatus, Role, utcnow
from app.storage.models import Item
from tests.drills.claimers import claim_and_decide


def queue(db, n: int) -> None:
    """``n`` queued items inserted in bulk by the owner (no media: the drill is the queue)."""
    now = utcnow()
    rows = [
        {
            "sha256": f"{i:064x}",
            "md5": f"{i:032x}",
            "kind": "unreadable",
            "size": 1,
            "status": ItemStatus.QUEUED.value,
            "priority": 0,
            "preview_frames": 1,
            "error": "drill item",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1, n + 1)
    ]
    with db.session() as s:
        for start in range(0, n, 1000):
            s.execute(insert(Item), rows[start : start + 1000])


def run(server, items: int = 2000, procs: int = 16) -> tuple[list, float]:
    """Returns (the per-process results of claim_and_decide, decisions per second)."""
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    users = [
        server.add(f"drill{i:02d}", Role.MODERATOR, actor=root, via=rootdb).id for i in range(procs)
    ]
    if hasattr(server, "set_second_review_share"):
        server.set_second_review_share(0.0)
    queue(server.owner, items)
    names = [f"drill{i:02d}" for i in range(procs)]
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 8  # time for every process to start and connect
    with ctx.Pool(procs) as pool:
        results = pool.starmap(
            claim_and_decide,
            [(server.url_for(n), u, start_at) for n, u in zip(names, users, strict=True)],
        )
    decided = sum(len(ids) for _u, ids, _t in results)
    wall = max(t for _u, _ids, t in results)
    return results, decided / wall


def main() -> None:  # pragma: no cover - a printing aid for the closing note
    import tests.conftest as conftest

    items = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    procs = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    schema = f"t_rate_{uuid.uuid4().hex[:8]}"
    if hasattr(conftest, "create_team_schema"):
        server = conftest.TeamServer(schema, owner=conftest.create_team_schema(schema))
    else:  # an older tree: a superuser owner
        admin = create_engine(conftest.PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        server = conftest.TeamServer(schema)
    try:
        _results, rate = run(server, items, procs)
        print(f"{procs} workstations on their own logins: {rate:.0f} decisions/s ({items} items)")
    finally:
        server.close()


if __name__ == "__main__":  # pragma: no cover
    main()
