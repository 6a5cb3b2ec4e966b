-- Reads only (people write no table: the write policies of older programs are dropped here).
-- Blind second review, outside the app too: while a second review of a decision is pending, no
-- moderator but its author reads anything that gives the first verdict away: the item's
-- decisions (the first one, its cluster members', a late conflict's escalation), the decisions
-- and the items that name a hash-list row that decision added (a later copy's match note), and
-- the list feedback on the item. A moderator reads their own hash-list rows and exposure; leads
-- read everything. second_reviews.first_verdict (and the second verdict, agreed) are granted
-- to the leads only (grants.sql), and no one may change a second review but through the
-- server's functions (api_review2.sql): a review cannot be set done, read around and rolled
-- back. Runs as the schema owner with hashdesk.role_prefix bound (install).

-- Whether a second review pending for someone else's decision (still standing: not undone or
-- overturned) covers the item p_item, the decision p_uuid or its cluster's p_parent.
CREATE OR REPLACE FUNCTION hd_blind(p_item bigint, p_uuid text, p_parent text)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT EXISTS (
    SELECT 1 FROM second_reviews sr
    WHERE sr.status <> 'done' AND sr.first_user_id IS DISTINCT FROM hd_me_id()
      AND (sr.item_id = p_item OR sr.first_decision_uuid = p_uuid
           OR sr.first_decision_uuid = p_parent)
      AND NOT EXISTS (SELECT 1 FROM decisions t WHERE t.supersedes = sr.first_decision_uuid
                      AND t.verdict IN ('undo', 'overturn')))
$$;

-- Whether the hash-list row p_entry was added by a decision hd_blind covers (a local row).
CREATE OR REPLACE FUNCTION hd_blind_entry(p_entry bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT COALESCE((SELECT hd_blind(h.item_id, h.decision_uuid, d.parent_uuid)
                   FROM hash_list h LEFT JOIN decisions d ON d.uuid = h.decision_uuid
                   WHERE h.id = p_entry AND h.list_name = 'local'), false)
$$;

DROP POLICY IF EXISTS hd_read_blind ON decisions;
DROP FUNCTION IF EXISTS hd_may_see_decision(text, text, bigint);  -- before it took the item
CREATE OR REPLACE FUNCTION hd_may_see_decision(p_uuid text, p_parent text, p_user bigint,
  p_item bigint, p_matched_entry bigint)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT p_user IS NOT DISTINCT FROM hd_me_id()
      OR NOT (hd_blind(p_item, p_uuid, p_parent)
              OR (p_matched_entry IS NOT NULL AND hd_blind_entry(p_matched_entry)))
$$;

-- An item whose known match (its match note) names a row of a decision under blind review.
CREATE OR REPLACE FUNCTION hd_may_see_item(p_known_entry bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT p_known_entry IS NULL OR NOT hd_blind_entry(p_known_entry)
$$;

-- List feedback on an item under blind review (a confirm agrees, a reject disagrees).
CREATE OR REPLACE FUNCTION hd_may_see_feedback(p_item bigint, p_user bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT p_item IS NULL OR p_user IS NOT DISTINCT FROM hd_me_id()
      OR NOT hd_blind(p_item, NULL, NULL)
$$;
DO $$
DECLARE
  moderator text := current_setting('hashdesk.role_prefix') || 'moderator';
  lead text := current_setting('hashdesk.role_prefix') || 'lead';
  worker text := current_setting('hashdesk.role_prefix') || 'worker';
BEGIN
  -- decisions
  ALTER TABLE decisions ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON decisions;
  EXECUTE format('CREATE POLICY hd_read_all ON decisions FOR SELECT TO %I USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_blind ON decisions;
  EXECUTE format('CREATE POLICY hd_read_blind ON decisions FOR SELECT TO %I '
                 'USING (hd_may_see_decision(uuid, parent_uuid, user_id, item_id, '
                 'matched_entry_id))', moderator);
  DROP POLICY IF EXISTS hd_append ON decisions;

  -- the hash list: our own entries are read by their author (and leads); imported ones by all
  ALTER TABLE hash_list ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON hash_list;
  EXECUTE format('CREATE POLICY hd_read_all ON hash_list FOR SELECT TO %I USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_worker ON hash_list;
  EXECUTE format('CREATE POLICY hd_read_worker ON hash_list FOR SELECT TO %I USING (true)',
                 worker);
  DROP POLICY IF EXISTS hd_read_own ON hash_list;
  EXECUTE format('CREATE POLICY hd_read_own ON hash_list FOR SELECT TO %I '
                 'USING (list_name <> ''local'' OR added_by IS NOT DISTINCT FROM hd_me_id())',
                 moderator);
  DROP POLICY IF EXISTS hd_add ON hash_list;
  DROP POLICY IF EXISTS hd_retract ON hash_list;
  DROP POLICY IF EXISTS hd_retract_any ON hash_list;

  -- items: a later copy's match note names the first decision's hash-list row
  ALTER TABLE items ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON items;
  EXECUTE format('CREATE POLICY hd_read_all ON items FOR SELECT TO %I USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_worker ON items;
  EXECUTE format('CREATE POLICY hd_read_worker ON items FOR SELECT TO %I USING (true)', worker);
  DROP POLICY IF EXISTS hd_read_blind ON items;
  EXECUTE format('CREATE POLICY hd_read_blind ON items FOR SELECT TO %I '
                 'USING (known_entry_id IS NULL OR hd_may_see_item(known_entry_id))',
                 moderator);
  DROP POLICY IF EXISTS hd_change ON items;
  DROP POLICY IF EXISTS hd_add ON items;

  -- list feedback: a confirm of a badged item agrees with the entry, a reject disagrees
  ALTER TABLE hash_list_feedback ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON hash_list_feedback;
  EXECUTE format('CREATE POLICY hd_read_all ON hash_list_feedback FOR SELECT TO %I '
                 'USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_blind ON hash_list_feedback;
  EXECUTE format('CREATE POLICY hd_read_blind ON hash_list_feedback FOR SELECT TO %I '
                 'USING (hd_may_see_feedback(item_id, user_id))', moderator);
  DROP POLICY IF EXISTS hd_add ON hash_list_feedback;

  -- exposure: a moderator reads their own rows (their trend); leads read everyone's
  ALTER TABLE exposure_events ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON exposure_events;
  EXECUTE format('CREATE POLICY hd_read_all ON exposure_events FOR SELECT TO %I USING (true)',
                 lead);
  DROP POLICY IF EXISTS hd_read_own ON exposure_events;
  EXECUTE format('CREATE POLICY hd_read_own ON exposure_events FOR SELECT TO %I '
                 'USING (user_id IS NOT DISTINCT FROM hd_me_id())', moderator);
  DROP POLICY IF EXISTS hd_add ON exposure_events;
END $$;
