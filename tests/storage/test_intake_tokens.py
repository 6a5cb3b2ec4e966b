"""The HTTP intake's per-source tokens and reports without a file (issue 24): made and revoked
by an admin only, each change an audit event, only a hash kept, a revoked token refused at
once; on SQLite and PostgreSQL through the services, and on a team server through the server's
functions, with the token hash unreadable from psql."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import select, text

from app.core.model.domain import Role, utcnow
from app.core.model.roles import PermissionDenied
from app.storage.audit import AuditKind, recent_events, verify_chains
from app.storage.intake_tokens import (
    TOKEN_PREFIX,
    IntakeReportService,
    IntakeTokenService,
    ReportError,
    TokenError,
    TokenRefused,
    token_hash,
)
from app.storage.models import IntakeToken
from app.storage.users import UserService
from tests.drills import insider

PW = "correct horse battery"


def _people(db):
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    lead = users.add("lea", PW, Role.LEAD, actor=admin)
    mod = users.add("mo", PW, Role.MODERATOR, actor=admin)
    return admin, lead, mod


def test_an_admin_makes_a_token_only_its_hash_is_kept_and_it_opens_the_intake(db):
    admin, _lead, _mod = _people(db)
    tokens = IntakeTokenService(db)
    info, token = tokens.create("tcap", actor=admin)
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    assert info.name == "tcap" and info.created_by == "root" and info.active
    with db.session() as s:
        (stored,) = s.scalars(select(IntakeToken.token_hash)).all()
    assert stored == token_hash(token) and token not in stored
    assert tokens.check(token).name == "tcap"
    _info2, other = tokens.create("partner-b", actor=admin)
    assert other != token and tokens.check(other).name == "partner-b"
    assert [t.name for t in tokens.list()] == ["tcap", "partner-b"]
    (event, _e2) = sorted(recent_events(db, AuditKind.INTAKE_TOKEN_CREATED), key=lambda e: e.id)
    assert (event.actor_name, event.subject, event.detail) == ("root", "tcap", None)
    assert all(r.ok for r in verify_chains(db))


def test_only_an_admin_makes_or_revokes_tokens(db):
    admin, lead, mod = _people(db)
    tokens = IntakeTokenService(db)
    for who in (lead, mod, None):
        with pytest.raises(PermissionDenied):
            tokens.create("sneaky", actor=who)
    tokens.create("tcap", actor=admin)
    with pytest.raises(PermissionDenied, match="lea \\(lead\\) may not manage intake"):
        tokens.revoke("tcap", actor=lead)
    assert [t.name for t in tokens.list()] == ["tcap"] and tokens.list()[0].active


def test_a_revoked_token_is_refused_at_once_and_stays_on_the_record(db):
    admin, _lead, _mod = _people(db)
    tokens = IntakeTokenService(db)
    _info, token = tokens.create("tcap", actor=admin)
    assert tokens.check(token).name == "tcap"
    revoked = tokens.revoke("tcap", actor=admin)
    assert revoked.revoked_by == "root" and not revoked.active
    with pytest.raises(TokenRefused, match="'tcap' is revoked") as refused:
        tokens.check(token)
    assert refused.value.revoked
    with pytest.raises(TokenError, match="already revoked"):
        tokens.revoke("tcap", actor=admin)
    with pytest.raises(TokenError, match="already a token named 'tcap'"):
        tokens.create("tcap", actor=admin)
    (event,) = recent_events(db, AuditKind.INTAKE_TOKEN_REVOKED)
    assert (event.actor_name, event.subject) == ("root", "tcap")


@pytest.mark.parametrize("token", ["", None, "hdi_not-a-token", "x" * 5000])
def test_an_unknown_token_is_refused(sqlite_db, token):
    _people(sqlite_db)
    with pytest.raises(TokenRefused) as refused:
        IntakeTokenService(sqlite_db).check(token)
    assert not refused.value.revoked


@pytest.mark.parametrize("name", ["", "Has Caps", "a/b", "x" * 65, "tcap;drop"])
def test_a_bad_token_name_is_refused_naming_it(sqlite_db, name):
    admin, _l, _m = _people(sqlite_db)
    with pytest.raises(TokenError, match="token name"):
        IntakeTokenService(sqlite_db).create(name, actor=admin)
    assert IntakeTokenService(sqlite_db).list() == []


def test_a_report_without_a_file_waits_for_a_lead_who_closes_it(db):
    admin, lead, mod = _people(db)
    tokens, reports = IntakeTokenService(db), IntakeReportService(db)
    _info, token = tokens.create("tcap", actor=admin)
    source = tokens.check(token)
    at = utcnow().replace(microsecond=0)
    r = reports.record(
        source="removal_order",
        external_id="TCO-1",
        source_url="https://example.invalid/v/1",
        reason="removal order",
        reporter="authority",
        score=None,
        received_at=at,
        deadline=None,
        deadline_after=timedelta(hours=1),
        token=source,
    )
    assert r.deadline == at + timedelta(hours=1) and r.token == "tcap"
    assert reports.open_count() == (1, at)
    assert [x.id for x in reports.list()] == [r.id]
    with pytest.raises(PermissionDenied):
        reports.close(r.id, "looked", actor=mod)
    closed = reports.close(r.id, "asked the platform for the file", actor=lead)
    assert closed.closed_by == "lea" and closed.closed_note == "asked the platform for the file"
    assert reports.list() == [] and reports.open_count() == (0, None)
    with pytest.raises(ReportError, match="already closed"):
        reports.close(r.id, None, actor=lead)
    (event,) = recent_events(db, AuditKind.INTAKE_REPORT_CLOSED)
    assert event.actor_name == "lea" and event.subject == str(r.id)
    # A token revoked between its check and the report's recording records nothing.
    tokens.revoke("tcap", actor=admin)
    with pytest.raises(TokenRefused):
        reports.record(
            source="tcap", external_id=None, source_url=None, reason=None, reporter=None,
            score=None, received_at=at, deadline=None, deadline_after=None, token=source,
        )  # fmt: skip
    assert reports.list(open_only=False) == [closed]


# -- the team server ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_on_the_team_server_tokens_go_through_its_functions_and_no_one_reads_a_hash(team_server):
    server = team_server
    root = server.add("root", Role.ADMIN)
    server.add("lea", Role.LEAD, actor=root, via=server.connect("root"))
    rootdb = server.connect("root")
    tokens = IntakeTokenService(rootdb)
    info, token = tokens.create("tcap", actor=root)
    assert info.created_by == "root"
    # Checked by the server for an account that may ingest (the admin here).
    assert tokens.check(token).name == "tcap"
    # The lead: reads names and states, never the hash; makes and revokes nothing.
    leaddb = server.connect("lea")
    assert [t.name for t in IntakeTokenService(leaddb).list()] == ["tcap"]
    with pytest.raises(PermissionDenied, match="may not manage intake"):
        IntakeTokenService(leaddb).create("mine", actor=None)
    with pytest.raises(PermissionDenied, match="may not manage intake"):
        IntakeTokenService(leaddb).revoke("tcap", actor=None)
    with pytest.raises(PermissionDenied, match="may not ingest"):
        IntakeTokenService(leaddb).check(token)
    before = insider.fingerprint(server)
    with insider.psql(server, "lea") as conn:
        for sql in (
            "SELECT token_hash FROM intake_tokens",
            "SELECT * FROM intake_tokens",
            "UPDATE intake_tokens SET revoked_at = NULL",
            f"INSERT INTO intake_tokens (name, token_hash, created_at) VALUES "
            f"('mine', '{'0' * 64}', now())",
            "INSERT INTO intake_reports (source, received_at) VALUES ('x', now())",
            "SELECT hd_api_intake_token_create('mine', repeat('0', 64))",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        assert conn.execute("SELECT name FROM intake_tokens").fetchall() == [("tcap",)]
    assert insider.fingerprint(server) == before
    # Revoked through the server: refused at once, the events in the admin's name.
    tokens.revoke("tcap", actor=root)
    with pytest.raises(TokenRefused, match="revoked"):
        tokens.check(token)
    with server.owner.engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT kind, actor_name, subject FROM audit_events "
                "WHERE kind LIKE 'intake_token_%' ORDER BY id"
            )
        ).all()
    assert [tuple(e) for e in events] == [
        ("intake_token_created", "root", "tcap"),
        ("intake_token_revoked", "root", "tcap"),
    ]
    assert all(r.ok for r in verify_chains(rootdb))


@pytest.mark.postgres
def test_on_the_team_server_a_report_is_recorded_by_the_server_and_closed_by_a_lead(team_server):
    server = team_server
    root = server.add("root", Role.ADMIN)
    rootdb = server.connect("root")
    server.add("lea", Role.LEAD, actor=root, via=rootdb)
    tokens = IntakeTokenService(rootdb)
    _info, token = tokens.create("tcap", actor=root)
    source = tokens.check(token)
    fields = dict(
        source="removal_order", external_id="TCO-9", source_url="https://example.invalid/x",
        reason=None, reporter=None, score=0.5, received_at=utcnow() - timedelta(days=3),
        deadline=None, deadline_after=timedelta(hours=1), token=source,
    )  # fmt: skip
    r = IntakeReportService(rootdb).record(**fields)
    # The server's clock, not the one the client sent (three days back).
    assert abs((r.received_at - utcnow()).total_seconds()) < 300
    assert r.deadline == r.received_at + timedelta(hours=1)
    leads = IntakeReportService(server.connect("lea"))
    assert [x.external_id for x in leads.list()] == ["TCO-9"]
    leads.close(r.id, "done", actor=None)
    assert leads.open_count() == (0, None)
    tokens.revoke("tcap", actor=root)
    with pytest.raises(TokenRefused, match="revoked"):
        IntakeReportService(rootdb).record(**fields)
    assert len(leads.list(open_only=False)) == 1
