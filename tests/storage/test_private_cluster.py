"""Real password and TLS checks on a private PostgreSQL cluster started by the test (initdb,
pg_ctl) on a free port: SCRAM authentication and a server certificate signed by a CA made
here. A person signs in with their own password over verify-full TLS; a wrong password and a
certificate that does not match are refused by the server, each with a one-line message."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from app.compose import SignInError, sign_in
from app.core.model.domain import Role
from app.core.settings.config import load_settings
from app.storage.db import DatabaseError, open_database
from app.storage.server_security import install
from app.storage.users import UserService
from tests.conftest import IN_CI

PW = "a long owner password"
USER_PW = "correct horse battery"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(common_name: str, stem: str, cwd: Path) -> None:
    """A self-signed CA: ``<stem>.key`` and ``<stem>.pem`` in ``cwd``."""
    subject, key, pem = f"/CN={common_name}", f"{stem}.key", f"{stem}.pem"
    new_ca = ("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject)
    _openssl(*new_ca, "-keyout", key, "-out", pem, cwd=cwd)


@pytest.fixture(scope="module")
def cluster():
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl or not shutil.which("openssl"):
        if IN_CI:
            raise RuntimeError("PostgreSQL server binaries and openssl are needed under CI")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) or openssl here")
    root = Path(tempfile.mkdtemp(prefix="hashdesk-pg-"))
    root.chmod(0o755)
    certs = root / "certs"
    certs.mkdir()
    _make_ca("Hashdesk test CA", "ca", certs)
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=certs,
    )
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost\n", encoding="utf-8")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
        cwd=certs,
    )
    # Another CA, which signed nothing the server shows.
    _make_ca("Someone else", "other", certs)
    (root / "pw").write_text(PW + "\n", encoding="utf-8")
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for p in (*certs.iterdir(), certs, root / "pw"):
            shutil.chown(p, "postgres")
    (certs / "server.key").chmod(0o600)
    subprocess.run(
        _as_postgres(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={root / 'pw'}",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\nssl = on\n"
            f"ssl_cert_file = '{certs / 'server.pem'}'\nssl_key_file = '{certs / 'server.key'}'\n"
        )
    (data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        encoding="utf-8",
    )
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"port": port, "ca": certs / "ca.pem", "other_ca": certs / "other.pem"}
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def team(cluster):
    """A Hashdesk database on the cluster: an owner with CREATEROLE, the roles installed,
    an admin and a moderator made through the owner's connection."""
    port = cluster["port"]
    su = open_database(
        f"postgresql+psycopg://postgres:{PW.replace(' ', '%20')}@localhost:{port}/postgres",
        upgrade=False,
        connect_args={"sslmode": "require"},
    )
    with su.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("CREATE ROLE hashdesk_owner LOGIN CREATEROLE PASSWORD 'owner pw 123'")
        conn.exec_driver_sql("GRANT pg_signal_backend TO hashdesk_owner")
        conn.exec_driver_sql("CREATE DATABASE hashdesk OWNER hashdesk_owner")
    su.dispose()
    owner = open_database(
        f"postgresql+psycopg://hashdesk_owner:owner%20pw%20123@localhost:{port}/hashdesk",
        connect_args={"sslmode": "verify-full", "sslrootcert": str(cluster["ca"])},
    )
    with owner.engine.begin() as conn:  # PostgreSQL 15: public is no longer open to all
        conn.exec_driver_sql("ALTER SCHEMA public OWNER TO hashdesk_owner")
    install(owner.engine)
    users = UserService(owner)
    root = users.create_first_admin("root", USER_PW)
    users.add("mo", USER_PW, Role.MODERATOR, actor=None)
    yield {"root": root, **cluster}
    owner.dispose()


def _settings(cluster, host="localhost", ca=None):
    return load_settings(
        {
            "HASHDESK_DATABASE_URL": f"postgresql+psycopg://{host}:{cluster['port']}/hashdesk",
            "HASHDESK_DATABASE_SSLMODE": "verify-full",
            "HASHDESK_DATABASE_SSLROOTCERT": str(ca or cluster["ca"]),
            "HASHDESK_NO_KEYRING": "1",
        }
    )


def test_a_person_signs_in_with_their_own_password_over_verified_tls(team):
    settings = _settings(team)
    assert settings.team_sign_in
    ctx, user = sign_in(settings, "mo", USER_PW)
    try:
        assert user.username == "mo" and user.role is Role.MODERATOR
        with ctx.db.engine.connect() as conn:
            me, ssl = conn.exec_driver_sql(
                "SELECT session_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"
            ).one()
        assert me.endswith("u_mo") and ssl is True
    finally:
        ctx.close()


def test_a_wrong_password_is_refused_by_the_server_in_one_line(team):
    with pytest.raises(SignInError) as err:
        sign_in(_settings(team), "mo", "not the password")
    msg = str(err.value)
    assert "\n" not in msg and "wrong user name or password" in msg


def test_a_certificate_that_does_not_match_is_refused_in_one_line(team):
    # The certificate names localhost; connecting to 127.0.0.1 with verify-full must fail.
    with pytest.raises(SignInError) as err:
        sign_in(_settings(team, host="127.0.0.1"), "mo", USER_PW)
    msg = str(err.value)
    assert "\n" not in msg and "certificate" in msg and "does not match" in msg
    # A CA that did not sign the server's certificate.
    with pytest.raises(SignInError) as err:
        sign_in(_settings(team, ca=team["other_ca"]), "mo", USER_PW)
    msg = str(err.value)
    assert "\n" not in msg and "certificate" in msg


def test_a_disabled_person_is_refused_at_sign_in(team):
    settings = _settings(team)
    ctx, root = sign_in(settings, "root", USER_PW)
    try:
        ctx.users.add("temp", USER_PW, Role.MODERATOR, actor=root)
        ctx.users.disable("temp", actor=root)
    finally:
        ctx.close()
    with pytest.raises(SignInError, match="wrong user name or password, or the account is disab"):
        sign_in(settings, "temp", USER_PW)


def test_opening_with_a_bad_ca_is_a_database_error_naming_it(team):
    with pytest.raises(DatabaseError) as err:
        open_database(
            f"postgresql+psycopg://hashdesk_owner:x@localhost:{team['port']}/hashdesk",
            upgrade=False,
            connect_args={"sslmode": "verify-full", "sslrootcert": str(team["other_ca"])},
        )
    assert "\n" not in str(err.value) and "HASHDESK_DATABASE_SSLROOTCERT" in str(err.value)
