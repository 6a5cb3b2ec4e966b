"""The workstation's settings file and the database password.

``settings.toml`` in the user config directory (or the file named by ``HASHDESK_CONFIG``):

    database_url = "postgresql+psycopg://db.example.org/hashdesk"   # people sign in as themselves
    database_sslmode = "verify-full"          # TLS, the server's certificate checked
    database_sslrootcert = "/etc/hashdesk/ca.pem"
    media_root = "/mnt/hashdesk-media"
    lease_seconds = 300         # a claim's lease (the default: core.model.queues)
    blur = 24                   # the organisation's blur default: 0-19 weakest ... 40-100 strongest
    # matching at ingest (defaults shown)
    pdq_threshold = 31          # PDQ bits
    phash_threshold = 10        # pHash bits
    min_quality = 50            # PDQ quality below this never matches
    video_match_percent = 80    # share of a video's sampled frames that must match
    known_content = "resolve"   # or "queue": known content waits with a "known match" badge
    match_halves = "on"         # or "off": half-picture hashes (logo-stamped copies)
    flood_guard_per_hour = 50   # an imported entry matching more items an hour is queued (0: off)
    # review
    source_deadlines = "removal_order=1h"   # a source's default deadline, SOURCE=DURATION,...
    second_review_percent = 5   # share of manual decisions queued for a blind second review
    rescan_days = 7             # a re-scan on new hashes also looks this far back (days)
    # exposure and the shared workstation (0 turns a rule off)
    break_after_minutes = 50    # offer a break after this many minutes of review
    break_after_reveals = 30    # ... or this many reveals since the last break
    break_after_items = 20      # ... or this many items seen unblurred since the last break
    daily_exposure_minutes = 20 # soft daily limit of unblurred minutes (passed after confirming)
    idle_lock_minutes = 5       # lock the review window after this many idle minutes
    greyscale = "off"           # the organisation's default: "on" shows previews in greyscale

Environment variables (``HASHDESK_DATABASE_URL``, ...) override it. The file never holds a
password: a PostgreSQL password comes from the OS keyring (``hashdesk db set-password`` stores it
there) or ``HASHDESK_DATABASE_PASSWORD``, and is never written to the file or a log.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import platformdirs

from app import APP_NAME
from app.core.errors import Refusal

KEYRING_SERVICE = "hashdesk"
# settings.toml key -> the environment variable it stands in for
FILE_KEYS = {
    "database_url": "HASHDESK_DATABASE_URL",
    "media_root": "HASHDESK_MEDIA_ROOT",
    "lease_seconds": "HASHDESK_LEASE_SECONDS",
    "blur": "HASHDESK_BLUR",
    "pdq_threshold": "HASHDESK_PDQ_THRESHOLD",
    "phash_threshold": "HASHDESK_PHASH_THRESHOLD",
    "min_quality": "HASHDESK_MIN_QUALITY",
    "video_match_percent": "HASHDESK_VIDEO_MATCH_PERCENT",
    "known_content": "HASHDESK_KNOWN_CONTENT",
    "match_halves": "HASHDESK_MATCH_HALVES",
    "flood_guard_per_hour": "HASHDESK_FLOOD_GUARD_PER_HOUR",
    "source_deadlines": "HASHDESK_SOURCE_DEADLINES",
    "second_review_percent": "HASHDESK_SECOND_REVIEW_PERCENT",
    "rescan_days": "HASHDESK_RESCAN_DAYS",
    "database_sslmode": "HASHDESK_DATABASE_SSLMODE",
    "database_sslrootcert": "HASHDESK_DATABASE_SSLROOTCERT",
    "break_after_minutes": "HASHDESK_BREAK_AFTER_MINUTES",
    "break_after_reveals": "HASHDESK_BREAK_AFTER_REVEALS",
    "break_after_items": "HASHDESK_BREAK_AFTER_ITEMS",
    "daily_exposure_minutes": "HASHDESK_DAILY_EXPOSURE_MINUTES",
    "idle_lock_minutes": "HASHDESK_IDLE_LOCK_MINUTES",
    "greyscale": "HASHDESK_GREYSCALE",
    "index_snapshot": "HASHDESK_INDEX_SNAPSHOT",
    "index_snapshot_dir": "HASHDESK_INDEX_SNAPSHOT_DIR",
    "index_multi": "HASHDESK_INDEX_MULTI",
}


class SettingsFileError(Refusal, ValueError):
    pass


def settings_path(env: Mapping[str, str] | None = None) -> Path:
    source: Mapping[str, str] = os.environ if env is None else env
    named = source.get("HASHDESK_CONFIG", "").strip()
    if named:
        return Path(named).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "settings.toml"


def read_settings_file(path: Path) -> dict[str, str]:
    """The file's settings as environment-style values; {} when there is no file."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsFileError(f"settings file {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise SettingsFileError(
            f"settings file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(FILE_KEYS)}"
        )
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise SettingsFileError(f"settings file {path}: {key} must be text or a number")
        out[FILE_KEYS[key]] = str(value)
    url = out.get("HASHDESK_DATABASE_URL", "")
    if urlsplit(url).password:
        raise SettingsFileError(
            f"settings file {path}: database_url holds a password; remove it and store it with "
            "`hashdesk db set-password` (the OS keyring) or HASHDESK_DATABASE_PASSWORD"
        )
    return out


def keyring_account(url: str) -> str:
    """The keyring entry for a database: user@host:port/database (no scheme, no password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.username or ''}@{host}{port}{parts.path}"


def password_for(url: str, env: dict[str, str]) -> str | None:
    """The database password: HASHDESK_DATABASE_PASSWORD, else the OS keyring, else None."""
    from_env = env.get("HASHDESK_DATABASE_PASSWORD")
    if from_env:
        return from_env
    if env.get("HASHDESK_NO_KEYRING"):
        return None
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, keyring_account(url))
    except Exception:  # no keyring on this machine (headless, locked): not an error here
        return None


def with_password(url: str, password: str) -> str:
    """``url`` with the password filled in (percent-encoded). Only ever handed to the driver."""
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1) if "@" in rest else ("", rest)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}"


def store_password(url: str, password: str) -> str:
    """Put the password in the OS keyring; returns the entry's name."""
    import keyring

    account = keyring_account(url)
    keyring.set_password(KEYRING_SERVICE, account, password)
    return account
