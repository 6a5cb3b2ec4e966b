"""The intake drill, small (app.tools.intake_bench.run_drill): 60 files through the drop folder
watched by 2 `hashdesk intake watch` processes, 2 `hashdesk worker` processes SIGKILLed at
random and restarted (a watcher too, now and then), on a real PostgreSQL: every file received
once and recorded once, nothing left behind. The drill waits on conditions (every file recorded,
at least two worker kills), never on a fixed time; where the kills land varies run to run, and
the outcome must not."""

from __future__ import annotations

import pytest

from app.tools.intake_bench import run_drill
from tests.conftest import IN_CI, PG_URL

pytestmark = pytest.mark.postgres


def test_sixty_files_exactly_once_through_kills(tmp_path):
    if not PG_URL:
        if IN_CI:
            raise RuntimeError("HASHDESK_TEST_POSTGRES_URL is not set under CI")
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run these")
    said: list[str] = []
    r = run_drill(
        PG_URL,
        tmp_path,
        files=60,
        workers=2,
        watchers=2,
        mean_kill_s=3.0,
        min_kills=2,
        drop_batch=5,
        drop_pause_s=1.0,
        seed=24,
        timeout=300,
        say=said.append,
    )
    assert r.worker_kills >= 2
    assert r.duplicates == [] and r.missing == [] and r.left_over == []
    assert r.counts["receipts"] == r.counts["items"] == r.counts["sightings"] == 60, said[-3:]
    assert r.counts["waiting"] == 0 and r.counts["refused"] == 0
    assert r.exactly_once
