"""The composition root: the one place that builds the database, the content store, the
taxonomy, the services and the journal from the settings, for the CLI, the GUI, the self-test
and the benchmark alike. Windows receive the :class:`AppContext` and use its services; nothing
below this module builds a service of its own (docs/ARCHITECTURE.md, "Composition").

No Qt here: the self-test and the benchmark build the same context before any window exists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from app.core.errors import Refusal
from app.core.ingest.contentstore import ContentStore
from app.core.ingest.jobs import IngestJob, IngestSummary
from app.core.matching.hash_index import MIH_MIN_ROWS, HashIndex
from app.core.model.domain import UserInfo
from app.core.model.taxonomy import Taxonomy, load_taxonomy
from app.core.settings.config import Settings, check_media_root, data_dir, redact_url
from app.paths import resource
from app.storage.db import Database, DatabaseError, open_database
from app.storage.deltas import DeltaService
from app.storage.exposure import ExposureService
from app.storage.hash_index_snapshot import snapshot_path
from app.storage.hash_list_watcher import HashListWatcher
from app.storage.hash_lists import HashListService
from app.storage.history_queries import HistoryService
from app.storage.incidents import IncidentService
from app.storage.ingest_recorder import IngestRecorder, ingest_jobs
from app.storage.intake import IntakeService
from app.storage.intake_tokens import IntakeReportService, IntakeTokenService
from app.storage.journal import DecisionJournal, journal_path
from app.storage.leads import LeadService
from app.storage.rescan import Rescanner
from app.storage.review import ReviewService
from app.storage.situation import SituationService
from app.storage.stats import StatsService
from app.storage.users import UserService


@dataclass
class AppContext:
    """Everything a window or a command needs, passed explicitly (no globals)."""

    settings: Settings
    db: Database
    store: ContentStore
    taxonomy: Taxonomy
    key_overrides: dict[str, str] = field(default_factory=dict)
    # Where this workstation's decision journal lives (default: the user data directory).
    journal_dir: Path | None = None
    review: ReviewService = field(init=False)
    leads: LeadService = field(init=False)
    users: UserService = field(init=False)
    history: HistoryService = field(init=False)
    stats: StatsService = field(init=False)
    exposure: ExposureService = field(init=False)
    hash_lists: HashListService = field(init=False)
    # The HTTP intake's per-source tokens, and the reports that came without a file.
    intake_tokens: IntakeTokenService = field(init=False)
    intake_reports: IntakeReportService = field(init=False)
    incidents: IncidentService = field(init=False)
    deltas: DeltaService = field(init=False)
    situation: SituationService = field(init=False)
    # The hash list in memory, one index for the whole process: loaded once (by the first
    # ingest, or in the background by ``watcher.start()``) and kept current by its watcher.
    watcher: HashListWatcher = field(init=False)
    # Arrivals (drop folder, HTTP intake, ingest on a queue) and their jobs.
    intake: IntakeService = field(init=False)

    def __post_init__(self) -> None:
        self.review = ReviewService(
            self.db,
            lease_seconds=self.settings.lease_seconds,
            second_review_share=self.settings.second_review_share,
        )
        self.leads = LeadService(self.db)
        self.users = UserService(self.db)
        self.history = HistoryService(self.db)
        self.stats = StatsService(
            self.db, daily_exposure_limit_s=self.settings.breaks.daily_limit_minutes * 60
        )
        self.exposure = ExposureService(self.db)
        self.hash_lists = HashListService(self.db, self.settings.match)
        self.intake_tokens = IntakeTokenService(self.db)
        self.intake_reports = IntakeReportService(self.db)
        self.incidents = IncidentService(self.db)
        self.deltas = DeltaService(self.db)
        self.situation = SituationService(
            self.db, daily_exposure_limit_s=self.settings.breaks.daily_limit_minutes * 60
        )
        multi = MIH_MIN_ROWS if self.settings.index_multi else sys.maxsize
        self.watcher = HashListWatcher(
            self.db,
            HashIndex(mih_min_rows=multi),
            self.settings.match,
            snapshot=index_snapshot(self.settings),
        )
        self.intake = IntakeService(
            self.db, self.store, self.recorder, queue=self.settings.ingest_mode == "queue"
        )

    @cached_property
    def journal(self) -> DecisionJournal:
        """This workstation's decision journal, opened when a review window first needs it.
        Keyed by the URL without its password: a changed password keeps the same journal."""
        where = redact_url(self.db.engine.url.render_as_string(hide_password=True))
        return DecisionJournal(journal_path(where, self.journal_dir or data_dir()))

    def check_password(self, username: str, password: str) -> bool:
        """Whether ``password`` is this person's (the idle lock): on a team server PostgreSQL
        judges it (a connection as them), elsewhere the accounts table (failures recorded)."""
        if self.settings.team_sign_in:
            try:
                other, _user = sign_in(self.settings, username, password)
            except SignInError:
                return False
            other.close()
            return True
        return self.users.authenticate(username, password) is not None

    def recorder(self, actor: UserInfo | None = None) -> IngestRecorder:
        """An ingest recorder with this workstation's matching policy and source deadlines;
        ``actor``: who ingests (on a team server, the signed-in person)."""
        return IngestRecorder(
            self.db,
            self.store,
            policy=self.settings.match,
            source_deadlines=self.settings.source_deadlines,
            actor=actor,
            watcher=self.watcher,
        )

    def rescanner(self, actor: UserInfo | None = None) -> Rescanner:
        """A re-scan on new hashes with this workstation's matching policy and look-back
        (``actor``: whoever's confirm or import set it off)."""
        return Rescanner(self.db, self.settings.match, actor=actor, days=self.settings.rescan_days)

    def ingest(
        self,
        jobs: list[IngestJob],
        problems: list[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        actor: UserInfo | None = None,
    ) -> IngestSummary:
        """Analyse and record ``jobs``; manifest ``problems`` are carried into the summary."""
        summary = ingest_jobs(self.recorder(actor), jobs, progress=progress)
        summary.manifest_problems.extend(problems or [])
        return summary

    def close(self) -> None:
        self.watcher.stop()
        self.db.dispose()


def index_snapshot(settings: Settings) -> Path | None:
    """Where the hash list's index snapshot lives (Settings.index_snapshot_dir; by default
    next to a SQLite file, in the data directory for PostgreSQL), or None: not kept."""
    if not settings.index_snapshot:
        return None
    folder = settings.index_snapshot_dir
    if folder is None and not settings.database_url.startswith("sqlite"):
        folder = data_dir()
    return snapshot_path(settings.database_url, folder)


def open_db(settings: Settings, *, upgrade: bool = True) -> Database:
    """The database the settings name, its schema brought up to date unless ``upgrade`` is
    off (``hashdesk db info`` looks without changing anything)."""
    return open_database(settings.database_url, upgrade=upgrade, connect_args=settings.connect_args)


class SignInError(Refusal, RuntimeError):
    """A person could not sign in (explained in one line)."""


def sign_in(settings: Settings, username: str, password: str) -> tuple[AppContext, UserInfo]:
    """A team workstation: connect to PostgreSQL as the person (their own login role, their
    password checked by the server), and the context built on that connection. The schema is
    not upgraded from here: only the owner does that (`hashdesk db upgrade`)."""
    from sqlalchemy.engine import make_url

    from app.storage.server_roles import person_role, prefix_for_url

    username = username.strip()
    url = (
        make_url(settings.database_url)
        .set(username=person_role(prefix_for_url(settings.database_url), username))
        .set(password=password)
    )
    try:
        db = open_database(
            url.render_as_string(hide_password=False),
            upgrade=False,
            connect_args=settings.connect_args,
        )
    except DatabaseError as exc:
        raise SignInError(str(exc)) from None
    try:
        check_server_asks_passwords(settings, url.render_as_string(hide_password=False))
    except SignInError:
        db.dispose()
        raise
    current, head = db.current_revision(), db.head_revision()
    if current != head:
        db.dispose()
        raise SignInError(
            f"the database's schema is at {current or 'nothing'}, this Hashdesk needs {head}: "
            "ask an administrator to run `hashdesk db upgrade`"
        )
    ctx = open_context(settings, db=db)
    user = ctx.users.get(username)
    if user is None or not user.active:
        ctx.close()
        raise SignInError(f"{username} has no active Hashdesk account in this database")
    return ctx, user


def check_server_asks_passwords(settings: Settings, url: str) -> None:
    """Refuse a PostgreSQL server that let a connection in with a wrong password (trust
    authentication: anyone could sign in as anyone), naming the pg_hba.conf line to change;
    with Settings.allow_trust_auth (tests, development) go on with a loud warning."""
    from app.storage.server_auth import accepts_any_password, warning

    problem = accepts_any_password(url, settings.connect_args)
    if problem is None:
        return
    if not settings.allow_trust_auth:
        raise SignInError(problem)
    print(warning(problem), file=sys.stderr)


def default_taxonomy() -> Taxonomy:
    return load_taxonomy(resource("taxonomy.toml"))


def open_context(
    settings: Settings, *, db: Database | None = None, journal_dir: Path | None = None
) -> AppContext:
    """The whole application wired from ``settings`` (``db``: one already open). An unusable
    media root is a ConfigError naming it (before any database is opened here)."""
    try:
        check_media_root(settings.media_root)
    except Exception:
        if db is not None:
            db.dispose()
        raise
    return AppContext(
        settings=settings,
        db=db if db is not None else open_db(settings),
        store=ContentStore(settings.media_root),
        taxonomy=default_taxonomy(),
        journal_dir=journal_dir,
    )
