"""Issue 25 (5): a team server that checks no password (pg_hba.conf ``trust``) is refused by the
sign-in and by `db upgrade`, naming the line to fix; HASHDESK_ALLOW_TRUST_AUTH=1 (tests,
development) goes on with a loud warning. The test server here trusts 127.0.0.1."""

from __future__ import annotations

import io

import pytest

from app.cli import main
from app.compose import SignInError, sign_in
from app.core.model.domain import Role
from app.core.settings.config import load_settings

pytestmark = pytest.mark.postgres


def _team_url(team_server) -> str:
    return team_server.team_url


def _settings(team_server, **extra):
    return load_settings(
        {"HASHDESK_DATABASE_URL": _team_url(team_server), "HASHDESK_NO_KEYRING": "1", **extra}
    )


def test_sign_in_refuses_a_server_that_takes_any_password(team_server, monkeypatch):
    monkeypatch.delenv("HASHDESK_ALLOW_TRUST_AUTH")
    team_server.add("root", Role.ADMIN)
    for password in ("not the password", team_server.PASSWORD):
        with pytest.raises(SignInError) as refused:
            sign_in(_settings(team_server), "root", password)
        text = str(refused.value)
        assert "\n" not in text
        assert "wrong password: it checks no passwords (trust authentication)" in text
        assert "pg_hba.conf" in text and "scram-sha-256" in text
        assert "HASHDESK_ALLOW_TRUST_AUTH=1" in text


def test_the_opt_out_goes_on_with_a_loud_warning(team_server, capsys):
    team_server.add("root", Role.ADMIN)
    ctx, user = sign_in(
        _settings(team_server, HASHDESK_ALLOW_TRUST_AUTH="1"), "root", "not the password"
    )
    ctx.close()
    assert user.username == "root"
    err = capsys.readouterr().err
    assert "WARNING: HASHDESK_ALLOW_TRUST_AUTH is set" in err and "ANYONE CAN SIGN IN" in err


def test_cli_refuses_a_wrong_admin_password_on_a_trusting_server(team_server, monkeypatch, capsys):
    monkeypatch.delenv("HASHDESK_ALLOW_TRUST_AUTH")
    team_server.add("root", Role.ADMIN)
    monkeypatch.setenv("HASHDESK_DATABASE_URL", _team_url(team_server))
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", "not the password")
    monkeypatch.setattr("sys.stdin", io.StringIO("a new password\n"))
    args = ["users", "add", "mo", "--role", "moderator", "--password-stdin", "--as", "root"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "sign-in as root failed" in err and "checks no passwords" in err
    with team_server.owner.engine.connect() as conn:
        added = conn.exec_driver_sql("SELECT count(*) FROM users WHERE username = 'mo'")
        assert added.scalar() == 0


def test_db_upgrade_refuses_a_trusting_server_and_names_the_line(team_server, monkeypatch, capsys):
    monkeypatch.delenv("HASHDESK_ALLOW_TRUST_AUTH")
    monkeypatch.setenv("HASHDESK_DATABASE_URL", team_server.owner_url)
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"let {team_server.owner_role} in with a wrong password" in err
    # The owner here is the README's (not a superuser): it may not read the server's rules, so
    # the message names the file without its path and line.
    assert "the server's pg_hba.conf" in err
    monkeypatch.setenv("HASHDESK_ALLOW_TRUST_AUTH", "1")
    assert main(["db", "upgrade"]) == 0
    captured = capsys.readouterr()
    assert "schema revision" in captured.out and "WARNING" in captured.err
