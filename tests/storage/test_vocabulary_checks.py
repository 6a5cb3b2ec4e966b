"""The vocabulary in the database: every status, verdict, method, role, policy, state and kind
column refuses a word that is not ours (CHECK constraints), on SQLite and PostgreSQL; an older
database gains the constraints on upgrade, and one holding a stray word is refused by name."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from app.core.model.decisions import DecisionRequest
from app.core.model.domain import ItemStatus, Verdict
from app.storage.db import DatabaseError, alembic_config, open_database
from app.storage.models import VOCABULARY_COLUMNS, Decision, Item
from app.storage.review import ReviewService
from tests.conftest import PG_URL, _pg_schema_url
from tests.helpers import ingest, make_user, write_samples

PREVIOUS_HEAD = "0008"


def _refused(db, sql: str, because: str = "CHECK", **params) -> None:
    with pytest.raises(IntegrityError) as caught, db.engine.begin() as conn:
        conn.execute(text(sql), params)
    said = str(caught.value).upper()
    assert because in said or (because == "CHECK" and "CK_" in said), said


def _one_item(db, store, tmp_path):
    assert ingest(db, store, write_samples(tmp_path / "in", range(1))).new == 1
    with db.session() as s:
        return s.scalar(select(Item.id))


def test_unknown_status_and_verdict_are_refused_by_the_database(db, store, tmp_path):
    item_id = _one_item(db, store, tmp_path)
    user = make_user(db)
    review = ReviewService(db)
    assert review.claim_next(user.id) is not None
    review.decide(DecisionRequest(item_id, user.id, Verdict.REJECT))
    _refused(db, "UPDATE items SET status = 'frozen' WHERE id = :i", i=item_id)
    _refused(db, "UPDATE items SET kind = 'hologram' WHERE id = :i", i=item_id)
    _refused(db, "UPDATE decisions SET verdict = 'maybe' WHERE item_id = :i", i=item_id)
    _refused(db, "UPDATE decisions SET method = 'psychic' WHERE item_id = :i", i=item_id)
    _refused(db, "UPDATE users SET role = 'root' WHERE id = :u", u=user.id)
    # The words of the vocabulary still go in, as plain SQL too.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE items SET status = 'escalated' WHERE id = :i"), {"i": item_id})
    with db.session() as s:
        status = s.scalar(select(Item.status).where(Item.id == item_id))
        verdict = s.scalar(select(Decision.verdict).where(Decision.item_id == item_id))
    # The ORM hands back the enum members themselves.
    assert status is ItemStatus.ESCALATED and verdict is Verdict.REJECT


def test_every_vocabulary_column_has_its_named_check(db):
    from sqlalchemy import inspect

    insp = inspect(db.engine)
    tables = {t for t, _ in VOCABULARY_COLUMNS}
    names = {(t, c["name"]) for t in tables for c in insp.get_check_constraints(t)}
    expected = {(t, f"ck_{t}_{c}") for t, c in VOCABULARY_COLUMNS}
    assert len(expected) == 11 and expected <= names


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request, tmp_path):
    """The URL of a new database; :func:`_work_on_old_schema` (or :func:`_old_schema`) takes it
    back to the previous head (before the checks)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        open_database(url).dispose()  # at head: _work_on_old_schema writes, then goes back
        yield url
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set HASHDESK_TEST_POSTGRES_URL to run these")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_schema_url(schema)
    open_database(url).dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _work_on_old_schema(url, store, tmp_path):
    """Items, users, decisions (one confirm with its hashes, one reject, one escalation) and a
    second review, written by this Hashdesk, then the schema taken back to the previous head
    with the migrations' own downgrades (this code writes only the schema it knows)."""
    db = open_database(url, upgrade=False)
    assert ingest(db, store, write_samples(tmp_path / "in", range(4))).new == 4
    mod, other = make_user(db), make_user(db, "mod2")
    review = ReviewService(db, second_review_share=1.0)
    for verdict in (Verdict.CONFIRM, Verdict.REJECT, Verdict.ESCALATE):
        item = review.claim_next(mod.id)
        assert item is not None
        review.decide(DecisionRequest(item.id, mod.id, verdict, category="manifesto"))
    assert review.claim_next(other.id, queue="second_review") is not None
    command.downgrade(alembic_config(db.engine), PREVIOUS_HEAD)
    assert db.current_revision() == PREVIOUS_HEAD
    db.dispose()
    return mod, other


def _snapshot(db):
    with db.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()
            for t in ("users", "items", "decisions", "hash_list", "second_reviews")
        }


def test_upgrade_from_the_previous_head_keeps_every_row_and_adds_the_checks(
    old_url, store, tmp_path
):
    mod, other = _work_on_old_schema(old_url, store, tmp_path)
    before = _snapshot(open_database(old_url, upgrade=False))
    db = open_database(old_url)  # upgrades to head
    try:
        assert db.current_revision() == db.head_revision()
        after = _snapshot(db)
        # Every row as it was; columns added since (at the end of the row) aside.
        assert {t: [r[: len(rows[0])] for r in after[t]] for t, rows in before.items() if rows} == {
            t: rows for t, rows in before.items() if rows
        }
        assert {t: len(rows) for t, rows in after.items()} == {
            t: len(rows) for t, rows in before.items()
        }
        assert sum(len(rows) for rows in before.values()) > 10  # guard: there was data
        _refused(db, "UPDATE items SET status = 'frozen'")
        _refused(db, "UPDATE second_reviews SET status = 'lost'")
        if db.dialect == "sqlite":  # the upgrade turned foreign keys off for its run only
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            _refused(db, "UPDATE sightings SET item_id = 999999", because="FOREIGN KEY")
        # The work goes on where it was: the held second review, the open item.
        review = ReviewService(db)
        assert review.my_claims(other.id, "second_review") != []
        assert review.counts(mod.id).open_items == 1
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Decision)) == 3
    finally:
        db.dispose()


def test_upgrade_refuses_a_database_holding_stray_words_and_names_the_rows(
    old_url, store, tmp_path
):
    _work_on_old_schema(old_url, store, tmp_path)
    old = open_database(old_url, upgrade=False)
    with old.engine.begin() as conn:
        item_id = conn.execute(text("SELECT min(id) FROM items")).scalar()
        conn.execute(text("UPDATE items SET status = 'frozen' WHERE id = :i"), {"i": item_id})
        conn.execute(text("UPDATE users SET role = 'root'"))
    old.dispose()
    with pytest.raises(DatabaseError) as caught:
        open_database(old_url)
    message = str(caught.value)
    assert "items.status holds 1 value(s) outside" in message
    assert f"id {item_id} ('frozen')" in message
    assert "users.role holds 2 value(s)" in message
    assert "Correct or remove these rows" in message
    after = open_database(old_url, upgrade=False)
    try:
        assert after.current_revision() == PREVIOUS_HEAD  # nothing half-done
        # Once the rows are mended, the upgrade goes through.
        with after.engine.begin() as conn:
            conn.execute(text("UPDATE items SET status = 'queued' WHERE status = 'frozen'"))
            conn.execute(text("UPDATE users SET role = 'moderator'"))
        after.upgrade()
        assert after.current_revision() == after.head_revision()
    finally:
        after.dispose()
