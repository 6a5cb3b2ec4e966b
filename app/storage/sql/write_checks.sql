-- The checks on every write a person can make, run as the schema owner by a trigger on each
-- table; each identifies the person by session_user (identity.sql). The chain locks are
-- app.storage.chain's DECISION_CHAIN_LOCK (1212240712) and AUDIT_CHAIN_LOCK (1096107092).

-- decisions: append-only, in one's own name, following the chain head -------------------
CREATE OR REPLACE FUNCTION hd_guard_decisions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
  PERFORM pg_advisory_xact_lock(1212240712);
  head := COALESCE((SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1), repeat('0', 64));
  IF NEW.prev_hash IS DISTINCT FROM head THEN
    RAISE EXCEPTION 'hashdesk: a decision must follow the head of the decision chain'
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS hd_guard ON decisions;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON decisions
  FOR EACH ROW EXECUTE FUNCTION hd_guard_decisions();

-- hash list: added under the confirm, retracted once, never deleted -------------------------
CREATE OR REPLACE FUNCTION hd_guard_hash_list() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
DROP TRIGGER IF EXISTS hd_guard ON hash_list;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON hash_list
  FOR EACH ROW EXECUTE FUNCTION hd_guard_hash_list();

-- audit events: appended in one's own name, following the chain head ----------------------
CREATE OR REPLACE FUNCTION hd_guard_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
  PERFORM pg_advisory_xact_lock(1096107092);
  head := COALESCE((SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1),
                   repeat('0', 64));
  IF NEW.prev_hash IS DISTINCT FROM head THEN
    RAISE EXCEPTION 'hashdesk: an event must follow the head of the audit chain'
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS hd_guard ON audit_events;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION hd_guard_audit();

-- items: claims in one's own name; decided only with a decision in the same transaction ----
CREATE OR REPLACE FUNCTION hd_guard_items() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
    PERFORM hd_require('ingest');  -- ingest records the match, its decision first
    IF NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = NEW.id
                   AND d.method = 'auto_match' AND hd_in_this_transaction(d.xmin)) THEN
      RAISE EXCEPTION 'hashdesk: item % can be auto_matched only by its auto-match decision',
        NEW.id USING ERRCODE = '42501';
    END IF;
  ELSIF NEW.status IS DISTINCT FROM OLD.status
     AND NEW.status IN ('decided', 'escalated')
     AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = NEW.id
                     AND hd_in_this_transaction(d.xmin)) THEN
    RAISE EXCEPTION 'hashdesk: item % can be % only by a decision', NEW.id, NEW.status
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS hd_guard ON items;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION hd_guard_items();

-- second reviews: queued by the first decision's author, answered by the claimant -----------
CREATE OR REPLACE FUNCTION hd_guard_second_reviews() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT AS $$
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
DROP TRIGGER IF EXISTS hd_guard ON second_reviews;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON second_reviews
  FOR EACH ROW EXECUTE FUNCTION hd_guard_second_reviews();

-- the read-only record of ingest: signals and sightings (once a statement: the check reads
-- no row, and ingest inserts an item's signals in one statement) ----------------------------
CREATE OR REPLACE FUNCTION hd_guard_ingested() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
  IF hd_trusted() THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'hashdesk: % rows are never changed (% refused)', TG_TABLE_NAME, TG_OP
      USING ERRCODE = '42501';
  END IF;
  PERFORM hd_require('ingest');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS hd_guard ON signals;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON signals
  FOR EACH STATEMENT EXECUTE FUNCTION hd_guard_ingested();
DROP TRIGGER IF EXISTS hd_guard ON sightings;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON sightings
  FOR EACH STATEMENT EXECUTE FUNCTION hd_guard_ingested();

-- feedback on imported entries, exposure: in one's own name, never changed -----------------
-- (TG_ARGV: what the rows are, what writing one is: for the messages)
CREATE OR REPLACE FUNCTION hd_guard_own_record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
DROP TRIGGER IF EXISTS hd_guard ON hash_list_feedback;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON hash_list_feedback
  FOR EACH ROW EXECUTE FUNCTION hd_guard_own_record('feedback', 'give feedback');
DROP TRIGGER IF EXISTS hd_guard ON exposure_events;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON exposure_events
  FOR EACH ROW EXECUTE FUNCTION hd_guard_own_record('exposure', 'record exposure');
DROP FUNCTION IF EXISTS hd_guard_feedback();  -- before one check served both tables
DROP FUNCTION IF EXISTS hd_guard_exposure();

-- a person's comfort defaults: their own row only ------------------------------------------
CREATE OR REPLACE FUNCTION hd_guard_comfort() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
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
DROP TRIGGER IF EXISTS hd_guard ON comfort_preferences;
CREATE TRIGGER hd_guard BEFORE INSERT OR UPDATE OR DELETE ON comfort_preferences
  FOR EACH ROW EXECUTE FUNCTION hd_guard_comfort();
