"""The tamper-evident chains: the entry hash, and exactly which fields of a decision and of an
audit event it covers. Pure functions, used to append (app.storage.record, app.storage.audit)
and to verify (app.storage.audit), so the two can never disagree: the one place that names
the chained fields (``decision_fields_of`` and ``audit_fields_of`` read them off a row)."""

from __future__ import annotations

import hashlib
import inspect
import json
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
    """The digest a decision's chain entry carries of the hash-list rows it added: SHA-256 of
    the sorted ``algorithm|variant|value`` lines. Order-free, so the writer and the verifier
    can list the rows in any order."""
    lines = sorted(f"{alg}|{variant or ''}|{value.lower()}" for alg, variant, value in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


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


#: The columns of a decision row its chain hash covers: exactly the keyword arguments of
#: :func:`decision_chain_fields` (the row stores each under the same name).
DECISION_CHAINED: tuple[str, ...] = tuple(inspect.signature(decision_chain_fields).parameters)
#: The columns of an audit event its chain hash covers (of :func:`audit_chain_fields`).
AUDIT_CHAINED: tuple[str, ...] = tuple(inspect.signature(audit_chain_fields).parameters)


def decision_fields_of(row: Any) -> dict[str, Any]:
    """The chained fields of a stored decision (anything with the columns as attributes)."""
    return decision_chain_fields(**{name: getattr(row, name) for name in DECISION_CHAINED})


def audit_fields_of(row: Any) -> dict[str, Any]:
    """The chained fields of a stored audit event."""
    return audit_chain_fields(**{name: getattr(row, name) for name in AUDIT_CHAINED})
