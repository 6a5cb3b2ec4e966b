from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.core.ingest.jobs import ManifestError, jobs_from_paths, read_manifest


def test_csv_manifest_with_bad_rows(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"y")
    (tmp_path / "m.csv").write_text(
        "path,source,external_id,url,reason,score,flagged_at,deadline\n"
        "a.jpg,removal_order,RO-1,https://x.invalid/1,order,0.9,2026-11-01T10:00:00Z,"
        "2026-11-01T11:00:00+00:00\n"
        "b.jpg,user_report,,,,lots,yesterday,\n"
        ",user_report,,,,,,\n"
    )
    jobs, problems = read_manifest(tmp_path / "m.csv")
    assert [j.path.name for j in jobs] == ["a.jpg", "b.jpg"]
    a, b = jobs
    assert a.sighting.source == "removal_order" and a.sighting.external_id == "RO-1"
    assert a.sighting.score == 0.9
    assert a.sighting.flagged_at == datetime(2026, 11, 1, 10, 0)
    assert a.sighting.deadline == datetime(2026, 11, 1, 11, 0)
    assert b.sighting.score is None  # the bad value is dropped, the file still ingests
    assert any("line 3: score 'lots' is not a number" in p for p in problems)
    assert any("line 3: flagged_at 'yesterday'" in p for p in problems)
    assert any("line 4: no path" in p for p in problems)


def test_jsonl_manifest(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    lines = [json.dumps({"path": "a.png", "source": "classifier", "score": 0.5}), "{not json"]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    jobs, problems = read_manifest(tmp_path / "m.jsonl")
    assert len(jobs) == 1 and jobs[0].sighting.source == "classifier"
    assert problems == [
        "m.jsonl line 2: not valid JSON (Expecting property name enclosed in double quotes)"
    ]


def test_manifest_without_path_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,source\na,b\n")
    with pytest.raises(ManifestError, match="'path' column"):
        read_manifest(tmp_path / "m.csv")


def test_folders_are_walked_recursively_skipping_hidden(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/1.jpg", "d/e/2.jpg", "d/.hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    jobs = jobs_from_paths([tmp_path / "d"], source="s", reason="r")
    assert sorted(j.path.name for j in jobs) == ["1.jpg", "2.jpg"]
