"""Hash deltas out, on a cadence, and a partner's deltas in, in order (issue 23, 3).

Out: :meth:`DeltaService.plan` takes the next number and decides, once, which entries of our
list (``local``) go into it: every entry whose ``change_seq`` (migration 0012: set by the
database on each insert and update) is above the last delta's upper watermark and at most the
highest now, that is now shareable (active, not disabled, the plain picture: no bar-trimmed or
half-picture variant) and was not shared, or was shared and no longer is. On PostgreSQL the
cut waits for every transaction already writing the hash list (a SHARE lock, for an instant),
so no entry with a number below the watermark can commit after it; on SQLite writers commit
one at a time in number order. The entries are recorded (``delta_entries``), so the files of
delta N are written from the record, and writing N again gives the same bytes
(app.core.exchange.deltas). A delta not delivered (folder gone, disk full, the command failed)
stays pending with its error, shown to the leads, and is retried before any new number is
taken: never skipped. Each step is an audited event (``delta``, ``delta_written``,
``delta_failed``). Two runners at once take the same pending delta (an advisory lock on
PostgreSQL, the write lock on SQLite, the unique number beneath both) and write the same bytes.

On a team server every write is one call of app/storage/sql/api_deltas.sql; elsewhere the
same work is done here with the same checks.

In: :meth:`DeltaService.import_deltas` imports a partner's deltas into a list in order through
the list import (app.storage.list_import), recording each number in the import's own
transaction: a gap or a file not matching its checksum is refused naming the number, and
nothing of that delta is imported; a delta imported before is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.exchange import ParsedList
from app.core.exchange.delta_out import DeltaWriteError, run_command, write_folder
from app.core.exchange.deltas import (
    DeltaCadence,
    DeltaContent,
    DeltaError,
    Manifest,
    RenderedDelta,
    check_formats,
    checked_entries,
    manifests_in,
    render,
)
from app.core.matching.hash_lists import LOCAL_LIST, ImportSummary
from app.core.model.chain import id_ranges, ids_of_ranges
from app.core.model.domain import UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.hash_lists import exchange_entry
from app.storage.list_import import ListImportError, ListSettings, import_parsed
from app.storage.models import (
    AuditEvent,
    Delta,
    DeltaEntry,
    DeltaImport,
    HashListEntry,
    Incident,
)
from app.storage.permissions import authorize
from app.storage.server_api import call_checked, on_server

#: The deltas' advisory lock on PostgreSQL ("DLTA"): one planner at a time.
DELTA_LOCK = 0x444C5441
#: The most characters of a delivery error kept with the delta.
ERROR_MAX = 1000
_IN = 5000


@dataclass(frozen=True)
class DeltaRow:
    """One delta as the leads see it."""

    seq: int
    span_start: datetime | None
    span_end: datetime
    label: str | None
    incident_id: int | None
    formats: tuple[str, ...]
    added: int
    retracted: int
    written_at: datetime | None
    destination: str | None
    manifest_sha256: str | None
    attempts: int
    last_error: str | None
    last_error_at: datetime | None

    @property
    def status(self) -> str:
        if self.written_at is not None:
            return "written"
        return "failing" if self.last_error else "pending"


@dataclass
class DeltaOutcome:
    """What one round of the cadence did."""

    seq: int | None = None
    written: bool = False
    error: str | None = None
    note: str = ""


@dataclass
class IncrementalResult:
    imported: list[tuple[int, ImportSummary]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # imported before: nothing done


def _row(d: Delta) -> DeltaRow:
    return DeltaRow(
        d.seq,
        d.span_start,
        d.span_end,
        d.label,
        d.incident_id,
        tuple(json.loads(d.formats or "[]")),
        d.added,
        d.retracted,
        d.written_at,
        d.destination,
        d.manifest_sha256,
        d.attempts or 0,
        d.last_error,
        d.last_error_at,
    )


def _shareable(retracted_at: Any, disabled_at: Any, variant: str | None) -> bool:
    return retracted_at is None and disabled_at is None and not variant


def delta_ops(s: Session, lower: int, upper: int) -> list[tuple[int, str]]:
    """Which entries of ``local`` changed in (lower, upper] now differ from what was last
    shared: (entry id, 'add' | 'retract'), by id."""
    e = HashListEntry
    rows = s.execute(
        select(e.id, e.retracted_at, e.disabled_at, e.variant)
        .where(e.change_seq > lower, e.change_seq <= upper, e.list_name == LOCAL_LIST)
        .order_by(e.id)
    ).all()
    last: dict[int, str] = {}
    ids = [r[0] for r in rows]
    for k in range(0, len(ids), _IN):
        for entry_id, op in s.execute(
            select(DeltaEntry.entry_id, DeltaEntry.op)
            .where(DeltaEntry.entry_id.in_(ids[k : k + _IN]))
            .order_by(DeltaEntry.delta_seq)
        ):
            last[entry_id] = op
    out: list[tuple[int, str]] = []
    for entry_id, retracted_at, disabled_at, variant in rows:
        now_shared = _shareable(retracted_at, disabled_at, variant)
        was = last.get(entry_id)
        if now_shared and was != "add":
            out.append((entry_id, "add"))
        elif not now_shared and was == "add":
            out.append((entry_id, "retract"))
    return out


class DeltaService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- out -------------------------------------------------------------------------------

    def plan(
        self,
        *,
        actor: UserInfo,
        formats: Iterable[str],
        min_interval: timedelta = timedelta(0),
        incident_id: int | None = None,
        label: str | None = None,
    ) -> int | None:
        """The number of the delta to write now: the oldest one not yet delivered, else a new
        one holding the changes since the last (None: nothing changed, or the last was taken
        less than ``min_interval`` ago)."""
        fmts = check_formats(list(formats))
        with self.db.session() as s:
            user = authorize(s, actor, Permission.EXPORT)
            if on_server(s):
                (seq,) = call_checked(
                    s,
                    text(
                        "SELECT hd_api_delta_plan(:min_seconds, :incident, :label, "
                        "CAST(:formats AS jsonb))"
                    ),
                    {
                        "min_seconds": int(min_interval.total_seconds()),
                        "incident": incident_id,
                        "label": label,
                        "formats": json.dumps(list(fmts)),
                    },
                    DeltaError,
                )[0]
                return None if seq is None else int(seq)
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DELTA_LOCK})
                # Every transaction already writing the hash list commits first: no entry with
                # a change_seq at or below the cut can appear after it (one left open: refused
                # after 10 s, taken at the next round).
                s.execute(text("SET LOCAL lock_timeout = '10s'"))
                try:
                    with s.begin_nested():
                        s.execute(text("LOCK TABLE hash_list IN SHARE MODE"))
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03":
                        raise
                    raise DeltaError(
                        "a transaction writing the hash list has been open for over 10 s: the "
                        "delta is taken at the next round"
                    ) from None
                s.execute(text("SET LOCAL lock_timeout = 0"))
            pending = s.scalar(
                select(Delta.seq).where(Delta.written_at.is_(None)).order_by(Delta.seq).limit(1)
            )
            if pending is not None:
                return int(pending)
            last = s.scalar(select(Delta).order_by(Delta.seq.desc()).limit(1))
            now = utcnow()
            if last is not None and now - last.span_end < min_interval:
                return None
            if incident_id is not None:  # the incident's own label, as the server takes it
                label = s.scalar(select(Incident.label).where(Incident.id == incident_id))
                if label is None:
                    raise DeltaError(f"there is no incident #{incident_id}")
            lower = last.upper_seq if last is not None else 0
            upper = int(s.scalar(select(func.max(HashListEntry.change_seq))) or 0)
            ops = delta_ops(s, lower, upper)
            if not ops:
                return None
            seq = (last.seq if last is not None else 0) + 1
            added = [i for i, op in ops if op == "add"]
            retracted = [i for i, op in ops if op == "retract"]
            detail = {
                "seq": seq,
                "window": [lower, upper],
                "added": len(added),
                "retracted": len(retracted),
                "added_ids": id_ranges(added),
                "retracted_ids": id_ranges(retracted),
                "label": label,
                "incident_id": incident_id,
                "formats": list(fmts),
            }
            append_event(
                s,
                AuditKind.DELTA,
                actor_id=user.id,
                actor_name=user.username,
                subject=f"delta:{seq}",
                detail=detail,
                occurred_at=now,
            )
            s.add(
                Delta(
                    seq=seq,
                    lower_seq=lower,
                    upper_seq=upper,
                    span_start=last.span_end if last is not None else None,
                    span_end=now,
                    incident_id=incident_id,
                    label=label,
                    formats=json.dumps(list(fmts)),
                    added=len(added),
                    retracted=len(retracted),
                    planned_by=user.id,
                    attempts=0,
                )
            )
            s.flush()
            s.execute(
                DeltaEntry.__table__.insert(),  # type: ignore[attr-defined]
                [{"delta_seq": seq, "entry_id": i, "op": op} for i, op in ops],
            )
            return seq

    def content(self, seq: int, *, actor: UserInfo) -> tuple[DeltaContent, tuple[str, ...]]:
        """What delta ``seq`` holds, from the record, and its formats."""
        with self.db.session() as s:
            authorize(s, actor, Permission.EXPORT)
            d = s.scalar(select(Delta).where(Delta.seq == seq))
            if d is None:
                raise DeltaError(f"there is no delta {seq}")
            rows = s.execute(
                select(HashListEntry, DeltaEntry.op)
                .join(DeltaEntry, DeltaEntry.entry_id == HashListEntry.id)
                .where(DeltaEntry.delta_seq == seq)
                .order_by(HashListEntry.id)
            ).all()
            added, gone = [], []
            for entry, op in rows:
                x = exchange_entry(entry)
                if op == "add":
                    added.append(x)
                else:  # the retraction as of the delta's cut: the same bytes every time
                    gone.append(replace(x, last_seen=d.span_end))
            incident = (
                s.scalar(select(Incident.name).where(Incident.id == d.incident_id))
                if d.incident_id is not None
                else None
            )
            content = DeltaContent(d.seq, d.span_start, d.span_end, d.label, incident, added, gone)
            return content, tuple(json.loads(d.formats))

    def render(self, seq: int, *, actor: UserInfo) -> RenderedDelta:
        content, formats = self.content(seq, actor=actor)
        return render(content, formats)

    def deliver(
        self,
        seq: int,
        *,
        actor: UserInfo,
        folder: Path | None = None,
        command: str | None = None,
    ) -> DeltaOutcome:
        """Write delta ``seq`` to ``folder`` or through ``command`` and record the outcome
        (written, or failed with the reason: retried by the next round)."""
        if (folder is None) == (command is None):
            raise DeltaError("a delta goes to a folder or to a command: give one of them")
        rendered = self.render(seq, actor=actor)
        where = f"folder {folder}" if folder is not None else f"command {command}"
        try:
            if folder is not None:
                write_folder(rendered, folder)
                note = f"wrote delta {seq} to {folder}"
            else:
                assert command is not None
                last = run_command(rendered, command)
                note = f"delivered delta {seq} through {command.split()[0]}" + (
                    f": {last}" if last else ""
                )
        except DeltaWriteError as exc:
            message = str(exc)
            self.record_failed(seq, message, actor=actor)
            return DeltaOutcome(seq, False, message)
        self.record_written(seq, rendered, where, actor=actor)
        return DeltaOutcome(seq, True, None, note)

    def run_round(self, cadence: DeltaCadence, *, actor: UserInfo) -> DeltaOutcome:
        """One round of the cadence (``hashdesk deltas run``): deliver the delta still
        pending, else take a new one when due (every incident's ``delta_minutes`` while one is
        active, in its formats and with its label; every ``cadence.minutes`` outside incidents
        when ``cadence.always``; once more, at once, after an incident concluded with changes
        not yet sent) and deliver it."""
        if cadence.folder is None and cadence.command is None:
            raise DeltaError(
                "deltas need a destination: --folder DIR or --command CMD "
                "(HASHDESK_DELTAS_FOLDER / HASHDESK_DELTAS_COMMAND)"
            )
        with self.db.session() as s:
            active = list(
                s.scalars(
                    select(Incident)
                    .where(Incident.ended_at.is_(None))
                    .order_by(Incident.started_at, Incident.id)
                )
            )
            last_cut = s.scalar(select(func.max(Delta.span_end)))
            concluded = s.scalar(
                select(Incident)
                .where(
                    Incident.ended_at.is_not(None),
                    *([Incident.ended_at > last_cut] if last_cut is not None else []),
                )
                .order_by(Incident.ended_at.desc())
                .limit(1)
            )
            pending = s.scalar(select(func.min(Delta.seq)).where(Delta.written_at.is_(None)))
        why = ""
        if pending is not None:
            seq: int | None = int(pending)
            why = "retrying"
        elif active:
            inc = active[0]
            seq = self.plan(
                actor=actor,
                formats=json.loads(inc.delta_formats or "[]") or cadence.formats,
                min_interval=timedelta(minutes=inc.delta_minutes or cadence.minutes),
                incident_id=inc.id,
            )
            why = f"incident {inc.name}"
        elif cadence.always:
            seq = self.plan(
                actor=actor,
                formats=cadence.formats,
                min_interval=timedelta(minutes=cadence.minutes),
            )
            why = "always on"
        elif concluded is not None:
            seq = self.plan(
                actor=actor,
                formats=json.loads(concluded.delta_formats or "[]") or cadence.formats,
                incident_id=concluded.id,
            )
            why = f"last of incident {concluded.name}, concluded"
        else:
            return DeltaOutcome(note="no incident active (and deltas are not always on)")
        if seq is None:
            return DeltaOutcome(note=f"nothing to send now ({why})")
        outcome = self.deliver(seq, actor=actor, folder=cadence.folder, command=cadence.command)
        if outcome.written:
            outcome.note = f"{outcome.note} ({why})"
        return outcome

    def record_written(
        self, seq: int, rendered: RenderedDelta, destination: str, *, actor: UserInfo
    ) -> bool:
        """Delta ``seq`` delivered (audited). False when it had been already (a second runner,
        a rewrite): nothing changes."""
        files = [f.facts() for f in rendered.files]
        with self.db.session() as s:
            user = authorize(s, actor, Permission.EXPORT)
            if on_server(s):
                (done,) = call_checked(
                    s,
                    text("SELECT hd_api_delta_written(:seq, :sha, CAST(:files AS jsonb), :dest)"),
                    {
                        "seq": seq,
                        "sha": rendered.manifest_sha256,
                        "files": json.dumps(files),
                        "dest": destination,
                    },
                    DeltaError,
                )[0]
                return bool(done)
            d = s.scalar(select(Delta).where(Delta.seq == seq).with_for_update())
            if d is None:
                raise DeltaError(f"there is no delta {seq}")
            if d.written_at is not None:
                if d.manifest_sha256 != rendered.manifest_sha256:
                    raise DeltaError(
                        f"delta {seq} was written before with another manifest "
                        f"({d.manifest_sha256}): its entries changed on the record"
                    )
                return False
            now = utcnow()
            append_event(
                s,
                AuditKind.DELTA_WRITTEN,
                actor_id=user.id,
                actor_name=user.username,
                subject=f"delta:{seq}",
                detail={
                    "seq": seq,
                    "manifest_sha256": rendered.manifest_sha256,
                    "files": files,
                    "destination": destination,
                    "attempts": (d.attempts or 0) + 1,
                },
                occurred_at=now,
            )
            d.written_at = now
            d.written_by = user.id
            d.manifest_sha256 = rendered.manifest_sha256
            d.destination = destination
            d.attempts = (d.attempts or 0) + 1
            return True

    def record_failed(self, seq: int, message: str, *, actor: UserInfo) -> int:
        """Delta ``seq`` could not be delivered: the reason kept with it and on the record.
        Returns its attempts so far."""
        message = message.strip()[:ERROR_MAX] or "unknown failure"
        with self.db.session() as s:
            user = authorize(s, actor, Permission.EXPORT)
            if on_server(s):
                (n,) = call_checked(
                    s,
                    text("SELECT hd_api_delta_failed(:seq, :message)"),
                    {"seq": seq, "message": message},
                    DeltaError,
                )[0]
                return int(n)
            d = s.scalar(select(Delta).where(Delta.seq == seq).with_for_update())
            if d is None:
                raise DeltaError(f"there is no delta {seq}")
            if d.written_at is not None:
                return d.attempts or 0
            now = utcnow()
            d.attempts = (d.attempts or 0) + 1
            d.last_error = message
            d.last_error_at = now
            append_event(
                s,
                AuditKind.DELTA_FAILED,
                actor_id=user.id,
                actor_name=user.username,
                subject=f"delta:{seq}",
                detail={"seq": seq, "error": message, "attempts": d.attempts},
                occurred_at=now,
            )
            return d.attempts

    def deltas(self, *, actor: UserInfo | None = None, limit: int = 50) -> list[DeltaRow]:
        """The newest deltas first."""
        with self.db.session() as s:
            if actor is not None:
                authorize(s, actor, Permission.VIEW_STATS)
            return [
                _row(d) for d in s.scalars(select(Delta).order_by(Delta.seq.desc()).limit(limit))
            ]

    def trouble(self) -> DeltaRow | None:
        """The oldest delta not delivered whose last try failed (what the leads are shown)."""
        with self.db.session() as s:
            d = s.scalar(
                select(Delta)
                .where(Delta.written_at.is_(None), Delta.last_error.is_not(None))
                .order_by(Delta.seq)
                .limit(1)
            )
            return _row(d) if d is not None else None

    def pending_changes(self) -> int:
        """How many entries of ``local`` changed since the last delta's cut (an upper bound
        of what the next delta holds)."""
        with self.db.session() as s:
            lower = s.scalar(select(func.max(Delta.upper_seq))) or 0
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(HashListEntry)
                    .where(HashListEntry.change_seq > lower, HashListEntry.list_name == LOCAL_LIST)
                )
                or 0
            )

    # -- in --------------------------------------------------------------------------------

    def last_imported(self, list_name: str) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.max(DeltaImport.seq)).where(DeltaImport.list_name == list_name)
                )
                or 0
            )

    def import_deltas(
        self,
        path: Path,
        list_name: str,
        *,
        actor: UserInfo,
        settings: ListSettings = ListSettings(),  # noqa: B008 - frozen
        progress: Callable[[int, int], None] | None = None,
    ) -> IncrementalResult:
        """Import the deltas of ``path`` (a folder of them, or one manifest) into
        ``list_name`` in sequence order, each in its own transaction with its number. Stops
        at the first that cannot be imported (a gap, a bad checksum): DeltaError naming it,
        with the ones before it imported."""
        result = IncrementalResult()
        for m in manifests_in(Path(path)):
            last = self.last_imported(list_name)
            if m.seq <= last:
                self._check_same(list_name, m)
                result.skipped.append(m.seq)
                continue
            if m.seq != last + 1:
                had = (
                    f"the last imported into {list_name} is delta {last}"
                    if last
                    else (f"nothing was imported into {list_name} yet")
                )
                raise DeltaError(
                    f"delta {m.seq} refused: {had}, so delta {last + 1} is missing (a gap): "
                    f"nothing imported from delta {m.seq}"
                )
            fmt, names, entries = checked_entries(m)
            summary = self._import_one(m, fmt, names, entries, list_name, actor, settings, progress)
            result.imported.append((m.seq, summary))
        return result

    def _check_same(self, list_name: str, m: Manifest) -> None:
        with self.db.session() as s:
            sha = s.scalar(
                select(DeltaImport.manifest_sha256).where(
                    DeltaImport.list_name == list_name, DeltaImport.seq == m.seq
                )
            )
        if sha is not None and sha != m.sha256:
            raise DeltaError(
                f"delta {m.seq} was imported into {list_name} before with another manifest: "
                "this one is not the same delta (another sender, or altered): nothing imported"
            )

    def _import_one(
        self,
        m: Manifest,
        fmt: str,
        names: str,
        entries: list,
        list_name: str,
        actor: UserInfo,
        settings: ListSettings,
        progress: Callable[[int, int], None] | None,
    ) -> ImportSummary:
        def record(s: Session, summary: ImportSummary) -> None:
            _record_import(s, actor, list_name, m, summary.import_id)

        if not entries:  # nothing this format carries: the number is still taken, in order
            summary = ImportSummary(list_name, fmt)
            with self.db.session() as s:
                authorize(s, actor, Permission.IMPORT_HASHES)
                record(s, summary)
            return summary
        parsed = ParsedList(fmt, entries, lines=len(entries), complete=False)
        try:
            return import_parsed(
                self.db,
                parsed,
                list_name,
                actor=actor,
                settings=settings,
                complete=False,
                file_name=names,
                progress=progress,
                also=record,
            )
        except ListImportError as exc:
            raise DeltaError(f"delta {m.seq}: {exc}") from None


def _record_import(
    s: Session, actor: UserInfo, list_name: str, m: Manifest, import_uuid: str | None
) -> None:
    """Delta ``m`` imported into ``list_name``, in the import's transaction; refused (the whole
    import rolled back) when it is not the next number."""
    if on_server(s):
        call_checked(
            s,
            text("SELECT hd_api_delta_imported(:list, :seq, :sha, :label, :import)"),
            {
                "list": list_name,
                "seq": m.seq,
                "sha": m.sha256,
                "label": m.label,
                "import": import_uuid,
            },
            DeltaError,
        )
        return
    last = int(
        s.scalar(select(func.max(DeltaImport.seq)).where(DeltaImport.list_name == list_name)) or 0
    )
    if m.seq != last + 1:
        raise DeltaError(
            f"delta {m.seq} refused: the last imported into {list_name} is delta {last}: "
            f"nothing imported from delta {m.seq}"
        )
    now = utcnow()
    append_event(
        s,
        AuditKind.DELTA_IMPORTED,
        actor_id=actor.id,
        actor_name=actor.username,
        subject=list_name,
        detail={"seq": m.seq, "manifest_sha256": m.sha256, "label": m.label, "import": import_uuid},
        occurred_at=now,
    )
    s.add(
        DeltaImport(
            list_name=list_name,
            seq=m.seq,
            manifest_sha256=m.sha256,
            label=m.label,
            import_uuid=import_uuid,
            imported_at=now,
            imported_by=actor.id,
        )
    )


# -- audit verify ----------------------------------------------------------------------------


def verify_deltas(db: Database) -> list[str]:
    """The deltas' tables against their events (``audit verify``): a delta without its
    ``delta`` event, or whose window, label, counts or entries differ from it; one marked
    written without a ``delta_written`` event, or with another manifest; an event whose delta
    is gone; a partner's delta import without its ``delta_imported`` event. Each is a hand
    edit (on a team server only the schema owner can make one)."""
    problems: list[str] = []
    with db.session() as s:
        planned: dict[int, dict[str, Any]] = {}
        written: dict[int, dict[str, Any]] = {}
        imported: dict[tuple[str, int], dict[str, Any]] = {}
        for kind, subject, detail in s.execute(
            select(AuditEvent.kind, AuditEvent.subject, AuditEvent.detail).where(
                AuditEvent.kind.in_(
                    (
                        AuditKind.DELTA.value,
                        AuditKind.DELTA_WRITTEN.value,
                        AuditKind.DELTA_IMPORTED.value,
                    )
                )
            )
        ):
            facts = json.loads(detail or "{}")
            if kind == AuditKind.DELTA.value:
                planned[int(facts["seq"])] = facts
            elif kind == AuditKind.DELTA_WRITTEN.value:
                written[int(facts["seq"])] = facts
            else:
                imported[(str(subject), int(facts["seq"]))] = facts
        ops: dict[int, dict[str, set[int]]] = {}
        for seq, entry_id, op in s.execute(
            select(DeltaEntry.delta_seq, DeltaEntry.entry_id, DeltaEntry.op)
        ):
            ops.setdefault(int(seq), {"add": set(), "retract": set()})[op].add(int(entry_id))
        seen: set[int] = set()
        for d in s.scalars(select(Delta).order_by(Delta.seq)):
            seen.add(d.seq)
            label = f"delta {d.seq}"
            ev = planned.get(d.seq)
            if ev is None:
                problems.append(f"{label} is not on the record (no delta event): written by hand")
                continue
            changed = [
                what
                for what, here, there in (
                    ("window", [d.lower_seq, d.upper_seq], ev.get("window")),
                    ("label", d.label, ev.get("label")),
                    ("incident", d.incident_id, ev.get("incident_id")),
                    ("added", d.added, ev.get("added")),
                    ("retracted", d.retracted, ev.get("retracted")),
                )
                if here != there
            ]
            mine = ops.get(d.seq, {"add": set(), "retract": set()})
            if mine["add"] != ids_of_ranges(ev.get("added_ids", "")) or mine[
                "retract"
            ] != ids_of_ranges(ev.get("retracted_ids", "")):
                changed.append("entries")
            if changed:
                problems.append(f"{label} was altered: {', '.join(changed)} differ from the record")
            w = written.get(d.seq)
            if d.written_at is not None and w is None:
                problems.append(f"{label} is marked written, but the record never saw it delivered")
            elif w is not None and d.manifest_sha256 != w.get("manifest_sha256"):
                problems.append(
                    f"{label} was altered: its manifest's SHA-256 differs from the record"
                )
            elif w is not None and d.written_at is None:
                problems.append(f"{label} was delivered on the record, but is marked pending")
        for seq in sorted(set(planned) - seen):
            problems.append(f"delta {seq} on the record is gone from the deltas table")
        for r in s.scalars(select(DeltaImport).order_by(DeltaImport.id)):
            ev = imported.get((r.list_name, r.seq))
            if ev is None or ev.get("manifest_sha256") != r.manifest_sha256:
                problems.append(
                    f"delta {r.seq} imported into {r.list_name} is not on the record as it "
                    "stands: written by hand"
                )
    return problems
