"""app/core/model/chain.py is the one place that names the fields a chain hash covers: the
record, the audit chain, their verification and the benchmark's generated decisions read them
off a row through it, and the chains still verify."""

from __future__ import annotations

from app.core.model.chain import AUDIT_CHAINED, DECISION_CHAINED
from app.storage.audit import verify_chains
from app.storage.models import AuditEvent, Decision
from app.tools.benchdata import generate


def test_every_chained_field_is_a_column_of_its_row():
    assert "hashes_digest" in DECISION_CHAINED and "occurred_at" in AUDIT_CHAINED  # guard
    assert set(DECISION_CHAINED) <= set(Decision.__table__.columns.keys())
    assert set(AUDIT_CHAINED) <= set(AuditEvent.__table__.columns.keys())


def test_generated_bench_decisions_verify(sqlite_db):
    # SQLite only: on PostgreSQL generate() ends with a database-wide ANALYZE (every test
    # schema on a shared server); the chain is computed the same way for both.
    assert generate(sqlite_db, decisions=120, items=30) == 120
    (decisions, _audit) = verify_chains(sqlite_db)
    assert decisions.ok and decisions.entries == 120
