"""The `hashdesk` command: gui, demo, ingest, worker, intake, users, lists, audit, db, bench,
self-test."""

from __future__ import annotations

import argparse
import getpass
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from app import __version__
from app.compose import AppContext, SignInError, open_context, open_db, sign_in
from app.core.errors import Refusal, describe
from app.core.ingest.jobs import IngestJob, ManifestError, jobs_from_paths, read_manifest
from app.core.model.domain import UserInfo
from app.core.model.roles import Permission, PermissionDenied, allowed
from app.core.model.taxonomy import TaxonomyError
from app.core.reports import plural
from app.core.settings.config import ConfigError, Settings, load_settings
from app.storage.db import DatabaseError
from app.storage.users import UserError
from app.tools.bench import PARTS as BENCH_PARTS


class CliError(Refusal):
    pass


PROGRESS_EVERY = 1000  # without a terminal (a log, a pipe): one line per this many files


def _progress(done: int, total: int) -> None:
    """A bar on a terminal; a line per thousand files otherwise (on stderr either way)."""
    if sys.stderr.isatty():
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
        if done == total:
            sys.stderr.write("\n")
    elif done % PROGRESS_EVERY == 0 and done < total:
        sys.stderr.write(f"{done}/{total} files analysed\n")
    sys.stderr.flush()


def print_summary(summary) -> None:
    """Totals that add up (each file in exactly one bucket), then the details."""
    f = summary.files
    parts = [
        f"{f.get('new', 0)} new",
        # A copy of an item already in the database, or of a file earlier in this run.
        f"{f.get('copy', 0)} exact {'copy' if f.get('copy', 0) == 1 else 'copies'} "
        "(a sighting added to the item)",
        f"{f.get('unreadable', 0)} unreadable",
    ]
    if f.get("missing"):
        parts.append(f"{f['missing']} missing")
    if f.get("skipped"):
        parts.append(f"{f['skipped']} skipped")
    print(f"ingested {plural(summary.total, 'file')}: {', '.join(parts)}")
    if summary.auto_matched:
        print(f"  {summary.auto_matched} new item(s) matched the hash list and were auto-resolved")
    if summary.clustered:
        print(
            f"  {plural(summary.clustered, 'near-duplicate')} joined "
            f"{plural(summary.clusters, 'cluster')} in the queue (one decision covers a cluster)"
        )
    for path, why in summary.unreadable:
        print(f"  unreadable: {path}: {why}")
    for path in summary.missing:
        print(f"  missing: {path} (named in the manifest, not found)")
    for path, why in summary.skipped:
        print(f"  skipped: {path}: {why}")
    for problem in summary.manifest_problems:
        print(f"  manifest: {problem}")


def cmd_ingest(args, settings: Settings) -> int:
    from app.core.ingest.jobs import presence

    jobs: list[IngestJob] = []
    problems: list[str] = []
    if args.manifest:
        m_jobs, m_problems = read_manifest(args.manifest, args.source or "manifest", args.reason)
        jobs += m_jobs
        problems += m_problems
    if args.paths:
        for p in args.paths:
            why = presence(Path(p))
            if why == "missing":
                raise CliError(f"no such file or folder: {p}")
            if why is not None:
                raise CliError(f"{p}: {why}")
        jobs += jobs_from_paths(args.paths, source=args.source or "manual", reason=args.reason)
    if not jobs:
        raise CliError("nothing to ingest: give files or folders, or --manifest FILE")
    ctx, who = _acting(settings, args.as_user, "ingest", required=settings.team_sign_in)
    if ctx.intake.queue:
        try:
            return _enqueue(ctx, who, jobs, problems, wait=args.wait)
        finally:
            ctx.close()
    try:
        print(f"ingesting {plural(len(jobs), 'file')}…", file=sys.stderr, flush=True)
        summary = ctx.ingest(jobs, problems, progress=_progress, actor=who)
        print_summary(summary)
    finally:
        ctx.close()
    if summary.missing:
        # Everything else is ingested; a file the manifest promised and did not deliver is an
        # error a script running this must see.
        print(
            f"hashdesk: error: {plural(len(summary.missing), 'file')} named in the manifest "
            "not found",
            file=sys.stderr,
        )
        return 1
    return 0


def _enqueue(ctx: AppContext, who, jobs: list[IngestJob], problems: list[str], wait: bool) -> int:
    """Ingest on the queue (HASHDESK_INGEST_MODE=queue): each file received (copied into the
    media store, its arrival and job recorded); with ``wait``, a bar until every job is done."""
    import time

    from app.core.ingest.jobs import presence
    from app.core.ingest.sidecar import IntakeMeta
    from app.core.model.deadlines import with_source_deadline
    from app.storage.intake import IntakeError

    ids: list[int] = []
    missing: list[str] = []
    kept: list[tuple[str, str]] = []
    print(f"enqueueing {plural(len(jobs), 'file')}…", file=sys.stderr, flush=True)
    for n, job in enumerate(jobs, 1):
        if presence(job.path) is not None:
            missing.append(str(job.path))
            continue
        sighting = with_source_deadline(job.sighting, ctx.settings.source_deadlines)
        meta = IntakeMeta(
            source=sighting.source,
            external_id=sighting.external_id,
            source_url=sighting.source_url,
            reason=sighting.reason,
            reporter=None,
            score=sighting.score,
            received_at=sighting.flagged_at,
            deadline=sighting.deadline,
        )
        try:
            got = ctx.intake.receive(path=job.path, meta=meta, via="cli", actor=who)
            ids.append(got.receipt_id)
        except IntakeError as exc:
            kept.append((str(job.path), describe(exc)))
        _progress(n, len(jobs))
    print(f"enqueued {plural(len(ids), 'file')} for the workers")
    for path in missing:
        print(f"  missing: {path}")
    for path, why in kept:
        print(f"  not enqueued: {path}: {why}")
    for problem in problems:
        print(f"  manifest: {problem}")
    if wait and ids:
        print("waiting for the workers (Ctrl+C stops waiting; the jobs go on)…", file=sys.stderr)
        while True:
            states = ctx.intake.states(ids)
            done = sum(1 for st in states.values() if st != "waiting")
            _progress(done, len(ids))
            if done == len(ids):
                break
            time.sleep(1.0)
        recorded = sum(1 for st in states.values() if st == "done")
        refused = [rid for rid, st in states.items() if st == "refused"]
        print(f"recorded {plural(recorded, 'file')}, {len(refused)} refused")
        for rid in refused:
            row = ctx.intake.receipt(rid)
            print(f"  refused: {row.original_name if row else rid}: {row.error if row else ''}")
    return 1 if missing or kept else 0


def cmd_worker(args, settings: Settings) -> int:
    from app.storage.jobqueue import WorkerConfig, default_worker_name, run_worker

    if not settings.database_url.startswith("postgresql"):
        raise CliError(
            "a worker takes jobs from the team PostgreSQL's queue: set HASHDESK_DATABASE_URL "
            "to it (a SQLite workstation ingests in its own process)"
        )
    import threading

    ctx, who = _acting(settings, args.as_user, "a worker", required=settings.team_sign_in)
    if who is not None and not allowed(who.role, Permission.INGEST):
        ctx.close()
        raise CliError(
            f"{who.username} ({who.role.value}) may not ingest: a worker signs in as an account "
            "of role worker (or admin)"
        )
    name = args.name or default_worker_name()
    me: dict[str, int] = {}
    named = threading.Event()

    def hello(worker_id: int) -> None:
        me["id"] = worker_id
        try:
            ctx.intake.hello(worker_id, name, actor=who)
        finally:
            named.set()
        print(f"worker {name} (#{worker_id}): taking jobs", file=sys.stderr, flush=True)

    def job(receipt_id: int, _name: str) -> None:
        named.wait(30)  # the first job may come before the worker has said who it is
        ctx.intake.run_job(receipt_id, worker=name, worker_id=me.get("id"), actor=who)

    config = WorkerConfig(
        name=name,
        heartbeat_s=settings.worker_heartbeat_s,
        stalled_s=settings.worker_stalled_s,
        retry_s=settings.intake_retry_s,
        max_jobs=args.max_jobs,
        until_empty=args.until_empty,
    )
    try:
        n = run_worker(
            ctx.db.engine.url.render_as_string(hide_password=False),
            settings.connect_args,
            job,
            config,
            hello,
        )
    finally:
        ctx.close()
    print(f"worker {name}: {plural(n, 'job')} done")
    return 0


def cmd_intake(args, settings: Settings) -> int:
    if args.intake_cmd in ("serve", "token", "reports", "close-report"):
        return _intake_http(args, settings)
    if args.intake_cmd == "status":
        from datetime import timedelta

        from app.storage.intake_status import intake_status, status_lines

        ctx, _who = _acting(settings, args.as_user, "intake status", required=settings.team_sign_in)
        try:
            st = intake_status(
                ctx.db,
                window=timedelta(minutes=args.minutes),
                stalled_after=timedelta(seconds=settings.worker_stalled_s),
            )
            reports = ctx.intake_reports.open_count()
        finally:
            ctx.close()
        print("\n".join(status_lines(st)))
        if reports is not None:
            n, oldest = reports
            since = f", the oldest received {oldest:%Y-%m-%d %H:%M} UTC" if oldest else ""
            print(
                f"reports without a file: {n} open{since}"
                + (" (`hashdesk intake reports`)" if n else "")
            )
        return 0
    return _watch(args, settings)


def _watch(args, settings: Settings) -> int:
    import signal
    from datetime import timedelta

    from app.core.ingest.dropfolder import DropFolder

    ctx, who = _acting(settings, args.as_user, "the drop folder", required=settings.team_sign_in)
    stopping = {"now": False}

    def stop(*_a) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)

    def receive(path: Path, meta, key: str, name: str) -> int:
        got = ctx.intake.receive(
            path=path, meta=meta, via="drop", actor=who, original_name=name, key=key
        )
        return got.receipt_id

    try:
        folder = DropFolder(
            args.folder,
            receive,
            default_source=args.source,
            source_deadlines=settings.source_deadlines,
            settle_s=args.settle,
            stale_s=args.stale,
            say=lambda line: print(line, flush=True),
        )
        if not ctx.intake.queue:  # arrivals a stopped watcher received and never recorded
            ctx.intake.run_waiting(timedelta(seconds=args.stale))
        where = "the queue" if ctx.intake.queue else "this process (no queue: local ingest)"
        print(
            f"watching {folder.root} as {folder.id}; jobs go to {where} (Ctrl+C stops)",
            file=sys.stderr,
            flush=True,
        )
        retry = None
        if not ctx.intake.queue:
            # Jobs run here: an arrival whose job did not finish (SQLite busy under another
            # writer, say) is run again after --stale seconds, by this watcher or another.
            last = {"at": time.monotonic()}

            def retry() -> None:
                if time.monotonic() - last["at"] >= args.stale:
                    last["at"] = time.monotonic()
                    ctx.intake.run_waiting(timedelta(seconds=args.stale))

        folder.run(lambda: stopping["now"], poll_s=args.poll, between=retry)
    finally:
        ctx.close()
    return 0


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password: use --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat it: "):
        raise CliError("the passwords differ")
    return first


def _password_of(name: str) -> str:
    password = os.environ.get("HASHDESK_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise CliError(f"no terminal to ask for {name}'s password: set HASHDESK_ADMIN_PASSWORD")
        password = getpass.getpass(f"Password for {name}: ")
    return password


def _acting(
    settings: Settings, name: str | None, what: str, *, required: bool = False
) -> tuple[AppContext, UserInfo | None]:
    """Where to act and as whom. On a team database (a PostgreSQL URL without a user name)
    the person signs in to the server as themselves and everything runs on that connection;
    otherwise the configured connection, and the named account signed in when given."""
    if settings.team_sign_in:
        if not name:
            raise CliError(f"{what} on a team database needs your account: give --as NAME")
        try:
            return sign_in(settings, name, _password_of(name))
        except SignInError as exc:
            raise CliError(f"sign-in as {name} failed: {exc}") from None
    ctx = open_context(settings)
    if not name:
        if required:
            ctx.close()
            raise CliError(f"{what} needs an account: give --as NAME")
        return ctx, None
    try:
        return ctx, _sign_in(ctx.users, name, what)
    except BaseException:
        ctx.close()
        raise


def _sign_in(users, name: str | None, what: str, who: str = "an admin"):
    """The acting account for a change: signs in (rate-limited and recorded like the GUI).
    ``who``: the accounts that may make it, for the message when none is given."""
    if not name:
        raise CliError(f"{what} needs {who}: give --as NAME")
    actor = users.authenticate(name, _password_of(name))
    if actor is None:
        raise CliError(f"sign-in as {name} failed: wrong password, or the account is disabled")
    return actor


def cmd_users(args, settings: Settings) -> int:
    from app.storage.server_security import enforced

    acting_as = getattr(args, "as_user", None)
    if args.users_cmd == "passwd":
        acting_as = acting_as or args.name
    if settings.team_sign_in and args.users_cmd != "list":
        ctx, actor = _acting(settings, acting_as, f"users {args.users_cmd}", required=True)
    else:
        ctx, actor = open_context(settings), None
    try:
        users = ctx.users
        # The schema owner's own connection to a team database (`db upgrade`'s), without --as:
        # the owner acts as itself (the server's account functions check the connection;
        # accounts from before enforcement have no Hashdesk password left to sign in with).
        owner = (
            not settings.team_sign_in
            and not getattr(args, "as_user", None)
            and enforced(ctx.db.engine)
        )
        if args.users_cmd == "add":
            if actor is None and users.count() == 0:
                # An empty database: the first account is the admin, made without signing in.
                if args.role != "admin":
                    raise CliError(
                        "this database has no users yet: the first one must be an admin "
                        f"(hashdesk users add {args.name} --role admin)"
                    )
                info = users.create_first_admin(args.name, _read_password(args), args.display_name)
                print(f"added {info.username} ({info.role.value}), the first admin")
                return 0
            if not owner:
                actor = actor or _sign_in(users, args.as_user, "adding a user")
            password = _read_password(args)
            info = users.add(args.name, password, args.role, args.display_name, actor=actor)
            print(f"added {info.username} ({info.role.value})")
        elif args.users_cmd == "disable":
            if not owner:
                actor = actor or _sign_in(users, args.as_user, "disabling a user")
            info = users.disable(args.name, actor=actor)
            print(f"disabled {info.username}")
        elif args.users_cmd == "passwd":
            if not owner:
                actor = actor or _sign_in(users, acting_as, "changing a password")
            info = users.set_password(args.name, _read_password(args), actor=actor)
            print(f"changed the password of {info.username}")
        else:
            accounts = users.list()
            if not accounts:
                print(
                    "no users yet: add the first admin with "
                    "`hashdesk users add NAME --role admin` (or start `hashdesk gui`)"
                )
            for u in accounts:
                state = "active" if u.active else "disabled"
                print(f"{u.username:20} {u.role.value:10} {state:9} {u.display_name}")
    finally:
        ctx.close()
    return 0


def cmd_audit(args, settings: Settings) -> int:
    import json

    from app.core.model.domain import Role
    from app.core.settings.config import data_dir
    from app.storage.audit import recent_events, verify_chains
    from app.storage.verification import (
        SeenHeads,
        checkpoint,
        compare_with,
        read_checkpoint,
        verify_hash_list,
        verify_other_records,
    )

    kept = None
    if args.audit_cmd == "verify" and args.checkpoint:
        try:
            kept = read_checkpoint(Path(args.checkpoint))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    ctx, who = _acting(settings, args.as_user, f"audit {args.audit_cmd}")
    if who is not None and who.role not in (Role.LEAD, Role.ADMIN):
        ctx.close()
        raise CliError(
            f"audit {args.audit_cmd} needs a lead or admin: {who.username} is a {who.role.value}"
        )
    db = ctx.db
    try:
        if args.audit_cmd == "list":
            for e in reversed(recent_events(db, args.kind, args.limit)):
                who = e.actor_name or "system"
                print(f"{e.occurred_at:%Y-%m-%d %H:%M:%S}  {e.kind:17} {who:16} {e.subject or ''}")
            return 0
        reports = verify_chains(db)
        if args.audit_cmd == "checkpoint":
            # Written even over a broken chain: the break is already there to be named, and
            # the checkpoint lets every later edit be seen too.
            if not all(r.ok for r in reports):
                print(
                    "warning: the chains are broken (`hashdesk audit verify` names where); "
                    "the checkpoint holds them as they are now",
                    file=sys.stderr,
                )
            print(json.dumps(checkpoint(db, reports), sort_keys=True))
            return 0
        seen = SeenHeads(data_dir() / "chain-heads.json")
        problems = [str(p) for p in verify_hash_list(db)]
        others = [str(p) for p in verify_other_records(db)]
        earlier = seen.get(db.label)
        compared: list[str] = []
        if earlier is not None:
            compared += [str(p) for p in compare_with(earlier, reports, db, "this workstation")]
        if kept is not None:
            compared += [str(p) for p in compare_with(kept, reports, db, "the checkpoint")]
        if all(r.ok for r in reports):
            seen.remember(db.label, checkpoint(db, reports)["chains"])
    finally:
        ctx.close()
    bad = [r for r in reports if not r.ok]
    for r in reports:
        state = "intact" if r.ok else f"BROKEN ({len(r.problems)} entries)"
        print(f"{r.chain}: {r.entries} entries checked, {state}, head {r.head[:16]}")
        for problem in r.problems:
            print(f"  {problem}")
    if kept is not None:
        print(f"checkpoint of {kept.get('taken_at', '?')}: compared")
    for p in compared:
        print(p)
    print(f"hash list: {'matches the record' if not problems else 'DIFFERS from the record'}")
    for p in problems:
        print(f"  {p}")
    state = "match the record" if not others else "DIFFER from the record"
    print(f"list rules, second reviews, exposure: {state}")
    for p in others:
        print(f"  {p}")
    return 1 if bad or problems or others or compared else 0


def cmd_db(args, settings: Settings) -> int:
    if args.db_cmd == "set-password":
        return _set_db_password(args, settings)
    if args.db_cmd == "upgrade":
        if settings.team_sign_in:
            raise CliError(
                "`db upgrade` runs as the schema owner: put the owner's user name in the URL "
                "(HASHDESK_DATABASE_URL=postgresql+psycopg://OWNER@HOST/DB)"
            )
        from app.compose import check_server_asks_passwords

        try:
            check_server_asks_passwords(settings, settings.database_url)
        except SignInError as exc:
            raise CliError(str(exc)) from None
        db = open_db(settings)
        try:
            print(f"database at {db.label} is at schema revision {db.current_revision()}")
            if db.dialect == "postgresql":
                from app.storage.server_security import ServerSecurityError, install

                try:
                    prefix = install(db.engine)
                except ServerSecurityError as exc:
                    raise CliError(str(exc)) from None
                print(
                    f"server-side roles installed: groups {prefix}moderator, {prefix}lead, "
                    f"{prefix}admin, {prefix}worker; each person signs in as {prefix}u_<name>"
                )
        finally:
            db.dispose()
        return 0
    from app.core.settings.config import check_media_root
    from app.storage.inventory import record_counts

    check_media_root(settings.media_root)
    db = open_db(settings, upgrade=False)
    try:
        current, head = db.current_revision(), db.head_revision()
        print(f"database:  {db.dialect} {db.label}")
        print(f"schema:    {current or 'empty'} (this Hashdesk: {head})")
        print(f"media:     {settings.media_root}")
        from app.core.settings.settings_file import settings_path

        print(f"settings:  {settings_path()}")
        if current is not None and current not in db.known_revisions():
            print(
                f"the database's schema ({current}) is newer than this Hashdesk knows: "
                "update Hashdesk on this workstation"
            )
            return 2
        if current is None:
            # A fresh install: not an error. Every command that uses the database (gui, demo,
            # ingest, users add, db upgrade) creates the schema the same way, on first use.
            print(
                "empty:     no tables yet; the first command that uses the database creates "
                "them (or run `hashdesk db upgrade`)"
            )
            return 0
        if current != head:
            print(
                f"the database's schema ({current}) is older than this Hashdesk: "
                "run `hashdesk db upgrade` (every workstation should run the same version)"
            )
            return 2
        for name, n in record_counts(db).lines():
            print(f"{name + ':':11}{n}")
    finally:
        db.dispose()
    return 0


def _set_db_password(args, settings: Settings) -> int:
    from app.core.settings.settings_file import store_password

    url = settings.database_url
    if not url.startswith("postgresql"):
        raise CliError("the database is SQLite: it has no password")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {settings.database_label}: ")
    else:
        raise CliError("no terminal to ask for the password: use --password-stdin")
    try:
        account = store_password(url, password)
    except Exception as exc:
        raise CliError(
            f"the OS keyring cannot store it ({exc}): set HASHDESK_DATABASE_PASSWORD instead"
        ) from None
    print(f"stored the password for {account} in the OS keyring")
    return 0


def _parse_since(raw: str | None):
    from datetime import UTC, datetime

    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {raw!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _rows_progress(done: int, total: int) -> None:
    if not sys.stderr.isatty() or not total:
        return
    filled = int(30 * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} rows")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_lists(args, settings: Settings) -> int:
    from app.core.matching.hash_lists import FeedbackVerdict, ListPolicy
    from app.storage.hash_lists import HashListError, UnknownEntries
    from app.storage.list_import import ListSettings
    from app.storage.rescan import high_water

    # On a team database everything runs on the person's own connection (--as NAME).
    ctx, signed = (
        _acting(
            settings,
            getattr(args, "as_user", None),
            f"lists {args.lists_cmd or 'show'}",
            required=True,
        )
        if settings.team_sign_in
        else (open_context(settings), None)
    )
    service = ctx.hash_lists
    try:
        if args.lists_cmd in (None, "show"):
            print(
                f"{'list':20} {'policy':8} {'PDQ':>4} {'active':>9} {'disabled':>8} "
                f"{'retracted':>9}  last import"
            )
            for li in service.lists(actor=None):
                kind = "allow" if li.allow else li.policy.value
                pdq = str(li.pdq_threshold) if li.pdq_threshold is not None else "-"
                last = f"{li.last_import_at:%Y-%m-%d %H:%M}" if li.last_import_at else "-"
                flood = f"  ({li.flood_guarded} flood-guarded)" if li.flood_guarded else ""
                print(
                    f"{li.name:20} {kind:8} {pdq:>4} {li.active:>9} {li.disabled:>8} "
                    f"{li.retracted:>9}  {last}{flood}"
                )
            return 0
        try:
            if args.lists_cmd == "import" and args.incremental and _is_delta(Path(args.path)):
                actor = signed or _sign_in(ctx.users, args.as_user, "importing hash deltas")
                return _import_deltas(ctx, args, actor)
            if args.lists_cmd == "import":
                actor = signed or _sign_in(ctx.users, args.as_user, "importing a hash list")
                before = high_water(ctx.db)
                summary = service.import_file(
                    Path(args.path),
                    args.list,
                    actor=actor,
                    fmt=args.format,
                    settings=ListSettings(
                        source=args.source,
                        policy=ListPolicy(args.policy) if args.policy else None,
                        pdq_threshold=args.threshold,
                        allow=True if args.allow else None,
                    ),
                    complete=not args.incremental,
                    progress=_rows_progress,
                )
                for line in summary.lines_text():
                    print(line)
                print(f"  in {summary.seconds:.1f} s; import {summary.import_id}")
                # The queue and the recent items matched again against the new hashes only.
                print(ctx.rescanner(actor).after_import(args.list, before).line())
            elif args.lists_cmd == "export":
                actor = signed or _sign_in(
                    ctx.users, args.as_user, "exporting a hash list", "a lead or admin"
                )
                out = service.export_file(
                    Path(args.path),
                    args.format,
                    actor=actor,
                    list_name=args.list,
                    since=_parse_since(args.since),
                    category=args.category,
                    include_variants=args.include_variants,
                )
                print(f"exported {out.entries} hash(es) of {args.list} to {out.path} ({out.fmt})")
                for name, n in sorted(out.skipped.items()):
                    print(f"  {n} {name} hash(es) left out: {out.fmt} cannot carry them")
            elif args.lists_cmd == "set":
                actor = signed or _sign_in(ctx.users, args.as_user, "changing a list")
                service.set_rule(
                    args.name,
                    actor=actor,
                    policy=ListPolicy(args.policy) if args.policy else None,
                    pdq_threshold=args.threshold,
                    allow={"allow": True, "block": False}.get(args.kind or ""),
                    create=args.create,
                )
                print(f"{'made' if args.create else 'changed'} {args.name}")
            elif args.lists_cmd in ("disable", "enable"):
                actor = signed or _sign_in(
                    ctx.users, args.as_user, f"{args.lists_cmd} entries", "a lead or admin"
                )
                try:
                    n = service.set_enabled(
                        args.entries, args.lists_cmd == "enable", args.reason or "", actor=actor
                    )
                except UnknownEntries as exc:
                    print(f"hashdesk: error: {exc}", file=sys.stderr)
                    return 1
                print(f"{args.lists_cmd}d {n} entr{'y' if n == 1 else 'ies'}")
            elif args.lists_cmd == "clear-guard":
                actor = signed or _sign_in(ctx.users, args.as_user, "clearing the flood guard")
                name = service.clear_flood_guard(args.entry, args.reason, actor=actor)
                print(
                    f"cleared the flood guard of entry #{args.entry} ({name}): it resolves "
                    "again as its list's policy says"
                )
            elif args.lists_cmd == "feedback":
                actor = signed or _sign_in(ctx.users, args.as_user, "feedback", "your account")
                if args.export:
                    n = service.export_feedback(Path(args.export), args.list, actor=actor)
                    print(f"wrote feedback on {n} entr{'y' if n == 1 else 'ies'} to {args.export}")
                else:
                    if args.entry is None or args.verdict is None:
                        raise CliError("give --entry ID and --verdict agree|disagree, or --export")
                    service.feedback(args.entry, FeedbackVerdict(args.verdict), actor=actor)
                    print(f"recorded {args.verdict} on entry #{args.entry}")
        except HashListError as exc:
            raise CliError(str(exc)) from None
    finally:
        ctx.close()
    return 0


def _intake_http(args, settings: Settings) -> int:
    """`hashdesk intake serve | token create|revoke|list | reports | close-report`."""
    from app.storage.intake_tokens import ReportError, TokenError

    what = f"intake {args.intake_cmd}"
    if args.intake_cmd == "token":
        what += f" {args.token_cmd}"
    needs_account = args.intake_cmd == "close-report" or (
        args.intake_cmd == "token" and args.token_cmd in ("create", "revoke")
    )
    ctx, who = _acting(
        settings,
        getattr(args, "as_user", None),
        what,
        required=needs_account or settings.team_sign_in,
    )
    try:
        if args.intake_cmd == "serve":
            return _serve_intake(ctx, who, args)
        if args.intake_cmd == "token":
            tokens = ctx.intake_tokens
            if args.token_cmd == "create":
                info, token = tokens.create(args.name, actor=who)
                print(f"made the intake token {info.name!r}; it is shown this once, keep it:")
                print(token)
                print(
                    "(the source sends it as `Authorization: Bearer <token>`; "
                    f"`hashdesk intake token revoke {info.name}` stops it at once)",
                    file=sys.stderr,
                )
            elif args.token_cmd == "revoke":
                info = tokens.revoke(args.name, actor=who)
                print(f"revoked the intake token {info.name!r}: refused from now on")
            else:
                listed = tokens.list()
                if not listed:
                    print("no intake tokens: an admin makes one with "
                          "`hashdesk intake token create NAME --as ADMIN`")  # fmt: skip
                for t in listed:
                    state = (
                        f"revoked {t.revoked_at:%Y-%m-%d %H:%M} by {t.revoked_by or 'the owner'}"
                        if t.revoked_at
                        else "active"
                    )
                    print(
                        f"{t.name:24} made {t.created_at:%Y-%m-%d %H:%M} by "
                        f"{t.created_by or 'the owner':12} {state}"
                    )
            return 0
        reports = ctx.intake_reports
        if args.intake_cmd == "close-report":
            r = reports.close(args.report, args.note, actor=who)
            print(f"closed report {r.id} ({r.source}, {r.source_url or r.external_id})")
            return 0
        listed = reports.list(open_only=not args.all, limit=args.limit)
        if not listed:
            print("no open reports" if not args.all else "no reports")
        for r in listed:
            due = f"due {r.deadline:%Y-%m-%d %H:%M}" if r.deadline else "no deadline"
            state = "open" if r.closed_at is None else f"closed by {r.closed_by or '-'}"
            print(
                f"#{r.id:<6} {r.received_at:%Y-%m-%d %H:%M} {due:20} {state:14} {r.source:16} "
                f"{r.external_id or '-'}  {r.source_url or '-'}  (text only: never fetched)"
            )
        return 0
    except (TokenError, ReportError) as exc:
        raise CliError(str(exc)) from None
    finally:
        ctx.close()


def _incident_line(i) -> str:
    end = f"concluded {i.ended_at:%Y-%m-%d %H:%M}" if i.ended_at else "ACTIVE"
    who = f", assigned: {', '.join(i.assigned)}" if i.assigned else ""
    return (
        f"{i.name:20} {i.label:24} started {i.started_at:%Y-%m-%d %H:%M} UTC by "
        f"{i.declared_by or '-'}  {end}{who}"
    )


def _write_out(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _incident_report(ctx, args, signed) -> int:
    """`incident status NAME [--csv F] [--text]` and `incident debrief NAME --html F --csv F`."""
    from app.core.model.situation import figure_rows, milestones, situation_csv, situation_text
    from app.core.reports import debrief_csv, debrief_html, to_text

    sit = ctx.situation.situation(args.name, actor=signed)
    if args.incident_cmd == "debrief":
        if not args.html and not args.csv:
            raise CliError("incident debrief needs --html FILE and/or --csv FILE")
        if args.html:
            _write_out(args.html, debrief_html(sit))
            print(f"wrote the debrief of {sit.name} to {args.html}")
        if args.csv:
            _write_out(args.csv, to_text(debrief_csv, sit))
            print(f"wrote the debrief's figures of {sit.name} to {args.csv}")
        if sit.ended_at is None:
            print(f"note: {sit.name} is still active: the debrief is as of now")
        return 0
    if args.csv:
        _write_out(args.csv, situation_csv(sit))
    if args.text:
        print(situation_text(sit), end="")
        return 0
    state = f"concluded {sit.ended_at:%Y-%m-%d %H:%M}" if sit.ended_at else "ACTIVE"
    print(f"{sit.name} ({sit.label}): started {sit.started_at:%Y-%m-%d %H:%M} UTC, {state}")
    for k, v in figure_rows(sit):
        print(f"  {k + ':':34}{v}")
    for what, when, after in milestones(sit):
        print(f"  {what + ':':34}{when}" + (f"  (+{after})" if after and after != "-" else ""))
    failing = [d for d in sit.deltas if d.status == "failing"]
    for d in failing:
        print(f"  DELTA {d.seq} NOT DELIVERED: {d.last_error}")
    if args.csv:
        print(f"wrote the figures over time to {args.csv}")
    return 0


def cmd_incident(args, settings: Settings) -> int:
    """`hashdesk incident declare|conclude|list|assign` (app.storage.incidents)."""
    from app.core.model.incidents import IncidentError

    verb = args.incident_cmd or "list"
    ctx, signed = _acting(
        settings,
        getattr(args, "as_user", None),
        f"incident {verb}",
        required=verb not in ("list", "status", "debrief"),
    )
    try:
        service = ctx.incidents
        if verb in ("status", "debrief"):
            try:
                return _incident_report(ctx, args, signed)
            except IncidentError as exc:
                raise CliError(str(exc)) from None
        if verb == "list":
            rows = service.list()
            if not rows:
                print("no incidents")
            for i in rows:
                print(_incident_line(i))
            return 0
        assert signed is not None
        try:
            if verb == "declare":
                info = service.declare(
                    args.name,
                    args.label,
                    actor=signed,
                    seed_items=args.seed_item or [],
                    seed_hashes=args.seed_hash or [],
                    sources=args.source or [],
                    categories=args.category or [],
                    delta_minutes=args.delta_minutes,
                    delta_formats=args.delta_format or [],
                )
                print(f"declared: {_incident_line(info)}")
                print(ctx.rescanner(signed).after_declare(info.id).line())
            elif verb == "conclude":
                info = service.conclude(args.name, actor=signed)
                print(f"concluded: {_incident_line(info)}")
            elif verb == "assign":
                info = service.assign(args.name, args.users, actor=signed, remove=args.remove)
                print(f"{info.name}: assigned {', '.join(info.assigned) or 'nobody'}")
            elif verb == "misses":
                if args.clear is not None:
                    if not (args.note or "").strip():
                        raise CliError("--clear needs --note TEXT: what was done with it")
                    m = service.clear_miss(args.clear, args.note, actor=signed)
                    print(f"cleared possible miss #{m.id} (item #{m.item_id})")
                    return 0
                misses = service.possible_misses(actor=signed)
                if not misses:
                    print("no possible misses")
                for m in misses:
                    entry = f"entry #{m.entry_id}" if m.entry_id else "no entry"
                    print(
                        f"#{m.id}  item #{m.item_id}  {entry}  flagged "
                        f"{m.flagged_at:%Y-%m-%d %H:%M} UTC  {m.note or ''}"
                    )
        except IncidentError as exc:
            raise CliError(str(exc)) from None
        return 0
    finally:
        ctx.close()


def _serve_intake(ctx: AppContext, who: UserInfo | None, args) -> int:
    from app.web.intake_http import HttpIntake, serve

    intake = HttpIntake(
        ctx,
        actor=who,
        max_bytes=ctx.settings.intake_max_mb * 1024 * 1024,
        rate_per_minute=ctx.settings.intake_rate_per_minute,
    )
    print(
        f"HTTP intake on http://{args.host}:{args.port} (OpenAPI: /openapi.json; up to "
        f"{ctx.settings.intake_max_mb} MB a file, {ctx.settings.intake_rate_per_minute} "
        "requests a minute a token); plain HTTP: put a TLS reverse proxy in front (README)",
        file=sys.stderr,
        flush=True,
    )
    serve(intake, args.host, args.port)
    return 0


def _is_delta(path: Path) -> bool:
    """A delta manifest, or a folder holding delta manifests (`lists import --incremental`)."""
    if path.is_dir():
        return any(path.glob("hashdesk-delta-*.manifest.json"))
    return path.name.endswith(".manifest.json")


def _import_deltas(ctx, args, actor) -> int:
    from app.core.exchange.deltas import DeltaError
    from app.core.matching.hash_lists import ListPolicy
    from app.storage.list_import import ListSettings

    try:
        result = ctx.deltas.import_deltas(
            Path(args.path),
            args.list,
            actor=actor,
            settings=ListSettings(
                source=args.source,
                policy=ListPolicy(args.policy) if args.policy else None,
                pdq_threshold=args.threshold,
                allow=True if args.allow else None,
            ),
            progress=_rows_progress,
        )
    except DeltaError as exc:
        raise CliError(str(exc)) from None
    for seq, summary in result.imported:
        print(
            f"delta {seq}: {summary.added} added, {summary.retracted} retracted, "
            f"{summary.updated} updated ({summary.fmt})"
        )
    if result.skipped:
        print(f"already imported, nothing done: delta {', '.join(map(str, result.skipped))}")
    if not result.imported and not result.skipped:
        print("no delta to import")
    print(f"{args.list}: imported up to delta {ctx.deltas.last_imported(args.list)}")
    return 0


def cmd_deltas(args, settings: Settings) -> int:
    """`hashdesk deltas run|status|write` (app.storage.deltas)."""
    import time
    from dataclasses import replace

    from app.core.exchange.deltas import DeltaError, check_formats
    from app.storage.deltas import DeltaOutcome

    verb = args.deltas_cmd or "status"
    ctx, signed = _acting(
        settings, getattr(args, "as_user", None), f"deltas {verb}", required=verb != "status"
    )
    try:
        service = ctx.deltas
        if verb == "status":
            return _deltas_status(service, signed)
        assert signed is not None
        cadence = settings.deltas
        try:
            if args.folder or args.command:
                cadence = replace(
                    cadence,
                    folder=Path(args.folder).expanduser() if args.folder else None,
                    command=args.command or None,
                )
            if verb == "write":
                outcome = service.deliver(
                    args.seq, actor=signed, folder=cadence.folder, command=cadence.command
                )
                if not outcome.written:
                    raise CliError(outcome.error or f"delta {args.seq} not written")
                print(outcome.note)
                return 0
            if args.formats:
                cadence = replace(cadence, formats=check_formats(args.formats.split(",")))
            if args.minutes:
                cadence = replace(cadence, minutes=args.minutes)
            if args.always:
                cadence = replace(cadence, always=True)
            if cadence.folder is None and cadence.command is None:
                raise CliError(
                    "deltas need a destination: --folder DIR or --command CMD "
                    "(HASHDESK_DELTAS_FOLDER / HASHDESK_DELTAS_COMMAND)"
                )
            failures = 0
            while True:
                try:
                    outcome = service.run_round(cadence, actor=signed)
                except (DeltaError, DatabaseError) as exc:  # this round only: retried
                    outcome = DeltaOutcome(error=describe(exc))
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                if outcome.error:
                    failures += 1
                    print(f"{stamp} FAILED (retried): {outcome.error}", file=sys.stderr, flush=True)
                else:
                    failures = 0
                    print(f"{stamp} {outcome.note}", flush=True)
                if args.once:
                    return 1 if outcome.error else 0
                # A failure is retried after a short wait, longer while it goes on (at most
                # the poll interval); a delivered delta may have another pending behind it.
                wait = min(args.poll, 5 * 2 ** min(failures, 6)) if failures else args.poll
                if outcome.written:
                    wait = 0.0
                time.sleep(wait)
        except DeltaError as exc:
            raise CliError(str(exc)) from None
    finally:
        ctx.close()


def _deltas_status(service, actor) -> int:
    rows = service.deltas(actor=actor, limit=20)
    trouble = service.trouble()
    if trouble is not None:
        print(
            f"DELTA {trouble.seq} NOT DELIVERED after {trouble.attempts} attempt(s), last at "
            f"{trouble.last_error_at:%Y-%m-%d %H:%M:%S} UTC: {trouble.last_error}"
        )
    if not rows:
        print("no deltas yet")
        return 0
    print(f"{'delta':>6} {'status':8} {'cut (UTC)':19} {'added':>6} {'retr.':>6}  label / where")
    for d in rows:
        print(
            f"{d.seq:>6} {d.status:8} {d.span_end:%Y-%m-%d %H:%M:%S} {d.added:>6} "
            f"{d.retracted:>6}  {d.label or '-'} {d.destination or ''}".rstrip()
        )
    print(f"changes since the last delta: {service.pending_changes()}")
    return 0


def cmd_dense(args, settings: Settings) -> int:
    """`hashdesk dense run|status`: the dense frames of confirmed videos (app.storage.dense)
    still missing: counted, or hashed and added now (as the review window does in the
    background after each confirm), in the named account's name."""
    from app.storage.dense import DenseRunner, pending_dense

    verb = args.dense_cmd or "status"
    ctx, signed = _acting(settings, getattr(args, "as_user", None), f"dense {verb}",
                          required=verb == "run")  # fmt: skip
    try:
        if verb == "status":
            limit = getattr(args, "limit", 1000)
            waiting = pending_dense(ctx.db, limit=limit)
            print(f"{len(waiting)} confirmed video(s) without dense frames"
                  + (" (at least)" if len(waiting) >= limit else ""))  # fmt: skip
            return 0
        assert signed is not None
        rescanner = ctx.rescanner(signed)
        runner = DenseRunner(ctx.db, ctx.store.path_for, signed.id, after=rescanner.after_entries)
        results = runner.run_pending(limit=args.limit)
        rows = sum(r.added for r in results)
        print(f"dense frames: {len(results)} confirmed video(s), {rows} rows added")
        return 0
    finally:
        ctx.close()


def cmd_gui(args, settings: Settings) -> int:
    _require_display_libraries()
    from app.ui.app import run_gui

    if settings.team_sign_in:
        from app.ui.app import run_team_gui

        return run_team_gui(settings)  # each person signs in to the server as themselves
    # An empty database: the window asks for the first admin account (FirstRunDialog).
    return run_gui(open_context(settings))


DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
DEMO_LEAD = "lead"


def prepare_demo(folder: Path, count: int = 40, *, team: bool = False) -> AppContext:
    """A throwaway database, media root and decision journal in ``folder`` (nothing in the
    user data directory), filled with sample items and a demo moderator and lead. ``team``:
    a quarter of decisions sampled for second review (the simulated team's history has some)."""
    from app.core.model.domain import Role
    from app.tools.demo import write_demo_media

    settings = load_settings(
        {
            "HASHDESK_DATABASE_URL": f"sqlite:///{(folder / 'demo.sqlite3').as_posix()}",
            "HASHDESK_MEDIA_ROOT": str(folder / "media"),
            **({"HASHDESK_SECOND_REVIEW_PERCENT": "25"} if team else {}),
        }
    )
    ctx = open_context(settings, journal_dir=folder)
    manifest = write_demo_media(folder / "incoming", count=count)
    jobs, problems = read_manifest(manifest)
    print_summary(ctx.ingest(jobs, problems, progress=_progress))
    if ctx.users.get(DEMO_USER) is None:
        ctx.users.add(DEMO_USER, DEMO_PASSWORD, Role.MODERATOR, "Demo Moderator")
    if ctx.users.get(DEMO_LEAD) is None:
        ctx.users.add(DEMO_LEAD, DEMO_PASSWORD, Role.LEAD, "Demo Lead")
    return ctx


def cmd_demo(args, settings: Settings) -> int:
    # Checked before anything is generated: a missing display library is one line naming the
    # package, not an abort after a minute of work.
    if not args.no_gui:
        _require_display_libraries()
    temporary = not args.dir
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="hashdesk-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        ctx = prepare_demo(folder, args.count, team=args.lead)
        if args.lead:
            from app.tools.demo_history import simulate_team_history

            lead = ctx.users.get(DEMO_LEAD)
            n = simulate_team_history(ctx, lead, DEMO_PASSWORD)
            print(f"simulated a few hours of team work: {n} decisions")
        print(
            f"demo data in {folder} (users {DEMO_USER!r}, a moderator, and {DEMO_LEAD!r}, a "
            f"lead; password {DEMO_PASSWORD!r})"
        )
        if args.no_gui:
            if temporary:
                print(f"kept {folder} (--no-gui): remove it when you are done with it")
                temporary = False
            ctx.close()
            return 0
        from app.ui.app import run_gui

        who = DEMO_LEAD if args.lead else DEMO_USER
        try:
            return run_gui(ctx, ctx.users.get(who))
        finally:
            ctx.close()
    finally:
        if temporary:  # a folder we made: the demo leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)


def _require_display_libraries() -> None:
    """Qt aborts the process when its platform plugin cannot load: say why first, in a line."""
    from app.ui.display_check import display_problem

    problem = display_problem()
    if problem:
        raise CliError(problem)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hashdesk", description=__doc__)
    p.add_argument("--version", action="version", version=f"hashdesk {__version__}")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("gui", help="open the review window (the default)")
    demo = sub.add_parser("demo", help="open the app on a throwaway database of sample items")
    demo.add_argument("--dir", help="folder for the demo data (default: a new temporary folder)")
    demo.add_argument("--count", type=int, default=40, help="about how many files")
    demo.add_argument("--no-gui", action="store_true", help="prepare the data only")
    demo.add_argument(
        "--lead", action="store_true", help="sign in as the demo lead (history, statistics)"
    )
    ing = sub.add_parser("ingest", help="add flagged files to the queue")
    ing.add_argument("paths", nargs="*", help="files or folders (recursive)")
    ing.add_argument("--source", help="where the flags came from (default: manual)")
    ing.add_argument("--reason", help="why the files were flagged")
    ing.add_argument("--manifest", help="CSV or JSON-lines file with per-file facts")
    ing.add_argument("--as", dest="as_user", help="your account (a team database: required)")
    ing.add_argument(
        "--wait",
        action="store_true",
        help="with HASHDESK_INGEST_MODE=queue: show progress until the workers are done",
    )
    wk = sub.add_parser(
        "worker", help="take ingest jobs from the team database's queue (any number, anywhere)"
    )
    wk.add_argument("--as", dest="as_user", help="the worker's account (role worker)")
    wk.add_argument("--name", help="how the leads see it (default: host:pid)")
    wk.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    wk.add_argument("--until-empty", action="store_true", help="stop when the queue is empty")
    intake = sub.add_parser(
        "intake",
        help="items that arrive on their own: drop folder, HTTP intake and its tokens, status",
    )
    isub = intake.add_subparsers(dest="intake_cmd", required=True)
    watch = isub.add_parser("watch", help="take the files put in a drop folder, exactly once")
    watch.add_argument("folder", help="the drop folder (NAME, and optionally NAME.json)")
    watch.add_argument("--source", default="drop_folder", help="source of files without one")
    watch.add_argument("--as", dest="as_user", help="the account (may ingest)")
    watch.add_argument("--poll", type=float, default=1.0, help="seconds between scans")
    watch.add_argument(
        "--settle", type=float, default=2.0, help="seconds a file must stay unchanged first"
    )
    watch.add_argument(
        "--stale",
        type=float,
        default=60.0,
        help="seconds without a beat before another watcher adopts a watcher's claims",
    )
    ist = isub.add_parser("status", help="backlog, rates, workers' heartbeats, failures")
    ist.add_argument("--as", dest="as_user", help="your account (a team database: a lead)")
    ist.add_argument("--minutes", type=int, default=5, help="the window of the rates")
    users = sub.add_parser("users", help="manage user accounts")
    usub = users.add_subparsers(dest="users_cmd", required=True)
    add = usub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["moderator", "lead", "admin", "worker"])
    add.add_argument("--display-name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    as_help = "the admin making the change (password asked, or HASHDESK_ADMIN_PASSWORD)"
    add.add_argument("--as", dest="as_user", help=as_help)
    usub.add_parser("list", help="list users")
    dis = usub.add_parser("disable", help="disable a user (kept, cannot sign in)")
    dis.add_argument("name")
    dis.add_argument("--as", dest="as_user", help=as_help)
    pw = usub.add_parser("passwd", help="set a user's password (yours, or anyone's as an admin)")
    pw.add_argument("name")
    pw.add_argument("--as", dest="as_user", help="an admin, if not the user themself")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    audit = sub.add_parser("audit", help="the tamper-evident record")
    asub = audit.add_subparsers(dest="audit_cmd", required=True)
    aver = asub.add_parser(
        "verify",
        help="recompute the chains and the hash list they imply; compare with the heads this "
        "workstation saw (exit 1 on any difference)",
    )
    aver.add_argument("--checkpoint", metavar="FILE", help="also prove nothing up to it changed")
    aver.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    acp = asub.add_parser(
        "checkpoint", help="print each chain's length and head, to keep elsewhere"
    )
    acp.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    alist = asub.add_parser("list", help="recent administrative events")
    alist.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    alist.add_argument("--kind", help="only this kind (user_added, login_failed, export, ...)")
    alist.add_argument("--limit", type=int, default=50)
    db = sub.add_parser("db", help="database schema")
    dsub = db.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("upgrade", help="apply migrations")
    dsub.add_parser("info", help="where the database is, its schema version and counts")
    spw = dsub.add_parser("set-password", help="keep the database password in the OS keyring")
    spw.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    from app.core.exchange import FORMATS

    lists = sub.add_parser("lists", help="hash lists: show, import, export, rules, entries")
    lsub = lists.add_subparsers(dest="lists_cmd")
    lshow = lsub.add_parser("show", help="the lists with their counts (the default)")
    lshow.add_argument("--as", dest="as_user", help="your account (a team database)")
    imp = lsub.add_parser("import", help="import a partner's list from a file")
    imp.add_argument("path", help="the file (vpdq: a frame list, or a folder of them)")
    imp.add_argument("--list", required=True, help="the list to import into (made if new)")
    imp.add_argument("--format", choices=FORMATS, help="default: detected from the content")
    imp.add_argument("--policy", choices=["resolve", "queue", "off"], help="a new list: queue")
    imp.add_argument("--threshold", type=int, help="the list's own PDQ threshold (0-64)")
    imp.add_argument("--allow", action="store_true", help="an allow list (known-benign content)")
    imp.add_argument("--source", help="where the list comes from (shown with it)")
    imp.add_argument(
        "--incremental",
        action="store_true",
        help="the file holds changes only: entries missing from it stay; a delta manifest "
        "or a folder of deltas: imported in order",
    )
    imp.add_argument("--as", dest="as_user", help=as_help)
    exp = lsub.add_parser("export", help="export a list's active hashes")
    exp.add_argument("path", help="the file to write (vpdq: a folder)")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--list", default="local", help="which list (default: local)")
    exp.add_argument("--since", help="only hashes added since this date (ISO 8601)")
    exp.add_argument("--category", help="only this category (taxonomy key)")
    exp.add_argument(
        "--include-variants",
        action="store_true",
        help="also the bar-trimmed and half-picture hashes (left out by default)",
    )
    exp.add_argument("--as", dest="as_user", help="a lead or admin (password asked)")
    lset = lsub.add_parser("set", help="change a list's policy, threshold or kind")
    lset.add_argument("name")
    lset.add_argument("--policy", choices=["resolve", "queue", "off"])
    lset.add_argument("--threshold", type=int, help="the list's own PDQ threshold (0-64)")
    lset.add_argument("--kind", choices=["allow", "block"])
    lset.add_argument(
        "--create", action="store_true", help="make the list (empty) if there is none of that name"
    )
    lset.add_argument("--as", dest="as_user", help=as_help)
    for verb in ("disable", "enable"):
        p_ = lsub.add_parser(verb, help=f"{verb} hash-list entries (with a reason)")
        p_.add_argument("entries", nargs="+", type=int, help="entry ids")
        p_.add_argument("--reason", required=True)
        p_.add_argument("--as", dest="as_user", help="a lead or admin (password asked)")
    guard = lsub.add_parser(
        "clear-guard",
        help="let an entry the flood guard holds resolve again (a lead or admin, audited)",
    )
    guard.add_argument("entry", type=int, help="the entry id (`lists` shows flood-guarded counts)")
    guard.add_argument("--reason", required=True)
    guard.add_argument("--as", dest="as_user", help="a lead or admin (password asked)")
    fb = lsub.add_parser(
        "feedback", help="agree or disagree with an entry, or export a list's feedback"
    )
    fb.add_argument("--list", default="local")
    fb.add_argument("--entry", type=int)
    fb.add_argument("--verdict", choices=["agree", "disagree"])
    fb.add_argument("--export", metavar="CSV", help="write the list's feedback for its owner")
    fb.add_argument("--as", dest="as_user", help="the moderator, lead or admin")
    serve = isub.add_parser(
        "serve", help="the HTTP intake (plain HTTP: TLS is the reverse proxy's job)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    serve.add_argument(
        "--as", dest="as_user", help="the account it records as (a team database: required)"
    )
    tok = isub.add_parser("token", help="the sources' tokens for the HTTP intake")
    tsub = tok.add_subparsers(dest="token_cmd", required=True)
    tcreate = tsub.add_parser("create", help="make a source's token (printed once)")
    tcreate.add_argument("name", help="the source (a-z, 0-9, '.', '_', '-')")
    tcreate.add_argument("--as", dest="as_user", help=as_help)
    trevoke = tsub.add_parser("revoke", help="revoke a token: refused at once")
    trevoke.add_argument("name")
    trevoke.add_argument("--as", dest="as_user", help=as_help)
    tlist = tsub.add_parser("list", help="the tokens made, revoked ones too (never a token)")
    tlist.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    irep = isub.add_parser(
        "reports", help="reports that came without a file (URLs: text only, never fetched)"
    )
    irep.add_argument("--all", action="store_true", help="closed ones too")
    irep.add_argument("--limit", type=int, default=100)
    irep.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    iclose = isub.add_parser("close-report", help="close a report (a lead; audited)")
    iclose.add_argument("report", type=int, help="the report's number")
    iclose.add_argument("--note", help="what was done with it")
    iclose.add_argument("--as", dest="as_user", help="a lead or admin (password asked)")
    inc = sub.add_parser(
        "incident", help="incidents: declare, conclude, list, assign, status, debrief, misses"
    )
    isub = inc.add_subparsers(dest="incident_cmd")
    ilist = isub.add_parser("list", help="incidents, the active first (the default)")
    ilist.add_argument("--as", dest="as_user", help="your account (a team database)")
    idec = isub.add_parser("declare", help="declare an incident (a lead)")
    idec.add_argument("name", help="a short name: letters, digits, '_', '.', '-'")
    idec.add_argument("--label", required=True, help="its hash-list label, e.g. a CIP reference")
    idec.add_argument("--seed-item", type=int, action="append", metavar="ID")
    idec.add_argument("--seed-hash", action="append", metavar="ALG:HEX")
    idec.add_argument("--source", action="append", metavar="S", help="sources it covers")
    idec.add_argument("--category", action="append", metavar="C")
    idec.add_argument("--delta-minutes", type=int, default=5, help="hash deltas every N minutes")
    idec.add_argument("--delta-format", action="append", metavar="F")
    idec.add_argument("--as", dest="as_user", help="a lead or admin")
    icon = isub.add_parser("conclude", help="conclude an active incident (a lead)")
    icon.add_argument("name")
    icon.add_argument("--as", dest="as_user", help="a lead or admin")
    ista = isub.add_parser("status", help="an incident's situation: figures, times, deltas")
    ista.add_argument("name")
    ista.add_argument("--csv", metavar="FILE", help="also write the figures over time as CSV")
    ista.add_argument("--text", action="store_true", help="a situational update for partners")
    ista.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    ideb = isub.add_parser("debrief", help="an incident's debrief report (HTML and CSV)")
    ideb.add_argument("name")
    ideb.add_argument("--html", metavar="FILE")
    ideb.add_argument("--csv", metavar="FILE")
    ideb.add_argument("--as", dest="as_user", help="a lead or admin (a team database)")
    imis = isub.add_parser(
        "misses", help="rejected items a re-scan found matching a confirm; clear one (a lead)"
    )
    imis.add_argument("--clear", type=int, metavar="ID", help="clear possible miss ID")
    imis.add_argument("--note", help="what was done with it (needed with --clear)")
    imis.add_argument("--as", dest="as_user", help="a lead or admin")
    iasg = isub.add_parser("assign", help="move people onto an incident's queue (a lead)")
    iasg.add_argument("name")
    iasg.add_argument("users", nargs="+", metavar="USER")
    iasg.add_argument("--remove", action="store_true", help="move them off it instead")
    iasg.add_argument("--as", dest="as_user", help="a lead or admin")
    dl = sub.add_parser("deltas", help="hash deltas out on a cadence: run, status, write")
    dsub2 = dl.add_subparsers(dest="deltas_cmd")
    dstat = dsub2.add_parser("status", help="the recent deltas, and one not delivered (default)")
    dstat.add_argument("--as", dest="as_user", help="your account (a team database)")
    drun = dsub2.add_parser(
        "run",
        help="send deltas every N minutes while an incident is active (a long-running loop)",
    )
    drun.add_argument("--once", action="store_true", help="one round, then exit")
    drun.add_argument("--folder", help="write them into this folder (it must exist)")
    drun.add_argument("--command", help="run this with the delta's folder as last argument")
    drun.add_argument("--formats", help="outside incidents: comma-separated formats")
    drun.add_argument("--minutes", type=int, help="outside incidents: every N minutes")
    drun.add_argument("--always", action="store_true", help="also when no incident is active")
    drun.add_argument("--poll", type=float, default=30.0, help="seconds between rounds")
    drun.add_argument("--as", dest="as_user", help="a lead or admin")
    dwrite = dsub2.add_parser("write", help="write delta N again (the same bytes)")
    dwrite.add_argument("seq", type=int)
    dwrite.add_argument("--folder")
    dwrite.add_argument("--command")
    dwrite.add_argument("--as", dest="as_user", help="a lead or admin")
    dense = sub.add_parser(
        "dense", help="dense frame hashes of confirmed videos: status, or add the missing ones"
    )
    dnsub = dense.add_subparsers(dest="dense_cmd")
    for verb, what in (
        ("status", "how many confirmed videos have no dense frames yet (the default)"),
        ("run", "hash the confirmed videos still without dense frames and add them"),
    ):
        dn = dnsub.add_parser(verb, help=what)
        dn.add_argument("--limit", type=int, default=1000, help="at most this many videos")
        dn.add_argument("--as", dest="as_user", help="an account that may review")
    bench = sub.add_parser(
        "bench",
        help="print performance figures (all parts, or the ones named)",
        description="Performance figures beside their baselines. Parts: "
        + "; ".join(f"{name}: {what}" for name, (what, _s) in BENCH_PARTS.items())
        + ". Without a part, all of them (each says first how long it should take).",
    )
    bench.add_argument("parts", nargs="*", metavar="PART", help=", ".join(BENCH_PARTS))
    bench.add_argument(
        "--history",
        metavar="URL",
        help="instead: first-page time of the lead's history on the database at URL "
        "(fills it with generated decisions first, up to --decisions)",
    )
    bench.add_argument("--decisions", type=int, default=1_000_000, help="with --history")
    bench.add_argument(
        "--dense-minutes",
        type=float,
        metavar="N",
        help="instead: a confirmed video's dense frame hashing of N minutes of 720p H.264 "
        "(the corpus clip copied end to end): time, rows kept, off the main thread",
    )
    bench.add_argument(
        "--lists",
        metavar="URL",
        nargs="?",
        const="",
        help="instead: import a 1,000,000-line PDQ list into the database at URL "
        "(default: a throwaway SQLite file) and time it",
    )
    bench.add_argument("--lines", type=int, default=1_000_000, help="with --lists")
    bench.add_argument(
        "--index",
        metavar="URL",
        nargs="?",
        const="",
        help="instead: a hash list of --entries random PDQ hashes in the database at URL "
        "(default: a throwaway SQLite file): start-up to first match, memory, match time",
    )
    bench.add_argument(
        "--entries", type=int, default=None, help="with --index (1,000,000), --deltas (100,000)"
    )
    bench.add_argument(
        "--deltas",
        metavar="URL",
        nargs="?",
        const="",
        help="instead: hash deltas on --entries local entries in the database at URL (default: "
        "a throwaway SQLite file): take, write, a partner's import",
    )
    bench.add_argument(
        "--intake",
        metavar="URL",
        help="instead: intake throughput with 1 and 2 worker processes on a throwaway schema of "
        "the PostgreSQL server at URL (images/s, minutes of video/s)",
    )
    bench.add_argument(
        "--drill",
        metavar="URL",
        help="instead: the intake drill on the PostgreSQL server at URL: --files through the "
        "drop folder while --workers worker processes are SIGKILLed at random",
    )
    bench.add_argument(
        "--http-files", type=int, default=0, help="with --drill: also this many through HTTP"
    )
    bench.add_argument(
        "--http",
        metavar="URL",
        nargs="?",
        const="",
        help="instead: the HTTP intake's time from a POST to its item in the queue, idle "
        "(default: a throwaway SQLite; URL: a throwaway schema on that PostgreSQL server, with "
        "its job queue and a worker)",
    )
    bench.add_argument("--posts", type=int, default=50, help="with --http")
    bench.add_argument("--files", type=int, default=2000, help="with --drill")
    bench.add_argument("--workers", type=int, default=4, help="with --drill")
    bench.add_argument(
        "--kill-every",
        type=float,
        default=3.0,
        help="with --drill: mean seconds between kills (a worker kept at least 8 s)",
    )
    bench.add_argument("--images", type=int, default=300, help="with --intake")
    bench.add_argument("--videos", type=int, default=4, help="with --intake")
    bench.add_argument(
        "--team",
        metavar="URL",
        help="with review: on a throwaway team database (the server program installed, the "
        "moderator on their own login) on the PostgreSQL server at URL, as a role that may "
        "create roles and schemas",
    )
    bench.add_argument(
        "--video",
        action="store_true",
        help="with evasion: the video evasion set instead of the photos' (sources confirmed, "
        "their edits caught by picture or sound, false matches among the negatives)",
    )
    bench.add_argument(
        "--json",
        metavar="FILE",
        help="with evasion --video: also save every file's result to FILE",
    )
    bench.add_argument(
        "--incident-pg",
        metavar="URL",
        help="with incident: also the re-scan on the PostgreSQL server at URL (in a throwaway "
        "schema)",
    )
    sub.add_parser("self-test", help="check this installation end to end, without a display")
    return p


def cmd_self_test(args, settings: Settings) -> int:
    from app.tools.selftest import run_self_test

    return run_self_test()


COMMANDS = {
    "gui": cmd_gui,
    "demo": cmd_demo,
    "ingest": cmd_ingest,
    "worker": cmd_worker,
    "intake": cmd_intake,
    "users": cmd_users,
    "db": cmd_db,
    "audit": cmd_audit,
    "lists": cmd_lists,
    "incident": cmd_incident,
    "deltas": cmd_deltas,
    "dense": cmd_dense,
    "self-test": cmd_self_test,
}


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # the ingest pool's workers, in a frozen build
    args = build_parser().parse_args(argv)
    cmd = args.cmd or "gui"
    try:
        settings = load_settings()
        if cmd == "bench":
            if args.intake:
                from app.tools.intake_bench import print_bench_intake

                print_bench_intake(args.intake, args.images, args.videos)
                return 0
            if args.drill:
                from app.tools.intake_bench import print_drill

                if args.http_files:
                    from app.tools.intake_http_bench import print_drill_http

                    return print_drill_http(
                        args.drill, args.files, args.workers, args.kill_every, args.http_files
                    )
                return print_drill(args.drill, args.files, args.workers, args.kill_every)
            if args.http is not None:
                from app.tools.intake_http_bench import print_bench_http

                print_bench_http(args.http or None, args.posts)
                return 0
            if args.lists is not None:
                from app.tools.bench import bench_list_import

                bench_list_import(args.lists or None, args.lines)
                return 0
            if args.index is not None:
                from app.tools.bench import bench_index

                bench_index(args.index or None, args.entries or 1_000_000)
                return 0
            if args.deltas is not None:
                from app.tools.bench_deltas import bench_deltas

                bench_deltas(args.deltas or None, args.entries or 100_000)
                return 0
            if args.dense_minutes:
                from app.tools.bench import print_bench_dense

                print_bench_dense(args.dense_minutes)
                return 0
            if args.history:
                from app.tools.bench import bench_history

                bench_history(args.history, args.decisions)
                return 0
            if args.video:
                if args.parts != ["evasion"]:
                    raise CliError("--video goes with the evasion part: bench evasion --video")
                from app.tools.bench import print_bench_video_evasion

                started = time.perf_counter()
                print_bench_video_evasion(Path(args.json) if args.json else None)
                print(f"[evasion --video] took {time.perf_counter() - started:.0f} s", flush=True)
                return 0
            from app.tools.bench import run_bench

            unknown = [p for p in args.parts if p not in BENCH_PARTS]
            if unknown:
                raise CliError(
                    f"no benchmark part {', '.join(unknown)}: choose from {', '.join(BENCH_PARTS)}"
                )
            return run_bench(args.parts or None, team=args.team, incident_pg=args.incident_pg)
        return COMMANDS[cmd](args, settings)
    except (
        CliError,
        ConfigError,
        DatabaseError,
        ManifestError,
        UserError,
        TaxonomyError,
        PermissionDenied,
    ) as exc:
        print(f"hashdesk: error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
