"""Shared fixtures: a fresh database per test on SQLite and (when configured) PostgreSQL,
a content store, the taxonomy, and the corpus location.

PostgreSQL: set HASHDESK_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test).
Each test gets its own schema there, dropped afterwards. Under CI (CI=true) a missing server is a
failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.ingest.contentstore import ContentStore
from app.core.model.taxonomy import load_taxonomy
from app.paths import resource
from app.storage.db import Database, open_database

#: The reference corpus: ../shared/corpus beside the repository, or HASHDESK_TEST_CORPUS.
CORPUS = Path(
    os.environ.get("HASHDESK_TEST_CORPUS", "").strip()
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
)
#: The one wording of every corpus skip (README: "Tests").
CORPUS_SKIP = f"reference corpus not found at {CORPUS}"


def corpus_mark(*paths: Path):
    """The skip mark of a test that reads the corpus (``paths``: the parts it reads; by
    default the corpus folder itself)."""
    return pytest.mark.skipif(not all(p.exists() for p in (paths or (CORPUS,))), reason=CORPUS_SKIP)


def skip_without_corpus(*paths: Path) -> None:
    """Inside a test: skip it, with the one wording, when the corpus (or ``paths``) is absent."""
    if not all(p.exists() for p in (paths or (CORPUS,))):
        pytest.skip(CORPUS_SKIP)


PG_URL = os.environ.get("HASHDESK_TEST_POSTGRES_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError(
            "CI=true but HASHDESK_TEST_POSTGRES_URL is not set: the PostgreSQL tests must run"
        )


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path, monkeypatch):
    """The user data and config directories (journal, settings file) point into the test's
    temporary folder, never at the real ones of whoever runs the tests."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HASHDESK_NO_KEYRING", "1")  # never the tester's real keyring
    # The test PostgreSQL trusts 127.0.0.1 (no password asked): the explicit opt-out, with its
    # warning, so the team tests can sign in; tests of the refusal remove it.
    monkeypatch.setenv("HASHDESK_ALLOW_TRUST_AUTH", "1")
    for name in ("HASHDESK_CONFIG", "HASHDESK_DATABASE_PASSWORD", "HASHDESK_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def corpus() -> Path:
    skip_without_corpus()
    return CORPUS


def _pg_schema_url(schema: str, user: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = PG_URL
    if user is not None:
        url = make_url(PG_URL).set(username=user).render_as_string(hide_password=False)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _make_pg_database() -> tuple[Database, callable]:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL at HASHDESK_TEST_POSTGRES_URL is not reachable: {exc}")
    db = open_database(_pg_schema_url(schema))

    def cleanup() -> None:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return db, cleanup


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> Database:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'test.sqlite3'}")
        yield database
        database.dispose()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run these")
    database, cleanup = _make_pg_database()
    yield database
    cleanup()


@pytest.fixture
def sqlite_db(tmp_path) -> Database:
    database = open_database(f"sqlite:///{tmp_path / 'test.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def store(tmp_path) -> ContentStore:
    return ContentStore(tmp_path / "media")


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy(resource("taxonomy.toml"))


def create_team_schema(schema: str) -> str:
    """A schema owned by its own owner role, made as the README's team steps make it: a login
    with CREATEROLE and pg_signal_backend, not a superuser. Returns the owner's role name."""
    from sqlalchemy import create_engine, text

    owner = f"{schema}_owner"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN CREATEROLE'))
        conn.execute(text(f'GRANT pg_signal_backend TO "{owner}"'))
        conn.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"'))
    admin.dispose()
    return owner


class TeamServer:
    """A Hashdesk database on the PostgreSQL server with the server-side roles installed (as
    ``hashdesk db upgrade`` does) by a schema owner that is not a superuser (CREATEROLE, as the
    README sets it up), accounts made through the admin path, and a connection per person with
    that person's own PostgreSQL login."""

    PASSWORD = "correct horse battery"

    def __init__(self, schema: str, install: bool = True, owner: str | None = None) -> None:
        from app.storage import server_roles

        self.schema = schema
        self.owner_role = owner
        self.owner_url = _pg_schema_url(schema, owner)
        self.owner = open_database(self.owner_url)
        self.prefix = server_roles.prefix_for_url(self.owner_url)
        if install:
            self.install()
        self._open: list[Database] = []

    def install(self) -> None:
        from app.storage import server_security

        assert server_security.install(self.owner.engine) == self.prefix

    def url_for(self, username: str) -> str:
        from sqlalchemy.engine import make_url

        from app.storage.server_roles import person_role

        return (
            make_url(self.owner_url)
            .set(username=person_role(self.prefix, username), password=self.PASSWORD)
            .render_as_string(hide_password=False)
        )

    def connect(self, username: str) -> Database:
        db = open_database(self.url_for(username), upgrade=False)
        self._open.append(db)
        return db

    @property
    def team_url(self) -> str:
        """The database as every workstation names it: no user (people sign in)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.owner_url)._replace(username=None, password=None)
        return url.render_as_string(hide_password=False)

    def set_second_review_share(self, share: float) -> None:
        """The share of decisions the server samples for blind second review (its own draw;
        a workstation may ask for more, never less)."""
        from sqlalchemy import text

        with self.owner.engine.begin() as conn:
            conn.execute(text("UPDATE hd_second_review_setting SET share = :s"), {"s": share})

    def add(self, username: str, role, actor=None, via: Database | None = None):
        from app.storage.users import UserService

        return UserService(via or self.owner).add(username, self.PASSWORD, role, actor=actor)

    def close(self) -> None:
        from sqlalchemy import create_engine, text

        from app.storage.server_security import drop_roles

        for db in self._open:
            db.dispose()
        self.owner.dispose()
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        drop_roles(admin, self.prefix)
        if self.owner_role is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP OWNED BY "{self.owner_role}"'))
                conn.execute(text(f'DROP ROLE "{self.owner_role}"'))
        admin.dispose()


@pytest.fixture
def team_server(request):
    """A team database with server-enforced roles (PostgreSQL only). Indirect parameter
    ``False``: the roles are not installed yet (an older team database)."""
    if not PG_URL:
        if IN_CI:
            raise RuntimeError("HASHDESK_TEST_POSTGRES_URL is not set under CI")
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run these")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    owner = create_team_schema(schema)
    server = TeamServer(schema, install=getattr(request, "param", True), owner=owner)
    yield server
    server.close()
