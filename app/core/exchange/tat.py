"""Tech Against Terrorism's hash-list records, as JSON (the API's ``results`` page, or a plain
array) or CSV with a header: ``hash_digest, algorithm, ideology, file_type, deleted,
updated_on, created_on, id``. ``deleted`` records retract; ``ideology`` becomes the entry's
label, ``file_type`` is kept to be written back, ``id`` is the external id, ``created_on`` and
``updated_on`` the first and last seen."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from app.core.exchange.entries import (
    ExchangeEntry,
    ParsedList,
    check_hex,
    iso,
    json_records,
    parse_time,
)
from app.core.matching.signal_types import SIGNAL_TYPES, by_exchange_name

FMT = "tat"
FIELDS = (
    "hash_digest",
    "algorithm",
    "ideology",
    "file_type",
    "deleted",
    "updated_on",
    "created_on",
    "id",
)
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f", ""}


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"deleted={raw!r} is not true or false")


def _entry(rec: Any, out: ParsedList, line: int) -> None:
    if not isinstance(rec, dict):
        out.problems.append((line, "a record is not an object"))
        return
    digest, name = str(rec.get("hash_digest") or ""), str(rec.get("algorithm") or "")
    if not digest or not name:
        out.problems.append((line, "hash_digest or algorithm is missing"))
        return
    t = by_exchange_name(FMT, name)
    if t is None:
        out.unsupported[name] += 1
        return
    try:
        value = check_hex(t.algorithm, digest)
        deleted = _bool(rec.get("deleted", False))
        first, last = parse_time(rec.get("created_on")), parse_time(rec.get("updated_on"))
    except ValueError as exc:
        out.problems.append((line, str(exc)))
        return
    ideology = str(rec.get("ideology") or "").strip()
    file_type = str(rec.get("file_type") or "").strip()
    rid = rec.get("id")
    out.entries.append(
        ExchangeEntry(
            t.algorithm,
            value,
            labels=(ideology,) if ideology else (),
            external_id=None if rid in (None, "") else str(rid),
            deleted=deleted,
            first_seen=first,
            last_seen=last,
            meta=(("file_type", file_type),) if file_type else (),
            line=line,
        )
    )


def read(text: str, csv_form: bool) -> ParsedList:
    out = ParsedList("tat-csv" if csv_form else "tat")
    if csv_form:
        reader = csv.DictReader(io.StringIO(text))
        missing = {"hash_digest", "algorithm"} - {f.strip() for f in reader.fieldnames or []}
        if missing:
            out.problems.append((1, f"header lacks {', '.join(sorted(missing))}"))
            return out
        for row in reader:
            out.lines += 1
            _entry({(k or "").strip(): v for k, v in row.items()}, out, reader.line_num)
        return out
    records, problem = json_records(text, ("results", "hashes", "data"))
    for line, rec in records:
        out.lines += 1
        _entry(rec, out, line)
    if problem:
        out.problems.append(problem)
    return out


def _epoch(dt: datetime | None) -> float | None:
    from datetime import UTC

    return None if dt is None else round(dt.replace(tzinfo=UTC).timestamp(), 6)


def record_of(e: ExchangeEntry, n: int) -> dict[str, Any]:
    meta = dict(e.meta)
    rid: Any = e.external_id if e.external_id is not None else (e.entry_id or n)
    if isinstance(rid, str) and rid.isdigit():
        rid = int(rid)
    return {
        "hash_digest": e.value,
        "algorithm": SIGNAL_TYPES[e.algorithm].exchange_name(FMT),
        "ideology": e.labels[0] if e.labels else "",
        "file_type": meta.get("file_type", ""),
        "deleted": e.deleted,
        "updated_on": _epoch(e.last_seen or e.first_seen),
        "created_on": iso(e.first_seen),
        "id": rid,
    }


def write(f: TextIO, entries: Iterable[ExchangeEntry], csv_form: bool) -> tuple[int, Counter[str]]:
    skipped: Counter[str] = Counter()
    records = []
    for n, e in enumerate(entries, 1):
        if SIGNAL_TYPES[e.algorithm].exchange_name(FMT) is None:
            skipped[e.algorithm.value] += 1
            continue
        records.append(record_of(e, n))
    if csv_form:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for r in records:
            w.writerow({**r, "deleted": "true" if r["deleted"] else "false"})
    else:
        json.dump(
            {
                "count": len(records),
                "next": None,
                "previous": None,
                "checkpoint": "",
                "results": records,
            },
            f,
            indent=1,
        )
    return len(records), skipped
