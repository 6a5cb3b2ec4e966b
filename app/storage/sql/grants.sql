-- What each group may touch at all: reads, and the writes the checks of write_checks.sql then
-- judge row by row. Runs last, as the schema owner, with hashdesk.role_prefix bound (install).

DO $$
DECLARE
  s text := current_schema();
  moderator text := current_setting('hashdesk.role_prefix') || 'moderator';
  lead text := current_setting('hashdesk.role_prefix') || 'lead';
  admin text := current_setting('hashdesk.role_prefix') || 'admin';
  f regprocedure;
BEGIN
  -- The owner's functions run with the catalog first on their path, so nothing in the schema
  -- can stand in for a built-in (they were created with the schema first: FROM CURRENT).
  FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = s::regnamespace AND p.prosecdef
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, s);
  END LOOP;

  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', s);
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', s);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', s);
  -- From scratch each time, so an upgrade takes away what an older program granted.
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I, %I, %I', s, moderator, lead,
                 admin);
  EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I, %I, %I', s, moderator, lead,
                 admin);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I, %I, %I', s, moderator, lead,
                 admin);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, moderator);
  EXECUTE format('GRANT SELECT ON users, items, sightings, signals, decisions, hash_list, '
                 'audit_events, second_reviews, alembic_version, hash_lists, '
                 'hash_list_feedback, exposure_events, comfort_preferences TO %I', moderator);
  EXECUTE format('GRANT INSERT, UPDATE ON comfort_preferences TO %I', moderator);
  EXECUTE format('GRANT INSERT ON decisions, hash_list, audit_events, second_reviews, '
                 'hash_list_feedback, exposure_events TO %I', moderator);
  EXECUTE format('GRANT UPDATE (status, claimed_by, lease_expires_at, updated_at) ON items '
                 'TO %I', moderator);
  EXECUTE format('GRANT UPDATE (status, claimed_by, lease_expires_at, second_user_id, '
                 'second_decision_uuid, second_verdict, agreed, done_at) ON second_reviews '
                 'TO %I', moderator);
  EXECUTE format('GRANT UPDATE (retracted_at, retracted_by, retraction_reason, '
                 'retraction_decision_uuid) ON hash_list TO %I', moderator);
  EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', s, moderator);
  -- Functions: the write API (hd_api_*: each checks who may do what itself) and what the
  -- reads need (row-level security's predicates, the chain heads). Nothing else: the owner's
  -- internal functions (hd_append_decision, hd_append_audit, ...) are the server's alone.
  FOR f IN SELECT p.oid FROM pg_proc p
           WHERE p.pronamespace = s::regnamespace
             AND (p.proname LIKE 'hd\_api\_%' OR p.proname IN (
                  'hd_me_id', 'hd_may_see_decision', 'hd_chain_head', 'hd_chain_state',
                  'hd_account_create', 'hd_account_set_active', 'hd_account_set_password'))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, moderator);
  END LOOP;
  EXECUTE format('GRANT UPDATE (disabled_at, disabled_by, disabled_reason, flood_guarded_at, '
                 'changed_at) ON hash_list TO %I', lead);
  -- Ingest writes items, sightings and signals through hd_api_record_items only.
  EXECUTE format('GRANT INSERT ON hash_lists TO %I', admin);
  EXECUTE format('GRANT UPDATE ON hash_list, hash_lists TO %I', admin);
END $$;
