"""The server enforces the roles (team deployment on PostgreSQL).

Each Hashdesk account is its own PostgreSQL login role, ``<prefix>u_<username>``, a member of
one group role per Hashdesk role (``<prefix>moderator``, ``<prefix>lead``, ``<prefix>admin``;
lead includes moderator, admin includes lead). PostgreSQL roles belong to the whole server, so
the prefix is derived from the database and the schema (:func:`role_prefix`): production,
staging and the test suite's many schemas share one server without colliding.

What the groups may do is granted here and nothing more; every write a person can make is
checked by a trigger running as the schema owner, which identifies the person by
``session_user``, checks the account is active and its role allows the change:

* decisions are append-only, in the author's own name (ingest alone records the system's
  auto-matches, and only naming an active hash-list entry), and must follow the chain head;
* hash-list rows are added only as the confirmed item's own signals, under the confirm that
  adds them, by its author; they are never deleted and change only by one retraction, tied to
  the undo or overturn that makes it or to a chained audit event in the same transaction;
* audit events are appended in the actor's own name and follow the chain head;
* accounts change only through ``hd_account_*`` functions (admins; a person's own password),
  each requiring its audit event in the same transaction; disabling one takes effect at once
  (NOLOGIN, open sessions ended, and every check above reads the active flag);
* a blind second reviewer cannot read the first decision (row-level security on decisions and
  on hash-list rows): moderators read the other moderators' decisions only once no second
  review of them is pending.

The schema owner (the role ``hashdesk db upgrade`` runs as) and superusers are trusted: they
can change anything anyway. SQLite (one workstation) has none of this; its files are readable
by their owner only (app.storage.db).
"""

from __future__ import annotations

import hashlib
import weakref
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.core.errors import Refusal
from app.core.model.domain import Role
from app.core.model.roles import ROLE_PERMISSIONS

#: The chain advisory locks (app.storage.record, app.storage.audit use the same numbers).
DECISION_CHAIN_LOCK = 0x48415348
AUDIT_CHAIN_LOCK = 0x41554454
#: PostgreSQL identifiers are at most 63 bytes; the prefix and "u_" take 13.
MAX_TEAM_USERNAME = 50

_enforced: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


class ServerSecurityError(Refusal, RuntimeError):
    pass


def role_prefix(database: str, schema: str) -> str:
    """``hd<8 hex>_``: the same for every workstation of one Hashdesk database."""
    return "hd" + hashlib.sha256(f"{database}/{schema}".encode()).hexdigest()[:8] + "_"


def schema_of_url(url: str) -> str:
    """The schema a PostgreSQL URL's ``options=-csearch_path=...`` names (else ``public``)."""
    query = parse_qs(urlsplit(url).query)
    for opt in query.get("options", []):
        for part in unquote(opt).split():
            if part.startswith("-csearch_path="):
                return part.split("=", 1)[1].split(",")[0].strip() or "public"
    return "public"


def prefix_for_url(url: str) -> str:
    parts = urlsplit(url)
    return role_prefix(parts.path.lstrip("/"), schema_of_url(url))


def person_role(prefix: str, username: str) -> str:
    return f"{prefix}u_{username}"


def group_role(prefix: str, role: Role | str) -> str:
    return f"{prefix}{Role(role).value}"


def enforced(engine: Engine) -> bool:
    """Whether this PostgreSQL database has the server-side checks installed."""
    if engine.dialect.name != "postgresql":
        return False
    known = _enforced.get(engine)
    if known is None:
        with engine.connect() as conn:
            known = conn.execute(text("SELECT to_regproc('hd_account') IS NOT NULL")).scalar()
        _enforced[engine] = bool(known)
    return bool(known)


def chain_head(s: Session, chain: str) -> str | None:
    """The newest entry hash of a chain ("decisions" or "audit events"). On an enforced
    database a person may not see every decision (blind second review), so the server says."""
    bind = s.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if enforced(engine):
        return s.execute(text("SELECT hd_chain_head(:c)"), {"c": chain}).scalar()
    table = "decisions" if chain == "decisions" else "audit_events"
    return s.execute(text(f"SELECT entry_hash FROM {table} ORDER BY id DESC LIMIT 1")).scalar()


def _allowed_values() -> str:
    pairs = sorted((r.value, p.value) for r, perms in ROLE_PERMISSIONS.items() for p in perms)
    return ", ".join(f"('{r}', '{p}')" for r, p in pairs)


def _sql(schema: str, prefix: str, owner: str) -> str:
    s = f'"{schema}"'
    mod, lead, admin = (f'"{prefix}{r}"' for r in ("moderator", "lead", "admin"))
    definer = f"SECURITY DEFINER SET search_path = {s}, pg_catalog, pg_temp"
    person = f"'{prefix}u_' || username"

    def attach(table: str, function: str, *args: str) -> str:
        """The check ``function`` on every write to ``table`` (re-created: idempotent)."""
        argv = ", ".join(f"'{a}'" for a in args)
        return (
            f"DROP TRIGGER IF EXISTS hd_guard ON {s}.{table};\n"
            f"CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON {s}.{table}\n"
            f"  FOR EACH ROW EXECUTE FUNCTION {s}.{function}({argv});"
        )

    return f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{prefix}moderator') THEN
    CREATE ROLE {mod} NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{prefix}lead') THEN
    CREATE ROLE {lead} NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{prefix}admin') THEN
    CREATE ROLE {admin} NOLOGIN; END IF;
END $$;
GRANT {mod} TO {lead};
GRANT {lead} TO {admin};

CREATE OR REPLACE FUNCTION {s}.hd_trusted() RETURNS boolean LANGUAGE sql STABLE {definer} AS $$
  SELECT session_user::text = '{owner}'
      OR COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
$$;

CREATE OR REPLACE FUNCTION {s}.hd_allowed(p_role text, p_perm text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT (p_role, p_perm) IN (VALUES {_allowed_values()})
$$;

CREATE OR REPLACE FUNCTION {s}.hd_me_id() RETURNS bigint LANGUAGE sql STABLE {definer} AS $$
  SELECT id FROM users WHERE {person} = session_user AND active
$$;

CREATE OR REPLACE FUNCTION {s}.hd_account() RETURNS {s}.users LANGUAGE plpgsql STABLE {definer}
AS $$
DECLARE u users;
BEGIN
  SELECT * INTO u FROM users WHERE {person} = session_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: % is not an account of this Hashdesk database', session_user
      USING ERRCODE = '42501';
  END IF;
  IF NOT u.active THEN
    RAISE EXCEPTION 'hashdesk: the account of % is disabled', u.username USING ERRCODE = '42501';
  END IF;
  RETURN u;
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_require(p_perm text) RETURNS {s}.users LANGUAGE plpgsql
STABLE {definer} AS $$
DECLARE u users;
BEGIN
  u := hd_account();
  IF NOT hd_allowed(u.role, p_perm) THEN
    RAISE EXCEPTION 'hashdesk: % (%) may not %', u.username, u.role, replace(p_perm, '_', ' ')
      USING ERRCODE = '42501';
  END IF;
  RETURN u;
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_in_this_transaction(p_xmin xid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_xmin::text::bigint = txid_current() % 4294967296
$$;

CREATE OR REPLACE FUNCTION {s}.hd_event_here(p_kind text, p_subject text) RETURNS boolean
LANGUAGE sql STABLE {definer} AS $$
  SELECT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = p_kind
                 AND e.subject IS NOT DISTINCT FROM p_subject
                 AND hd_in_this_transaction(e.xmin))
$$;

CREATE OR REPLACE FUNCTION {s}.hd_chain_head(p_chain text) RETURNS text LANGUAGE plpgsql
STABLE {definer} AS $$
BEGIN
  IF p_chain = 'decisions' THEN
    RETURN (SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1);
  END IF;
  RETURN (SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1);
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_chain_state(p_chain text)
RETURNS TABLE (entries bigint, head text) LANGUAGE plpgsql STABLE {definer} AS $$
BEGIN
  IF p_chain = 'decisions' THEN
    RETURN QUERY SELECT (SELECT count(*) FROM decisions),
                        (SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1)::text;
  ELSE
    RETURN QUERY SELECT (SELECT count(*) FROM audit_events),
                        (SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1)::text;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_may_see_decision(p_uuid text, p_parent text, p_user bigint)
RETURNS boolean LANGUAGE sql STABLE {definer} AS $$
  SELECT p_user IS NOT DISTINCT FROM hd_me_id() OR NOT EXISTS (
    SELECT 1 FROM second_reviews sr
    WHERE sr.first_decision_uuid IN (p_uuid, p_parent) AND sr.status <> 'done'
      AND sr.first_user_id IS DISTINCT FROM hd_me_id())
$$;

-- decisions: append-only, in one's own name, following the chain head -------------------
CREATE OR REPLACE FUNCTION {s}.hd_guard_decisions() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users; target decisions; head text;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'hashdesk: decisions are append-only (% refused)', TG_OP
      USING ERRCODE = '42501';
  END IF;
  u := hd_account();
  IF NEW.user_id IS NULL THEN
    IF NEW.method = 'auto_match' AND NEW.verdict = 'confirm' THEN
      PERFORM hd_require('ingest');
      IF NOT EXISTS (SELECT 1 FROM hash_list h WHERE h.id = NEW.matched_entry_id
                     AND h.retracted_at IS NULL) THEN
        RAISE EXCEPTION 'hashdesk: an auto-match must name an active hash-list entry'
          USING ERRCODE = '42501';
      END IF;
    ELSIF NEW.method = 'manual' AND NEW.verdict = 'escalate' THEN
      PERFORM hd_require('review');  -- a late, conflicting decision goes to the leads
    ELSE
      RAISE EXCEPTION 'hashdesk: % may not record a decision made by no one', u.username
        USING ERRCODE = '42501';
    END IF;
  ELSIF NEW.user_id <> u.id THEN
    RAISE EXCEPTION 'hashdesk: % may not record a decision in another person''s name',
      u.username USING ERRCODE = '42501';
  ELSE
    IF NEW.method = 'auto_match' THEN
      RAISE EXCEPTION 'hashdesk: only ingest records auto-matches' USING ERRCODE = '42501';
    ELSIF NEW.verdict = 'overturn' THEN
      PERFORM hd_require('overturn');
    ELSIF NEW.method = 'second_review' THEN
      PERFORM hd_require('second_review');
      IF NOT EXISTS (SELECT 1 FROM second_reviews sr WHERE sr.item_id = NEW.item_id
                     AND sr.claimed_by = u.id AND sr.status = 'claimed') THEN
        RAISE EXCEPTION 'hashdesk: no second review of item % is held by %', NEW.item_id,
          u.username USING ERRCODE = '42501';
      END IF;
    ELSE
      PERFORM hd_require('review');
    END IF;
    IF NEW.verdict = 'undo' THEN
      SELECT * INTO target FROM decisions WHERE uuid = NEW.supersedes;
      IF NOT FOUND OR target.user_id IS DISTINCT FROM u.id THEN
        RAISE EXCEPTION 'hashdesk: % may undo only their own decisions', u.username
          USING ERRCODE = '42501';
      END IF;
    END IF;
  END IF;
  PERFORM pg_advisory_xact_lock({DECISION_CHAIN_LOCK});
  head := COALESCE((SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1), repeat('0', 64));
  IF NEW.prev_hash IS DISTINCT FROM head THEN
    RAISE EXCEPTION 'hashdesk: a decision must follow the head of the decision chain'
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("decisions", "hd_guard_decisions")}

-- hash list: added under the confirm, retracted once, never deleted -------------------------
CREATE OR REPLACE FUNCTION {s}.hd_guard_hash_list() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users; d decisions; r decisions;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'hashdesk: hash-list rows are retracted, never deleted'
      USING ERRCODE = '42501';
  END IF;
  u := hd_account();
  IF TG_OP = 'INSERT' THEN
    IF NEW.retracted_at IS NOT NULL OR NEW.retracted_by IS NOT NULL THEN
      RAISE EXCEPTION 'hashdesk: a new hash-list row cannot be retracted already'
        USING ERRCODE = '42501';
    END IF;
    IF NEW.list_name <> 'local' THEN
      PERFORM hd_require('import_hashes');
      RETURN NEW;
    END IF;
    SELECT * INTO d FROM decisions WHERE uuid = NEW.decision_uuid;
    IF NOT FOUND OR d.method IN ('auto_match', 'second_review')
       OR NOT (d.verdict = 'confirm' OR (d.verdict = 'overturn' AND d.category IS NOT NULL)) THEN
      RAISE EXCEPTION 'hashdesk: a hash-list row needs the confirm that adds it'
        USING ERRCODE = '42501';
    END IF;
    IF d.user_id IS DISTINCT FROM u.id OR NEW.added_by IS DISTINCT FROM u.id THEN
      RAISE EXCEPTION 'hashdesk: % may not add hashes in another person''s name', u.username
        USING ERRCODE = '42501';
    END IF;
    IF NEW.item_id IS DISTINCT FROM d.item_id OR NOT EXISTS (
        SELECT 1 FROM signals g WHERE g.id = NEW.signal_id AND g.item_id = d.item_id
          AND g.algorithm = NEW.algorithm AND g.value = NEW.value
          AND g.variant IS NOT DISTINCT FROM NEW.variant) THEN
      RAISE EXCEPTION 'hashdesk: a hash-list row must be one of the confirmed item''s hashes'
        USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.id, NEW.algorithm, NEW.value, NEW.quality, NEW.frame_ts, NEW.variant, NEW.category,
      NEW.list_name, NEW.decision_uuid, NEW.item_id, NEW.signal_id, NEW.added_by, NEW.added_at)
     IS DISTINCT FROM
     (OLD.id, OLD.algorithm, OLD.value, OLD.quality, OLD.frame_ts, OLD.variant, OLD.category,
      OLD.list_name, OLD.decision_uuid, OLD.item_id, OLD.signal_id, OLD.added_by, OLD.added_at)
  THEN
    RAISE EXCEPTION 'hashdesk: a hash-list entry''s hash and origin never change'
      USING ERRCODE = '42501';
  END IF;
  -- provenance of an imported entry: only an import
  IF (NEW.external_id, NEW.labels, NEW.meta, NEW.first_seen, NEW.last_seen)
     IS DISTINCT FROM (OLD.external_id, OLD.labels, OLD.meta, OLD.first_seen, OLD.last_seen) THEN
    IF OLD.list_name = 'local' THEN
      RAISE EXCEPTION 'hashdesk: our own entries have no imported provenance to change'
        USING ERRCODE = '42501';
    END IF;
    PERFORM hd_require('import_hashes');
  END IF;
  -- disable / enable one entry: a lead or admin, on the record
  IF (NEW.disabled_at, NEW.disabled_by, NEW.disabled_reason)
     IS DISTINCT FROM (OLD.disabled_at, OLD.disabled_by, OLD.disabled_reason) THEN
    PERFORM hd_require('retract');
    IF NEW.disabled_at IS NOT NULL AND NEW.disabled_by IS DISTINCT FROM u.id THEN
      RAISE EXCEPTION 'hashdesk: % may not disable an entry in another person''s name',
        u.username USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind IN ('entry_disabled', 'entry_enabled')
                   AND hd_in_this_transaction(e.xmin)) THEN
      RAISE EXCEPTION 'hashdesk: disabling or enabling an entry must be on the record'
        USING ERRCODE = '42501';
    END IF;
  END IF;
  -- the flood guard: set by ingest, cleared by a lead, on the record
  IF NEW.flood_guarded_at IS DISTINCT FROM OLD.flood_guarded_at THEN
    PERFORM hd_require(CASE WHEN NEW.flood_guarded_at IS NULL THEN 'retract' ELSE 'ingest' END);
    IF NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind IN ('flood_guard', 'entry_enabled')
                   AND hd_in_this_transaction(e.xmin)) THEN
      RAISE EXCEPTION 'hashdesk: the flood guard changes only on the record'
        USING ERRCODE = '42501';
    END IF;
  END IF;
  -- retraction: once, with the undo, overturn, import or audited retraction that makes it
  IF (NEW.retracted_at, NEW.retracted_by, NEW.retraction_reason, NEW.retraction_decision_uuid)
     IS NOT DISTINCT FROM
     (OLD.retracted_at, OLD.retracted_by, OLD.retraction_reason, OLD.retraction_decision_uuid)
  THEN
    RETURN NEW;
  END IF;
  IF OLD.retracted_at IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: hash-list entry % is already retracted', OLD.id
      USING ERRCODE = '42501';
  END IF;
  IF NEW.retracted_at IS NULL OR NEW.retracted_by IS DISTINCT FROM u.id
     OR COALESCE(NEW.retraction_reason, '') = '' THEN
    RAISE EXCEPTION 'hashdesk: a retraction needs its time, its author (%) and a reason',
      u.username USING ERRCODE = '42501';
  END IF;
  IF NEW.retraction_decision_uuid IS NOT NULL THEN
    SELECT * INTO r FROM decisions WHERE uuid = NEW.retraction_decision_uuid;
    IF FOUND AND r.user_id = u.id AND r.verdict IN ('undo', 'overturn')
       AND r.item_id = OLD.item_id THEN
      RETURN NEW;
    END IF;
    IF OLD.list_name <> 'local' AND EXISTS (
        SELECT 1 FROM audit_events e WHERE e.uuid = NEW.retraction_decision_uuid
          AND e.kind = 'import' AND e.subject = OLD.list_name AND e.actor_id = u.id
          AND hd_in_this_transaction(e.xmin)) THEN
      PERFORM hd_require('import_hashes');
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'hashdesk: a retraction needs the undo, overturn or import that makes it'
      USING ERRCODE = '42501';
  END IF;
  PERFORM hd_require('retract');
  IF NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = 'retraction'
                 AND hd_in_this_transaction(e.xmin)) THEN
    RAISE EXCEPTION 'hashdesk: a retraction must be on the record (audit event first)'
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("hash_list", "hd_guard_hash_list")}

-- audit events: appended in one's own name, following the chain head ----------------------
CREATE OR REPLACE FUNCTION {s}.hd_guard_audit() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users; head text;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'hashdesk: audit events are append-only (% refused)', TG_OP
      USING ERRCODE = '42501';
  END IF;
  u := hd_account();
  IF NEW.actor_id IS DISTINCT FROM u.id OR NEW.actor_name IS DISTINCT FROM u.username THEN
    RAISE EXCEPTION 'hashdesk: % may record events only in their own name', u.username
      USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock({AUDIT_CHAIN_LOCK});
  head := COALESCE((SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1),
                   repeat('0', 64));
  IF NEW.prev_hash IS DISTINCT FROM head THEN
    RAISE EXCEPTION 'hashdesk: an event must follow the head of the audit chain'
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("audit_events", "hd_guard_audit")}

-- items: claims in one's own name; decided only with a decision in the same transaction ----
CREATE OR REPLACE FUNCTION {s}.hd_guard_items() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'hashdesk: items are never deleted' USING ERRCODE = '42501';
  END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM hd_require('ingest');
    RETURN NEW;
  END IF;
  u := hd_account();
  IF NEW.claimed_by IS NOT NULL AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by
     AND NEW.claimed_by <> u.id THEN
    RAISE EXCEPTION 'hashdesk: % may not claim an item in another person''s name', u.username
      USING ERRCODE = '42501';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status = 'auto_matched' THEN
    PERFORM hd_require('ingest');  -- ingest records the match (its decision is checked too)
  ELSIF NEW.status IS DISTINCT FROM OLD.status
     AND NEW.status IN ('decided', 'escalated')
     AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = NEW.id
                     AND hd_in_this_transaction(d.xmin)) THEN
    RAISE EXCEPTION 'hashdesk: item % can be % only by a decision', NEW.id, NEW.status
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("items", "hd_guard_items")}

-- second reviews: queued by the first decision's author, answered by the claimant -----------
CREATE OR REPLACE FUNCTION {s}.hd_guard_second_reviews() RETURNS trigger LANGUAGE plpgsql
{definer} AS $$
DECLARE u users;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'hashdesk: second reviews are never deleted' USING ERRCODE = '42501';
  END IF;
  u := hd_account();
  IF TG_OP = 'INSERT' THEN
    IF NEW.first_user_id IS DISTINCT FROM u.id OR NOT EXISTS (
        SELECT 1 FROM decisions d WHERE d.uuid = NEW.first_decision_uuid AND d.user_id = u.id
          AND hd_in_this_transaction(d.xmin)) THEN
      RAISE EXCEPTION 'hashdesk: a second review is queued by the decision it reviews'
        USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.claimed_by IS NOT NULL AND NEW.claimed_by IS DISTINCT FROM OLD.claimed_by
      AND NEW.claimed_by <> u.id)
     OR (NEW.second_user_id IS DISTINCT FROM OLD.second_user_id
         AND NEW.second_user_id IS DISTINCT FROM u.id) THEN
    RAISE EXCEPTION 'hashdesk: % may not review in another person''s name', u.username
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("second_reviews", "hd_guard_second_reviews")}

-- the read-only record of ingest: signals and sightings -----------------------------------
CREATE OR REPLACE FUNCTION {s}.hd_guard_ingested() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'hashdesk: % rows are never changed (% refused)', TG_TABLE_NAME, TG_OP
      USING ERRCODE = '42501';
  END IF;
  PERFORM hd_require('ingest');
  RETURN NEW;
END $$;
{attach("signals", "hd_guard_ingested")}
{attach("sightings", "hd_guard_ingested")}

-- feedback on imported entries, exposure: in one's own name, never changed -----------------
-- (TG_ARGV: what the rows are, what writing one is: for the messages)
CREATE OR REPLACE FUNCTION {s}.hd_guard_own_record() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'hashdesk: % is never changed (% refused)', TG_ARGV[0], TG_OP
      USING ERRCODE = '42501';
  END IF;
  u := hd_require('review');
  IF NEW.user_id IS DISTINCT FROM u.id THEN
    RAISE EXCEPTION 'hashdesk: % may not % in another person''s name', u.username, TG_ARGV[1]
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("hash_list_feedback", "hd_guard_own_record", "feedback", "give feedback")}
{attach("exposure_events", "hd_guard_own_record", "exposure", "record exposure")}
DROP FUNCTION IF EXISTS {s}.hd_guard_feedback();  -- before one check served both tables
DROP FUNCTION IF EXISTS {s}.hd_guard_exposure();

-- a person's comfort defaults: their own row only ------------------------------------------
CREATE OR REPLACE FUNCTION {s}.hd_guard_comfort() RETURNS trigger LANGUAGE plpgsql {definer}
AS $$
DECLARE u users;
BEGIN
  IF hd_trusted() THEN RETURN COALESCE(NEW, OLD); END IF;
  u := hd_require('review');
  IF TG_OP = 'DELETE' OR NEW.user_id IS DISTINCT FROM u.id
     OR (TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM u.id) THEN
    RAISE EXCEPTION 'hashdesk: % may change only their own comfort defaults', u.username
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
{attach("comfort_preferences", "hd_guard_comfort")}

-- accounts: only through these, each with its audit event in the same transaction ---------
CREATE OR REPLACE FUNCTION {s}.hd_account_create(p_username text, p_display text, p_role text,
  p_password text) RETURNS bigint LANGUAGE plpgsql {definer} AS $$
DECLARE new_id bigint; r text := '{prefix}u_' || p_username;
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('manage_users'); END IF;
  IF p_role NOT IN ('moderator', 'lead', 'admin') THEN
    RAISE EXCEPTION 'hashdesk: % is not a role', p_role USING ERRCODE = '22023';
  END IF;
  IF NOT hd_event_here('user_added', p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', r, p_password);
  ELSE
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', r, p_password);
  END IF;
  EXECUTE format('GRANT %I TO %I', '{prefix}' || p_role, r);
  INSERT INTO users (username, display_name, role, password_hash, active, created_at)
  VALUES (p_username, p_display, p_role, '(PostgreSQL login)', true,
          now() AT TIME ZONE 'utc')
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_account_set_active(p_username text, p_active boolean)
RETURNS void LANGUAGE plpgsql {definer} AS $$
DECLARE r text := '{prefix}u_' || p_username;
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('manage_users'); END IF;
  IF NOT hd_event_here(CASE WHEN p_active THEN 'user_enabled' ELSE 'user_disabled' END,
                       p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  UPDATE users SET active = p_active WHERE username = p_username;
  EXECUTE format('ALTER ROLE %I %s', r, CASE WHEN p_active THEN 'LOGIN' ELSE 'NOLOGIN' END);
  IF NOT p_active THEN
    BEGIN
      PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r;
    EXCEPTION WHEN insufficient_privilege THEN
      NULL;  -- the owner lacks pg_signal_backend: every check reads the active flag anyway
    END;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION {s}.hd_account_set_password(p_username text, p_password text)
RETURNS void LANGUAGE plpgsql {definer} AS $$
BEGIN
  IF NOT hd_trusted() AND session_user::text <> '{prefix}u_' || p_username THEN
    PERFORM hd_require('manage_users');
  END IF;
  IF NOT hd_event_here('password_changed', p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  EXECUTE format('ALTER ROLE %I %s PASSWORD %L', '{prefix}u_' || p_username,
    CASE WHEN (SELECT active FROM users WHERE username = p_username) THEN 'LOGIN'
         ELSE 'NOLOGIN' END, p_password);
END $$;

-- what each group may touch at all -----------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC;
GRANT USAGE ON SCHEMA {s} TO {mod};
GRANT SELECT ON {s}.users, {s}.items, {s}.sightings, {s}.signals, {s}.decisions,
  {s}.hash_list, {s}.audit_events, {s}.second_reviews, {s}.alembic_version, {s}.hash_lists,
  {s}.hash_list_feedback, {s}.exposure_events, {s}.comfort_preferences TO {mod};
GRANT INSERT, UPDATE ON {s}.comfort_preferences TO {mod};
GRANT INSERT ON {s}.decisions, {s}.hash_list, {s}.audit_events, {s}.second_reviews,
  {s}.hash_list_feedback, {s}.exposure_events TO {mod};
GRANT UPDATE (status, claimed_by, lease_expires_at, updated_at) ON {s}.items TO {mod};
GRANT UPDATE (status, claimed_by, lease_expires_at, second_user_id, second_decision_uuid,
  second_verdict, agreed, done_at) ON {s}.second_reviews TO {mod};
GRANT UPDATE (retracted_at, retracted_by, retraction_reason, retraction_decision_uuid)
  ON {s}.hash_list TO {mod};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {mod};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {mod};
GRANT UPDATE (disabled_at, disabled_by, disabled_reason, flood_guarded_at, changed_at)
  ON {s}.hash_list TO {lead};
GRANT INSERT ON {s}.items, {s}.sightings, {s}.signals, {s}.hash_lists TO {admin};
GRANT UPDATE ON {s}.items, {s}.hash_list, {s}.hash_lists TO {admin};

-- blind second review, outside the app too ------------------------------------------------
ALTER TABLE {s}.decisions ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hd_read_all ON {s}.decisions;
CREATE POLICY hd_read_all ON {s}.decisions FOR SELECT TO {lead} USING (true);
DROP POLICY IF EXISTS hd_read_blind ON {s}.decisions;
CREATE POLICY hd_read_blind ON {s}.decisions FOR SELECT TO {mod}
  USING ({s}.hd_may_see_decision(uuid, parent_uuid, user_id));
DROP POLICY IF EXISTS hd_append ON {s}.decisions;
CREATE POLICY hd_append ON {s}.decisions FOR INSERT TO {mod} WITH CHECK (true);
ALTER TABLE {s}.hash_list ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hd_read_all ON {s}.hash_list;
CREATE POLICY hd_read_all ON {s}.hash_list FOR SELECT TO {lead} USING (true);
DROP POLICY IF EXISTS hd_read_own ON {s}.hash_list;
CREATE POLICY hd_read_own ON {s}.hash_list FOR SELECT TO {mod}
  USING (list_name <> 'local' OR added_by IS NOT DISTINCT FROM {s}.hd_me_id());
DROP POLICY IF EXISTS hd_add ON {s}.hash_list;
CREATE POLICY hd_add ON {s}.hash_list FOR INSERT TO {mod} WITH CHECK (true);
DROP POLICY IF EXISTS hd_retract ON {s}.hash_list;
CREATE POLICY hd_retract ON {s}.hash_list FOR UPDATE TO {mod}
  USING (added_by IS NOT DISTINCT FROM {s}.hd_me_id()) WITH CHECK (true);
DROP POLICY IF EXISTS hd_retract_any ON {s}.hash_list;
CREATE POLICY hd_retract_any ON {s}.hash_list FOR UPDATE TO {lead} USING (true)
  WITH CHECK (true);

-- exposure: a moderator reads their own rows (their trend); leads read everyone's -----------
ALTER TABLE {s}.exposure_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hd_read_all ON {s}.exposure_events;
CREATE POLICY hd_read_all ON {s}.exposure_events FOR SELECT TO {lead} USING (true);
DROP POLICY IF EXISTS hd_read_own ON {s}.exposure_events;
CREATE POLICY hd_read_own ON {s}.exposure_events FOR SELECT TO {mod}
  USING (user_id IS NOT DISTINCT FROM {s}.hd_me_id());
DROP POLICY IF EXISTS hd_add ON {s}.exposure_events;
CREATE POLICY hd_add ON {s}.exposure_events FOR INSERT TO {mod} WITH CHECK (true);
"""


def install(engine: Engine) -> str:
    """Install (or bring up to date) the group roles, grants, checks and policies in the
    database ``engine`` points at, connected as the schema owner. Idempotent. Returns the role
    prefix."""
    if engine.dialect.name != "postgresql":
        raise ServerSecurityError("server-side roles exist only on PostgreSQL")
    with engine.begin() as conn:
        database, schema, owner, can_create = conn.execute(
            text(
                "SELECT current_database(), current_schema(), current_user, "
                "(SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user)"
            )
        ).one()
        if not can_create:
            raise ServerSecurityError(
                f"{owner} cannot create roles: the schema owner needs CREATEROLE "
                f"(as a superuser: ALTER ROLE {owner} CREATEROLE)"
            )
        prefix = role_prefix(database, schema)
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(_sql(schema, prefix, owner))
        # Accounts made before the server enforced the roles get a login role each, without
        # a password (so no login) until `hashdesk users passwd NAME --as ADMIN` sets one.
        for username, role in conn.execute(text("SELECT username, role FROM users")).all():
            person = person_role(prefix, username)
            exists = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": person}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE ROLE "{person}" NOLOGIN'))
            conn.execute(text(f'GRANT "{group_role(prefix, role)}" TO "{person}"'))
    _enforced[engine] = True
    return prefix


def drop_roles(engine: Engine, prefix: str) -> None:
    """Remove every role of one Hashdesk database (its schema already dropped): tests, and
    taking a staging database down."""
    with engine.begin() as conn:
        roles = conn.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p ORDER BY rolname DESC"),
            {"p": prefix.replace("_", r"\_") + "%"},
        ).scalars()
        for name in roles:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
