"""The settings file, environment overrides, and where the database password comes from."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from app.cli import main
from app.core.matching.match_rules import MatchPolicy
from app.core.settings.config import ConfigError, load_settings
from app.core.settings.settings_file import keyring_account, settings_path


def _write(tmp_path, body: str):
    path = tmp_path / "settings.toml"
    path.write_text(body, encoding="utf-8")
    return {"HASHDESK_CONFIG": str(path), "HASHDESK_NO_KEYRING": "1"}


def test_file_settings_are_used_and_the_environment_overrides_them(tmp_path):
    env = _write(
        tmp_path,
        'database_url = "postgresql://alice@db.example/hd"\n'
        f'media_root = "{(tmp_path / "m").as_posix()}"\nlease_seconds = 120\nblur = 50\n',
    )
    s = load_settings(env)
    assert s.database_url == "postgresql+psycopg://alice@db.example/hd"
    assert (s.media_root, s.lease_seconds, s.blur_radius) == (tmp_path / "m", 120, 50)
    s = load_settings({**env, "HASHDESK_LEASE_SECONDS": "60", "HASHDESK_DATABASE_URL": ""})
    assert s.lease_seconds == 60 and s.database_url.endswith("@db.example/hd")


def test_default_file_is_in_the_user_config_dir(tmp_path):
    assert settings_path({}).name == "settings.toml"
    assert str(settings_path({})).startswith(str(tmp_path / "xdg-config"))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('database_url = "postgresql://a:secret@h/d"\n', "holds a password"),
        ("colour = 3\n", "unknown setting(s) colour"),
        ("lease_seconds = [1]\n", "lease_seconds must be text or a number"),
        ("lease_seconds = \n", "cannot be read"),
        ("lease_seconds = 2\n", "settings.toml: lease_seconds = '2' is out of range"),
    ],
)
def test_bad_file_is_named(tmp_path, body, named):
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, body))
    assert named in str(err.value) and "secret" not in str(err.value)


def test_password_from_the_environment_is_used_but_never_shown(tmp_path):
    env = _write(tmp_path, 'database_url = "postgresql+psycopg://alice@db.example:5433/hd"\n')
    s = load_settings({**env, "HASHDESK_DATABASE_PASSWORD": "p@ss/word"})
    assert s.database_url == "postgresql+psycopg://alice:p%40ss%2Fword@db.example:5433/hd"
    assert "p%40ss" not in s.database_label and "alice@db.example:5433/hd" in s.database_label


class _MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.saved.get((service, username))

    def set_password(self, service, username, password):
        self.saved[(service, username)] = password

    def delete_password(self, service, username):
        self.saved.pop((service, username), None)


def test_password_from_the_os_keyring(tmp_path, monkeypatch, capsys):
    previous = keyring.get_keyring()
    ring = _MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        path = tmp_path / "settings.toml"
        path.write_text('database_url = "postgresql://alice@db.example/hd"\n', encoding="utf-8")
        monkeypatch.setenv("HASHDESK_CONFIG", str(path))
        monkeypatch.delenv("HASHDESK_NO_KEYRING")
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO("from the keyring\n"))
        assert main(["db", "set-password", "--password-stdin"]) == 0
        assert "alice@db.example/hd" in capsys.readouterr().out
        assert ring.saved == {("hashdesk", "alice@db.example/hd"): "from the keyring"}
        assert keyring_account("postgresql+psycopg://alice@db.example/hd") == "alice@db.example/hd"
        s = load_settings()
        assert s.database_url == "postgresql+psycopg://alice:from%20the%20keyring@db.example/hd"
        assert "from" not in path.read_text(encoding="utf-8").split("=", 1)[1].split("@")[0]
    finally:
        keyring.set_keyring(previous)


def test_db_info_names_an_older_schema_and_a_refused_connection(tmp_path, monkeypatch, capsys):
    from app.storage.db import open_database

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    db = open_database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    db.dispose()
    monkeypatch.setenv("HASHDESK_DATABASE_URL", url)
    assert main(["db", "info"]) == 2
    assert "older than this Hashdesk: run `hashdesk db upgrade`" in capsys.readouterr().out
    monkeypatch.setenv("HASHDESK_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x")
    assert main(["db", "info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to the database at" in err


def test_match_policy_comes_from_the_file_and_the_environment(tmp_path):
    assert load_settings(_write(tmp_path, "")).match == MatchPolicy()
    env = _write(
        tmp_path,
        "pdq_threshold = 24\nphash_threshold = 6\nmin_quality = 70\n"
        'video_match_percent = 60\nknown_content = "queue"\nmatch_halves = "off"\n',
    )
    m = load_settings(env).match
    assert (m.pdq_threshold, m.phash_threshold, m.min_quality) == (24, 6, 70)
    assert (m.video_fraction, m.auto_resolve, m.use_regions) == (0.6, False, False)
    m = load_settings({**env, "HASHDESK_KNOWN_CONTENT": "Resolve"}).match
    assert m.auto_resolve is True and m.pdq_threshold == 24


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("pdq_threshold = 200\n", "pdq_threshold = '200' is out of range: use 0 to 64"),
        ('min_quality = "high"\n', "min_quality = 'high' is not a whole number"),
        ("video_match_percent = 0\n", "video_match_percent = '0' is out of range"),
        ('known_content = "ignore"\n', "known_content = 'ignore' is not one of: resolve"),
        ('match_halves = "yes"\n', "match_halves = 'yes' is not one of: on, off"),
    ],
)
def test_bad_match_setting_is_named(tmp_path, body, named):
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, body))
    assert named in str(err.value)


def test_review_settings_come_from_the_file_and_the_environment(tmp_path):
    from datetime import timedelta

    plain = load_settings(_write(tmp_path, ""))
    assert plain.source_deadlines == {"removal_order": timedelta(hours=1)}
    assert plain.second_review_share == 0.05
    env = _write(
        tmp_path, 'source_deadlines = "partner=24h, removal_order=30m"\nsecond_review_percent = 0\n'
    )
    s = load_settings(env)
    assert s.source_deadlines == {
        "removal_order": timedelta(minutes=30),
        "partner": timedelta(hours=24),
    }
    assert s.second_review_share == 0.0
    s = load_settings({**env, "HASHDESK_SECOND_REVIEW_PERCENT": "25"})
    assert s.second_review_share == 0.25


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("removal_order=soon", "HASHDESK_SOURCE_DEADLINES='removal_order=soon': 'soon' is not"),
        ("removal_order", "HASHDESK_SOURCE_DEADLINES='removal_order': 'removal_order' is not"),
    ],
)
def test_bad_source_deadlines_is_one_line_naming_the_value(
    tmp_path, monkeypatch, capsys, value, named
):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'd.sqlite3'}")
    monkeypatch.setenv("HASHDESK_SOURCE_DEADLINES", value)
    assert main(["ingest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "Traceback" not in err
    assert not (tmp_path / "d.sqlite3").exists()  # refused before anything was opened


def test_settings_problems_are_named_where_they_are(tmp_path, monkeypatch, capsys):
    """Issue 25 (9, 10, 16): a missing HASHDESK_CONFIG file, a bad value in settings.toml
    (named by file and key, not by the environment variable), an unusable media root, and a
    server without TLS under sslmode=require: each one line naming the thing."""
    from app.cli import main
    from app.core.settings.config import ConfigError, check_media_root
    from app.storage.db import explain_connect_error

    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as exc:
        load_settings({"HASHDESK_CONFIG": str(missing)})
    assert str(exc.value) == (
        f"HASHDESK_CONFIG={str(missing)!r}: the settings file {missing} does not exist"
    )
    body = 'lease_seconds = 5\nmedia_root = "/tmp"\n'
    env = _write(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    path = env["HASHDESK_CONFIG"]
    assert str(exc.value).startswith(f"settings file {path}: lease_seconds = '5' is out of range")
    # The environment still wins, and is named as such.
    with pytest.raises(ConfigError, match=r"^HASHDESK_LEASE_SECONDS='4' is out of range"):
        load_settings({**env, "HASHDESK_LEASE_SECONDS": "4"})

    with pytest.raises(ConfigError, match="HASHDESK_MEDIA_ROOT='/proc/hashdesk-media' cannot"):
        check_media_root(Path("/proc/hashdesk-media"))
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", "/proc/hashdesk-media")
    capsys.readouterr()
    for argv in (["db", "info"], ["users", "list"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "HASHDESK_MEDIA_ROOT='/proc/hashdesk-media'" in err

    why = explain_connect_error("server does not support SSL, but SSL was required")
    assert "offers no TLS" in why and "certificate is not" not in why
