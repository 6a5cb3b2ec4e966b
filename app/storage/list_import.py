"""Importing a partner's list: the parsed entries (app.core.exchange) written to ``hash_list``
under their list, incrementally and idempotently, in one transaction.

* An entry already in the list (same algorithm and value; a video frame: within the same
  video) is left alone, or updated when its labels, source fields or last seen changed: the
  same file imported twice changes nothing.
* An entry marked deleted in the file, or (for a whole list, the default) absent from it, is
  retracted with the import as its reason (``retraction_decision_uuid`` = the import's audit
  event). A file without a single good line retracts nothing.
* New entries are written in bulk: COPY on PostgreSQL, executemany batches on SQLite (an ORM
  object per row costs ~10x more: 1M lines would take minutes). Core SQL is invisible to the
  flush hook of app.storage.notify, so the import sends the NOTIFY itself.
* On a team server (app.storage.server_api.on_server) people write no table: this side reads
  the list and plans the changes; the server's ``hd_api_import_entries``
  (app/storage/sql/api_lists.sql) checks and writes them, in parts of :data:`PART` changes,
  each on the record with its own event (which names the rows it added, with their digest, and
  those it retracted), all in the one transaction. 100,000 new PDQ entries: 25 s (the row
  checks of the triggers this design has since retired took 15 s of it), against 22 s for
  the INSERTs it replaces and 5 s for COPY without the server program.

Measured with ``hashdesk bench --lists`` on the shared 2-core VM, 1,000,000 PDQ lines: SQLite
48 s (SQLAlchemy's executemany of dicts: 62 s, hence the driver's own with tuples), PostgreSQL
30 s with COPY; parsing is 4-5 s of it. See README, "Performance".
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, TextClause, bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.errors import Refusal
from app.core.exchange import ExchangeEntry, ParsedList
from app.core.matching.hash_lists import (
    LOCAL_LIST,
    ImportSummary,
    ListPolicy,
    check_list_name,
    check_pdq_threshold,
)
from app.core.model.chain import hash_rows_digest_v2, id_ranges
from app.core.model.domain import Algorithm, UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.models import HashList, HashListEntry
from app.storage.notify import notify_hash_list
from app.storage.permissions import authorize
from app.storage.server_api import call, on_server

if TYPE_CHECKING:
    from psycopg.sql import Composed

BATCH = 20_000
#: Changes per call of the server's import (hd_api_import_entries), each part on the record
#: with its own event.
PART = 10_000
#: The longest labels (space-separated) and source fields (JSON) an entry may carry; the server
#: holds the same limits.
LABELS_MAX, META_MAX = 4000, 20000
_FRAME = Algorithm.PDQ_FRAME.value
_T: Table = HashListEntry.__table__  # type: ignore[assignment]
COLUMNS = (
    "algorithm",
    "value",
    "quality",
    "frame_ts",
    "variant",
    "list_name",
    "added_by",
    "added_at",
    "external_id",
    "labels",
    "meta",
    "first_seen",
    "last_seen",
)


@functools.cache
def _pg_copy() -> Composed:
    """PostgreSQL's bulk write (COPY), names quoted by the driver."""
    from psycopg.sql import SQL, Identifier  # PostgreSQL only: not at every start

    columns = SQL(", ").join(Identifier(c) for c in COLUMNS)
    return SQL("COPY hash_list ({}) FROM STDIN").format(columns)


class ListImportError(Refusal, ValueError):
    """An import refused as a whole (the list cannot take it): one line saying why."""


@dataclass
class _Existing:
    id: int
    labels: str | None
    meta: str | None
    last_seen: datetime | None


@dataclass(frozen=True)
class ListSettings:
    """What the import sets on its list (None: leave as it is; a new list gets "queue")."""

    source: str | None = None
    policy: ListPolicy | None = None
    pdq_threshold: int | None = None
    allow: bool | None = None


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _the_list(s: Session, name: str, settings: ListSettings, now: datetime) -> HashList:
    row = s.scalar(select(HashList).where(HashList.name == name).with_for_update())
    if row is None:
        row = HashList(
            name=name,
            source=settings.source,
            policy=settings.policy or ListPolicy.QUEUE,
            pdq_threshold=settings.pdq_threshold,
            allow=bool(settings.allow),
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return row
    changed = False
    for attr, value in (
        ("source", settings.source),
        ("policy", settings.policy.value if settings.policy else None),
        ("pdq_threshold", settings.pdq_threshold),
        ("allow", settings.allow),
    ):
        if value is not None and getattr(row, attr) != value:
            setattr(row, attr, value)
            changed = True
    if changed:
        row.updated_at = now
    return row


def list_rule(row: HashList) -> dict[str, Any]:
    """A list's complete rule as its audit events carry it (every change of it is on the
    record with the whole rule after it: app.storage.verification compares)."""
    return {
        "policy": str(ListPolicy(row.policy).value),
        "pdq_threshold": row.pdq_threshold,
        "allow": bool(row.allow),
    }


def entry_problem(e: ExchangeEntry) -> str | None:
    """Why an entry cannot be imported (the server refuses the same: hd_api_import_entries),
    or None. The parsers check the hash itself; these are the fields around it."""
    if e.quality is not None and not 0 <= e.quality <= 100:
        return f"quality {e.quality} is not 0 to 100"
    if e.frame_ts is not None and not 0 <= e.frame_ts <= 1e9:
        return f"frame time {e.frame_ts} is not a time in a video"
    if len(e.variant) > 16 or not (e.variant in ("", "trimmed") or e.variant.startswith("region:")):
        return f"variant {e.variant!r} is not one of '', trimmed, region:*"
    if e.external_id is not None and len(e.external_id) > 256:
        return "an external id is at most 256 characters"
    labels = " ".join(e.labels)
    if len(labels) > LABELS_MAX or len(json.dumps(dict(e.meta), sort_keys=True)) > META_MAX:
        return "its labels or source fields are too long"
    return None


@dataclass
class _Plan:
    """What an import changes: the entries to add, the provenance to update, the ids to retract
    (marked deleted in the file; gone from a whole list)."""

    new: list[ExchangeEntry]
    updates: list[dict[str, Any]]
    deleted: list[int]
    gone: list[int]


def _plan(
    s: Session, parsed: ParsedList, list_name: str, complete: bool, summary: ImportSummary
) -> _Plan:
    existing: dict[tuple[str, str, str], _Existing] = {}
    for row_id, algo, value, ext, labels, meta, last_seen in s.execute(
        select(
            _T.c.id,
            _T.c.algorithm,
            _T.c.value,
            _T.c.external_id,
            _T.c.labels,
            _T.c.meta,
            _T.c.last_seen,
        ).where(_T.c.list_name == list_name, _T.c.retracted_at.is_(None))
    ):
        key = (algo, value, (ext or "") if algo == _FRAME else "")
        existing[key] = _Existing(row_id, labels, meta, last_seen)

    plan = _Plan([], [], [], [])
    seen: set[tuple[str, str, str]] = set()
    for e in parsed.entries:
        key = e.key()
        ex = existing.get(key)
        if e.deleted:
            if ex is not None and key not in seen:
                plan.deleted.append(ex.id)
                seen.add(key)
            continue
        if key in seen:
            summary.duplicates += 1
            continue
        seen.add(key)
        labels = " ".join(e.labels) or None
        meta = json.dumps(dict(e.meta), sort_keys=True) if e.meta else None
        if ex is None:
            plan.new.append(e)
        elif (labels, meta) != (ex.labels, ex.meta) or (
            e.last_seen is not None and e.last_seen != ex.last_seen
        ):
            plan.updates.append(
                {
                    "b_id": ex.id,
                    "labels": labels,
                    "meta": meta,
                    "last_seen": e.last_seen or ex.last_seen,
                }
            )
        else:
            summary.unchanged += 1
    if complete:
        if parsed.entries:
            plan.gone = [ex.id for key, ex in existing.items() if key not in seen]
        elif existing:
            summary.problems = [
                *(summary.problems or []),
                (0, "no good line in the file: nothing retracted"),
            ]
    summary.added, summary.updated = len(plan.new), len(plan.updates)
    summary.retracted = len(plan.deleted) + len(plan.gone)
    return plan


def import_parsed(
    db: Database,
    parsed: ParsedList,
    list_name: str,
    *,
    actor: UserInfo,
    settings: ListSettings = ListSettings(),
    complete: bool = True,
    file_name: str = "",
    progress: Callable[[int, int], None] | None = None,
    also: Callable[[Session, ImportSummary], None] | None = None,
) -> ImportSummary:
    """Write ``parsed`` into ``list_name`` (see the module docstring). ``complete``: the file
    is the whole list, so entries missing from it are retracted. ``also``: more to write in
    the import's own transaction (a delta's sequence number: app.storage.deltas)."""
    t0 = time.perf_counter()
    try:
        list_name = check_list_name(list_name)
        check_pdq_threshold(settings.pdq_threshold)
    except ValueError as exc:
        raise ListImportError(str(exc)) from None
    if settings.source is not None and len(settings.source) > 255:
        raise ListImportError("a list's source is at most 255 characters")
    good, problems = [], list(parsed.problems)
    for e in parsed.entries:
        why = entry_problem(e)
        if why is None:
            good.append(e)
        else:
            problems.append((e.line, why))
    parsed = replace(parsed, entries=good, problems=problems)
    if not parsed.entries:
        # Nothing to import (a wrong format, a folder of pictures): the list stays untouched.
        first = (
            f": line {parsed.problems[0][0]}: {parsed.problems[0][1]}" if parsed.problems else ""
        )
        raise ListImportError(
            f"no hash could be read from {file_name or 'the file'} as {parsed.fmt} "
            f"({parsed.lines} line(s), {len(parsed.problems)} bad{first}): nothing imported, "
            f"list {list_name} left as it was"
        )
    if list_name == LOCAL_LIST:
        raise ListImportError(
            "the local list holds our own confirms: import into a list of its own"
        )
    summary = ImportSummary(
        list_name,
        parsed.fmt,
        lines=parsed.lines,
        unsupported=dict(parsed.unsupported),
        problems=list(parsed.problems),
    )
    done = 0
    total = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    with db.session() as s:
        user = authorize(s, actor, Permission.IMPORT_HASHES)
        if on_server(s):
            # The server writes it (hd_api_import_entries), in parts; nothing here can lock
            # the list, so the server checks the plan against the list as it is then.
            plan = _plan(s, parsed, list_name, complete, summary)
            total = len(plan.new) + len(plan.updates) + summary.retracted
            _import_on_server(s, plan, summary, settings, file_name, step)
            if also is not None:
                also(s, summary)
            summary.seconds = time.perf_counter() - t0
            return summary
        now = utcnow()
        the_list = _the_list(s, list_name, settings, now)
        plan = _plan(s, parsed, list_name, complete, summary)
        new_rows = [
            (
                e.algorithm.value,
                e.value,
                e.quality,
                e.frame_ts,
                e.variant,
                list_name,
                user.id,
                now,
                e.external_id,
                " ".join(e.labels) or None,
                json.dumps(dict(e.meta), sort_keys=True) if e.meta else None,
                e.first_seen or now,
                e.last_seen or e.first_seen or now,
            )
            for e in plan.new
        ]
        total = len(new_rows) + len(plan.updates) + summary.retracted

        _insert(s, new_rows, step)
        for batch in _chunks(plan.updates, BATCH):
            s.execute(
                update(_T)
                .where(_T.c.id == bindparam("b_id"))
                .values(labels=bindparam("labels"), meta=bindparam("meta"))
                .values(last_seen=bindparam("last_seen")),
                batch,
            )
            step(len(batch))
        added_ids = s.scalars(
            select(_T.c.id).where(
                _T.c.list_name == list_name, _T.c.added_at == now, _T.c.added_by == user.id
            )
        ).all()
        # The event names what the import did (app.storage.verification checks the list
        # against it): the rows it added (their ids and the digest of their hashes), the ids
        # it retracted, and the list's rule after it; the server's import writes the same.
        event = append_event(
            s,
            AuditKind.IMPORT,
            actor_id=user.id,
            actor_name=user.username,
            subject=list_name,
            detail=_facts(summary, file_name)
            | {
                "added": summary.added,
                "updated": summary.updated,
                "retracted": summary.retracted,
                "added_ids": id_ranges(added_ids),
                "added_digest": hash_rows_digest_v2(
                    (r[0], r[4], r[1], r[2], r[3], None, list_name) for r in new_rows
                ),
                "retracted_ids": id_ranges([*plan.deleted, *plan.gone]),
                "rule": list_rule(the_list),
            },
            occurred_at=now,
        )
        summary.import_id = event.uuid
        for ids, why in (
            (plan.deleted, "marked deleted"),
            (plan.gone, "gone from the list"),
        ):
            reason = (
                f"{why} in import {event.uuid[:8]} of {file_name or parsed.fmt} into {list_name}"
            )
            for batch in _chunks(ids, BATCH):
                s.execute(
                    update(_T)
                    .where(_T.c.id.in_(batch))
                    .values(
                        retracted_at=now,
                        retracted_by=user.id,
                        retraction_reason=reason,
                        retraction_decision_uuid=event.uuid,
                    )
                )
                step(len(batch))
        the_list.last_import_at = now
        the_list.last_import_note = summary.lines_text()[0]
        if also is not None:
            also(s, summary)
        if total and s.get_bind().dialect.name == "postgresql":
            notify_hash_list(s)  # core SQL: the flush hook does not see it
    summary.seconds = time.perf_counter() - t0
    return summary


def _facts(summary: ImportSummary, file_name: str) -> dict[str, Any]:
    """What the import's event says of the file (the counts of what changed are added)."""
    return {
        "file": file_name,
        "format": summary.fmt,
        "lines": summary.lines,
        "unchanged": summary.unchanged,
        "bad_lines": len(summary.problems or []),
        "unsupported": dict(summary.unsupported or {}),
    }


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _import_on_server(
    s: Session,
    plan: _Plan,
    summary: ImportSummary,
    settings: ListSettings,
    file_name: str,
    step: Callable[[int], None],
) -> None:
    """The plan through hd_api_import_entries, in parts of at most :data:`PART` changes (each
    on the record with its own event; the first is the import's id)."""
    ops: list[tuple[str, Any]] = [
        *(("add", e) for e in plan.new),
        *(("update", u) for u in plan.updates),
        *(("deleted", i) for i in plan.deleted),
        *(("gone", i) for i in plan.gone),
    ]
    parts = list(_chunks(ops, PART)) or [[]]
    facts = _facts(summary, file_name)
    note = summary.lines_text()[0]
    statement = text(
        "SELECT * FROM hd_api_import_entries(:list, CAST(:add AS jsonb), "
        "CAST(:update AS jsonb), :deleted, :gone, CAST(:facts AS jsonb), :note, :source, "
        ":policy, :threshold, :allow)"
    )
    added = updated = retracted = 0
    for k, part in enumerate(parts, 1):
        add = [
            {
                "algorithm": e.algorithm.value,
                "value": e.value,
                "quality": e.quality,
                "frame_ts": e.frame_ts,
                "variant": e.variant,
                "external_id": e.external_id,
                "labels": " ".join(e.labels) or None,
                "meta": json.dumps(dict(e.meta), sort_keys=True) if e.meta else None,
                "first_seen": _iso(e.first_seen),
                "last_seen": _iso(e.last_seen),
            }
            for what, e in part
            if what == "add"
        ]
        updates = [
            {"id": u["b_id"], "labels": u["labels"], "meta": u["meta"]}
            | {"last_seen": _iso(u["last_seen"])}
            for what, u in part
            if what == "update"
        ]
        part_facts = facts | ({"part": f"{k}/{len(parts)}"} if len(parts) > 1 else {})
        ((uuid, n_added, n_updated, n_retracted),) = api(
            s,
            statement,
            {
                "list": summary.list_name,
                "add": json.dumps(add),
                "update": json.dumps(updates),
                "deleted": [i for what, i in part if what == "deleted"],
                "gone": [i for what, i in part if what == "gone"],
                "facts": json.dumps(part_facts),
                "note": note,
                "source": settings.source,
                "policy": settings.policy.value if settings.policy else None,
                "threshold": settings.pdq_threshold,
                "allow": settings.allow,
            },
        )
        summary.import_id = summary.import_id or uuid
        added, updated, retracted = added + n_added, updated + n_updated, retracted + n_retracted
        step(len(part))
    summary.added, summary.updated, summary.retracted = added, updated, retracted


def api(s: Session, statement: TextClause, params: dict[str, Any]) -> list[Any]:
    """One call of the server's import (app/storage/sql/api_lists.sql): a value it refuses
    (SQLSTATE 22023) is a ListImportError with the server's reason."""
    try:
        return call(s, statement, params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            first = str(exc.orig).strip().splitlines()[0]
            raise ListImportError(first.removeprefix("hashdesk: ")) from None
        raise


def _insert(s: Session, rows: list[tuple[Any, ...]], step: Callable[[int], None]) -> None:
    if not rows:
        return
    engine = s.get_bind()
    if engine.dialect.name == "postgresql":
        raw: Any = s.connection().connection.driver_connection
        with raw.cursor() as cur, cur.copy(_pg_copy()) as copy:
            for batch in _chunks(rows, BATCH):
                for r in batch:
                    copy.write_row(r)
                step(len(batch))
        return
    # SQLite: the driver's executemany with plain tuples, times in SQLAlchemy's own stored
    # form (its per-row parameter processing doubled the time of a 1M-line import).
    raw_conn: Any = s.connection().connection.driver_connection
    sql = str(insert(_T).compile(dialect=s.get_bind().dialect, column_keys=list(COLUMNS)))
    times = [i for i, c in enumerate(COLUMNS) if c in ("added_at", "first_seen", "last_seen")]
    cache: dict[datetime, str] = {}

    def stored(dt: datetime | None) -> str | None:
        if dt is None:
            return None
        text_ = cache.get(dt)
        if text_ is None:
            text_ = cache[dt] = dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        return text_

    for batch in _chunks(rows, BATCH):
        out = []
        for r in batch:
            row = list(r)
            for i in times:
                row[i] = stored(row[i])
            out.append(row)
        raw_conn.executemany(sql, out)
        step(len(batch))
