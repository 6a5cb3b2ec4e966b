"""Roles enforced by the services, sign-in rate limits, and the tamper-evident record."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest
from sqlalchemy import text

from app.cli import main
from app.core.hashing.regions import REGIONS
from app.core.model.decisions import DecisionRequest
from app.core.model.domain import Role, Verdict
from app.core.model.roles import PermissionDenied
from app.storage.audit import AuditKind, recent_events, verify_chains
from app.storage.hash_lists import HashListService
from app.storage.leads import LeadService
from app.storage.review import ReviewService
from app.storage.users import MAX_FAILED_LOGINS, LoginLocked, UserError, UserService
from tests.helpers import ingest, make_user, write_samples

PW = "correct horse battery"


def _confirmed(db, store, tmp_path, moderator, n=2):
    ingest(db, store, write_samples(tmp_path / "in", range(n)))
    review = ReviewService(db)
    outs = []
    for _ in range(n):
        item = review.claim_next(moderator.id)
        outs.append(
            review.decide(DecisionRequest(item.id, moderator.id, Verdict.CONFIRM, "manifesto", "M"))
        )
    return review, outs


def test_first_admin_only_on_an_empty_database(db):
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    assert admin.role is Role.ADMIN
    with pytest.raises(PermissionDenied, match="already has users"):
        users.create_first_admin("second", PW)
    (event,) = recent_events(db, AuditKind.USER_ADDED)
    assert event.subject == "root" and event.actor_name is None


def test_moderator_may_not_manage_users(db):
    users = UserService(db)
    admin = users.create_first_admin("root", PW)
    mod = users.add("mod1", PW, Role.MODERATOR, actor=admin)
    other = users.add("mod2", PW, Role.MODERATOR, actor=admin)
    with pytest.raises(PermissionDenied, match=r"mod1 \(moderator\) may not manage users"):
        users.add("sneaky", PW, Role.ADMIN, actor=mod)
    with pytest.raises(PermissionDenied, match="needs the role admin"):
        users.disable("mod2", actor=mod)
    with pytest.raises(PermissionDenied):
        users.set_password("mod2", "a new password!", actor=mod)
    users.set_password("mod1", "my own new password", actor=mod)  # one's own: allowed
    assert users.authenticate("mod1", "my own new password") == mod
    users.disable("mod2", actor=admin)
    assert users.authenticate("mod2", PW) is None
    assert users.get("sneaky") is None and users.get("mod2") == other.__class__(
        other.id, "mod2", "mod2", Role.MODERATOR, False
    )
    with pytest.raises(UserError, match="your own account"):
        users.disable("root", actor=admin)
    kinds = [e.kind for e in reversed(recent_events(db))]
    assert kinds[:4] == ["user_added", "user_added", "user_added", "password_changed"]
    assert "user_disabled" in kinds


def test_moderator_may_not_overturn_retract_or_export(db, store, tmp_path):
    admin = UserService(db).create_first_admin("root", PW)
    mod = make_user(db, "mod1")
    lead = make_user(db, "lead1", Role.LEAD)
    review, outs = _confirmed(db, store, tmp_path, mod)
    entries = review.active_hashes_for_item(outs[0].item_id)
    hashes = HashListService(db)
    with pytest.raises(PermissionDenied, match=r"mod1 \(moderator\) may not overturn"):
        LeadService(db).overturn(mod, outs[0].uuid, "I changed my mind")
    with pytest.raises(PermissionDenied, match=r"may not retract: that needs the role"):
        hashes.retract([e.id for e in entries], "mistake", actor=mod)
    with pytest.raises(PermissionDenied, match="may not export"):
        hashes.export_active(actor=mod)
    assert len(review.active_hashes_for_item(outs[0].item_id)) == len(entries)
    # A lead may; both are in the audit chain.
    assert hashes.retract([e.id for e in entries], "wrong category", actor=lead) == len(entries)
    exported = hashes.export_active(actor=admin, purpose="GIFCT share")
    assert exported and all(x.id not in {e.id for e in entries} for x in exported)
    # Half-picture hashes mean nothing to a partner's PDQ matcher: left out unless asked for.
    halves = {f"region:{h}" for h in REGIONS}
    assert "" in {x.variant for x in exported} and not halves & {x.variant for x in exported}
    with_halves = hashes.export_active(actor=admin, include_halves=True)
    assert halves <= {x.variant for x in with_halves}
    assert {x.id for x in exported} < {x.id for x in with_halves}
    kinds = {e.kind for e in recent_events(db)}
    assert {"retraction", "export"} <= kinds
    assert all(r.ok for r in verify_chains(db))


def test_disabled_moderator_is_refused_by_the_review_service(db, store, tmp_path):
    admin = UserService(db).create_first_admin("root", PW)
    mod = make_user(db, "mod1")
    ingest(db, store, write_samples(tmp_path / "in", range(2)))
    review = ReviewService(db)
    item = review.claim_next(mod.id)
    UserService(db).disable("mod1", actor=admin)
    with pytest.raises(PermissionDenied, match="disabled"):
        review.claim_next(mod.id)
    with pytest.raises(PermissionDenied, match="disabled"):
        review.decide(DecisionRequest(item.id, mod.id, Verdict.REJECT))


def test_failed_sign_ins_are_recorded_and_rate_limited(db):
    users = UserService(db)
    users.create_first_admin("root", PW)
    for _ in range(MAX_FAILED_LOGINS):
        assert users.authenticate("root", "wrong password") is None
    # Locked now: even the right password is refused, without being checked.
    with pytest.raises(LoginLocked, match="too many failed sign-ins for root"):
        users.authenticate("root", PW)
    failed = recent_events(db, AuditKind.LOGIN_FAILED)
    assert len(failed) == MAX_FAILED_LOGINS and {e.subject for e in failed} == {"root"}
    assert len(recent_events(db, AuditKind.LOGIN_LOCKED)) == 1
    # Another name is not affected.
    users.add("mod1", PW, Role.MODERATOR)
    assert users.authenticate("mod1", PW) is not None


def test_audit_verify_names_an_altered_and_a_deleted_entry(db, store, tmp_path):
    admin = UserService(db).create_first_admin("root", PW)
    mod = UserService(db).add("mod1", PW, Role.MODERATOR, actor=admin)
    review, outs = _confirmed(db, store, tmp_path, mod, n=3)
    review.undo_last(mod.id)
    reports = verify_chains(db)
    assert [(r.chain, r.entries, r.ok) for r in reports] == [
        ("decisions", 4, True),
        ("audit events", 2, True),
    ]
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE decisions SET verdict = 'reject' WHERE uuid = :u"), {"u": outs[1].uuid}
        )
    decisions, _ = verify_chains(db)
    assert decisions.problem is not None and decisions.problem.entry_uuid == outs[1].uuid
    assert "was altered" in str(decisions.problem)
    with db.engine.begin() as conn:  # put it back, then delete the first decision
        conn.execute(
            text("UPDATE decisions SET verdict = 'confirm' WHERE uuid = :u"), {"u": outs[1].uuid}
        )
        conn.execute(text("DELETE FROM hash_list WHERE decision_uuid = :u"), {"u": outs[0].uuid})
        conn.execute(text("DELETE FROM decisions WHERE uuid = :u"), {"u": outs[0].uuid})
    decisions, audit = verify_chains(db)
    assert decisions.problem.entry_uuid == outs[1].uuid  # the entry after the hole
    assert "deleted, reordered or rewritten" in decisions.problem.what
    assert audit.ok
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET subject = 'someone' WHERE subject = 'mod1'"))
    _, audit = verify_chains(db)
    assert audit.problem is not None and "altered" in audit.problem.what


def test_cli_first_admin_then_admin_only_changes_and_audit_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main(list(argv))

    assert run("users", "add", "mod1", "--role", "moderator", "--password-stdin", stdin=PW) == 2
    assert "first one must be an admin" in capsys.readouterr().err
    assert run("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PW) == 0
    assert "the first admin" in capsys.readouterr().out
    assert run("users", "add", "mod1", "--role", "moderator", "--password-stdin", stdin=PW) == 2
    assert "needs an admin: give --as" in capsys.readouterr().err
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", PW)
    argv = ("users", "add", "mod1", "--role", "moderator", "--password-stdin", "--as", "root")
    assert run(*argv, stdin=PW) == 0
    argv = ("users", "add", "mod2", "--role", "lead", "--password-stdin", "--as", "mod1")
    assert run(*argv, stdin=PW) == 2
    assert "mod1 (moderator) may not manage users" in capsys.readouterr().err
    assert run("users", "disable", "mod1", "--as", "root") == 0
    assert run("users", "passwd", "root", "--password-stdin", stdin="a brand new one") == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert run("users", "list") == 0
    assert "mod1" in out.getvalue() and "disabled" in out.getvalue()
    capsys.readouterr()
    assert run("audit", "verify") == 0
    # root added, mod1 added, mod1 disabled, root's password changed
    assert "audit events: 4 entries checked, intact" in capsys.readouterr().out
    from app.storage.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE kind = 'user_disabled'"))
    db.dispose()
    assert run("audit", "verify") == 1
    out = capsys.readouterr().out
    assert "audit events: 3 entries checked, BROKEN" in out
    assert "  audit events: entry #4 " in out and "does not follow the entry before it" in out
