-- Blind second review, outside the app too: a moderator reads the other moderators' decisions
-- only once no second review of them is pending, and their own hash-list rows and exposure;
-- leads read everything. Runs as the schema owner with hashdesk.role_prefix bound (install).

CREATE OR REPLACE FUNCTION hd_may_see_decision(p_uuid text, p_parent text, p_user bigint)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT p_user IS NOT DISTINCT FROM hd_me_id() OR NOT EXISTS (
    SELECT 1 FROM second_reviews sr
    WHERE sr.first_decision_uuid IN (p_uuid, p_parent) AND sr.status <> 'done'
      AND sr.first_user_id IS DISTINCT FROM hd_me_id())
$$;
DO $$
DECLARE
  moderator text := current_setting('hashdesk.role_prefix') || 'moderator';
  lead text := current_setting('hashdesk.role_prefix') || 'lead';
BEGIN
  -- decisions
  ALTER TABLE decisions ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON decisions;
  EXECUTE format('CREATE POLICY hd_read_all ON decisions FOR SELECT TO %I USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_blind ON decisions;
  EXECUTE format('CREATE POLICY hd_read_blind ON decisions FOR SELECT TO %I '
                 'USING (hd_may_see_decision(uuid, parent_uuid, user_id))', moderator);
  DROP POLICY IF EXISTS hd_append ON decisions;
  EXECUTE format('CREATE POLICY hd_append ON decisions FOR INSERT TO %I WITH CHECK (true)',
                 moderator);

  -- the hash list: our own entries are read by their author (and leads); imported ones by all
  ALTER TABLE hash_list ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON hash_list;
  EXECUTE format('CREATE POLICY hd_read_all ON hash_list FOR SELECT TO %I USING (true)', lead);
  DROP POLICY IF EXISTS hd_read_own ON hash_list;
  EXECUTE format('CREATE POLICY hd_read_own ON hash_list FOR SELECT TO %I '
                 'USING (list_name <> ''local'' OR added_by IS NOT DISTINCT FROM hd_me_id())',
                 moderator);
  DROP POLICY IF EXISTS hd_add ON hash_list;
  EXECUTE format('CREATE POLICY hd_add ON hash_list FOR INSERT TO %I WITH CHECK (true)',
                 moderator);
  DROP POLICY IF EXISTS hd_retract ON hash_list;
  EXECUTE format('CREATE POLICY hd_retract ON hash_list FOR UPDATE TO %I '
                 'USING (added_by IS NOT DISTINCT FROM hd_me_id()) WITH CHECK (true)',
                 moderator);
  DROP POLICY IF EXISTS hd_retract_any ON hash_list;
  EXECUTE format('CREATE POLICY hd_retract_any ON hash_list FOR UPDATE TO %I USING (true) '
                 'WITH CHECK (true)', lead);

  -- exposure: a moderator reads their own rows (their trend); leads read everyone's
  ALTER TABLE exposure_events ENABLE ROW LEVEL SECURITY;
  DROP POLICY IF EXISTS hd_read_all ON exposure_events;
  EXECUTE format('CREATE POLICY hd_read_all ON exposure_events FOR SELECT TO %I USING (true)',
                 lead);
  DROP POLICY IF EXISTS hd_read_own ON exposure_events;
  EXECUTE format('CREATE POLICY hd_read_own ON exposure_events FOR SELECT TO %I '
                 'USING (user_id IS NOT DISTINCT FROM hd_me_id())', moderator);
  DROP POLICY IF EXISTS hd_add ON exposure_events;
  EXECUTE format('CREATE POLICY hd_add ON exposure_events FOR INSERT TO %I WITH CHECK (true)',
                 moderator);
END $$;
