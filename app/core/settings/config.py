"""Workstation settings: where the database and the media root are, review defaults.

Read from the environment (``HASHDESK_*``), over the settings file in the user config directory
(app.core.settings.settings_file), over built-in defaults in the user's data directory. A PostgreSQL
password comes from ``HASHDESK_DATABASE_PASSWORD`` or the OS keyring, never from the file.
A bad value raises ConfigError with a message that names the variable and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import platformdirs

from app import APP_NAME
from app.core.errors import Refusal
from app.core.exchange.deltas import (
    DEFAULT_FORMATS,
    DeltaCadence,
    DeltaError,
    check_formats,
)
from app.core.matching.match_rules import MatchPolicy
from app.core.model.deadlines import DEFAULT_SOURCE_DEADLINES, DeadlineConfigError, source_deadlines
from app.core.model.exposure import BreakPolicy
from app.core.model.queues import DEFAULT_LEASE_SECONDS
from app.core.review.preview import BLUR_LEVELS, ComfortDefaults


class ConfigError(Refusal, ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    media_root: Path
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    blur_radius: int = 24
    match: MatchPolicy = field(default_factory=MatchPolicy)
    #: A sighting's default deadline by source (HASHDESK_SOURCE_DEADLINES).
    source_deadlines: dict[str, timedelta] = field(
        default_factory=lambda: dict(DEFAULT_SOURCE_DEADLINES)
    )
    #: Share of manual confirms and rejects queued, blind, for a second moderator.
    second_review_share: float = 0.05
    #: How many days back a re-scan on new hashes looks at items already out of the queue
    #: (HASHDESK_RESCAN_DAYS; app.storage.rescan).
    rescan_days: int = 7
    #: TLS to a PostgreSQL server: libpq's sslmode, and the CA file to check its certificate.
    database_sslmode: str | None = None
    database_sslrootcert: Path | None = None
    #: When to offer a break, and the soft daily limit of unblurred minutes
    #: (app.core.model.exposure).
    breaks: BreakPolicy = field(default_factory=BreakPolicy)
    #: Minutes without a key or the mouse before a review window locks (0: never).
    idle_lock_minutes: int = 5
    #: The organisation's default for greyscale previews (a person may keep their own).
    greyscale: bool = False
    #: The hash list's index saved between runs (a million entries ready in a fraction of a
    #: second): HASHDESK_INDEX_SNAPSHOT on/off, kept in HASHDESK_INDEX_SNAPSHOT_DIR (None:
    #: next to a SQLite file; the data directory for PostgreSQL).
    index_snapshot: bool = True
    index_snapshot_dir: Path | None = None
    #: A multi-index over large PDQ tables (HASHDESK_INDEX_MULTI on/off): an item's match ~8x
    #: faster at 1M entries, 64 bytes an entry more memory (app.core.matching.hash_index).
    index_multi: bool = True
    #: Hash deltas out (``hashdesk deltas run``): HASHDESK_DELTAS_MINUTES, _FORMATS, _ALWAYS,
    #: _FOLDER, _COMMAND (app.core.exchange.deltas.DeltaCadence).
    deltas: DeltaCadence = field(default_factory=DeltaCadence)
    #: HASHDESK_ALLOW_TRUST_AUTH=1: go on (with a loud warning) on a PostgreSQL server that
    #: checks no passwords (app.storage.server_auth). For test and development servers only.
    allow_trust_auth: bool = False
    #: The HTTP intake (`hashdesk intake serve`, app/web/intake_http.py): the largest file it
    #: takes (HASHDESK_INTAKE_MAX_MB, refused with 413 while it streams in) and how many
    #: requests a token may make a minute (HASHDESK_INTAKE_RATE_PER_MINUTE, then 429).
    intake_max_mb: int = 2048
    intake_rate_per_minute: int = 600
    #: Where ingest's jobs run (HASHDESK_INGEST_MODE): "local", in the ingesting process (the
    #: default; SQLite has nothing else), or "queue", on the team PostgreSQL's job queue, for
    #: `hashdesk worker` processes on any machine that reaches the database and the media root.
    ingest_mode: str = "local"
    #: A queue worker's heartbeat (seconds) and how long without one before its job is taken
    #: back and run again (HASHDESK_WORKER_HEARTBEAT_SECONDS, HASHDESK_WORKER_STALLED_SECONDS);
    #: the wait before a failed job runs again (HASHDESK_INTAKE_RETRY_SECONDS).
    worker_heartbeat_s: int = 10
    worker_stalled_s: int = 30
    intake_retry_s: int = 10

    @property
    def comfort(self) -> ComfortDefaults:
        """The organisation's comfort defaults: greyscale, and the blur level ``blur`` maps to
        (0-19 the weakest, 20-39 the middle, 40-100 the strongest)."""
        return ComfortDefaults(
            greyscale=self.greyscale, blur_level=min(self.blur_radius // 20, len(BLUR_LEVELS) - 1)
        )

    @property
    def team_sign_in(self) -> bool:
        """PostgreSQL with no user name in the URL: people sign in as themselves."""
        if not self.database_url.startswith("postgresql"):
            return False
        rest = self.database_url.split("://", 1)[1]
        return "@" not in rest.split("/", 1)[0]

    @property
    def connect_args(self) -> dict[str, str]:
        """What the database driver is given besides the URL (TLS)."""
        args: dict[str, str] = {}
        if self.database_sslmode:
            args["sslmode"] = self.database_sslmode
        if self.database_sslrootcert:
            args["sslrootcert"] = str(self.database_sslrootcert)
        return args

    @property
    def database_label(self) -> str:
        """Where the database is, without any password, for the status bar and logs."""
        return redact_url(self.database_url)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_database_url(base: Path | None = None) -> str:
    base = base or data_dir()
    return f"sqlite:///{(base / 'hashdesk.sqlite3').as_posix()}"


def redact_url(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if user else f"{scheme}://{host}"


def _int_env(env: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range: use {lo} to {hi}")
    return value


def _choice_env(env: dict[str, str], name: str, choices: dict[str, bool], default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = choices.get(raw.strip().lower())
    if value is None:
        raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(choices)}")
    return value


def match_policy(env: dict[str, str]) -> MatchPolicy:
    """How ingest decides that an item is known content (docs/ARCHITECTURE.md, "Hashing and
    matching")."""
    return MatchPolicy(
        pdq_threshold=_int_env(env, "HASHDESK_PDQ_THRESHOLD", MatchPolicy.pdq_threshold, 0, 64),
        phash_threshold=_int_env(
            env, "HASHDESK_PHASH_THRESHOLD", MatchPolicy.phash_threshold, 0, 24
        ),
        min_quality=_int_env(env, "HASHDESK_MIN_QUALITY", 50, 0, 100),
        video_fraction=_int_env(env, "HASHDESK_VIDEO_MATCH_PERCENT", 80, 1, 100) / 100.0,
        auto_resolve=_choice_env(
            env, "HASHDESK_KNOWN_CONTENT", {"resolve": True, "queue": False}, True
        ),
        use_regions=_choice_env(env, "HASHDESK_MATCH_HALVES", {"on": True, "off": False}, True),
        flood_per_hour=_int_env(
            env, "HASHDESK_FLOOD_GUARD_PER_HOUR", MatchPolicy.flood_per_hour, 0, 1_000_000
        ),
    )


def load_settings(env: dict[str, str] | None = None) -> Settings:
    from app.core.settings.settings_file import (
        FILE_KEYS,
        SettingsFileError,
        read_settings_file,
        settings_path,
    )

    env = dict(os.environ if env is None else env)
    path = settings_path(env)
    named = env.get("HASHDESK_CONFIG", "").strip()
    if named and not path.is_file():
        why = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"HASHDESK_CONFIG={named!r}: the settings file {path} {why}")
    try:
        from_file = read_settings_file(path)
    except SettingsFileError as exc:
        raise ConfigError(str(exc)) from None
    # A value from the file (not overridden by the environment) is named by its file and key.
    file_keys = {v: k for k, v in FILE_KEYS.items()}
    origin = {
        name: f"settings file {path}: {file_keys[name]} = "
        for name in from_file
        if not env.get(name, "").strip()
    }
    env = {**from_file, **{k: v for k, v in env.items() if v.strip() or k not in from_file}}
    try:
        return _settings(env)
    except ConfigError as exc:
        text = str(exc)
        for name, where in origin.items():
            if text.startswith(f"{name}="):
                raise ConfigError(where + text[len(name) + 1 :]) from None
        raise


def check_media_root(path: Path) -> None:
    """The media root can be used: it is (or can be made) a folder this account can read.
    A ConfigError naming it otherwise (checked where the store is opened, and by `db info`)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            f"HASHDESK_MEDIA_ROOT={str(path)!r} cannot be used: the folder cannot be made ({why})"
        ) from None
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(
            f"HASHDESK_MEDIA_ROOT={str(path)!r} cannot be used: not a readable folder"
        )


def _settings(env: dict[str, str]) -> Settings:
    from app.core.settings.settings_file import password_for, with_password

    url = env.get("HASHDESK_DATABASE_URL", "").strip() or default_database_url()
    if not url.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
        raise ConfigError(
            f"HASHDESK_DATABASE_URL={redact_url(url)!r} is not supported: use "
            "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if (
        url.startswith("postgresql")
        and "@" in url
        and ":" not in url.split("://", 1)[1].split("@")[0]
    ):
        password = password_for(url, env)
        if password:
            url = with_password(url, password)
    media = env.get("HASHDESK_MEDIA_ROOT", "").strip()
    media_root = Path(media).expanduser() if media else data_dir() / "media"
    if media_root.exists() and not media_root.is_dir():
        raise ConfigError(f"HASHDESK_MEDIA_ROOT={media!r} exists and is not a folder")
    return Settings(
        database_url=url,
        media_root=media_root,
        lease_seconds=_int_env(env, "HASHDESK_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, 10, 86400),
        blur_radius=_int_env(env, "HASHDESK_BLUR", 24, 0, 100),
        match=match_policy(env),
        source_deadlines=_source_deadlines(env),
        second_review_share=_int_env(env, "HASHDESK_SECOND_REVIEW_PERCENT", 5, 0, 100) / 100.0,
        rescan_days=_int_env(env, "HASHDESK_RESCAN_DAYS", 7, 0, 3650),
        database_sslmode=_sslmode(env),
        database_sslrootcert=_sslrootcert(env),
        breaks=break_policy(env),
        idle_lock_minutes=_int_env(env, "HASHDESK_IDLE_LOCK_MINUTES", 5, 0, 24 * 60),
        greyscale=_choice_env(env, "HASHDESK_GREYSCALE", {"on": True, "off": False}, False),
        index_snapshot=_choice_env(
            env, "HASHDESK_INDEX_SNAPSHOT", {"on": True, "off": False}, True
        ),
        index_multi=_choice_env(env, "HASHDESK_INDEX_MULTI", {"on": True, "off": False}, True),
        allow_trust_auth=_choice_env(
            env,
            "HASHDESK_ALLOW_TRUST_AUTH",
            {"1": True, "0": False, "on": True, "off": False},
            False,
        ),
        intake_max_mb=_int_env(env, "HASHDESK_INTAKE_MAX_MB", 2048, 1, 1024 * 1024),
        intake_rate_per_minute=_int_env(env, "HASHDESK_INTAKE_RATE_PER_MINUTE", 600, 1, 1_000_000),
        ingest_mode=_ingest_mode(env, url),
        worker_heartbeat_s=_int_env(env, "HASHDESK_WORKER_HEARTBEAT_SECONDS", 10, 1, 3600),
        worker_stalled_s=_int_env(env, "HASHDESK_WORKER_STALLED_SECONDS", 30, 2, 86400),
        intake_retry_s=_int_env(env, "HASHDESK_INTAKE_RETRY_SECONDS", 10, 0, 86400),
        deltas=delta_cadence(env),
        index_snapshot_dir=(
            Path(env["HASHDESK_INDEX_SNAPSHOT_DIR"].strip()).expanduser()
            if env.get("HASHDESK_INDEX_SNAPSHOT_DIR", "").strip()
            else None
        ),
    )


INGEST_MODES = ("local", "queue")


def _ingest_mode(env: dict[str, str], url: str) -> str:
    raw = env.get("HASHDESK_INGEST_MODE", "").strip().lower() or "local"
    if raw not in INGEST_MODES:
        raise ConfigError(f"HASHDESK_INGEST_MODE={raw!r} is not one of: {', '.join(INGEST_MODES)}")
    if raw == "queue" and not url.startswith("postgresql"):
        raise ConfigError(
            "HASHDESK_INGEST_MODE='queue' needs the team PostgreSQL (HASHDESK_DATABASE_URL): "
            "the job queue lives there; a SQLite workstation ingests locally"
        )
    return raw


def delta_cadence(env: dict[str, str]) -> DeltaCadence:
    """The deltas' cadence and destination (app.core.exchange.deltas.DeltaCadence)."""
    raw_formats = env.get("HASHDESK_DELTAS_FORMATS", "").strip()
    try:
        formats = check_formats(raw_formats.split(",")) if raw_formats else DEFAULT_FORMATS
    except DeltaError as exc:
        raise ConfigError(f"HASHDESK_DELTAS_FORMATS={raw_formats!r}: {exc}") from None
    folder = env.get("HASHDESK_DELTAS_FOLDER", "").strip()
    command = env.get("HASHDESK_DELTAS_COMMAND", "").strip()
    if folder and command:
        raise ConfigError(
            "HASHDESK_DELTAS_FOLDER and HASHDESK_DELTAS_COMMAND are both set: deltas go to one"
        )
    return DeltaCadence(
        minutes=_int_env(env, "HASHDESK_DELTAS_MINUTES", 5, 1, 24 * 60),
        formats=formats,
        always=_choice_env(env, "HASHDESK_DELTAS_ALWAYS", {"on": True, "off": False}, False),
        folder=Path(folder).expanduser() if folder else None,
        command=command or None,
    )


def break_policy(env: dict[str, str]) -> BreakPolicy:
    """When to offer a break (0 turns a rule off); defaults in app.core.model.exposure."""
    d = BreakPolicy()
    return BreakPolicy(
        review_minutes=_int_env(env, "HASHDESK_BREAK_AFTER_MINUTES", d.review_minutes, 0, 1440),
        reveals=_int_env(env, "HASHDESK_BREAK_AFTER_REVEALS", d.reveals, 0, 100_000),
        graphic_items=_int_env(env, "HASHDESK_BREAK_AFTER_ITEMS", d.graphic_items, 0, 100_000),
        daily_limit_minutes=_int_env(
            env, "HASHDESK_DAILY_EXPOSURE_MINUTES", d.daily_limit_minutes, 0, 1440
        ),
    )


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _sslmode(env: dict[str, str]) -> str | None:
    raw = env.get("HASHDESK_DATABASE_SSLMODE", "").strip()
    if not raw:
        return None
    if raw not in SSLMODES:
        raise ConfigError(f"HASHDESK_DATABASE_SSLMODE={raw!r} is not one of: {', '.join(SSLMODES)}")
    return raw


def _sslrootcert(env: dict[str, str]) -> Path | None:
    raw = env.get("HASHDESK_DATABASE_SSLROOTCERT", "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"HASHDESK_DATABASE_SSLROOTCERT={raw!r} is not a file")
    return path


def _source_deadlines(env: dict[str, str]) -> dict[str, timedelta]:
    try:
        return source_deadlines(env)
    except DeadlineConfigError as exc:
        raw = env.get("HASHDESK_SOURCE_DEADLINES", "")
        raise ConfigError(f"HASHDESK_SOURCE_DEADLINES={raw!r}: {exc}") from None
