"""Importing a partner's list: the parsed entries (app.core.exchange) written to ``hash_list``
under their list, incrementally and idempotently, in one transaction.

* An entry already in the list (same algorithm and value; a video frame: within the same
  video) is left alone, or updated when its labels, source fields or last seen changed: the
  same file imported twice changes nothing.
* An entry marked deleted in the file, or (for a whole list, the default) absent from it, is
  retracted with the import as its reason (``retraction_decision_uuid`` = the import's audit
  event). A file without a single good line retracts nothing.
* The import's audit event names what it did, for `audit verify`: the ids of the rows it
  added (as ranges) with the digest of their hashes (app.core.model.chain.hash_rows_digest_v2),
  the ids it retracted, and the list's whole rule after it.
* New entries are written in bulk: COPY on PostgreSQL, executemany batches on SQLite (an ORM
  object per row costs ~10x more: 1M lines would take minutes). Core SQL is invisible to the
  flush hook of app.storage.notify, so the import sends the NOTIFY itself.

Measured with ``hashdesk bench --lists`` on the shared 2-core VM, 1,000,000 PDQ lines: SQLite
48 s (SQLAlchemy's executemany of dicts: 62 s, hence the driver's own with tuples), PostgreSQL
30 s with COPY; parsing is 4-5 s of it. See README, "Performance".
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.core.errors import Refusal
from app.core.exchange import ParsedList
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
from app.storage.server_security import enforced

if TYPE_CHECKING:
    from psycopg.sql import Composed

BATCH = 20_000
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
def _pg_statements() -> tuple[Composed, Composed]:
    """PostgreSQL's two bulk writes (INSERT, COPY), names quoted by the driver."""
    from psycopg.sql import SQL, Identifier, Placeholder  # PostgreSQL only: not at every start

    columns = SQL(", ").join(Identifier(c) for c in COLUMNS)
    insert = SQL("INSERT INTO hash_list ({}) VALUES ({})").format(
        columns, SQL(", ").join(Placeholder() for _ in COLUMNS)
    )
    return insert, SQL("COPY hash_list ({}) FROM STDIN").format(columns)


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
) -> ImportSummary:
    """Write ``parsed`` into ``list_name`` (see the module docstring). ``complete``: the file
    is the whole list, so entries missing from it are retracted."""
    t0 = time.perf_counter()
    try:
        list_name = check_list_name(list_name)
        check_pdq_threshold(settings.pdq_threshold)
    except ValueError as exc:
        raise ListImportError(str(exc)) from None
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
    with db.session() as s:
        user = authorize(s, actor, Permission.IMPORT_HASHES)
        now = utcnow()
        the_list = _the_list(s, list_name, settings, now)
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

        new_rows: list[tuple[Any, ...]] = []
        updates: list[dict[str, Any]] = []
        deleted: list[int] = []
        seen: set[tuple[str, str, str]] = set()
        for e in parsed.entries:
            key = e.key()
            ex = existing.get(key)
            if e.deleted:
                if ex is not None and key not in seen:
                    deleted.append(ex.id)
                    seen.add(key)
                continue
            if key in seen:
                summary.duplicates += 1
                continue
            seen.add(key)
            labels = " ".join(e.labels) or None
            meta = json.dumps(dict(e.meta), sort_keys=True) if e.meta else None
            if ex is None:
                new_rows.append(
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
                        labels,
                        meta,
                        e.first_seen or now,
                        e.last_seen or e.first_seen or now,
                    )
                )
            elif (labels, meta) != (ex.labels, ex.meta) or (
                e.last_seen is not None and e.last_seen != ex.last_seen
            ):
                updates.append(
                    {
                        "b_id": ex.id,
                        "labels": labels,
                        "meta": meta,
                        "last_seen": e.last_seen or ex.last_seen,
                    }
                )
            else:
                summary.unchanged += 1
        gone: list[int] = []
        if complete:
            if parsed.entries:
                gone = [ex.id for key, ex in existing.items() if key not in seen]
            elif existing:
                summary.problems = [
                    *(summary.problems or []),
                    (0, "no good line in the file: nothing retracted"),
                ]
        summary.added, summary.updated = len(new_rows), len(updates)
        summary.retracted = len(deleted) + len(gone)

        total = len(new_rows) + len(updates) + summary.retracted
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        _insert(s, new_rows, step)
        for batch in _chunks(updates, BATCH):
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
        # it retracted, and the list's rule after it.
        event = append_event(
            s,
            AuditKind.IMPORT,
            actor_id=user.id,
            actor_name=user.username,
            subject=list_name,
            detail={
                "file": file_name,
                "format": parsed.fmt,
                "lines": parsed.lines,
                "added": summary.added,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "retracted": summary.retracted,
                "bad_lines": len(summary.problems or []),
                "unsupported": summary.unsupported,
                "added_ids": id_ranges(added_ids),
                "added_digest": hash_rows_digest_v2(
                    (r[0], r[4], r[1], r[2], r[3], None, list_name) for r in new_rows
                ),
                "retracted_ids": id_ranges([*deleted, *gone]),
                "rule": list_rule(the_list),
            },
            occurred_at=now,
        )
        summary.import_id = event.uuid
        for ids, why in (
            (deleted, "marked deleted"),
            (gone, "gone from the list"),
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
        if total and s.get_bind().dialect.name == "postgresql":
            notify_hash_list(s)  # core SQL: the flush hook does not see it
    summary.seconds = time.perf_counter() - t0
    return summary


def _insert(s: Session, rows: list[tuple[Any, ...]], step: Callable[[int], None]) -> None:
    if not rows:
        return
    engine = s.get_bind()
    if engine.dialect.name == "postgresql" and enforced(s.connection().engine):
        # A team server: COPY does not run under row-level security; plain INSERTs (each
        # checked by the server) in batches of the driver's executemany.
        raw_pg: Any = s.connection().connection.driver_connection
        with raw_pg.cursor() as cur:
            for batch in _chunks(rows, BATCH):
                cur.executemany(_pg_statements()[0], batch)
                step(len(batch))
        return
    if engine.dialect.name == "postgresql":
        raw: Any = s.connection().connection.driver_connection
        with raw.cursor() as cur, cur.copy(_pg_statements()[1]) as copy:
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
