"""``hashdesk bench --index`` on a small list: it fills, loads, matches and reports (figures are
not checked: no timing assertions)."""

from __future__ import annotations

from app.tools.bench import bench_index


def test_bench_index_small(tmp_path) -> None:
    url = f"sqlite:///{(tmp_path / 'index.sqlite3').as_posix()}"
    out = bench_index(url, entries=3000, repeats=2)
    assert out["entries"] == 3000
    assert out["indexed"] == 3001  # and the planted neighbour of the item
    assert out["matched"]
    assert out["queries"] >= 9  # whole, trimmed or not, 7 rotations and mirrors, pHash
    again = bench_index(url, entries=3000, repeats=1)  # the list is kept: no second fill
    assert again["indexed"] == 3001
