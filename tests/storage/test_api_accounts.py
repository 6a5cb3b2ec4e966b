"""Accounts, exposure records and comfort defaults through the server's functions (issue 21):
each flow as the roles that may, refusals from psql for the rest with the record unchanged,
disabling that ends open sessions, no password hash left or readable, the people's timeouts;
the same checks in Python on SQLite."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import select, text

from app.core.model.domain import Role, utcnow
from app.core.model.exposure import ExposureEvent, ExposureKind
from app.core.model.roles import PermissionDenied
from app.core.review.preview import BLUR_LEVELS, ComfortDefaults
from app.storage.audit import verify_chains
from app.storage.exposure import MAX_EXPOSURE_SECONDS, ExposureError, ExposureService
from app.storage.models import AuditEvent, ExposureRow
from app.storage.server_security import ServerSecurityError
from app.storage.users import UserError, UserService
from tests.drills import insider, insider_accounts


def _events(db, *kinds: str) -> list[tuple[str, str | None, str | None, dict | None]]:
    with db.session() as s:
        rows = s.execute(
            select(AuditEvent.kind, AuditEvent.actor_name, AuditEvent.subject, AuditEvent.detail)
            .where(AuditEvent.kind.in_(kinds))
            .order_by(AuditEvent.id)
        ).all()
    return [(k, a, sub, json.loads(d) if d else None) for k, a, sub, d in rows]


def _record(server) -> tuple[str, str]:
    return insider.fingerprint(server), insider_accounts.fingerprint(server)


@pytest.fixture
def facts(team_server, tmp_path):
    f = insider.setup(team_server, tmp_path)
    f["prefix"] = team_server.prefix
    f["item"] = f["confirmed"].item_id
    f["password"] = team_server.PASSWORD
    return f


# -- accounts ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_an_admin_manages_accounts_through_the_server_each_change_on_the_record(team_server):
    server = team_server
    root = server.add("root", Role.ADMIN)  # the owner, acting itself
    rootdb = server.connect("root")
    users = UserService(rootdb)
    users.add("mo", server.PASSWORD, Role.MODERATOR, "Mo Reviewer", actor=root)
    assert users.get("mo").display_name == "Mo Reviewer"
    users.disable("mo", actor=root)
    assert users.get("mo").active is False
    with pytest.raises(psycopg.OperationalError):
        insider.psql(server, "mo").close()
    users.set_password("mo", "a new password 42", actor=root)  # disabled: still no login
    with pytest.raises(psycopg.OperationalError):
        insider.psql(server, "mo").close()
    users.set_active("mo", True, actor=root)
    with psycopg.connect(**_params(server, "mo", "a new password 42"), autocommit=True) as conn:
        assert conn.execute("SELECT active FROM users WHERE username = 'mo'").fetchone() == (
            True,
        )  # a login again, with the password set while disabled
    # Each change is one event written by the server, in the acting admin's name.
    assert _events(rootdb, "user_added", "user_disabled", "user_enabled", "password_changed") == [
        ("user_added", server.owner_role, "root", {"display_name": "root", "role": "admin"}),
        ("user_added", "root", "mo", {"display_name": "Mo Reviewer", "role": "moderator"}),
        ("user_disabled", "root", "mo", None),
        ("password_changed", "root", "mo", None),
        ("user_enabled", "root", "mo", None),
    ]
    assert all(r.ok for r in verify_chains(server.owner))


@pytest.mark.postgres
def test_a_person_sets_their_own_password_only(team_server, facts):
    for name in ("mo", "lena"):  # a moderator, a lead
        UserService(team_server.connect(name)).set_password(
            name, "my own new password", actor=facts["lead" if name == "lena" else "mo"]
        )
    with psycopg.connect(
        **_params(team_server, "mo", "my own new password"), autocommit=True
    ) as conn:
        assert conn.execute("SELECT session_user").fetchone()[0].endswith("u_mo")
    before = _record(team_server)
    with pytest.raises(PermissionDenied):  # the service refuses first; the server too (drill)
        UserService(team_server.connect("lena")).set_password(
            "max", "not yours to set 1", actor=facts["lead"]
        )
    assert _record(team_server) == before
    assert [e[1:3] for e in _events(team_server.owner, "password_changed")] == [
        ("mo", "mo"),
        ("lena", "lena"),
    ]


def _params(server, username: str, password: str) -> dict:
    from sqlalchemy.engine import make_url

    url = make_url(server.url_for(username))
    return {
        "host": url.host,
        "port": url.port or 5432,
        "dbname": url.database,
        "user": url.username,
        "password": password,
        "options": url.query.get("options"),
    }


@pytest.mark.postgres
def test_the_server_refuses_the_last_admin_and_oneself_for_the_service_too(team_server, facts):
    root = facts["root"]
    users = UserService(facts["rootdb"])
    with pytest.raises(UserError, match="cannot disable your own account"):
        users.disable("root", actor=root)
    users.add("ada", team_server.PASSWORD, Role.ADMIN, actor=root)
    ada = team_server.connect("ada")
    UserService(ada).disable("root", actor=users.get("ada"))
    with pytest.raises(UserError, match="last active admin"):
        # the owner (trusted: "oneself" does not apply) may not leave no admin either
        UserService(team_server.owner).disable("ada")
    assert UserService(team_server.owner).get("ada").active


@pytest.mark.postgres
def test_disabling_ends_the_persons_open_sessions_and_logins(team_server, facts):
    idle = insider.psql(team_server, "mo")
    busy = insider.psql(team_server, "mo")
    busy.autocommit = False
    busy.execute("SELECT count(*) FROM items")  # a transaction left open (idle in transaction)
    UserService(facts["rootdb"]).disable("mo", actor=facts["root"])
    for conn in (idle, busy):
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    with pytest.raises(psycopg.OperationalError):
        insider.psql(team_server, "mo").close()
    with team_server.owner.engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"),
            {"r": f"{team_server.prefix}u_mo"},
        ).scalar()
    assert left == 0
    # max's session is untouched.
    with insider.psql(team_server, "max") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_without_pg_signal_backend_upgrade_refuses_and_disable_fails_loudly(team_server, facts):
    from sqlalchemy import create_engine

    from tests.conftest import PG_URL

    su = create_engine(PG_URL)
    with su.begin() as conn:
        conn.execute(text(f'REVOKE pg_signal_backend FROM "{team_server.owner_role}"'))
    su.dispose()
    team_server.owner.engine.dispose()  # membership is read per session
    with pytest.raises(ServerSecurityError, match="GRANT pg_signal_backend TO"):
        team_server.install()
    open_ = insider.psql(team_server, "mo")
    before = _record(team_server)
    with pytest.raises(PermissionDenied, match="pg_signal_backend"):
        UserService(facts["rootdb"]).disable("mo", actor=facts["root"])
    assert _record(team_server) == before  # not disabled half-way
    assert open_.execute("SELECT 1").fetchone() == (1,)
    open_.close()


@pytest.mark.postgres
def test_names_are_validated_by_the_server_never_truncated(team_server, facts):
    p = team_server.prefix
    before = _record(team_server)
    with insider.psql(team_server, "root") as conn:
        for name in (insider_accounts.HOSTILE.format(prefix=p), insider_accounts.LONG_NAME):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a valid user"):
                conn.execute(
                    "SELECT hd_api_account_create(%s, 'x', 'moderator', 'password123')", (name,)
                )
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not one of"):
            conn.execute("SELECT hd_api_account_create('eve', 'x', 'owner', 'password123')")
    assert _record(team_server) == before
    # 50 bytes is the most, and is kept whole (the role name is then 63 bytes).
    fifty = "b" * 50
    UserService(facts["rootdb"]).add(
        fifty, team_server.PASSWORD, Role.MODERATOR, actor=facts["root"]
    )
    with insider.psql(team_server, fifty) as conn:
        assert conn.execute("SELECT session_user").fetchone()[0] == f"{p}u_{fifty}"
    with pytest.raises(UserError, match="not allowed"):  # the service's own check, before
        UserService(facts["rootdb"]).add(
            insider_accounts.LONG_NAME, team_server.PASSWORD, Role.MODERATOR, actor=facts["root"]
        )


# -- no password hash left, none readable --------------------------------------------------------


@pytest.mark.parametrize("team_server", [False], indirect=True)
def test_upgrade_removes_old_hashes_and_people_cannot_read_the_column(team_server, tmp_path):
    from app.storage.history_queries import HistoryService

    old = UserService(team_server.owner)
    root = old.create_first_admin("root", "old admin password")
    old.add("mo", "old moderator pw", Role.MODERATOR, actor=root)
    with team_server.owner.engine.connect() as conn:
        assert all(
            h.startswith("$argon2id$")
            for h in conn.execute(text("SELECT password_hash FROM users")).scalars()
        )
    team_server.install()
    with team_server.owner.engine.connect() as conn:
        assert set(conn.execute(text("SELECT password_hash FROM users")).scalars()) == {
            "(PostgreSQL login)"
        }
    for name in ("root", "mo"):  # the owner gives the old accounts their logins
        UserService(team_server.owner).set_password(name, team_server.PASSWORD)
    with insider.psql(team_server, "mo") as conn:
        for sql in ("SELECT password_hash FROM users", "SELECT * FROM users"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        # The timeouts reach the accounts from before too.
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1min",)
    # The application's reads of accounts work as a moderator.
    mo_db = team_server.connect("mo")
    mo_users = UserService(mo_db)
    assert [u.username for u in mo_users.list()] == ["mo", "root"]
    mo = mo_users.get("mo")
    assert mo.role is Role.MODERATOR and mo_users.count() == 2
    assert ExposureService(mo_db).events(mo) == []
    admin = UserService(team_server.connect("root")).get("root")  # nor can admins read it
    assert {"mo", "root"} <= set(
        HistoryService(team_server.connect("root")).options(admin).usernames
    )
    with (
        insider.psql(team_server, "root") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT password_hash FROM users")
    # The Hashdesk password of before signs no one in any more.
    assert UserService(team_server.owner).authenticate("mo", "old moderator pw") is None


@pytest.mark.postgres
def test_each_persons_login_carries_the_timeouts(team_server, facts):
    for name in ("mo", "lena", "root"):
        with insider.psql(team_server, name) as conn:
            shown = [
                conn.execute(f"SHOW {s}").fetchone()[0]
                for s in (
                    "lock_timeout",
                    "statement_timeout",
                    "idle_in_transaction_session_timeout",
                )
            ]
        assert shown == ["5s", "1min", "1min"]
    with team_server.owner.engine.connect() as conn:  # not the owner's (db upgrade may be long)
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"


# -- exposure and comfort defaults ---------------------------------------------------------------


@pytest.mark.postgres
def test_exposure_recorded_by_the_server_in_own_name_with_its_times(team_server, facts):
    item = facts["item"]
    for name, who in (("mo", facts["mo"]), ("lena", facts["lead"]), ("root", facts["root"])):
        as_ = ExposureService(team_server.connect(name))
        long_ago = ExposureEvent(
            who.id, item, ExposureKind.REVEAL, utcnow() - timedelta(days=30), 4
        )
        ahead = ExposureEvent(
            who.id, item, ExposureKind.REGION, utcnow() + timedelta(days=30), 2, 0.25
        )
        before = utcnow()
        assert as_.record(long_ago) and as_.record(ahead)
        assert not as_.record(long_ago)  # a replay
        after = utcnow()
        with team_server.owner.session() as s:
            rows = {
                r.uuid: r
                for r in s.scalars(select(ExposureRow).where(ExposureRow.user_id == who.id))
            }
        old, new = rows[long_ago.uuid], rows[ahead.uuid]
        # The server's clock (the test's clock is the same machine's: a second's leeway).
        slack = timedelta(seconds=1)
        assert (
            before - timedelta(days=1) - slack
            <= old.started_at
            <= after - timedelta(days=1) + slack
        )
        assert before - slack <= new.started_at <= after + slack
        assert before - slack <= old.recorded_at <= after + slack
        assert (old.seconds, new.seconds, new.area) == (4, 2, 0.25)


@pytest.mark.postgres
def test_exposure_out_of_range_refused_by_the_server_and_the_table(team_server, facts):
    item = facts["item"]
    as_mo = ExposureService(team_server.connect("mo"))
    before = _record(team_server)
    for seconds in (-1.0, MAX_EXPOSURE_SECONDS + 1, math.inf, math.nan):
        with pytest.raises(ExposureError, match="seconds of exposure is not within 0 and 86400"):
            as_mo.record(
                ExposureEvent(facts["mo"].id, item, ExposureKind.REVEAL, utcnow(), seconds)
            )
    with insider.psql(team_server, "mo") as conn:
        for seconds in ("-1", "86400.5", "'NaN'", "'Infinity'"):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="is not within 0"):
                conn.execute(insider_accounts._exposure(item, seconds))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a kind"):
            conn.execute(
                f"SELECT hd_api_record_exposure(gen_random_uuid()::text, {item}, 'nap', "
                "now()::timestamp, 1, 1)"
            )
    assert _record(team_server) == before
    # The table holds it too, even for the owner's hand.
    with team_server.owner.engine.connect() as conn:
        assert conn.execute(
            text(
                "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = "
                "'exposure_events'::regclass AND conname LIKE 'ck_exposure_events_%' "
                "AND conname <> 'ck_exposure_events_kind' ORDER BY 1"
            )
        ).all() == [("ck_exposure_events_area", True), ("ck_exposure_events_seconds", True)]
        with pytest.raises(Exception, match="ck_exposure_events_seconds"):
            conn.execute(
                text(
                    "INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, "
                    "seconds, area, recorded_at) VALUES ('x', :u, :i, 'reveal', now(), -5, 1, "
                    "now())"
                ),
                {"u": facts["mo"].id, "i": item},
            )


@pytest.mark.parametrize("team_server", [False], indirect=True)
def test_the_seconds_check_is_added_over_older_bad_rows_without_breaking_upgrade(
    team_server, tmp_path
):
    root = UserService(team_server.owner).create_first_admin("root", "old admin password")
    with team_server.owner.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO exposure_events (uuid, user_id, kind, started_at, seconds, area, "
                "recorded_at) VALUES ('old-1', :u, 'reveal', now(), -7, 1, now())"
            ),
            {"u": root.id},
        )
    team_server.install()  # warns, keeps the row, checks every new one
    with team_server.owner.engine.connect() as conn:
        assert (
            conn.execute(
                text(
                    "SELECT convalidated FROM pg_constraint WHERE conname = "
                    "'ck_exposure_events_seconds' "
                    "AND connamespace = current_schema()::regnamespace"
                )
            ).scalar()
            is False
        )
        assert conn.execute(text("SELECT seconds FROM exposure_events")).scalars().all() == [-7]
    with team_server.owner.engine.begin() as conn:
        conn.execute(text("DELETE FROM exposure_events"))
    team_server.install()  # nothing breaks it any more: validated
    with team_server.owner.engine.connect() as conn:
        assert (
            conn.execute(
                text(
                    "SELECT convalidated FROM pg_constraint WHERE conname = "
                    "'ck_exposure_events_seconds' "
                    "AND connamespace = current_schema()::regnamespace"
                )
            ).scalar()
            is True
        )


@pytest.mark.postgres
def test_comfort_defaults_kept_by_the_server_for_oneself(team_server, facts):
    for name, who in (("mo", facts["mo"]), ("lena", facts["lead"])):
        as_ = ExposureService(team_server.connect(name))
        as_.keep_comfort(who, ComfortDefaults(True, len(BLUR_LEVELS) - 1))
        as_.keep_comfort(who, ComfortDefaults(False, 0))
        assert as_.comfort(who.id) == ComfortDefaults(False, 0)
    with insider.psql(team_server, "mo") as conn:
        last = len(BLUR_LEVELS) - 1
        conn.execute(f"SELECT hd_api_keep_comfort(true, {last})")  # the server's bound is ours
        for level in (-1, last + 1):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="blur level"):
                conn.execute(f"SELECT hd_api_keep_comfort(true, {level})")
    assert ExposureService(team_server.owner).comfort(facts["mo"].id) == ComfortDefaults(True, last)


# -- the drill -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_insider_drill_accounts_exposure_comfort(team_server, facts):
    mo = facts["mo"]
    ExposureService(team_server.connect("mo")).record(
        ExposureEvent(mo.id, facts["item"], ExposureKind.REVEAL, utcnow(), 3)
    )
    ExposureService(team_server.connect("max")).keep_comfort(facts["max"], ComfortDefaults(True, 1))
    before = _record(team_server)
    outcomes = []
    for name, attempts in insider_accounts.BY_PERSON:
        with insider.psql(team_server, name) as conn:
            outcomes += insider.run(conn, attempts(facts))
    assert [o for o in outcomes if not o.as_expected] == []
    assert sum(o.result.startswith("refused") for o in outcomes) >= 45
    results = {o.label: o.result for o in outcomes}
    assert "permission denied" in results["read the accounts' password hashes"]
    assert "not a valid user name" in results["create an account named to inject SQL"]
    assert "not a valid user name" in results["create an account with a 51-byte name"]
    assert "not within 0 and 86400" in results["record negative exposure seconds"]
    assert "may not manage users" in results["disable a moderator through the server function"]
    assert _record(team_server) == before
    assert all(r.ok for r in verify_chains(team_server.owner))


# -- SQLite and PostgreSQL without the server program: the same checks in Python -----------------


def test_exposure_seconds_and_share_checked_in_python(db):
    users = UserService(db)
    root = users.create_first_admin("root", "admin password 1")
    exposure = ExposureService(db)
    for seconds in (-0.5, 86400.001, math.nan):
        with pytest.raises(ExposureError, match="seconds of exposure"):
            exposure.record(ExposureEvent(root.id, None, ExposureKind.REVEAL, utcnow(), seconds))
    with pytest.raises(ExposureError, match="share within 0 and 1"):
        exposure.record(ExposureEvent(root.id, None, ExposureKind.REGION, utcnow(), 1, 1.5))
    assert exposure.record(ExposureEvent(root.id, None, ExposureKind.REVEAL, utcnow(), 86400))
    assert [e.seconds for e in exposure.events(root)] == [86400]


def test_display_names_checked_and_accounts_recorded_in_python(db):
    users = UserService(db)
    root = users.create_first_admin("root", "admin password 1")
    with pytest.raises(UserError, match="at most 128"):
        users.add("mo", "password 123", Role.MODERATOR, "d" * 129, actor=root)
    with pytest.raises(UserError, match="not allowed"):
        users.add("a" * 51, "password 123", Role.MODERATOR, actor=root)
    users.add("mo", "password 123", Role.MODERATOR, "  ", actor=root)
    assert users.get("mo").display_name == "mo"
    users.set_password("mo", "password 456", actor=root)
    assert users.authenticate("mo", "password 456") is not None
    assert [e[0] for e in _events(db, "user_added", "password_changed")] == [
        "user_added",
        "user_added",
        "password_changed",
    ]
