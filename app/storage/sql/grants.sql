-- What each group may touch at all: reads (row-level security and column grants narrow them:
-- row_security.sql) and the write API's functions; no table write at all. Runs last, as the schema owner, with hashdesk.role_prefix bound (install).

DO $$
DECLARE
  s text := current_schema();
  moderator text := current_setting('hashdesk.role_prefix') || 'moderator';
  lead text := current_setting('hashdesk.role_prefix') || 'lead';
  admin text := current_setting('hashdesk.role_prefix') || 'admin';
  worker text := current_setting('hashdesk.role_prefix') || 'worker';
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
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I, %I, %I, %I', s, moderator,
                 lead, admin, worker);
  EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I, %I, %I, %I', s, moderator,
                 lead, admin, worker);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I, %I, %I, %I', s, moderator,
                 lead, admin, worker);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, moderator);
  EXECUTE format('GRANT SELECT ON items, sightings, signals, decisions, hash_list, '
                 'audit_events, alembic_version, hash_lists, '
                 'hash_list_feedback, exposure_events, comfort_preferences, incidents, '
                 'incident_hashes, incident_assignments, rescans TO %I', moderator);
  -- Possible misses a re-scan found: the leads'.
  EXECUTE format('GRANT SELECT ON rescan_misses TO %I', lead);
  -- Accounts: every column but password_hash (accounts from before enforcement kept an
  -- argon2id hash there; api_accounts.sql removes them).
  EXECUTE format('GRANT SELECT (%s) ON users TO %I',
                 (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                    FROM pg_attribute a
                   WHERE a.attrelid = 'users'::regclass AND a.attnum > 0
                     AND NOT a.attisdropped AND a.attname <> 'password_hash'),
                 moderator);
  -- Blind second review: a moderator reads which reviews wait and who holds them, never the
  -- first verdict (nor the second and whether they agreed); the leads read it all.
  EXECUTE format('GRANT SELECT (id, item_id, first_decision_uuid, first_user_id, status, '
                 'claimed_by, lease_expires_at, created_at, done_at) ON second_reviews TO %I',
                 moderator);
  EXECUTE format('GRANT SELECT ON second_reviews TO %I', lead);
  -- The HTTP intake: the leads read the tokens' names and states (never token_hash: a
  -- presented token is compared by hd_api_intake_token_check alone) and the reports that
  -- came without a file.
  EXECUTE format('GRANT SELECT (id, name, created_by_id, created_at, revoked_by_id, revoked_at) '
                 'ON intake_tokens TO %I', lead);
  EXECUTE format('GRANT SELECT ON intake_reports TO %I', lead);
  -- The hash deltas out and a partner's deltas in: the leads' (api_deltas.sql writes them).
  EXECUTE format('GRANT SELECT ON deltas, delta_entries, delta_imports TO %I', lead);
  -- Functions: the write API (hd_api_*: each checks who may do what itself) and what the
  -- reads need (row-level security's predicates, the chain heads). Nothing else: the owner's
  -- internal functions (hd_append_decision, hd_append_audit, ...) are the server's alone.
  FOR f IN SELECT p.oid FROM pg_proc p
           WHERE p.pronamespace = s::regnamespace
             AND (p.proname LIKE 'hd\_api\_%' OR p.proname IN (
                  'hd_me_id', 'hd_may_see_decision', 'hd_may_see_item', 'hd_may_see_feedback',
                  'hd_chain_head', 'hd_chain_state'))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, moderator);
  END LOOP;
  -- The intake, seen by the leads: arrivals, workers, the job queue (reads only).
  EXECUTE format('GRANT SELECT ON intake_receipts, intake_workers, procrastinate_jobs, '
                 'procrastinate_workers TO %I', lead);
  -- No INSERT, UPDATE or DELETE on any table, no sequence, for anyone but the owner: every
  -- write is a call of the API above (so no one can take a row lock either: FOR UPDATE and
  -- FOR SHARE need a write privilege).

  -- An ingest worker's login (role worker: Permission.INGEST only, a member of no other
  -- group): it reads what matching and recording read, calls the write API (each function
  -- refuses what its role may not do), and runs the job queue's own protocol, which writes
  -- procrastinate's tables directly: fetch a job, finish or retry it, register and beat its
  -- heartbeat. Those four tables are the only ones it can write (docs/ARCHITECTURE.md,
  -- "Intake and workers", says what that allows and why it cannot forge the record).
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, worker);
  EXECUTE format('GRANT SELECT ON items, sightings, signals, hash_list, hash_lists, '
                 'alembic_version, intake_receipts, intake_workers TO %I', worker);
  EXECUTE format('GRANT SELECT (%s) ON users TO %I',
                 (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                    FROM pg_attribute a
                   WHERE a.attrelid = 'users'::regclass AND a.attnum > 0
                     AND NOT a.attisdropped AND a.attname <> 'password_hash'),
                 worker);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON procrastinate_jobs, '
                 'procrastinate_workers, procrastinate_events, procrastinate_periodic_defers '
                 'TO %I', worker);
  -- The HTTP intake runs as a worker account: it reads the reports it recorded and the
  -- tokens' names (never token_hash: hd_api_intake_token_check compares a presented token).
  EXECUTE format('GRANT SELECT (id, name, created_by_id, created_at, revoked_by_id, revoked_at) '
                 'ON intake_tokens TO %I', worker);
  EXECUTE format('GRANT SELECT ON intake_reports TO %I', worker);
  EXECUTE format('GRANT USAGE ON SEQUENCE procrastinate_jobs_id_seq, '
                 'procrastinate_events_id_seq, procrastinate_periodic_defers_id_seq, '
                 'procrastinate_workers_id_seq TO %I', worker);
  FOR f IN SELECT p.oid FROM pg_proc p
           WHERE p.pronamespace = s::regnamespace
             AND (p.proname LIKE 'hd\_api\_%' OR p.proname LIKE 'procrastinate\_%'
                  OR p.proname IN ('hd_me_id', 'hd_chain_head', 'hd_chain_state'))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, worker);
  END LOOP;
END $$;
