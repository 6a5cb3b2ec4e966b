"""The `hashdesk` command: gui, demo, ingest, users, audit, db, bench, self-test."""

from __future__ import annotations

import argparse
import getpass
import multiprocessing
import os
import shutil
import sys
import tempfile
from pathlib import Path

from app import __version__
from app.bench import PARTS as BENCH_PARTS
from app.compose import AppContext, open_context, open_db
from app.core.config import ConfigError, Settings, load_settings
from app.core.ingest_jobs import IngestJob, ManifestError, jobs_from_paths, read_manifest
from app.core.roles import PermissionDenied
from app.core.taxonomy import TaxonomyError
from app.storage.db import DatabaseError
from app.storage.users import UserError


class CliError(Exception):
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


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def print_summary(summary) -> None:
    """Totals that add up (each file in exactly one bucket), then the details."""
    f = summary.files
    parts = [
        f"{f.get('new', 0)} new",
        f"{f.get('copy', 0)} exact {'copy' if f.get('copy', 0) == 1 else 'copies'} of known items",
        f"{f.get('unreadable', 0)} unreadable",
    ]
    if f.get("missing"):
        parts.append(f"{f['missing']} missing")
    print(f"ingested {_plural(summary.total, 'file')}: {', '.join(parts)}")
    if summary.auto_matched:
        print(f"  {summary.auto_matched} new item(s) matched the hash list and were auto-resolved")
    if summary.clustered:
        print(
            f"  {_plural(summary.clustered, 'near-duplicate')} joined "
            f"{_plural(summary.clusters, 'cluster')} in the queue (one decision covers a cluster)"
        )
    for path, why in summary.unreadable:
        print(f"  unreadable: {path}: {why}")
    for path in summary.missing:
        print(f"  missing: {path} (named in the manifest, not found)")
    for problem in summary.manifest_problems:
        print(f"  manifest: {problem}")


def cmd_ingest(args, settings: Settings) -> int:
    jobs: list[IngestJob] = []
    problems: list[str] = []
    if args.manifest:
        m_jobs, m_problems = read_manifest(args.manifest, args.source or "manifest", args.reason)
        jobs += m_jobs
        problems += m_problems
    if args.paths:
        missing = [p for p in args.paths if not Path(p).exists()]
        if missing:
            raise CliError(f"no such file or folder: {', '.join(missing)}")
        jobs += jobs_from_paths(args.paths, source=args.source or "manual", reason=args.reason)
    if not jobs:
        raise CliError("nothing to ingest: give files or folders, or --manifest FILE")
    ctx = open_context(settings)
    try:
        print(f"ingesting {_plural(len(jobs), 'file')}…", file=sys.stderr, flush=True)
        summary = ctx.ingest(jobs, problems, progress=_progress)
        print_summary(summary)
    finally:
        ctx.close()
    if summary.missing:
        # Everything else is ingested; a file the manifest promised and did not deliver is an
        # error a script running this must see.
        print(
            f"hashdesk: error: {_plural(len(summary.missing), 'file')} named in the manifest "
            "not found",
            file=sys.stderr,
        )
        return 1
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


def _sign_in(users, name: str | None, what: str):
    """The acting account for a change: signs in (rate-limited and recorded like the GUI)."""
    if not name:
        raise CliError(f"{what} needs an admin: give --as ADMIN_NAME")
    password = os.environ.get("HASHDESK_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise CliError(f"no terminal to ask for {name}'s password: set HASHDESK_ADMIN_PASSWORD")
        password = getpass.getpass(f"Password for {name}: ")
    actor = users.authenticate(name, password)
    if actor is None:
        raise CliError(f"sign-in as {name} failed: wrong password, or the account is disabled")
    return actor


def cmd_users(args, settings: Settings) -> int:
    ctx = open_context(settings)
    try:
        users = ctx.users
        if args.users_cmd == "add":
            if users.count() == 0:
                # An empty database: the first account is the admin, made without signing in.
                if args.role != "admin":
                    raise CliError(
                        "this database has no users yet: the first one must be an admin "
                        f"(hashdesk users add {args.name} --role admin)"
                    )
                info = users.create_first_admin(args.name, _read_password(args), args.display_name)
                print(f"added {info.username} ({info.role.value}), the first admin")
                return 0
            actor = _sign_in(users, args.as_user, "adding a user")
            password = _read_password(args)
            info = users.add(args.name, password, args.role, args.display_name, actor=actor)
            print(f"added {info.username} ({info.role.value})")
        elif args.users_cmd == "disable":
            actor = _sign_in(users, args.as_user, "disabling a user")
            info = users.disable(args.name, actor=actor)
            print(f"disabled {info.username}")
        elif args.users_cmd == "passwd":
            actor = _sign_in(users, args.as_user or args.name, "changing a password")
            info = users.set_password(args.name, _read_password(args), actor=actor)
            print(f"changed the password of {info.username}")
        else:
            for u in users.list():
                state = "active" if u.active else "disabled"
                print(f"{u.username:20} {u.role.value:10} {state:9} {u.display_name}")
    finally:
        ctx.close()
    return 0


def cmd_audit(args, settings: Settings) -> int:
    from app.storage.audit import recent_events, verify_chains

    db = open_db(settings)
    try:
        if args.audit_cmd == "list":
            for e in reversed(recent_events(db, args.kind, args.limit)):
                who = e.actor_name or "system"
                print(f"{e.occurred_at:%Y-%m-%d %H:%M:%S}  {e.kind:17} {who:16} {e.subject or ''}")
            return 0
        reports = verify_chains(db)
    finally:
        db.dispose()
    bad = [r for r in reports if not r.ok]
    for r in reports:
        state = "intact" if r.ok else "BROKEN"
        print(f"{r.chain}: {r.entries} entries checked, {state}, head {r.head[:16]}")
    for r in bad:
        print(f"first problem: {r.problem}")
    return 1 if bad else 0


def cmd_db(args, settings: Settings) -> int:
    if args.db_cmd == "set-password":
        return _set_db_password(args, settings)
    if args.db_cmd == "upgrade":
        db = open_db(settings)
        print(f"database at {db.label} is at schema revision {db.current_revision()}")
        db.dispose()
        return 0
    from sqlalchemy import func, select

    from app.storage.models import Decision, HashListEntry, Item, User

    db = open_db(settings, upgrade=False)
    try:
        current, head = db.current_revision(), db.head_revision()
        print(f"database:  {db.dialect} {db.label}")
        print(f"schema:    {current or 'empty'} (this Hashdesk: {head})")
        print(f"media:     {settings.media_root}")
        from app.core.settings_file import settings_path

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
        with db.session() as s:
            for name, model in (
                ("users", User),
                ("items", Item),
                ("decisions", Decision),
                ("hash list", HashListEntry),
            ):
                n = s.scalar(select(func.count()).select_from(model))
                print(f"{name + ':':11}{n}")
    finally:
        db.dispose()
    return 0


def _set_db_password(args, settings: Settings) -> int:
    from app.core.settings_file import store_password

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


def cmd_gui(args, settings: Settings) -> int:
    _require_display_libraries()
    from app.ui.app import run_gui

    # An empty database: the window asks for the first admin account (FirstRunDialog).
    return run_gui(open_context(settings))


DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
DEMO_LEAD = "lead"


def prepare_demo(folder: Path, count: int = 40) -> AppContext:
    """A throwaway database, media root and decision journal in ``folder`` (nothing in the
    user data directory), filled with sample items and a demo moderator and lead."""
    from app.core.demo import write_demo_media
    from app.core.domain import Role

    settings = load_settings(
        {
            "HASHDESK_DATABASE_URL": f"sqlite:///{(folder / 'demo.sqlite3').as_posix()}",
            "HASHDESK_MEDIA_ROOT": str(folder / "media"),
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
        ctx = prepare_demo(folder, args.count)
        if args.lead:
            from app.storage.demo_history import simulate_team_history

            lead = ctx.users.get(DEMO_LEAD)
            n = simulate_team_history(ctx.db, ctx.taxonomy, lead, DEMO_PASSWORD)
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
    users = sub.add_parser("users", help="manage user accounts")
    usub = users.add_subparsers(dest="users_cmd", required=True)
    add = usub.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["moderator", "lead", "admin"])
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
    asub.add_parser("verify", help="recompute the decision and audit chains (exit 1 if broken)")
    alist = asub.add_parser("list", help="recent administrative events")
    alist.add_argument("--kind", help="only this kind (user_added, login_failed, export, ...)")
    alist.add_argument("--limit", type=int, default=50)
    db = sub.add_parser("db", help="database schema")
    dsub = db.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("upgrade", help="apply migrations")
    dsub.add_parser("info", help="where the database is, its schema version and counts")
    spw = dsub.add_parser("set-password", help="keep the database password in the OS keyring")
    spw.add_argument("--password-stdin", action="store_true", help="read it from stdin")
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
    sub.add_parser("self-test", help="check this installation end to end, without a display")
    return p


def cmd_self_test(args, settings: Settings) -> int:
    from app.selftest import run_self_test

    return run_self_test()


COMMANDS = {
    "gui": cmd_gui,
    "demo": cmd_demo,
    "ingest": cmd_ingest,
    "users": cmd_users,
    "db": cmd_db,
    "audit": cmd_audit,
    "self-test": cmd_self_test,
}


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # the ingest pool's workers, in a frozen build
    args = build_parser().parse_args(argv)
    cmd = args.cmd or "gui"
    try:
        settings = load_settings()
        if cmd == "bench":
            if args.history:
                from app.bench import bench_history

                bench_history(args.history, args.decisions)
                return 0
            from app.bench import run_bench

            unknown = [p for p in args.parts if p not in BENCH_PARTS]
            if unknown:
                raise CliError(
                    f"no benchmark part {', '.join(unknown)}: choose from {', '.join(BENCH_PARTS)}"
                )
            return run_bench(args.parts or None)
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
        print(f"hashdesk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
