-- The moderators' writes: claim, renew and release (every queue), decide, undo. Each is one
-- call, in the caller's own name, with ids from the sequences, times from the server's clock
-- and the chain entry computed here (chain.sql). app.storage.review and app.storage.queues call
-- them on a team database; on SQLite they do the same in Python (the parity tests:
-- tests/storage/test_api_review.py).

-- A claim's lease: app.core.model.queues.DEFAULT_LEASE_SECONDS. The server sets it; no one
-- parks an item without a lease or hoards it for a year.
CREATE OR REPLACE FUNCTION hd_lease() RETURNS interval LANGUAGE sql IMMUTABLE AS $$
  SELECT interval '300 seconds'
$$;

-- How many claims one person may hold at once in one queue (the review screen holds the item
-- on screen and a few prefetched).
CREATE OR REPLACE FUNCTION hd_max_claims() RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT 24
$$;

-- The status an item goes back to (app.core.model.domain.open_status_for).
CREATE OR REPLACE FUNCTION hd_open_status(p_kind text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_kind = 'unreadable' THEN 'unreadable' ELSE 'queued' END
$$;

-- Whether a signal's variant is searched with only, never listed
-- (app.core.matching.signal_types.is_query_only: turned or mirrored pictures, untrimmed halves,
-- the sound read at another speed, the views of a picture).
CREATE OR REPLACE FUNCTION hd_query_only(p_variant text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE(starts_with(p_variant, 'dih:') OR starts_with(p_variant, 'untrimmed:')
                  OR starts_with(p_variant, 'speed:') OR starts_with(p_variant, 'view:'), false)
$$;

-- The digest a confirm's chain entry carries of the rows it adds, as they will be: the item's
-- listable signals under ``p_category`` in the local list (app.core.model.chain
-- .hash_rows_digest_v2, whose docstring gives this very expression).
CREATE OR REPLACE FUNCTION hd_item_hashes_digest(p_item_id bigint, p_category text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT 'v2:' || left(encode(sha256(convert_to(COALESCE(
           string_agg(line, E'\n' ORDER BY line COLLATE "C"), ''), 'UTF8')), 'hex'), 61)
  FROM (SELECT g.algorithm || '|' || COALESCE(g.variant, '') || '|' || lower(g.value) || '|'
               || COALESCE(g.quality::text, '') || '|'
               || COALESCE(floor(g.frame_ts * 1000000)::bigint::text, '') || '|'
               || COALESCE(p_category, '') || '|' || 'local' AS line
        FROM signals g WHERE g.item_id = p_item_id AND NOT hd_query_only(g.variant)) lines
$$;
DROP FUNCTION IF EXISTS hd_item_hashes_digest(bigint);

-- Put the item's listable signals in the local list under the confirm ``p_decision_uuid``
-- (app.storage.record.append_confirm). Returns how many rows it added.
CREATE OR REPLACE FUNCTION hd_add_item_hashes(p_decision_uuid text, p_item_id bigint,
  p_user_id bigint, p_category text) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE n integer; at timestamp;
BEGIN
  at := COALESCE((SELECT decided_at FROM decisions WHERE uuid = p_decision_uuid), hd_now());
  -- Under an active incident: its label on every row (app.storage.record.append_confirm).
  INSERT INTO hash_list (algorithm, value, quality, frame_ts, variant, category, list_name,
    decision_uuid, item_id, signal_id, added_by, added_at, labels)
  SELECT g.algorithm, g.value, g.quality, g.frame_ts, g.variant, p_category, 'local',
         p_decision_uuid, p_item_id, g.id, p_user_id, at,
         (SELECT i.label FROM items t JOIN incidents i ON i.id = t.incident_id
           WHERE t.id = p_item_id AND i.ended_at IS NULL)
  FROM signals g WHERE g.item_id = p_item_id AND NOT hd_query_only(g.variant)
  ORDER BY g.id;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify('hashdesk_hash_list', '');
  END IF;
  RETURN n;
END $$;

-- Retract the active rows one decision added (an undo of it).
CREATE OR REPLACE FUNCTION hd_retract_decision_hashes(p_decision_uuid text, p_user_id bigint,
  p_reason text, p_by_uuid text) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE n integer;
BEGIN
  UPDATE hash_list SET retracted_at = hd_now(), retracted_by = p_user_id,
    retraction_reason = p_reason, retraction_decision_uuid = p_by_uuid
  WHERE decision_uuid = p_decision_uuid AND retracted_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify('hashdesk_hash_list', '');
  END IF;
  RETURN n;
END $$;

-- The second-review draw (hd_queue_second_review) and its share: api_review2.sql.

-- A queue's row for an item, claimable by ``p_me`` now (FOR UPDATE SKIP LOCKED: a row another
-- workstation is claiming at this moment is skipped, not waited for).
-- Claim the first claimable of ``p_candidates`` (item ids, in the queue's order as the client
-- read it) in ``p_queue`` ('review', 'escalations', 'second_review'); the item id claimed, or
-- NULL when none of them is claimable any more (the client reads the next ones).
CREATE OR REPLACE FUNCTION hd_api_claim(p_queue text, p_candidates bigint[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; now timestamp := hd_now(); got bigint; c bigint; held integer;
BEGIN
  IF p_queue = 'review' THEN
    me := hd_require('review');
    held := (SELECT count(*) FROM items WHERE claimed_by = me.id AND status = 'claimed'
             AND lease_expires_at >= now);
  ELSIF p_queue = 'escalations' THEN
    me := hd_require('handle_escalations');
    held := (SELECT count(*) FROM items WHERE claimed_by = me.id AND status = 'escalated'
             AND lease_expires_at >= now);
  ELSIF p_queue = 'second_review' THEN
    me := hd_require('second_review');
    held := (SELECT count(*) FROM second_reviews WHERE claimed_by = me.id AND status = 'claimed'
             AND lease_expires_at >= now);
  ELSE
    RAISE EXCEPTION 'hashdesk: % is not a queue', quote_nullable(p_queue) USING ERRCODE = '22023';
  END IF;
  IF held >= hd_max_claims() THEN
    RAISE EXCEPTION 'hashdesk: % holds % claims in the % queue already (at most %)',
      me.username, held, p_queue, hd_max_claims() USING ERRCODE = '42501';
  END IF;
  FOREACH c IN ARRAY COALESCE(p_candidates, '{}') LOOP
    IF p_queue = 'review' THEN
      UPDATE items SET status = 'claimed', claimed_by = me.id,
        lease_expires_at = now + hd_lease(), updated_at = now
      WHERE id = (SELECT i.id FROM items i WHERE i.id = c
                    AND (i.status IN ('queued', 'unreadable')
                         OR (i.status = 'claimed' AND i.lease_expires_at < now))
                    AND (i.cluster_id IS NULL OR i.cluster_id = i.id)
                    -- not a copy badged by a hash under someone's blind second review
                    AND (i.known_entry_id IS NULL OR NOT hd_blind_entry(i.known_entry_id))
                  FOR UPDATE SKIP LOCKED)
      RETURNING id INTO got;
    ELSIF p_queue = 'escalations' THEN
      UPDATE items SET claimed_by = me.id, lease_expires_at = now + hd_lease()
      WHERE id = (SELECT i.id FROM items i WHERE i.id = c AND i.status = 'escalated'
                    AND (i.claimed_by IS NULL OR i.lease_expires_at < now)
                  FOR UPDATE SKIP LOCKED)
      RETURNING id INTO got;
    ELSE
      UPDATE second_reviews SET status = 'claimed', claimed_by = me.id,
        lease_expires_at = now + hd_lease()
      WHERE id = (SELECT sr.id FROM second_reviews sr WHERE sr.item_id = c
                    AND (sr.status = 'pending'
                         OR (sr.status = 'claimed' AND sr.lease_expires_at < now))
                    AND sr.first_user_id IS DISTINCT FROM me.id
                    AND NOT EXISTS (SELECT 1 FROM decisions d
                                    WHERE d.supersedes = sr.first_decision_uuid
                                      AND d.verdict IN ('undo', 'overturn'))
                  ORDER BY sr.id LIMIT 1
                  FOR UPDATE SKIP LOCKED)
      RETURNING item_id INTO got;
    END IF;
    IF got IS NOT NULL THEN
      RETURN got;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;

-- Extend the caller's own claims on these items, in whichever queue they hold them.
CREATE OR REPLACE FUNCTION hd_api_renew(p_item_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users := hd_account(); now timestamp := hd_now(); a integer; b integer;
BEGIN
  UPDATE items SET lease_expires_at = now + hd_lease()
  WHERE id = ANY (p_item_ids) AND claimed_by = me.id AND status IN ('claimed', 'escalated');
  GET DIAGNOSTICS a = ROW_COUNT;
  UPDATE second_reviews SET lease_expires_at = now + hd_lease()
  WHERE item_id = ANY (p_item_ids) AND claimed_by = me.id AND status = 'claimed';
  GET DIAGNOSTICS b = ROW_COUNT;
  RETURN a + b;
END $$;

-- Give the caller's own claims on these items back to their queue.
CREATE OR REPLACE FUNCTION hd_api_release(p_item_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users := hd_account(); a integer; b integer; c integer;
BEGIN
  UPDATE items SET status = hd_open_status(kind), claimed_by = NULL, lease_expires_at = NULL,
    updated_at = hd_now()
  WHERE id = ANY (p_item_ids) AND claimed_by = me.id AND status = 'claimed';
  GET DIAGNOSTICS a = ROW_COUNT;
  UPDATE items SET claimed_by = NULL, lease_expires_at = NULL
  WHERE id = ANY (p_item_ids) AND claimed_by = me.id AND status = 'escalated';
  GET DIAGNOSTICS b = ROW_COUNT;
  UPDATE second_reviews SET status = 'pending', claimed_by = NULL, lease_expires_at = NULL
  WHERE item_id = ANY (p_item_ids) AND claimed_by = me.id AND status = 'claimed';
  GET DIAGNOSTICS c = ROW_COUNT;
  RETURN a + b + c;
END $$;

-- The decision that stands for an item (hd_current_decision) and what it stands for
-- (hd_outcome_of): api_review2.sql.
DROP FUNCTION IF EXISTS hd_standing_decision(bigint);
DROP FUNCTION IF EXISTS hd_outcome(text, text);

-- Append ``p_verdict`` on the item and apply it (app.storage.review.ReviewService._apply).
CREATE OR REPLACE FUNCTION hd_apply_decision(p_uuid text, p_item items, p_me users,
  p_verdict text, p_category text, p_category_label text, p_note text, p_method text,
  p_parent_uuid text) RETURNS decisions LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE d decisions;
BEGIN
  d := hd_append_decision(p_uuid, p_item.id, p_me.id, p_verdict, p_category, p_category_label,
    p_note, p_method, NULL, p_parent_uuid, NULL, NULL,
    CASE WHEN p_verdict = 'confirm' THEN hd_item_hashes_digest(p_item.id, p_category) END);
  IF p_verdict = 'confirm' THEN
    PERFORM hd_add_item_hashes(p_uuid, p_item.id, p_me.id, p_category);
  END IF;
  UPDATE items SET status = CASE WHEN p_verdict IN ('confirm', 'reject') THEN 'decided'
                                 WHEN p_verdict = 'escalate' THEN 'escalated'
                                 ELSE hd_open_status(kind) END,
    claimed_by = NULL, lease_expires_at = NULL, updated_at = d.decided_at
  WHERE id = p_item.id;
  RETURN d;
END $$;

-- A moderator's decision on an item: confirm (with a category), reject, skip or escalate
-- (app.storage.review.ReviewService.decide). Idempotent by the decision's UUID (the
-- workstation's journal retries it). A decision that lands after the item was decided is
-- recorded as made and changes nothing; if it says otherwise than the standing decision, the
-- item goes to the leads. A confirm of a cluster's representative decides the members too.
-- An escalated item is a lead's (hd_api_resolve_escalation).
DROP FUNCTION IF EXISTS hd_api_decide(text, bigint, text, text, text, text);
CREATE OR REPLACE FUNCTION hd_api_decide(p_uuid text, p_item_id bigint, p_verdict text,
  p_category text, p_category_label text, p_note text,
  p_second_review_share double precision DEFAULT 0,
  OUT hashes_added integer, OUT cluster_members integer, OUT duplicate boolean,
  OUT late boolean, OUT conflict boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; it items; standing decisions; d decisions; m items; entry_list text;
  first_name text;
BEGIN
  hashes_added := 0; cluster_members := 0; duplicate := false; late := false; conflict := false;
  IF p_verdict IS NULL OR p_verdict NOT IN ('confirm', 'reject', 'skip', 'escalate') THEN
    RAISE EXCEPTION 'hashdesk: % is not a review verdict', quote_nullable(p_verdict)
      USING ERRCODE = '22023';
  END IF;
  IF p_verdict = 'confirm' AND COALESCE(p_category, '') = '' THEN
    RAISE EXCEPTION 'hashdesk: a confirmation needs a category' USING ERRCODE = '22023';
  END IF;
  IF length(p_category) > 64 OR length(p_category_label) > 255 OR length(p_note) > 10000 THEN
    RAISE EXCEPTION 'hashdesk: a category (64), its label (255) or a note (10000) is too long'
      USING ERRCODE = '22023';
  END IF;
  me := hd_require('review');
  PERFORM 1 FROM hd_chain_lock WHERE chain = 'decisions' FOR UPDATE;  -- the UUID check holds
  IF EXISTS (SELECT 1 FROM decisions WHERE uuid = p_uuid) THEN
    duplicate := true;
    RETURN;
  END IF;
  SELECT * INTO it FROM items WHERE id = p_item_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: item % does not exist', p_item_id USING ERRCODE = '22023';
  END IF;
  IF it.status = 'escalated' AND hd_allowed(me.role, 'handle_escalations') THEN
    RAISE EXCEPTION 'hashdesk: item % is escalated: a lead resolves it as an escalation',
      p_item_id USING ERRCODE = '22023';
  END IF;
  standing := hd_current_decision(it.id);
  IF it.status = 'escalated' OR standing.id IS NOT NULL
     OR it.status IN ('decided', 'auto_matched') THEN
    -- Late: recorded as made, changing no hashes.
    late := true;
    PERFORM hd_append_decision(p_uuid, it.id, me.id, p_verdict, p_category, p_category_label,
      p_note, 'manual', NULL);
    conflict := standing.id IS NOT NULL AND p_verdict IN ('confirm', 'reject', 'escalate')
      AND hd_outcome_of(standing.verdict, standing.category) IS DISTINCT FROM p_verdict;
    IF conflict AND it.status <> 'escalated' THEN
      first_name := COALESCE((SELECT username FROM users WHERE id = standing.user_id),
                             'the hash-list match');
      PERFORM hd_append_decision(gen_random_uuid()::text, it.id, NULL, 'escalate', NULL, NULL,
        format('Conflicting decisions: %s by %s, then %s by %s (landed late); the standing '
               'decision and its hashes are unchanged until a lead decides',
               hd_outcome_of(standing.verdict, standing.category), first_name, p_verdict,
               me.username), 'manual', NULL);
      UPDATE items SET status = 'escalated', claimed_by = NULL, lease_expires_at = NULL,
        updated_at = hd_now()
      WHERE id = it.id;
    END IF;
    RETURN;
  END IF;
  d := hd_apply_decision(p_uuid, it, me, p_verdict, p_category, p_category_label, p_note,
    'manual', NULL);
  hashes_added := (SELECT count(*) FROM hash_list WHERE decision_uuid = p_uuid);
  -- A badged item's verdict is feedback on the imported entry that badged it.
  IF it.known_entry_id IS NOT NULL AND p_verdict IN ('confirm', 'reject') THEN
    entry_list := (SELECT list_name FROM hash_list WHERE id = it.known_entry_id);
    IF entry_list IS NOT NULL AND entry_list <> 'local' THEN
      INSERT INTO hash_list_feedback (entry_id, item_id, user_id, verdict, note, created_at)
      VALUES (it.known_entry_id, it.id, me.id,
              CASE WHEN p_verdict = 'confirm' THEN 'agree' ELSE 'disagree' END, p_note,
              d.decided_at);
    END IF;
  END IF;
  PERFORM hd_queue_second_review(d.uuid, COALESCE(p_second_review_share, 0));
  IF p_verdict <> 'skip' AND it.cluster_id = it.id THEN
    FOR m IN SELECT * FROM items WHERE cluster_id = it.id AND id <> it.id
               AND status IN ('queued', 'unreadable') ORDER BY id FOR UPDATE LOOP
      PERFORM hd_apply_decision(gen_random_uuid()::text, m, me, p_verdict, p_category,
        p_category_label, p_note, 'cluster', p_uuid);
      cluster_members := cluster_members + 1;
    END LOOP;
    hashes_added := hashes_added + (SELECT count(*) FROM hash_list h JOIN decisions c
                                    ON c.uuid = h.decision_uuid WHERE c.parent_uuid = p_uuid);
  END IF;
END $$;

-- Take back the caller's latest manual decision that no undo took back yet (or exactly
-- ``p_target_uuid``): an undo that supersedes it, its hashes retracted, a cluster decision
-- undone whole, the item back in the caller's hands (app.storage.review.ReviewService
-- .undo_last). No row when there is nothing to undo. Idempotent by ``p_undo_uuid``.
CREATE OR REPLACE FUNCTION hd_api_undo(p_undo_uuid text, p_target_uuid text DEFAULT NULL)
RETURNS TABLE (item_id bigint, hashes_retracted integer, cluster_members integer,
  duplicate boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE me users; target decisions; done decisions; m decisions; n integer; k integer := 0;
  member_undo text; reason text := 'decision undone by the moderator who made it';
BEGIN
  me := hd_require('review');
  PERFORM 1 FROM hd_chain_lock WHERE chain = 'decisions' FOR UPDATE;
  SELECT * INTO done FROM decisions WHERE uuid = p_undo_uuid;
  IF FOUND THEN
    RETURN QUERY SELECT done.item_id, 0, 0, true;
    RETURN;
  END IF;
  SELECT * INTO target FROM decisions d
  WHERE d.user_id = me.id AND d.verdict IN ('confirm', 'reject', 'skip', 'escalate')
    AND d.method = 'manual'
    AND (p_target_uuid IS NULL OR d.uuid = p_target_uuid)
    AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.verdict = 'undo' AND u.supersedes = d.uuid)
  ORDER BY d.id DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  PERFORM hd_append_decision(p_undo_uuid, target.item_id, me.id, 'undo', NULL, NULL, NULL,
    'manual', target.uuid);
  n := hd_retract_decision_hashes(target.uuid, me.id, reason, p_undo_uuid);
  FOR m IN SELECT * FROM decisions c WHERE c.parent_uuid = target.uuid AND c.method = 'cluster'
             ORDER BY c.id LOOP
    member_undo := gen_random_uuid()::text;
    PERFORM hd_append_decision(member_undo, m.item_id, me.id, 'undo', NULL, NULL, NULL,
      'cluster', m.uuid, p_undo_uuid);
    n := n + hd_retract_decision_hashes(m.uuid, me.id, reason, member_undo);
    UPDATE items SET status = hd_open_status(kind), updated_at = hd_now() WHERE id = m.item_id;
    k := k + 1;
  END LOOP;
  UPDATE items SET status = 'claimed', claimed_by = me.id, lease_expires_at = hd_now() + hd_lease(),
    updated_at = hd_now()
  WHERE id = target.item_id;
  RETURN QUERY SELECT target.item_id, n, k, false;
END $$;

