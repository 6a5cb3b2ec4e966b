-- The HTTP intake's per-source tokens and the reports that come without a file
-- (app.storage.intake_tokens). Only an admin (manage_intake) makes or revokes a token; each
-- change is one call that writes its audit event. The token itself never reaches the server:
-- the workstation that makes it sends its SHA-256 and prints the token once. No person may
-- read intake_tokens.token_hash (grants.sql): a presented token is compared here, by the
-- server, for an account that may ingest (the intake's own account).

-- A token's name: what a user name may hold (roles.sql's rule), up to 64 characters. Internal.
CREATE OR REPLACE FUNCTION hd_check_token_name(p_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 64
     OR ltrim(p_name, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') <> '' THEN
    RAISE EXCEPTION 'hashdesk: token name % is not 1 to 64 characters of a-z, 0-9, ".", "_", "-"',
      quote_nullable(left(p_name, 80)) USING ERRCODE = '22023';
  END IF;
END $$;

-- A new token for the source p_name: its SHA-256 (64 lower-case hex digits). The event
-- "intake_token_created" (the name; never the hash). Returns the token's id.
CREATE OR REPLACE FUNCTION hd_api_intake_token_create(p_name text, p_hash text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me users; new_id bigint;
BEGIN
  IF NOT hd_trusted() THEN me := hd_require('manage_intake'); END IF;
  PERFORM hd_check_token_name(p_name);
  IF p_hash IS NULL OR p_hash !~ '^[0-9a-f]{64}$' THEN
    RAISE EXCEPTION 'hashdesk: a token''s hash is 64 lower-case hex digits' USING ERRCODE = '22023';
  END IF;
  PERFORM 1 FROM intake_tokens WHERE name = p_name FOR UPDATE;
  IF FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is already a token named % (revoked ones stay on the '
      'record: give the new one another name)', quote_literal(p_name) USING ERRCODE = '22023';
  END IF;
  INSERT INTO intake_tokens (name, token_hash, created_by_id, created_at)
  VALUES (p_name, p_hash, me.id, hd_now()) RETURNING id INTO new_id;
  PERFORM hd_append_audit('intake_token_created', p_name, NULL);
  RETURN new_id;
END $$;

-- Revoke the token p_name: it stops working at once (every check reads revoked_at, and the
-- row lock taken here waits for a report being recorded under it). "intake_token_revoked".
CREATE OR REPLACE FUNCTION hd_api_intake_token_revoke(p_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me users; t intake_tokens;
BEGIN
  IF NOT hd_trusted() THEN me := hd_require('manage_intake'); END IF;
  SELECT * INTO t FROM intake_tokens WHERE name = p_name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no token named %', quote_nullable(p_name)
      USING ERRCODE = '22023';
  END IF;
  IF t.revoked_at IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: the token % is already revoked', quote_literal(p_name)
      USING ERRCODE = '22023';
  END IF;
  UPDATE intake_tokens SET revoked_at = hd_now(), revoked_by_id = me.id WHERE id = t.id;
  PERFORM hd_append_audit('intake_token_revoked', p_name, NULL);
END $$;

-- The token whose SHA-256 is p_hash: its id, name and whether it is revoked (no row: no such
-- token). For the intake's account (ingest).
CREATE OR REPLACE FUNCTION hd_api_intake_token_check(p_hash text)
RETURNS TABLE (id bigint, name text, revoked boolean) LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('ingest'); END IF;
  RETURN QUERY SELECT t.id, t.name::text, t.revoked_at IS NOT NULL
                 FROM intake_tokens t WHERE t.token_hash = p_hash;
END $$;

-- A report without a file, under the token p_token_id (refused if revoked: the token's row is
-- read under a share lock, so a revocation waits for this call or refuses it). Received now
-- (the server's clock); the deadline explicit or p_deadline_after_s after receipt. The URL is
-- kept as text. Returns the report's id, received time and deadline. No audit event: the row
-- is the record.
CREATE OR REPLACE FUNCTION hd_api_intake_report(p_token_id bigint, p_source text,
  p_external_id text, p_source_url text, p_reason text, p_reporter text, p_score float8,
  p_deadline timestamp, p_deadline_after_s integer)
RETURNS TABLE (id bigint, received_at timestamp, deadline timestamp) LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE t intake_tokens; at timestamp := hd_now(); new_id bigint; due timestamp;
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('ingest'); END IF;
  IF p_token_id IS NOT NULL THEN
    SELECT * INTO t FROM intake_tokens WHERE intake_tokens.id = p_token_id FOR SHARE;
    IF NOT FOUND OR t.revoked_at IS NOT NULL THEN
      RAISE EXCEPTION 'hashdesk: the token % is revoked', quote_nullable(t.name)
        USING ERRCODE = '22023';
    END IF;
  END IF;
  IF p_source IS NULL OR length(p_source) NOT BETWEEN 1 AND 128 THEN
    RAISE EXCEPTION 'hashdesk: a report''s source is 1 to 128 characters' USING ERRCODE = '22023';
  END IF;
  due := COALESCE(p_deadline, at + make_interval(secs => p_deadline_after_s));
  INSERT INTO intake_reports (token_id, source, external_id, source_url, reason, reporter, score,
    received_at, deadline)
  VALUES (p_token_id, p_source, p_external_id, p_source_url, p_reason, p_reporter, p_score, at,
    due)
  RETURNING intake_reports.id INTO new_id;
  RETURN QUERY SELECT new_id, at, due;
END $$;

-- A lead closes a report (what was done, in p_note). "intake_report_closed".
CREATE OR REPLACE FUNCTION hd_api_intake_report_close(p_id bigint, p_note text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE me users; r intake_reports;
BEGIN
  IF NOT hd_trusted() THEN me := hd_require('handle_reports'); END IF;
  SELECT * INTO r FROM intake_reports WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no report %', p_id USING ERRCODE = '22023';
  END IF;
  IF r.closed_at IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: report % is already closed', p_id USING ERRCODE = '22023';
  END IF;
  UPDATE intake_reports SET closed_at = hd_now(), closed_by_id = me.id,
    closed_note = NULLIF(btrim(p_note), '') WHERE id = p_id;
  PERFORM hd_append_audit('intake_report_closed', p_id::text,
                          jsonb_build_object('note', NULLIF(btrim(p_note), '')));
END $$;
