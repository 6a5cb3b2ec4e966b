"""Project VIC's VICS 2.0 JSON: ``{"@odata.context": ..., "value": [media, ...]}``, one media
record per file with ``MediaID``, ``Category``, ``MD5``, ``SHA1`` and ``AlternativeHashes``
(``[{"HashName": "PDQ", "HashValue": ...}]``). Each hash Hashdesk can match becomes an entry
whose external id is the ``MediaID``; ``Category`` is kept to be written back. SHA-1 (and
PhotoDNA, ...) cannot be matched by Hashdesk: counted by name, not imported."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from app.core.exchange.entries import ExchangeEntry, ParsedList, check_hex, json_records, parse_time
from app.core.matching.signal_types import SIGNAL_TYPES, by_exchange_name

FMT = "vics"
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
_TOP_FIELDS = ("MD5", "SHA1", "SHA256")


def _hashes(rec: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(k, str(rec[k])) for k in _TOP_FIELDS if rec.get(k)]
    alt = rec.get("AlternativeHashes") or []
    if not isinstance(alt, list):
        raise ValueError("AlternativeHashes is not a list")
    for h in alt:
        if not isinstance(h, dict) or not h.get("HashName") or not h.get("HashValue"):
            raise ValueError("an AlternativeHashes item lacks HashName or HashValue")
        out.append((str(h["HashName"]), str(h["HashValue"])))
    return out


def read(text: str) -> ParsedList:
    out = ParsedList("vics")
    records, problem = json_records(text, ("value", "Media"))
    for line, rec in records:
        out.lines += 1
        if not isinstance(rec, dict):
            out.problems.append((line, "a media record is not an object"))
            continue
        try:
            hashes = _hashes(rec)
            seen = parse_time(rec.get("DateUpdated"))
        except ValueError as exc:
            out.problems.append((line, str(exc)))
            continue
        if not hashes:
            out.problems.append((line, "the media record has no hash"))
            continue
        mid = rec.get("MediaID")
        meta = tuple(
            (k, json.dumps(rec[k])) for k in ("Category", "MediaSize") if rec.get(k) is not None
        )
        for name, raw in hashes:
            t = by_exchange_name(FMT, name)
            if t is None:
                out.unsupported[name] += 1
                continue
            try:
                value = check_hex(t.algorithm, raw)
            except ValueError as exc:
                out.problems.append((line, str(exc)))
                continue
            out.entries.append(
                ExchangeEntry(
                    t.algorithm,
                    value,
                    external_id=None if mid is None else str(mid),
                    last_seen=seen,
                    meta=meta,
                    line=line,
                )
            )
    if problem:
        out.problems.append(problem)
    return out


def write(f: TextIO, entries: Iterable[ExchangeEntry]) -> tuple[int, Counter[str]]:
    """One media record per external id (our own entries: per item), its hashes together."""
    skipped: Counter[str] = Counter()
    media: dict[str, dict[str, Any]] = {}
    n = 0
    for e in entries:
        name = SIGNAL_TYPES[e.algorithm].exchange_name(FMT)
        if name is None:
            skipped[e.algorithm.value] += 1
            continue
        key = e.external_id or e.video or f"entry-{n}"
        rec = media.get(key)
        if rec is None:
            mid: Any = int(key) if key.isdigit() else key
            rec = media[key] = {"MediaID": mid}
            for k, v in e.meta:
                if k in ("Category", "MediaSize"):
                    rec[k] = json.loads(v)
            rec.setdefault("Category", 0)
            if e.last_seen is not None:
                rec["DateUpdated"] = e.last_seen.isoformat(timespec="seconds") + "Z"
        if name in _TOP_FIELDS:
            rec[name] = e.value.upper() if name == "MD5" else e.value
        else:
            rec.setdefault("AlternativeHashes", []).append({"HashName": name, "HashValue": e.value})
        n += 1
    json.dump({"@odata.context": CONTEXT, "value": list(media.values())}, f, indent=1)
    return n, skipped
