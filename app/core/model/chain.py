"""The tamper-evident chains: the entry hash, and exactly which fields of a decision and of an
audit event it covers. Pure functions, used to append (app.storage.record, app.storage.audit)
and to verify (app.storage.audit), so the two can never disagree: the one place that names
the chained fields (``decision_fields_of`` and ``audit_fields_of`` read them off a row)."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

#: The ``prev_hash`` of a chain's first entry.
GENESIS_HASH = "0" * 64


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Hash of one record of an append-only chain: the previous entry's hash plus this entry's
    fields in a canonical form. Changing, deleting or reordering any entry breaks every later
    hash."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def decision_chain_fields(
    *,
    uuid: str,
    item_id: int,
    user_id: int | None,
    verdict: str,
    category: str | None,
    note: str | None,
    method: str,
    supersedes: str | None,
    decided_at: datetime,
    parent_uuid: str | None,
    matched_entry_id: int | None,
    match_distance: int | None,
    hashes_digest: str | None = None,
) -> dict[str, Any]:
    """The fields of a decision that its chain hash covers. Fields added since the first
    release are covered only when set, so older entries verify as they were written."""
    fields: dict[str, Any] = {
        "uuid": uuid,
        "item_id": item_id,
        "user_id": user_id,
        "verdict": verdict,
        "category": category,
        "note": note,
        "method": method,
        "supersedes": supersedes,
        "decided_at": decided_at.isoformat(timespec="microseconds"),
    }
    if parent_uuid or matched_entry_id is not None:
        fields["parent_uuid"] = parent_uuid
        fields["matched_entry_id"] = matched_entry_id
        fields["match_distance"] = match_distance
    if hashes_digest is not None:
        fields["hashes"] = hashes_digest
    return fields


def hash_rows_digest(rows: Iterable[tuple[str, str | None, str]]) -> str:
    """The first version of the digest a confirm's chain entry carries of the hash-list rows
    it added: SHA-256 of the sorted ``algorithm|variant|value`` lines. Kept to verify the
    entries written with it; new confirms carry :func:`hash_rows_digest_v2`."""
    lines = sorted(f"{alg}|{variant or ''}|{value.lower()}" for alg, variant, value in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


#: The mark of the second version of a rows digest (the first has none: 64 hex digits).
DIGEST_V2 = "v2:"

#: One hash-list row as the v2 digest reads it: algorithm, variant, value, quality,
#: frame_ts (seconds), category, list.
HashRowFields = tuple[str, str | None, str, int | None, float | None, str | None, str]


def frame_ts_text(frame_ts: float | None) -> str:
    """``frame_ts`` as the v2 digest writes it: whole microseconds, rounded down, in decimal
    (``floor(frame_ts * 1000000)``: one IEEE double multiplication, the same in PostgreSQL);
    NULL as the empty string."""
    return "" if frame_ts is None else str(math.floor(frame_ts * 1_000_000))


def hash_row_line(row: HashRowFields) -> str:
    """One row's line in the v2 digest: its seven fields joined by ``|``, each as text: NULL
    as the empty string, the value in lower case, quality as a decimal integer, frame_ts by
    :func:`frame_ts_text`."""
    alg, variant, value, quality, frame_ts, category, list_name = row
    return "|".join(
        (
            alg,
            variant or "",
            value.lower(),
            "" if quality is None else str(int(quality)),
            frame_ts_text(frame_ts),
            category or "",
            list_name,
        )
    )


def hash_rows_digest_v2(rows: Iterable[HashRowFields]) -> str:
    """The digest a confirm's chain entry (and an import's audit event) carries of the
    hash-list rows it added, covering every field that decides a match: ``"v2:"`` and the
    first 61 hex digits of the SHA-256 of the rows' lines (:func:`hash_row_line`) sorted by
    code point and joined by ``\n`` (UTF-8; no rows: the empty string). 64 characters, the
    width of the stored digest. In PostgreSQL, over the rows ``h``::

        'v2:' || left(encode(sha256(convert_to(coalesce(string_agg(
          h.algorithm || '|' || coalesce(h.variant, '') || '|' || lower(h.value) || '|' ||
          coalesce(h.quality::text, '') || '|' ||
          coalesce(floor(h.frame_ts * 1000000)::bigint::text, '') || '|' ||
          coalesce(h.category, '') || '|' || h.list_name,
          E'\n' ORDER BY <that line> COLLATE "C"), ''), 'UTF8')), 'hex'), 61)
    """
    lines = sorted(hash_row_line(r) for r in rows)
    return DIGEST_V2 + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:61]


def rows_digest_matches(digest: str, rows: Iterable[HashRowFields]) -> bool:
    """Whether ``rows`` are those ``digest`` was made of, in the version it names."""
    if digest.startswith(DIGEST_V2):
        return hash_rows_digest_v2(rows) == digest
    return hash_rows_digest((r[0], r[1], r[2]) for r in rows) == digest


def id_ranges(ids: Iterable[int]) -> str:
    """Row ids as compact text: sorted, runs of consecutive ids as ``first-last``, joined by
    commas (``"3-7,9,12-13"``; none: the empty string)."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(ids)):
        if run and i == run[-1] + 1:
            run[-1] = i
            continue
        if run:
            out.append(str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}")
        run = [i, i]
    if run:
        out.append(str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}")
    return ",".join(out)


def ids_of_ranges(text: str) -> set[int]:
    """The ids :func:`id_ranges` wrote."""
    ids: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        ids.update(range(int(first), int(last or first) + 1))
    return ids


def audit_chain_fields(
    *,
    uuid: str,
    kind: str,
    actor_id: int | None,
    actor_name: str | None,
    subject: str | None,
    detail: str | None,
    occurred_at: datetime,
) -> dict[str, Any]:
    """The fields of an audit event that its chain hash covers."""
    return {
        "uuid": uuid,
        "kind": kind,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "subject": subject,
        "detail": detail,
        "occurred_at": occurred_at.isoformat(timespec="microseconds"),
    }


def exposure_chain_fields(
    *,
    uuid: str,
    user_id: int,
    item_id: int | None,
    kind: str,
    started_at: datetime,
    seconds: float,
    area: float,
    recorded_at: datetime,
) -> dict[str, Any]:
    """The fields of an exposure record that its chain hash covers. The two measures as whole
    thousandths of a second and millionths of the picture, rounded down (one IEEE double
    multiplication: the same in PostgreSQL), so the server and Python write the same text."""
    return {
        "uuid": uuid,
        "user_id": user_id,
        "item_id": item_id,
        "kind": str(kind),
        "started_at": started_at.isoformat(timespec="microseconds"),
        "ms": math.floor(seconds * 1000),
        "area_ppm": math.floor(area * 1_000_000),
        "recorded_at": recorded_at.isoformat(timespec="microseconds"),
    }


#: The columns of a decision row its chain hash covers: exactly the keyword arguments of
#: :func:`decision_chain_fields` (the row stores each under the same name).
DECISION_CHAINED: tuple[str, ...] = tuple(inspect.signature(decision_chain_fields).parameters)
#: The columns of an audit event its chain hash covers (of :func:`audit_chain_fields`).
AUDIT_CHAINED: tuple[str, ...] = tuple(inspect.signature(audit_chain_fields).parameters)


#: The columns of an exposure record its chain hash covers.
EXPOSURE_CHAINED: tuple[str, ...] = tuple(inspect.signature(exposure_chain_fields).parameters)


def exposure_fields_of(row: Any) -> dict[str, Any]:
    """The chained fields of a stored exposure record."""
    return exposure_chain_fields(**{name: getattr(row, name) for name in EXPOSURE_CHAINED})


def decision_fields_of(row: Any) -> dict[str, Any]:
    """The chained fields of a stored decision (anything with the columns as attributes)."""
    return decision_chain_fields(**{name: getattr(row, name) for name in DECISION_CHAINED})


def audit_fields_of(row: Any) -> dict[str, Any]:
    """The chained fields of a stored audit event."""
    return audit_chain_fields(**{name: getattr(row, name) for name in AUDIT_CHAINED})
