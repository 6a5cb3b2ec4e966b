"""SQLAlchemy 2 typed models of the shared database (docs/ARCHITECTURE.md, "Data model").

Times are stored as naive UTC so that SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.core.matching.hash_lists import FeedbackVerdict, ListPolicy
from app.core.model.domain import DecisionMethod, ItemStatus, MediaKind, Role, Verdict, utcnow
from app.core.model.exposure import ExposureKind
from app.core.model.queues import SecondReviewState


class Base(DeclarativeBase):
    pass


# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
PK = BigInteger().with_variant(Integer(), "sqlite")


def vocabulary(kind: type[StrEnum], table: str, column: str) -> Enum:
    """A column that holds one word of ``kind``: stored as its value in a VARCHAR(16), under a
    CHECK constraint named ``ck_<table>_<column>`` that refuses any other word (migration 0009
    adds them to older databases). The ORM reads and writes the enum member; a plain string
    of the vocabulary is accepted too (a ``StrEnum`` member equals its value)."""
    return Enum(
        kind,
        name=f"ck_{table}_{column}",
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


#: Every column that holds a vocabulary: (table, column) -> the enum. The migration that adds
#: the constraints and the tests that try to break them read this table.
VOCABULARY_COLUMNS: dict[tuple[str, str], type[StrEnum]] = {
    ("users", "role"): Role,
    ("items", "kind"): MediaKind,
    ("items", "status"): ItemStatus,
    ("decisions", "verdict"): Verdict,
    ("decisions", "method"): DecisionMethod,
    ("hash_lists", "policy"): ListPolicy,
    ("hash_list_feedback", "verdict"): FeedbackVerdict,
    ("second_reviews", "status"): SecondReviewState,
    ("second_reviews", "first_verdict"): Verdict,
    ("second_reviews", "second_verdict"): Verdict,
    ("exposure_events", "kind"): ExposureKind,
}


def _vocab(table: str, column: str) -> Enum:
    return vocabulary(VOCABULARY_COLUMNS[table, column], table, column)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # On a team server a user name becomes part of a login role's name (migration 0011;
        # the same rule as app.storage.server_roles.username_problem).
        CheckConstraint(
            "ltrim(username, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = '' "
            "AND length(username) BETWEEN 1 AND 50",
            name="ck_users_username",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_vocab("users", "role"))
    # Loaded only when read (SQLite sign-in): on a team server people may not read it at all.
    password_hash: Mapped[str] = mapped_column(String(255), deferred=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_queue", "status", "priority", "created_at"),
        Index("ix_items_known_entry", "known_entry_id", "created_at"),
        Index("ix_items_incident", "incident_id", "status"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[MediaKind] = mapped_column(_vocab("items", "kind"))
    mime: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    content_key: Mapped[str | None] = mapped_column(String(64))
    preview_key: Mapped[str | None] = mapped_column(String(64))
    preview_frames: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[ItemStatus] = mapped_column(_vocab("items", "status"))
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    cluster_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    match_note: Mapped[str | None] = mapped_column(Text)
    # The hash-list entry a known match named (resolved or badged): the flood guard counts
    # these per hour, a moderator's verdict on a badged item is feedback on the entry. No
    # foreign key: hash_list already refers to items.
    known_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    # A partial copy's match (a run of frames matching part of a known video, migration
    # 0019): the item's seconds and the reference's that matched, and both shares (the run's
    # frames over the item's; the reference's frames it covers). NULL for any other match.
    match_start: Mapped[float | None] = mapped_column(Float)
    match_end: Mapped[float | None] = mapped_column(Float)
    match_ref_start: Mapped[float | None] = mapped_column(Float)
    match_ref_end: Mapped[float | None] = mapped_column(Float)
    match_query_share: Mapped[float | None] = mapped_column(Float)
    match_ref_share: Mapped[float | None] = mapped_column(Float)
    # The incident the item belongs to (matched its hashes, or joined the cluster of an item
    # under it: app.storage.incidents); NULL for most. No foreign key (as known_entry_id).
    incident_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    sightings: Mapped[list[Sighting]] = relationship(back_populates="item", order_by="Sighting.id")
    signals: Mapped[list[SignalRow]] = relationship(back_populates="item", order_by="SignalRow.id")


class Sighting(Base):
    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("receipt_id", name="uq_sightings_receipt_id"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    source: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)
    source_url: Mapped[str | None] = mapped_column(Text)
    original_name: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    flagged_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The intake arrival this sighting records (at most one sighting per arrival).
    receipt_id: Mapped[int | None] = mapped_column(BigInteger)

    item: Mapped[Item] = relationship(back_populates="sightings")


class SignalRow(Base):
    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_algorithm_value", "algorithm", "value"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer)
    frame_ts: Mapped[float | None] = mapped_column(Float)
    variant: Mapped[str] = mapped_column(String(16), default="")

    item: Mapped[Item] = relationship(back_populates="signals")


class Decision(Base):
    """Append-only. ``entry_hash`` chains each row to the previous one (tamper evidence)."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_user_time", "user_id", "decided_at"),
        # History filters on a verdict (overturns, escalations are rare: no long scans).
        Index("ix_decisions_verdict_time", "verdict", "decided_at"),
        # Partial: most decisions supersede nothing; history asks which were taken back.
        Index(
            "ix_decisions_supersedes",
            "supersedes",
            sqlite_where=text("supersedes IS NOT NULL"),
            postgresql_where=text("supersedes IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verdict: Mapped[Verdict] = mapped_column(_vocab("decisions", "verdict"))
    category: Mapped[str | None] = mapped_column(String(64))
    category_label: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    method: Mapped[DecisionMethod] = mapped_column(_vocab("decisions", "method"))
    supersedes: Mapped[str | None] = mapped_column(String(36))
    # For a ``cluster`` decision: the manual decision on the cluster's representative.
    parent_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    # For an ``auto_match`` decision: the hash-list entry and distance that matched.
    matched_entry_id: Mapped[int | None] = mapped_column(ForeignKey("hash_list.id"))
    match_distance: Mapped[int | None] = mapped_column(Integer)
    # A confirm's hash-list rows, digested (app.core.model.chain.hash_rows_digest_v2, "v2:...";
    # entries written before it: hash_rows_digest); chained.
    hashes_digest: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class HashList(Base):
    """One list other than ``local``: imported from a partner, or an allow list
    (docs/ARCHITECTURE.md, "Hash lists and exchange"). ``policy``: resolve / queue / off."""

    __tablename__ = "hash_lists"
    __table_args__ = (
        # The range app.core.matching.hash_lists.check_pdq_threshold checks (migration 0010).
        CheckConstraint(
            "pdq_threshold IS NULL OR (pdq_threshold >= 0 AND pdq_threshold <= 64)",
            name="ck_hash_lists_pdq_threshold",
        ),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str | None] = mapped_column(String(255))
    policy: Mapped[ListPolicy] = mapped_column(
        _vocab("hash_lists", "policy"), default=ListPolicy.QUEUE
    )
    pdq_threshold: Mapped[int | None] = mapped_column(Integer)
    allow: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_import_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_import_note: Mapped[str | None] = mapped_column(Text)
    # Set by the database on every INSERT and UPDATE, as hash_list.change_seq (the lists' rules
    # are read again when it moves).
    change_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)


class HashListEntry(Base):
    """One hash of a list: a confirmed signal (``local``) or an imported one, with its
    provenance. Retracted, never deleted; disabled and enabled again with a reason."""

    __tablename__ = "hash_list"
    __table_args__ = (
        Index("ix_hash_list_algorithm_value", "algorithm", "value"),
        Index("ix_hash_list_list_name", "list_name"),
        UniqueConstraint("decision_uuid", "signal_id", name="uq_hash_list_decision_signal"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int | None] = mapped_column(Integer)
    frame_ts: Mapped[float | None] = mapped_column(Float)
    variant: Mapped[str] = mapped_column(String(16), default="")
    category: Mapped[str | None] = mapped_column(String(64))
    list_name: Mapped[str] = mapped_column(String(64), default="local")
    decision_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # Indexed (the watcher's watermark until change_seq, migration 0012).
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    retracted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retraction_reason: Mapped[str | None] = mapped_column(Text)
    retraction_decision_uuid: Mapped[str | None] = mapped_column(String(36))
    # Provenance of an imported entry (labels space-separated; meta: JSON of the source
    # format's own fields, written back on export).
    external_id: Mapped[str | None] = mapped_column(String(256))
    labels: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    disabled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Set by the flood guard: the entry's matches are queued whatever its list's policy.
    flood_guarded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set by every change after the insert (disable, enable, flood guard).
    changed_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # Set by the database itself on every INSERT and UPDATE (migration 0012: a sequence on
    # PostgreSQL, one more than the table's highest on SQLite): the watcher's watermark, which
    # no client clock can move.
    change_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)


class HashListFeedback(Base):
    """A moderator's agree/disagree on an imported entry, kept for the list's owner."""

    __tablename__ = "hash_list_feedback"

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("hash_list.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verdict: Mapped[FeedbackVerdict] = mapped_column(_vocab("hash_list_feedback", "verdict"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """Administrative events (users added, disabled, passwords changed, failed sign-ins,
    retractions, exports). Append-only and hash-chained like decisions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_kind_subject_time", "kind", "subject", "occurred_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(64))  # as it was at the time
    subject: Mapped[str | None] = mapped_column(String(255))  # whom or what it concerns
    detail: Mapped[str | None] = mapped_column(Text)  # canonical JSON
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class SecondReview(Base):
    """A sampled manual decision queued, blind, for a second moderator (never its author).
    ``agreed`` is set when the second verdict comes in; a disagreement escalates the item."""

    __tablename__ = "second_reviews"
    __table_args__ = (Index("ix_second_reviews_queue", "status", "created_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    first_decision_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    first_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_verdict: Mapped[Verdict] = mapped_column(_vocab("second_reviews", "first_verdict"))
    status: Mapped[SecondReviewState] = mapped_column(
        _vocab("second_reviews", "status"), default=SecondReviewState.PENDING
    )
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    second_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    second_decision_uuid: Mapped[str | None] = mapped_column(String(36))
    second_verdict: Mapped[Verdict | None] = mapped_column(
        _vocab("second_reviews", "second_verdict")
    )
    agreed: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class ExposureRow(Base):
    """One unblurred moment (app.core.model.exposure): who, which item, how long, how much of the
    picture. Append-only; daily totals, the limit passed and the trends are read from these."""

    __tablename__ = "exposure_events"
    __table_args__ = (Index("ix_exposure_user_started", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    kind: Mapped[ExposureKind] = mapped_column(_vocab("exposure_events", "kind"))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    seconds: Mapped[float] = mapped_column(Float)
    area: Mapped[float] = mapped_column(Float, default=1.0)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The exposure chain (app.core.model.chain.exposure_chain_fields); NULL before revision 0013.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))


class ComfortPreference(Base):
    """A person's own comfort defaults (greyscale, blur level), over the organisation's."""

    __tablename__ = "comfort_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    greyscale: Mapped[bool] = mapped_column(Boolean)
    blur_level: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class IntakeReceipt(Base):
    """One arrival at the intake (app.storage.intake): the file's content (already in the media
    store under its SHA-256), its metadata, and how far its job got. ``state``: ``waiting``
    (its job has not recorded it yet), ``done`` (its sighting recorded: ``item_id``),
    ``refused`` (a value the record does not take: ``error`` says which)."""

    __tablename__ = "intake_receipts"
    __table_args__ = (
        CheckConstraint("state IN ('waiting', 'done', 'refused')", name="ck_intake_receipts_state"),
        CheckConstraint("via IN ('cli', 'drop', 'http')", name="ck_intake_receipts_via"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(16))
    original_name: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(256))
    source_url: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(String(256))
    score: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    intake_source_id: Mapped[int | None] = mapped_column(BigInteger)
    received_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("items.id"))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    worker: Mapped[str | None] = mapped_column(String(128))
    # The arrival's own key (a drop folder's claim, an HTTP Idempotency-Key): given again, the
    # same arrival (no second row).
    intake_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class IntakeWorker(Base):
    """A queue worker (``hashdesk worker``): its id is procrastinate's (procrastinate_workers,
    where its heartbeat is), with a name (host:pid) and the account it signed in as."""

    __tablename__ = "intake_workers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_job_at: Mapped[datetime | None] = mapped_column(DateTime)


class IntakeToken(Base):
    """A source's token for the HTTP intake (app.storage.intake_tokens): only its SHA-256 is
    kept (the token is printed once, when made); revoked tokens stay, on the record."""

    __tablename__ = "intake_tokens"

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Loaded only when asked: on a team server people may not read it (grants.sql).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, deferred=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class IntakeReport(Base):
    """A report that came without a file (a URL, an entity, a platform): its facts as sent,
    the URL as text only (never fetched), open for the leads until one closes it."""

    __tablename__ = "intake_reports"
    __table_args__ = (Index("ix_intake_reports_open", "closed_at", "received_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("intake_tokens.id"))
    source: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(256))
    source_url: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_note: Mapped[str | None] = mapped_column(Text)


class Delta(Base):
    """One numbered hash delta out (migration 0017): the ``change_seq`` window of the hash
    list it covers (``lower_seq`` exclusive, ``upper_seq`` inclusive), its time span, counts,
    the incident's label; written (when, by whom, the manifest's SHA-256, where) or still
    pending with its last failure. Which entries went in: :class:`DeltaEntry`."""

    __tablename__ = "deltas"
    __table_args__ = (
        UniqueConstraint("seq", name="uq_deltas_seq"),
        CheckConstraint("seq > 0 AND lower_seq <= upper_seq", name="ck_deltas_window"),
    )

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    lower_seq: Mapped[int] = mapped_column(BigInteger)
    upper_seq: Mapped[int] = mapped_column(BigInteger)
    span_start: Mapped[datetime | None] = mapped_column(DateTime)
    span_end: Mapped[datetime] = mapped_column(DateTime)
    incident_id: Mapped[int | None] = mapped_column(BigInteger)
    label: Mapped[str | None] = mapped_column(String(255))
    formats: Mapped[str] = mapped_column(Text)  # JSON list of format names
    added: Mapped[int] = mapped_column(Integer)
    retracted: Mapped[int] = mapped_column(Integer)
    planned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    written_at: Mapped[datetime | None] = mapped_column(DateTime)
    written_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    destination: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime)


class DeltaEntry(Base):
    """A hash-list entry in a delta: ``add`` (now shared) or ``retract`` (shared before, no
    longer active)."""

    __tablename__ = "delta_entries"
    __table_args__ = (
        CheckConstraint("op IN ('add', 'retract')", name="ck_delta_entries_op"),
        Index("ix_delta_entries_entry_id", "entry_id", "delta_seq"),
    )

    delta_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("deltas.seq"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("hash_list.id"), primary_key=True)
    op: Mapped[str] = mapped_column(String(8))


class DeltaImport(Base):
    """A partner's delta imported into one of our lists (``hashdesk lists import
    --incremental``): the next one must be ``seq + 1``."""

    __tablename__ = "delta_imports"
    __table_args__ = (UniqueConstraint("list_name", "seq", name="uq_delta_imports_list_seq"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    list_name: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(255))
    import_uuid: Mapped[str | None] = mapped_column(String(36))
    imported_at: Mapped[datetime] = mapped_column(DateTime)
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Incident(Base):
    """An incident (issue 23): declared by a lead, concluded with an end. ``label`` (a CIP
    reference, say) goes into the labels of every hash confirmed under it. ``sources``,
    ``categories``, ``seed_items`` and ``delta_formats`` hold JSON lists (text on both
    databases); an empty ``sources`` covers every source."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_ended_at", "ended_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    declared_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    concluded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sources: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    categories: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    seed_items: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    delta_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    delta_formats: Mapped[str] = mapped_column(Text, default='["pytx"]', server_default='["pytx"]')


class IncidentHash(Base):
    """A hash an incident starts from: a seed hash a lead typed or received (``item_id``
    NULL), or a listable signal of a seed item. Items matching one are under the incident."""

    __tablename__ = "incident_hashes"
    __table_args__ = (Index("ix_incident_hashes_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    algorithm: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16), default="", server_default="")
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))


class IncidentAssignment(Base):
    """A person a lead moved onto an incident: their review claims come from its queue."""

    __tablename__ = "incident_assignments"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime)


class Rescan(Base):
    """One re-scan on new hashes (app.storage.incidents.Rescanner): what triggered it, how
    many hashes it searched (only the new ones) over how many stored items, and what it
    changed. ``incident_id``: the incident active for the hashes, if any."""

    __tablename__ = "rescans"
    __table_args__ = (Index("ix_rescans_incident", "incident_id", "started_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    trigger: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime] = mapped_column(DateTime)
    searched_hashes: Mapped[int] = mapped_column(Integer)
    items_scanned: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)
    badged: Mapped[int] = mapped_column(Integer)
    tagged: Mapped[int] = mapped_column(Integer)
    flagged_misses: Mapped[int] = mapped_column(Integer)
    counted_decided: Mapped[int] = mapped_column(Integer)
    run_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RescanMiss(Base):
    """A rejected item a re-scan found matching a confirmed hash: a possible miss, for a lead
    (cleared by one, with the time and who)."""

    __tablename__ = "rescan_misses"
    __table_args__ = (Index("ix_rescan_misses_open", "cleared_at", "flagged_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True)
    rescan_id: Mapped[int] = mapped_column(ForeignKey("rescans.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("hash_list.id"))
    note: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime] = mapped_column(DateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime)
    cleared_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
