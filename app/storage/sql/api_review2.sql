-- Blind second review, the leads' escalations and overturns: the server's write API for them
-- (the contract: app/storage/server_api.py). Each hd_api_* function checks who may do what
-- (hd_require), takes ids of existing things and the person's choices, appends the decision
-- through hd_append_decision, and changes the second review, the item and the hash list in the
-- same call. The Python paths for SQLite (app.storage.second_review, .escalations, .overturn)
-- do the same work with the same checks. Runs as the schema owner (install).

-- The share of manual confirms and rejects queued for a blind second review: the server's
-- setting, one row, the owner's alone (no one is granted it). The default is the application's
-- (ReviewService's second_review_share). The owner changes it with
-- UPDATE hd_second_review_setting SET share = 0.1.
CREATE TABLE IF NOT EXISTS hd_second_review_setting (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  share double precision NOT NULL DEFAULT 0.05 CHECK (share >= 0 AND share <= 1));
INSERT INTO hd_second_review_setting (singleton) VALUES (true) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION hd_second_review_share() RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT COALESCE((SELECT share FROM hd_second_review_setting WHERE singleton), 0.05)
$$;

-- app.core.model.decisions.outcome_of: the outcome a confirm, reject or overturn stands for.
CREATE OR REPLACE FUNCTION hd_outcome_of(p_verdict text, p_category text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_verdict = 'overturn'
              THEN CASE WHEN COALESCE(p_category, '') <> '' THEN 'confirm' ELSE 'reject' END
              ELSE p_verdict END
$$;

-- app.storage.record.current_decision: the decision that stands for the item now (its latest
-- confirm, reject or overturn no undo or overturn took back; second-review opinions never
-- stand). NULL fields when none.
CREATE OR REPLACE FUNCTION hd_current_decision(p_item_id bigint) RETURNS decisions
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT d.* FROM decisions d
  WHERE d.item_id = p_item_id AND d.method <> 'second_review'
    AND d.verdict IN ('confirm', 'reject', 'overturn')
    AND NOT EXISTS (SELECT 1 FROM decisions t WHERE t.item_id = p_item_id
                    AND t.supersedes = d.uuid AND t.verdict IN ('undo', 'overturn'))
  ORDER BY d.id DESC LIMIT 1
$$;

-- hd_query_only, hd_item_hashes_digest and hd_add_item_hashes: api_review.sql.

-- app.storage.record.retract_item_hashes: retract every active local row of the item, by
-- p_user_id, for p_reason, tied to the decision p_by_uuid (an overturn to reject) and at its
-- time. Returns the number retracted. Internal.
CREATE OR REPLACE FUNCTION hd_retract_item_hashes(p_item_id bigint, p_user_id bigint,
  p_reason text, p_by_uuid text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE n integer; at timestamp;
BEGIN
  at := COALESCE((SELECT decided_at FROM decisions WHERE uuid = p_by_uuid), hd_now());
  UPDATE hash_list SET retracted_at = at, retracted_by = p_user_id,
    retraction_reason = p_reason, retraction_decision_uuid = p_by_uuid
  WHERE item_id = p_item_id AND list_name = 'local' AND retracted_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify('hashdesk_hash_list', '');
  END IF;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION hd_check_text(p_what text, p_value text, p_max integer)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_value IS NOT NULL AND length(p_value) > p_max THEN
    RAISE EXCEPTION 'hashdesk: the % is longer than % characters', p_what, p_max
      USING ERRCODE = '22023';
  END IF;
  RETURN p_value;
END $$;

CREATE OR REPLACE FUNCTION hd_check_lease(p_seconds integer) RETURNS interval
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_seconds IS NULL OR p_seconds < 10 OR p_seconds > 86400 THEN
    RAISE EXCEPTION 'hashdesk: a lease of % seconds: use 10 to 86400', quote_nullable(p_seconds)
      USING ERRCODE = '22023';
  END IF;
  -- A workstation may ask for a shorter lease, never a longer one than the server's.
  RETURN least(make_interval(secs => p_seconds), hd_lease());
END $$;

-- -- second review --------------------------------------------------------------------------

-- Queue the manual confirm or reject p_decision_uuid for a blind second review, by a draw on
-- the server at the server's share (or a higher one the deciding workstation asks for: more
-- review of one's own decisions is never less blind). Internal: the moderator's decide calls
-- it. Returns whether it was queued.
CREATE OR REPLACE FUNCTION hd_queue_second_review(p_decision_uuid text,
  p_requested_share double precision DEFAULT 0) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE d decisions; share double precision;
BEGIN
  IF p_requested_share IS NULL OR NOT (p_requested_share >= 0 AND p_requested_share <= 1) THEN
    RAISE EXCEPTION 'hashdesk: a second-review share of %: use 0 to 1',
      quote_nullable(p_requested_share) USING ERRCODE = '22023';
  END IF;
  SELECT * INTO d FROM decisions WHERE uuid = p_decision_uuid;
  IF NOT FOUND OR d.user_id IS NULL OR d.method <> 'manual'
     OR d.verdict NOT IN ('confirm', 'reject')
     OR EXISTS (SELECT 1 FROM second_reviews WHERE first_decision_uuid = d.uuid) THEN
    RETURN false;
  END IF;
  share := greatest(hd_second_review_share(), p_requested_share);
  IF NOT (random() < share) THEN
    RETURN false;
  END IF;
  INSERT INTO second_reviews (item_id, first_decision_uuid, first_user_id, first_verdict,
    status, created_at)
  VALUES (d.item_id, d.uuid, d.user_id, d.verdict, 'pending', d.decided_at);
  RETURN true;
END $$;

-- The same, for a decision the caller made in this transaction (the application's decide
-- while it appends decisions itself; hd_api_decide calls hd_queue_second_review directly).
CREATE OR REPLACE FUNCTION hd_api_queue_second_review(p_decision_uuid text,
  p_requested_share double precision DEFAULT 0) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users;
BEGIN
  me := hd_require('review');
  IF NOT EXISTS (SELECT 1 FROM decisions d WHERE d.uuid = p_decision_uuid
                 AND d.user_id = me.id AND hd_in_this_transaction(d.xmin)) THEN
    RAISE EXCEPTION 'hashdesk: % may queue for second review only a decision of theirs just made',
      me.username USING ERRCODE = '42501';
  END IF;
  RETURN hd_queue_second_review(p_decision_uuid, p_requested_share);
END $$;

-- Claim the next second review for the caller (never of their own decision, nor of one undone
-- or overturned since; the oldest first; one another workstation is claiming is skipped), for
-- p_lease_seconds. Returns its item, or NULL when there is none.
CREATE OR REPLACE FUNCTION hd_api_second_review_claim(p_exclude bigint[] DEFAULT '{}',
  p_lease_seconds integer DEFAULT 300) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; lease interval; now timestamp := hd_now(); sr second_reviews;
BEGIN
  me := hd_require('second_review');
  lease := hd_check_lease(p_lease_seconds);
  SELECT r.* INTO sr FROM second_reviews r
  WHERE (r.status = 'pending' OR (r.status = 'claimed' AND r.lease_expires_at < now))
    AND r.first_user_id IS DISTINCT FROM me.id
    AND NOT EXISTS (SELECT 1 FROM decisions t WHERE t.supersedes = r.first_decision_uuid
                    AND t.verdict IN ('undo', 'overturn'))
    AND NOT (r.item_id = ANY (COALESCE(p_exclude, '{}')))
  ORDER BY r.created_at, r.id LIMIT 1
  FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE second_reviews SET status = 'claimed', claimed_by = me.id,
    lease_expires_at = now + lease
  WHERE id = sr.id;
  RETURN sr.item_id;
END $$;

-- Extend the caller's claims on the second reviews of p_item_ids; how many.
CREATE OR REPLACE FUNCTION hd_api_second_review_renew(p_item_ids bigint[],
  p_lease_seconds integer DEFAULT 300) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; lease interval; n integer;
BEGIN
  me := hd_require('second_review');
  lease := hd_check_lease(p_lease_seconds);
  UPDATE second_reviews SET lease_expires_at = hd_now() + lease
  WHERE claimed_by = me.id AND status = 'claimed' AND item_id = ANY (p_item_ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- Give the caller's claims on the second reviews of p_item_ids back to the queue; how many.
CREATE OR REPLACE FUNCTION hd_api_second_review_release(p_item_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; n integer;
BEGIN
  me := hd_require('second_review');
  UPDATE second_reviews SET status = 'pending', claimed_by = NULL, lease_expires_at = NULL
  WHERE claimed_by = me.id AND status = 'claimed' AND item_id = ANY (p_item_ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- The second moderator's blind verdict on the review of p_item_id they hold: the decision
-- (method second_review) appended and the review closed with it, in one call (a review is
-- never done without its decision on the chain). A skip gives the review back. A verdict other
-- than the first sends the item to the leads. It never changes the hash list. Idempotent by
-- p_uuid (duplicate true).
CREATE OR REPLACE FUNCTION hd_api_second_review_decide(p_item_id bigint, p_verdict text,
  p_category text, p_category_label text, p_note text, p_uuid text)
RETURNS TABLE (decision_uuid text, item_id bigint, verdict text, agreed boolean,
               duplicate boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; sr second_reviews; d decisions; same boolean;
BEGIN
  me := hd_require('second_review');
  IF EXISTS (SELECT 1 FROM decisions x WHERE x.uuid = p_uuid) THEN
    RETURN QUERY SELECT p_uuid, p_item_id, p_verdict, NULL::boolean, true;
    RETURN;
  END IF;
  IF p_verdict IS NULL OR p_verdict NOT IN ('confirm', 'reject', 'escalate', 'skip') THEN
    RAISE EXCEPTION 'hashdesk: % is not a second-review verdict', quote_nullable(p_verdict)
      USING ERRCODE = '22023';
  END IF;
  IF p_verdict = 'confirm' AND COALESCE(p_category, '') = '' THEN
    RAISE EXCEPTION 'hashdesk: a confirmation needs a category' USING ERRCODE = '22023';
  END IF;
  PERFORM hd_check_text('category', p_category, 64), hd_check_text('category label',
    p_category_label, 255), hd_check_text('note', p_note, 4000);
  SELECT r.* INTO sr FROM second_reviews r
  WHERE r.item_id = p_item_id AND r.status = 'claimed' AND r.claimed_by = me.id
  ORDER BY r.id LIMIT 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: no second review of item % is waiting for %', p_item_id,
      me.username USING ERRCODE = '22023';
  END IF;
  IF sr.first_user_id IS NOT DISTINCT FROM me.id THEN
    RAISE EXCEPTION 'hashdesk: % may not second-review their own decision', me.username
      USING ERRCODE = '42501';
  END IF;
  IF p_verdict = 'skip' THEN
    UPDATE second_reviews SET status = 'pending', claimed_by = NULL, lease_expires_at = NULL
    WHERE id = sr.id;
    RETURN QUERY SELECT p_uuid, p_item_id, p_verdict, NULL::boolean, false;
    RETURN;
  END IF;
  d := hd_append_decision(p_uuid, p_item_id, me.id, p_verdict, p_category, p_category_label,
                          p_note, 'second_review', NULL);
  same := p_verdict = sr.first_verdict;
  UPDATE second_reviews SET status = 'done', claimed_by = NULL, lease_expires_at = NULL,
    second_user_id = me.id, second_decision_uuid = d.uuid, second_verdict = p_verdict,
    agreed = same, done_at = d.decided_at
  WHERE id = sr.id;
  IF NOT same THEN
    UPDATE items i SET status = 'escalated', claimed_by = NULL, lease_expires_at = NULL,
      updated_at = d.decided_at
    WHERE i.id = p_item_id AND i.status = 'decided';
  END IF;
  RETURN QUERY SELECT d.uuid::text, p_item_id, p_verdict, same, false;
END $$;

-- -- overturn ------------------------------------------------------------------------------

-- app.storage.overturn._overturn_one: the overturn of one standing decision, by p_lead, its
-- item's hashes retracted (to reject) or added (to confirm); the item decided, unclaimed.
CREATE OR REPLACE FUNCTION hd_overturn_one(p_target decisions, p_lead users, p_reason text,
  p_category text, p_category_label text, p_uuid text, p_parent_uuid text,
  OUT was text, OUT now text, OUT added integer, OUT retracted integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE d decisions; method text := CASE WHEN p_parent_uuid IS NULL THEN 'manual'
                                         ELSE 'cluster' END;
BEGIN
  was := hd_outcome_of(p_target.verdict, p_target.category);
  now := CASE WHEN was = 'confirm' THEN 'reject' ELSE 'confirm' END;
  added := 0;
  retracted := 0;
  PERFORM 1 FROM items WHERE id = p_target.item_id FOR UPDATE;
  IF now = 'reject' THEN
    d := hd_append_decision(p_uuid, p_target.item_id, p_lead.id, 'overturn', NULL, NULL,
                            p_reason, method, p_target.uuid, p_parent_uuid);
    retracted := hd_retract_item_hashes(p_target.item_id, p_lead.id,
                                        'decision overturned by a lead: ' || p_reason, p_uuid);
  ELSE
    d := hd_append_decision(p_uuid, p_target.item_id, p_lead.id, 'overturn', p_category,
                            p_category_label, p_reason, method, p_target.uuid, p_parent_uuid,
                            NULL, NULL, hd_item_hashes_digest(p_target.item_id, p_category));
    added := hd_add_item_hashes(p_uuid, p_target.item_id, p_lead.id, p_category);
  END IF;
  UPDATE items SET status = 'decided', claimed_by = NULL, lease_expires_at = NULL,
    updated_at = d.decided_at
  WHERE id = p_target.item_id;
END $$;

-- The overturn itself, checked (app.storage.overturn.overturn_in_session), with the OVERTURN
-- audit event. Internal: hd_api_overturn and hd_api_resolve_escalation call it.
CREATE OR REPLACE FUNCTION hd_overturn(p_lead users, p_decision_uuid text, p_verdict text,
  p_category text, p_category_label text, p_reason text, p_include_cluster boolean,
  p_uuid text)
RETURNS TABLE (uuid text, item_id bigint, was text, now text, hashes_added integer,
               hashes_retracted integer, cluster_members integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE target decisions; standing decisions; m decisions; one record; reason text;
  members integer := 0; a integer; r integer; w text; n text;
BEGIN
  reason := btrim(COALESCE(p_reason, ''));
  IF reason = '' THEN
    RAISE EXCEPTION 'hashdesk: an overturn needs a reason' USING ERRCODE = '22023';
  END IF;
  PERFORM hd_check_text('reason', reason, 4000), hd_check_text('category', p_category, 64),
    hd_check_text('category label', p_category_label, 255);
  IF EXISTS (SELECT 1 FROM decisions x WHERE x.uuid = p_uuid) THEN
    RAISE EXCEPTION 'hashdesk: overturn % was already recorded', p_uuid USING ERRCODE = '22023';
  END IF;
  SELECT * INTO target FROM decisions x WHERE x.uuid = p_decision_uuid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: decision % does not exist', quote_nullable(p_decision_uuid)
      USING ERRCODE = '22023';
  END IF;
  IF target.method = 'second_review' THEN
    RAISE EXCEPTION 'hashdesk: a second-review verdict is an opinion, not the outcome: '
      'overturn the item''s decision instead' USING ERRCODE = '22023';
  END IF;
  IF target.verdict NOT IN ('confirm', 'reject', 'overturn') THEN
    RAISE EXCEPTION 'hashdesk: only a confirm or a reject can be overturned, not a %',
      target.verdict USING ERRCODE = '22023';
  END IF;
  PERFORM 1 FROM items x WHERE x.id = target.item_id FOR UPDATE;
  standing := hd_current_decision(target.item_id);
  IF standing.uuid IS DISTINCT FROM target.uuid THEN
    RAISE EXCEPTION 'hashdesk: decision % no longer stands for item % (it was undone or '
      'overturned): overturn the item''s current decision', left(p_decision_uuid, 8),
      target.item_id USING ERRCODE = '22023';
  END IF;
  w := hd_outcome_of(target.verdict, target.category);
  n := CASE WHEN w = 'confirm' THEN 'reject' ELSE 'confirm' END;
  IF p_verdict IS NOT NULL AND p_verdict IS DISTINCT FROM n THEN
    RAISE EXCEPTION 'hashdesk: decision % stands for %: an overturn makes it %, not %',
      left(p_decision_uuid, 8), w, n, p_verdict USING ERRCODE = '22023';
  END IF;
  IF n = 'confirm' AND COALESCE(p_category, '') = '' THEN
    RAISE EXCEPTION 'hashdesk: overturning a reject confirms the item: choose a category'
      USING ERRCODE = '22023';
  END IF;
  SELECT * INTO one
    FROM hd_overturn_one(target, p_lead, reason, p_category, p_category_label, p_uuid, NULL);
  a := one.added;
  r := one.retracted;
  IF p_include_cluster THEN
    FOR m IN SELECT * FROM decisions x WHERE x.parent_uuid = target.uuid
               AND x.method = 'cluster' ORDER BY x.id LOOP
      IF (hd_current_decision(m.item_id)).uuid IS DISTINCT FROM m.uuid THEN
        CONTINUE;  -- this member was decided again since
      END IF;
      SELECT * INTO one FROM hd_overturn_one(m, p_lead, reason, p_category,
                                             p_category_label, gen_random_uuid()::text, p_uuid);
      a := a + one.added;
      r := r + one.retracted;
      members := members + 1;
    END LOOP;
  END IF;
  PERFORM hd_append_audit('overturn', target.uuid, jsonb_build_object(
    'overturn', p_uuid, 'item', target.item_id, 'was', w, 'now', n, 'hashes_added', a,
    'hashes_retracted', r, 'cluster_members', members));
  RETURN QUERY SELECT p_uuid, target.item_id, w, n, a, r, members;
END $$;

-- A lead overturns a standing decision: to reject (its item's local hashes retracted) or to
-- confirm (the item's hashes added under the overturn, p_category required); with
-- p_include_cluster, the cluster members that decision decided and that still stand too.
-- p_verdict (confirm or reject, or NULL) says which the lead means: refused if the decision
-- already stands for it.
CREATE OR REPLACE FUNCTION hd_api_overturn(p_decision_uuid text, p_verdict text,
  p_category text, p_reason text, p_category_label text DEFAULT NULL,
  p_include_cluster boolean DEFAULT false, p_uuid text DEFAULT NULL)
RETURNS TABLE (uuid text, item_id bigint, was text, now text, hashes_added integer,
               hashes_retracted integer, cluster_members integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users;
BEGIN
  me := hd_require('overturn');
  RETURN QUERY SELECT * FROM hd_overturn(me, p_decision_uuid, p_verdict, p_category,
    p_category_label, p_reason, COALESCE(p_include_cluster, false),
    COALESCE(p_uuid, gen_random_uuid()::text));
END $$;

-- -- escalations ---------------------------------------------------------------------------

-- A lead's verdict on an escalated item (app.storage.escalations.resolve_escalation): a skip
-- (or escalate) leaves it with the leads; a confirm or reject decides it, overturning the
-- standing decision (and writing its OVERTURN event) if it says otherwise. Idempotent by
-- p_uuid (duplicate true).
CREATE OR REPLACE FUNCTION hd_api_resolve_escalation(p_item_id bigint, p_verdict text,
  p_category text, p_category_label text, p_note text, p_uuid text)
RETURNS TABLE (decision_uuid text, item_id bigint, verdict text, hashes_added integer,
               hashes_retracted integer, duplicate boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; it items; standing decisions; ov record; d decisions; added integer := 0;
BEGIN
  me := hd_require('handle_escalations');
  IF EXISTS (SELECT 1 FROM decisions x WHERE x.uuid = p_uuid) THEN
    RETURN QUERY SELECT p_uuid, p_item_id, p_verdict, 0, 0, true;
    RETURN;
  END IF;
  IF p_verdict IS NULL OR p_verdict NOT IN ('confirm', 'reject', 'escalate', 'skip') THEN
    RAISE EXCEPTION 'hashdesk: % is not a review verdict', quote_nullable(p_verdict)
      USING ERRCODE = '22023';
  END IF;
  IF p_verdict = 'confirm' AND COALESCE(p_category, '') = '' THEN
    RAISE EXCEPTION 'hashdesk: a confirmation needs a category' USING ERRCODE = '22023';
  END IF;
  PERFORM hd_check_text('category', p_category, 64), hd_check_text('category label',
    p_category_label, 255), hd_check_text('note', p_note, 4000);
  SELECT * INTO it FROM items x WHERE x.id = p_item_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: item % does not exist', p_item_id USING ERRCODE = '22023';
  END IF;
  IF it.status <> 'escalated' THEN
    RAISE EXCEPTION 'hashdesk: item % is not escalated (it is %)', p_item_id, it.status
      USING ERRCODE = '22023';
  END IF;
  IF p_verdict IN ('skip', 'escalate') THEN
    d := hd_append_decision(p_uuid, p_item_id, me.id, 'skip', p_category, p_category_label,
                            p_note, 'manual', NULL);
    UPDATE items x SET claimed_by = NULL, lease_expires_at = NULL, updated_at = d.decided_at
    WHERE x.id = p_item_id;
    RETURN QUERY SELECT p_uuid, p_item_id, 'skip'::text, 0, 0, false;
    RETURN;
  END IF;
  standing := hd_current_decision(p_item_id);
  IF standing.uuid IS NOT NULL
     AND hd_outcome_of(standing.verdict, standing.category) <> p_verdict THEN
    PERFORM hd_require('overturn');
    SELECT * INTO ov FROM hd_overturn(me, standing.uuid, p_verdict, p_category,
      p_category_label, COALESCE(NULLIF(p_note, ''), 'resolved on escalation: ' || p_verdict),
      false, p_uuid);
    RETURN QUERY SELECT p_uuid, p_item_id, 'overturn'::text, ov.hashes_added,
      ov.hashes_retracted, false;
    RETURN;
  END IF;
  IF p_verdict = 'confirm' AND standing.uuid IS NULL THEN
    d := hd_append_decision(p_uuid, p_item_id, me.id, p_verdict, p_category, p_category_label,
                            p_note, 'manual', NULL, NULL, NULL, NULL,
                            hd_item_hashes_digest(p_item_id, p_category));
    added := hd_add_item_hashes(p_uuid, p_item_id, me.id, p_category);
  ELSE
    d := hd_append_decision(p_uuid, p_item_id, me.id, p_verdict, p_category, p_category_label,
                            p_note, 'manual', NULL);
  END IF;
  UPDATE items x SET status = 'decided', claimed_by = NULL, lease_expires_at = NULL,
    updated_at = d.decided_at
  WHERE x.id = p_item_id;
  RETURN QUERY SELECT p_uuid, p_item_id, p_verdict, added, 0, false;
END $$;
