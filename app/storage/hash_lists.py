"""The hash lists as leads and admins handle them: the lists with their counts and rules,
entries page by page, retract, disable and enable, import and export in the exchange formats,
agree/disagree feedback. Every change is refused to roles that may not make it and recorded in
the audit chain in the same transaction (docs/ARCHITECTURE.md, "Hash lists and exchange").
The bulk write of an import is app.storage.list_import."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, and_, case, func, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.errors import Refusal
from app.core.exchange import FORMATS, ExchangeEntry, ExchangeError, read_file, write_file
from app.core.matching.hash_lists import (
    LOCAL_LIST,
    EntryFilter,
    EntryPage,
    EntryRow,
    ExportSummary,
    FeedbackVerdict,
    ImportSummary,
    ListInfo,
    ListPolicy,
    check_list_name,
    check_pdq_threshold,
)
from app.core.matching.match_rules import MatchPolicy
from app.core.matching.signal_types import REGION_PREFIX, signal_type
from app.core.model.domain import Algorithm, UserInfo, utcnow
from app.core.model.roles import Permission
from app.storage.audit import AuditKind, append_event
from app.storage.db import Database
from app.storage.hash_list_index import active_entry
from app.storage.list_feedback import add_feedback
from app.storage.list_import import ListImportError, ListSettings, import_parsed, list_rule
from app.storage.models import HashList, HashListEntry, HashListFeedback
from app.storage.permissions import authorize, authorize_or_system
from app.storage.server_api import call, on_server

PAGE_SIZE = 200


class HashListError(Refusal, ValueError):
    pass


#: The most characters a reason (retract, disable, enable, clear a flood guard) may have; the
#: server holds the same limit (app/storage/sql/api_lists.sql, hd_list_reason).
REASON_MAX = 1000


def _reason(reason: str, empty: str) -> str:
    reason = reason.strip()
    if not reason:
        raise HashListError(empty)
    if len(reason) > REASON_MAX:
        raise HashListError(
            f"a reason of {len(reason)} characters is too long (at most {REASON_MAX})"
        )
    return reason


def api(s: Session, statement: TextClause, params: dict[str, Any]) -> list[Any]:
    """One call of the server's hash-list API (app/storage/sql/api_lists.sql): a value it
    refuses (SQLSTATE 22023) is a HashListError with the server's reason."""
    try:
        return call(s, statement, params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "22023":
            first = str(exc.orig).strip().splitlines()[0]
            raise HashListError(first.removeprefix("hashdesk: ")) from None
        raise


class UnknownEntries(HashListError):
    """Entry ids that name no hash-list entry (nothing was changed)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        names = ", ".join(f"#{i}" for i in ids[:10]) + (" …" if len(ids) > 10 else "")
        super().__init__(f"no hash-list entry {names}: nothing changed")


@dataclass(frozen=True)
class ExportedHash:
    id: int
    algorithm: str
    value: str
    category: str | None
    list_name: str
    added_at: str
    variant: str = ""  # "" as decoded, "trimmed" bars removed, "region:<half>" a half picture


class HashListService:
    def __init__(self, db: Database, policy: MatchPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or MatchPolicy()  # the local list's rule comes from the settings

    def retract(self, entry_ids: Collection[int], reason: str, *, actor: UserInfo) -> int:
        """Retract entries (kept, marked retracted, never deleted). Returns how many changed."""
        reason = _reason(reason, "a retraction needs a reason")
        with self.db.session() as s:
            authorize(s, actor, Permission.RETRACT)
            if on_server(s):
                (n,) = api(
                    s,
                    text("SELECT hd_api_retract_entries(:ids, :reason)"),
                    {"ids": sorted(set(entry_ids)), "reason": reason},
                )[0]
                return int(n)
            rows = s.scalars(
                select(HashListEntry)
                .where(HashListEntry.id.in_(list(entry_ids)), HashListEntry.retracted_at.is_(None))
                .order_by(HashListEntry.id)
                .with_for_update()
            ).all()
            now = utcnow()
            if rows:  # the event first: the server accepts a retraction only on the record
                append_event(
                    s,
                    AuditKind.RETRACTION,
                    actor_id=actor.id,
                    actor_name=actor.username,
                    subject=",".join(str(e.id) for e in rows)[:255],
                    detail={"entries": [e.id for e in rows], "reason": reason},
                    occurred_at=now,
                )
            for e in rows:
                e.retracted_at = now
                e.retracted_by = actor.id
                e.retraction_reason = reason
            return len(rows)

    def export_active(
        self,
        *,
        actor: UserInfo,
        list_name: str | None = None,
        purpose: str = "",
        include_halves: bool = False,
    ) -> list[ExportedHash]:
        """The active entries, for sharing with partners. Recorded: who exported what, when.

        Half-picture hashes (``region:*``) are left out unless ``include_halves``: a partner's
        PDQ matcher would compare them with whole pictures, where they mean nothing. Every row
        carries its variant, so a partner can tell a bar-trimmed hash from the plain one."""
        with self.db.session() as s:
            authorize(s, actor, Permission.EXPORT)
            q = select(HashListEntry).where(HashListEntry.retracted_at.is_(None))
            if list_name is not None:
                q = q.where(HashListEntry.list_name == list_name)
            if not include_halves:
                q = q.where(
                    or_(
                        HashListEntry.variant.is_(None),
                        ~HashListEntry.variant.startswith(REGION_PREFIX),
                    )
                )
            rows = [
                ExportedHash(
                    e.id,
                    e.algorithm,
                    e.value,
                    e.category,
                    e.list_name,
                    e.added_at.isoformat(),
                    e.variant or "",
                )
                for e in s.scalars(q.order_by(HashListEntry.id))
            ]
            append_event(
                s,
                AuditKind.EXPORT,
                actor_id=actor.id,
                actor_name=actor.username,
                subject=list_name or "all lists",
                detail={"entries": len(rows), "purpose": purpose},
            )
            return rows

    # -- the lists -----------------------------------------------------------------------

    def lists(self, *, actor: UserInfo | None) -> list[ListInfo]:
        """Every list with its counts (``local`` first), for the lists view and the CLI
        (``actor`` None: a command on this workstation, reading only)."""
        e = HashListEntry
        active = and_(e.retracted_at.is_(None), e.disabled_at.is_(None))
        with self.db.session() as s:
            authorize_or_system(s, actor, Permission.VIEW_HISTORY)
            counts = {
                name: (int(a or 0), int(d or 0), int(r or 0), int(f or 0))
                for name, a, d, r, f in s.execute(
                    select(
                        e.list_name,
                        func.sum(case((active, 1), else_=0)),
                        func.sum(
                            case(
                                (and_(e.retracted_at.is_(None), e.disabled_at.is_not(None)), 1),
                                else_=0,
                            )
                        ),
                        func.sum(case((e.retracted_at.is_not(None), 1), else_=0)),
                        func.sum(
                            case(
                                (
                                    and_(e.retracted_at.is_(None), e.flood_guarded_at.is_not(None)),
                                    1,
                                ),
                                else_=0,
                            )
                        ),
                    ).group_by(e.list_name)
                )
            }
            rows = {r.name: r for r in s.scalars(select(HashList))}
        out = [
            ListInfo(
                LOCAL_LIST,
                "our confirmed decisions",
                ListPolicy.RESOLVE if self.policy.auto_resolve else ListPolicy.QUEUE,
                None,
                False,
                *counts.get(LOCAL_LIST, (0, 0, 0, 0)),
                None,
                None,
            )
        ]
        for name in sorted(rows):
            r = rows[name]
            out.append(
                ListInfo(
                    name,
                    r.source,
                    ListPolicy(r.policy),
                    r.pdq_threshold,
                    bool(r.allow),
                    *counts.get(name, (0, 0, 0, 0)),
                    r.last_import_at,
                    r.last_import_note,
                )
            )
        return out

    def set_rule(
        self,
        list_name: str,
        *,
        actor: UserInfo,
        policy: ListPolicy | None = None,
        pdq_threshold: int | None = None,
        clear_threshold: bool = False,
        allow: bool | None = None,
        source: str | None = None,
        create: bool = False,
    ) -> None:
        """Change a list's policy, threshold, allow flag or source (audited). A list that does
        not exist yet is an error (a mistyped name), unless ``create``: then it is made empty
        (an allow list is often started this way)."""
        list_name = _list_name(list_name)
        try:
            check_pdq_threshold(pdq_threshold)
        except ValueError as exc:
            raise HashListError(str(exc)) from None
        if source is not None and len(source) > 255:
            raise HashListError("a list's source is at most 255 characters")
        with self.db.session() as s:
            user = authorize(s, actor, Permission.IMPORT_HASHES)
            if on_server(s):
                api(
                    s,
                    text(
                        "SELECT hd_api_set_list_rule(:list, :policy, :threshold, :clear, "
                        ":allow, :source, :create)"
                    ),
                    {
                        "list": list_name,
                        "policy": ListPolicy(policy).value if policy is not None else None,
                        "threshold": pdq_threshold,
                        "clear": clear_threshold,
                        "allow": allow,
                        "source": source,
                        "create": create,
                    },
                )
                return
            now = utcnow()
            row = s.scalar(select(HashList).where(HashList.name == list_name).with_for_update())
            if row is None:
                if not create:
                    raise HashListError(
                        f"there is no list {list_name!r}: lists are made by an import, or "
                        "by `lists set NAME --create`"
                    )
                row = HashList(name=list_name, policy=ListPolicy.QUEUE, allow=False, created_at=now)
                s.add(row)
            before = {"policy": row.policy, "pdq_threshold": row.pdq_threshold, "allow": row.allow}
            if policy is not None:
                row.policy = policy
            if pdq_threshold is not None or clear_threshold:
                row.pdq_threshold = pdq_threshold
            if allow is not None:
                row.allow = allow
            if source is not None:
                row.source = source
            row.updated_at = now
            append_event(
                s,
                AuditKind.LIST_CHANGED,
                actor_id=user.id,
                actor_name=user.username,
                subject=list_name,
                detail={
                    "before": before,
                    "after": {
                        "policy": row.policy,
                        "pdq_threshold": row.pdq_threshold,
                        "allow": row.allow,
                    },
                    "rule": list_rule(row),  # the whole rule now: `audit verify` compares
                },
                occurred_at=now,
            )

    # -- import and export ---------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        list_name: str,
        *,
        actor: UserInfo,
        fmt: str | None = None,
        settings: ListSettings = ListSettings(),  # noqa: B008 - frozen
        complete: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportSummary:
        """Parse ``path`` (format detected when ``fmt`` is None) and import it into
        ``list_name``. Bad lines are in the summary with their numbers; the good ones land."""
        try:
            parsed = read_file(Path(path), fmt)
        except ExchangeError as exc:
            raise HashListError(str(exc)) from None
        try:
            return import_parsed(
                self.db,
                parsed,
                list_name,
                actor=actor,
                settings=settings,
                complete=complete,
                file_name=Path(path).name,
                progress=progress,
            )
        except ListImportError as exc:
            raise HashListError(str(exc)) from None

    def export_file(
        self,
        path: Path,
        fmt: str,
        *,
        actor: UserInfo,
        list_name: str = LOCAL_LIST,
        since: datetime | None = None,
        category: str | None = None,
        include_variants: bool = False,
        purpose: str = "",
    ) -> ExportSummary:
        """Write the list's active entries (added since ``since``, of ``category``) in ``fmt``.
        Our categories travel as the taxonomy's keys (GIFCT labels); bar-trimmed and
        half-picture variants stay home unless ``include_variants``. Audited."""
        if fmt not in FORMATS:
            raise HashListError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        e = HashListEntry
        with self.db.session() as s:
            user = authorize(s, actor, Permission.EXPORT)
            q = select(e).where(e.list_name == list_name, *active_entry())
            if since is not None:
                q = q.where(e.added_at >= since)
            if category:
                q = q.where(e.category == category)
            if not include_variants:
                q = q.where(or_(e.variant.is_(None), e.variant == ""))
            entries = [exchange_entry(r) for r in s.scalars(q.order_by(e.id))]
            try:
                n, skipped = write_file(Path(path), fmt, entries, collab=list_name)
            except OSError as exc:
                raise HashListError(f"cannot write {path}: {exc.strerror or exc}") from None
            append_event(
                s,
                AuditKind.EXPORT,
                actor_id=user.id,
                actor_name=user.username,
                subject=list_name,
                detail={
                    "entries": n,
                    "format": fmt,
                    "file": Path(path).name,
                    "since": since.isoformat() if since else None,
                    "category": category,
                    "variants": include_variants,
                    "purpose": purpose,
                },
            )
        return ExportSummary(str(path), fmt, n, dict(skipped))

    # -- entries -------------------------------------------------------------------------

    def entries_page(
        self,
        f: EntryFilter,
        *,
        actor: UserInfo,
        before: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> EntryPage:
        """One page of entries, newest first (keyset on the id: page 50 costs what page 1
        does)."""
        e = HashListEntry
        with self.db.session() as s:
            authorize(s, actor, Permission.VIEW_HISTORY)
            q = select(e)
            if f.list_name:
                q = q.where(e.list_name == f.list_name)
            prefix = f.hash_prefix.strip().lower()
            if prefix:
                q = q.where(e.value.startswith(prefix, autoescape=True))
            if f.label.strip():
                q = q.where(e.labels.contains(f.label.strip(), autoescape=True))
            if not f.include_retracted:
                q = q.where(e.retracted_at.is_(None))
            if before is not None:
                q = q.where(e.id < before)
            rows = list(s.scalars(q.order_by(e.id.desc()).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            votes: dict[tuple[int, str], int] = {}
            if rows:
                fb = HashListFeedback
                for entry_id, verdict, n in s.execute(
                    select(fb.entry_id, fb.verdict, func.count())
                    .where(fb.entry_id.in_([r.id for r in rows]))
                    .group_by(fb.entry_id, fb.verdict)
                ):
                    votes[(entry_id, verdict)] = int(n)
            page = tuple(_entry_row(r, votes) for r in rows)
        return EntryPage(page, page[-1].id if more and page else None)

    def set_enabled(
        self, entry_ids: Collection[int], enabled: bool, reason: str, *, actor: UserInfo
    ) -> int:
        """Disable entries (kept, never matched) or enable them again, with a reason; audited.
        Every workstation's index follows within seconds. Returns how many changed."""
        reason = _reason(reason, f"{'enabling' if enabled else 'disabling'} needs a reason")
        e = HashListEntry
        with self.db.session() as s:
            user = authorize(s, actor, Permission.RETRACT)
            wanted = set(entry_ids)
            missing = wanted - set(s.scalars(select(e.id).where(e.id.in_(list(wanted)))))
            if missing:
                raise UnknownEntries(sorted(missing))
            if on_server(s):
                (n,) = api(
                    s,
                    text("SELECT hd_api_set_entry_disabled(:ids, :disabled, :reason)"),
                    {"ids": sorted(wanted), "disabled": not enabled, "reason": reason},
                )[0]
                return int(n)
            state = e.disabled_at.is_not(None) if enabled else e.disabled_at.is_(None)
            rows = s.scalars(
                select(e)
                .where(e.id.in_(list(entry_ids)), e.retracted_at.is_(None), state)
                .order_by(e.id)
                .with_for_update()
            ).all()
            now = utcnow()
            if rows:  # the event first: a team server accepts the change only on the record
                append_event(
                    s,
                    AuditKind.ENTRY_ENABLED if enabled else AuditKind.ENTRY_DISABLED,
                    actor_id=user.id,
                    actor_name=user.username,
                    subject=",".join(f"entry:{r.id}" for r in rows)[:255],
                    detail={"entries": [r.id for r in rows], "reason": reason},
                    occurred_at=now,
                )
            for r in rows:
                r.disabled_at = None if enabled else now
                r.disabled_by = None if enabled else user.id
                r.disabled_reason = None if enabled else reason
                r.changed_at = now
            return len(rows)

    def clear_flood_guard(self, entry_id: int, reason: str, *, actor: UserInfo) -> str:
        """A lead or admin lets a flood-guarded entry resolve again, with a reason (audited as
        an enable that clears the flood guard; every workstation's index follows). Refused
        with the reason for an entry that does not exist, is retracted, or is not guarded.
        Returns the entry's list."""
        reason = _reason(reason, "clearing the flood guard needs a reason")
        with self.db.session() as s:
            user = authorize(s, actor, Permission.RETRACT)
            if on_server(s):
                (name,) = api(
                    s,
                    text("SELECT hd_api_clear_flood_guard(:id, :reason)"),
                    {"id": entry_id, "reason": reason},
                )[0]
                return str(name)
            r = s.get(HashListEntry, entry_id, with_for_update=True)
            if r is None:
                raise HashListError(f"hash-list entry #{entry_id} does not exist")
            if r.retracted_at is not None:
                raise HashListError(f"hash-list entry #{entry_id} is retracted: nothing to clear")
            if r.flood_guarded_at is None:
                raise HashListError(f"hash-list entry #{entry_id} is not held by the flood guard")
            now = utcnow()
            append_event(  # the event first: a team server accepts the change only on the record
                s,
                AuditKind.ENTRY_ENABLED,
                actor_id=user.id,
                actor_name=user.username,
                subject=f"entry:{entry_id}",
                detail={"entries": [entry_id], "reason": reason, "flood_guard": "cleared"},
                occurred_at=now,
            )
            r.flood_guarded_at = None
            r.changed_at = now
            return r.list_name

    # -- feedback ------------------------------------------------------------------------

    def feedback(
        self,
        entry_id: int,
        verdict: FeedbackVerdict,
        *,
        actor: UserInfo,
        item_id: int | None = None,
        note: str | None = None,
    ) -> None:
        """Agree or disagree with an imported entry."""
        with self.db.session() as s:
            user = authorize(s, actor, Permission.REVIEW)
            list_name = s.scalar(
                select(HashListEntry.list_name).where(HashListEntry.id == entry_id)
            )
            if list_name is None:
                raise HashListError(f"hash-list entry #{entry_id} does not exist")
            if list_name == LOCAL_LIST:
                raise HashListError("feedback is for imported entries: this one is our own")
            add_feedback(s, entry_id, verdict, user.id, item_id, note)

    def export_feedback(self, path: Path, list_name: str, *, actor: UserInfo) -> int:
        """The feedback on a list's entries as CSV for the list's owner: ``signal_type`` and
        ``signal_str`` as python-threatexchange names them, the external id, agree and disagree
        counts, the last note. Audited as an export."""
        e, fb = HashListEntry, HashListFeedback
        with self.db.session() as s:
            user = authorize(s, actor, Permission.EXPORT)
            rows = s.execute(
                select(e.algorithm, e.value, e.external_id, fb.verdict, fb.note, fb.created_at)
                .join(fb, fb.entry_id == e.id)
                .where(e.list_name == list_name)
                .order_by(e.id, fb.id)
            ).all()
            per: dict[tuple[str, str, str], dict[str, Any]] = {}
            for algo, value, ext, verdict, note, at in rows:
                d = per.setdefault(
                    (algo, value, ext or ""), {"agree": 0, "disagree": 0, "note": "", "last": at}
                )
                d[verdict] += 1
                d["note"] = note or d["note"]
                d["last"] = at
            with Path(path).open("w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(
                    [
                        "signal_type",
                        "signal_str",
                        "external_id",
                        "agree",
                        "disagree",
                        "last",
                        "note",
                    ]
                )
                for (algo, value, ext), d in per.items():
                    name = signal_type(algo).exchange_name("pytx") or algo
                    w.writerow(
                        [
                            name,
                            value,
                            ext,
                            d["agree"],
                            d["disagree"],
                            d["last"].isoformat(),
                            d["note"],
                        ]
                    )
            append_event(
                s,
                AuditKind.EXPORT,
                actor_id=user.id,
                actor_name=user.username,
                subject=list_name,
                detail={"feedback_entries": len(per), "file": Path(path).name},
            )
            return len(per)


def _entry_row(r: HashListEntry, votes: dict[tuple[int, str], int]) -> EntryRow:
    """An entry as the lists view shows it (``votes``: feedback counts by (entry, verdict))."""
    return EntryRow(
        r.id,
        r.list_name,
        r.algorithm,
        r.value,
        r.variant or "",
        r.labels or "",
        r.external_id,
        r.category,
        r.added_at,
        r.last_seen,
        "retracted" if r.retracted_at else "disabled" if r.disabled_at else "active",
        r.retraction_reason if r.retracted_at else r.disabled_reason,
        r.flood_guarded_at is not None,
        votes.get((r.id, FeedbackVerdict.AGREE), 0),
        votes.get((r.id, FeedbackVerdict.DISAGREE), 0),
    )


def _list_name(name: str) -> str:
    try:
        name = check_list_name(name)
    except ValueError as exc:
        raise HashListError(str(exc)) from None
    if name == LOCAL_LIST:
        raise HashListError(
            "the local list holds our own confirms: its rule is each workstation's "
            "known_content setting, and imports go into a list of their own"
        )
    return name


def exchange_entry(r: HashListEntry) -> ExchangeEntry:
    """A stored entry as the formats write it. Our own entries carry their category (the
    taxonomy key, a GIFCT label) and, for frames, their item as the video."""
    meta = tuple(json.loads(r.meta).items()) if r.meta else ()
    video = r.external_id if r.list_name != LOCAL_LIST else str(r.item_id or "")
    return ExchangeEntry(
        Algorithm(r.algorithm),
        r.value,
        labels=tuple((r.labels or "").split()),
        external_id=r.external_id if r.list_name != LOCAL_LIST else None,
        first_seen=r.first_seen or r.added_at,
        last_seen=r.last_seen or r.added_at,
        quality=r.quality,
        frame_ts=r.frame_ts,
        video=video or None,
        category=r.category,
        meta=tuple((k, str(v)) for k, v in meta),
        variant=r.variant or "",
        entry_id=r.id,
    )
