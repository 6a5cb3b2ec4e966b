"""The hash list's bulk load (``add_hash_list_rows``) indexes exactly what the row-by-row rules
say: each list in its space, halves in theirs, refs (items, imported entries, an imported
video's frames), query-only and low-quality hashes left out, retracted and disabled ones too,
across many load batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import numpy as np
import pytest

from app.core.matching.hash_index import HashIndex
from app.core.matching.hash_lists import LOCAL_LIST, list_space
from app.core.matching.match_rules import MatchPolicy, index_signal
from app.core.matching.signal_types import SIGNAL_TYPES
from app.core.model.domain import Algorithm, Signal, utcnow
from app.storage import hash_list_index
from app.storage.hash_list_index import add_hash_list_rows, load_hash_index
from app.storage.models import HashList, HashListEntry, Item


def _hex(rng: random.Random, alg: Algorithm) -> str:
    bits = SIGNAL_TYPES[alg].bits
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def _expected(rows: list[HashListEntry], policy: MatchPolicy) -> HashIndex:
    """The index the rules of hash_list_index's docstring give, one row at a time."""
    index = HashIndex()
    videos: dict[tuple[str, str], int] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.retracted_at is not None or r.disabled_at is not None:
            continue
        ref = r.item_id
        if ref is None and r.list_name != LOCAL_LIST:
            ref = -r.id
            if r.algorithm == "pdq_frame" and r.external_id:
                ref = -videos.setdefault((r.list_name, r.external_id), r.id)
        sig = Signal(Algorithm(r.algorithm), r.value, r.quality, variant=r.variant or "")
        index_signal(index.space(list_space(r.list_name)), r.id, sig, ref, policy)
    return index


def _dump(index: HashIndex, spaces: list[str]) -> set:
    """Every (space, entry id, ref, algorithm) the index answers for the probe hashes."""
    out = set()
    for space in spaces:
        sub = index.space(space)
        for region in ("", "region:top", "region:left"):
            target = sub.space(region)
            for alg, values in _dump.probes.items():  # type: ignore[attr-defined]
                for hits in target.search_many(alg, values, 256 if alg != "phash" else 64):
                    out |= {(space, region, m.entry_id, m.ref, m.algorithm) for m in hits}
    return out


def test_bulk_load_equals_the_row_rules(db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hash_list_index, "LOAD_BATCH", 7)  # many batches, ragged ends
    rng = random.Random(15)
    policy = MatchPolicy()
    with db.session() as s:
        s.add_all([HashList(name="gifct", policy="resolve"), HashList(name="allow", allow=True)])
        items = []
        for i in range(3):
            item = Item(sha256=f"{i:064x}", md5=f"{i:032x}", size=1, kind="image", status="decided")
            s.add(item)
            items.append(item)
        s.flush()
        rows = []
        for i in range(120):
            alg = rng.choice([Algorithm.PDQ] * 4 + list(Algorithm))
            list_name = rng.choice(["local", "local", "gifct", "allow", "unlisted"])
            variant = ""
            if alg is Algorithm.PDQ:
                variant = rng.choice(["", "", "trimmed", "region:top", "region:left", "dih:rot90"])
            quality = rng.choice([None, 100, 30]) if SIGNAL_TYPES[alg].near else None
            row = HashListEntry(
                algorithm=alg.value,
                value=_hex(rng, alg),
                quality=quality,
                variant=variant,
                list_name=list_name,
                item_id=rng.choice([None, items[i % 3].id]) if list_name == "local" else None,
                external_id=rng.choice([None, "video-1", "video-2"]),
                retracted_at=utcnow() if rng.random() < 0.1 else None,
                disabled_at=utcnow() if rng.random() < 0.1 else None,
            )
            s.add(row)
            rows.append(row)
        s.flush()
        got = HashIndex()
        # A few are there already: they are not added twice.
        first = [r for r in rows if r.retracted_at is None and r.disabled_at is None][:3]
        n = add_hash_list_rows(s, got, policy, HashListEntry.id <= first[-1].id)
        n += add_hash_list_rows(s, got, policy)
        want = _expected(rows, policy)
        by_id = {r.id: r for r in rows}
    _dump.probes = {  # type: ignore[attr-defined]
        a: [r.value for r in rows if r.algorithm == a] or [_hex(rng, Algorithm(a))]
        for a in ("pdq", "phash", "md5", "sha256")
    }
    spaces = ["", "list:gifct", "list:allow", "list:unlisted"]
    assert _dump(got, spaces) == _dump(want, spaces)
    assert len(got) == len(want) > 40
    assert n == len(want)  # each counted once
    assert np.array_equal(
        got.contains_many(np.array(sorted(by_id), np.int64)),
        np.array([i in want for i in sorted(by_id)]),
    )
    assert len(load_hash_index(db, policy)) == len(want)


def test_ids_far_apart_load_in_one_more_batch(db, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load reads by keyset (the rows after the last id read, so many at a time): a row
    with id 4 * 10**18 (restored, or written by hand) costs one more batch, not a walk over
    every id between. On SQLite and PostgreSQL."""
    from sqlalchemy import event

    from app.tools.benchdata import fill_hash_list

    batch = 7
    monkeypatch.setattr(hash_list_index, "LOAD_BATCH", batch)
    fill_hash_list(db, 21)
    queries: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if "string_agg" in statement or "group_concat" in statement:
            queries.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        before = load_hash_index(db, MatchPolicy())
        # A query a batch, and the one that finds nothing after the last id.
        assert len(before) == 21 and len(queries) == 21 // batch + 1
        far = 4 * 10**18
        with db.session() as s:  # as the owner (or on SQLite): straight into the table
            s.add(HashListEntry(id=far, algorithm="pdq", value="ab" * 32, list_name="local"))
        queries.clear()
        after = load_hash_index(db, MatchPolicy())
        assert far in after and len(after) == 22
        assert len(queries) == 21 // batch + 2  # one more batch: the far row's
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
