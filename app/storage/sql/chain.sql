-- The two chains, appended by the server alone: the canonical form of an entry, its hash, and
-- the one way an entry is appended (under a row lock on a chain row nobody else may lock).
-- The canonical form is app.core.model.chain.chain_hash's, byte for byte (json.dumps with
-- sort_keys, separators (',', ':') and ASCII escapes), so `audit verify` recomputes what the
-- server wrote with the same Python it uses for SQLite (tests/storage/test_server_chain.py).

-- One row per chain, owned by the schema owner, granted to no one: its head (the newest entry's
-- hash) and that entry's time. The append functions lock it (SELECT ... FOR UPDATE), follow the
-- head it holds and move it on, so appends serialise on a row people cannot lock (an advisory
-- lock is anyone's to take), and a transaction that read an older head (REPEATABLE READ) fails
-- with a serialisation error instead of forking the chain. A row the owner appends by hand does
-- not move the head: the next entry does not follow it, and `audit verify` names it.
CREATE TABLE IF NOT EXISTS hd_chain_lock (chain text PRIMARY KEY);
ALTER TABLE hd_chain_lock ADD COLUMN IF NOT EXISTS head text;
ALTER TABLE hd_chain_lock ADD COLUMN IF NOT EXISTS head_at timestamp;
INSERT INTO hd_chain_lock (chain) VALUES ('decisions'), ('audit events'), ('exposure')
  ON CONFLICT (chain) DO NOTHING;
-- A database whose chains were appended before (by the application, or an older program):
-- the heads as they stand now.
UPDATE hd_chain_lock SET head = d.entry_hash, head_at = d.decided_at
FROM (SELECT entry_hash, decided_at FROM decisions ORDER BY id DESC LIMIT 1) d
WHERE chain = 'decisions' AND head IS NULL;
UPDATE hd_chain_lock SET head = e.entry_hash, head_at = e.occurred_at
FROM (SELECT entry_hash, occurred_at FROM audit_events ORDER BY id DESC LIMIT 1) e
WHERE chain = 'audit events' AND head IS NULL;
UPDATE hd_chain_lock SET head = x.entry_hash, head_at = x.recorded_at
FROM (SELECT entry_hash, recorded_at FROM exposure_events WHERE entry_hash IS NOT NULL
      ORDER BY id DESC LIMIT 1) x
WHERE chain = 'exposure' AND head IS NULL;

-- A string as Python's json.dumps writes it (ensure_ascii): '"', '\' and the control characters
-- escaped, everything outside printable ASCII as \uXXXX (UTF-16 surrogate pairs above U+FFFF).
CREATE OR REPLACE FUNCTION hd_json_string(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE out text := ''; c text; cp integer; hi integer; lo integer;
BEGIN
  IF p !~ '[^ !#-\[\]-~]' THEN  -- printable ASCII without '"' and '\': as it is
    RETURN '"' || p || '"';
  END IF;
  FOR i IN 1 .. length(p) LOOP
    c := substr(p, i, 1);
    cp := ascii(c);
    IF c = '"' THEN out := out || '\"';
    ELSIF c = '\' THEN out := out || '\\';
    ELSIF cp = 10 THEN out := out || '\n';
    ELSIF cp = 13 THEN out := out || '\r';
    ELSIF cp = 9 THEN out := out || '\t';
    ELSIF cp = 8 THEN out := out || '\b';
    ELSIF cp = 12 THEN out := out || '\f';
    ELSIF cp BETWEEN 32 AND 126 THEN out := out || c;
    ELSIF cp < 65536 THEN out := out || '\u' || lpad(to_hex(cp), 4, '0');
    ELSE
      hi := 55296 + ((cp - 65536) >> 10);
      lo := 56320 + ((cp - 65536) & 1023);
      out := out || '\u' || to_hex(hi) || '\u' || to_hex(lo);
    END IF;
  END LOOP;
  RETURN '"' || out || '"';
END $$;

-- Any JSON value as json.dumps(sort_keys=True, separators=(',', ':')) writes it: objects with
-- their keys sorted by code point (COLLATE "C": the keys are ASCII), arrays in order, strings
-- escaped as above. Numbers are integers (the record holds no floats).
CREATE OR REPLACE FUNCTION hd_canonical(p jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  CASE jsonb_typeof(p)
    WHEN 'object' THEN
      RETURN '{' || COALESCE((SELECT string_agg(hd_json_string(key) || ':' || hd_canonical(value),
                                                ',' ORDER BY key COLLATE "C")
                              FROM jsonb_each(p)), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || COALESCE((SELECT string_agg(hd_canonical(value), ',' ORDER BY n)
                              FROM jsonb_array_elements(p) WITH ORDINALITY AS a(value, n)),
                             '') || ']';
    WHEN 'string' THEN RETURN hd_json_string(p #>> '{}');
    ELSE RETURN p::text;  -- null, true, false, integers
  END CASE;
END $$;

-- A timestamp as the chains carry it: Python's isoformat(timespec='microseconds').
CREATE OR REPLACE FUNCTION hd_iso(p timestamp) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT to_char(p, 'YYYY-MM-DD"T"HH24:MI:SS.US')
$$;

-- app.core.model.chain.chain_hash.
CREATE OR REPLACE FUNCTION hd_chain_hash(p_prev text, p_fields jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT encode(sha256(convert_to(p_prev || '|' || hd_canonical(p_fields), 'UTF8')), 'hex')
$$;

-- Now, on the server's clock, in UTC without a zone (the form every timestamp is stored in).
-- The append functions never go back before their chain's newest entry: the record's times
-- only move forward.
CREATE OR REPLACE FUNCTION hd_now() RETURNS timestamp
LANGUAGE sql VOLATILE AS $$
  SELECT (clock_timestamp() AT TIME ZONE 'utc')::timestamp
$$;

-- The head appends follow (for people who may not read every entry: blind second review), and
-- each chain's length and newest entry as stored (checkpoints, remembered heads).
CREATE OR REPLACE FUNCTION hd_chain_head(p_chain text) RETURNS text LANGUAGE sql
STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT head FROM hd_chain_lock WHERE chain = p_chain
$$;

CREATE OR REPLACE FUNCTION hd_chain_state(p_chain text)
RETURNS TABLE (entries bigint, head text) LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
  IF p_chain = 'decisions' THEN
    RETURN QUERY SELECT (SELECT count(*) FROM decisions),
                        (SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1)::text;
  ELSE
    RETURN QUERY SELECT (SELECT count(*) FROM audit_events),
                        (SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1)::text;
  END IF;
END $$;

-- Append one decision: its id from the sequence, its time from the server's clock, its chain
-- entry computed here (app.core.model.chain.decision_chain_fields), under the chain's lock.
-- Internal: called by the server's own functions only (no one is granted it).
CREATE OR REPLACE FUNCTION hd_append_decision(
  p_uuid text, p_item_id bigint, p_user_id bigint, p_verdict text, p_category text,
  p_category_label text, p_note text, p_method text, p_supersedes text,
  p_parent_uuid text DEFAULT NULL, p_matched_entry_id bigint DEFAULT NULL,
  p_match_distance integer DEFAULT NULL, p_hashes_digest text DEFAULT NULL)
RETURNS decisions LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE d decisions; prev text; fields jsonb; at timestamp;
BEGIN
  SELECT COALESCE(head, repeat('0', 64)), greatest(hd_now(), head_at) INTO prev, at
  FROM hd_chain_lock WHERE chain = 'decisions' FOR UPDATE;
  IF p_uuid IS NULL OR p_uuid !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  THEN
    RAISE EXCEPTION 'hashdesk: % is not a decision UUID', quote_nullable(p_uuid)
      USING ERRCODE = '22023';
  END IF;
  fields := jsonb_build_object(
    'uuid', p_uuid, 'item_id', p_item_id, 'user_id', p_user_id, 'verdict', p_verdict,
    'category', p_category, 'note', p_note, 'method', p_method, 'supersedes', p_supersedes,
    'decided_at', hd_iso(at));
  IF p_parent_uuid IS NOT NULL OR p_matched_entry_id IS NOT NULL THEN
    fields := fields || jsonb_build_object('parent_uuid', p_parent_uuid,
      'matched_entry_id', p_matched_entry_id, 'match_distance', p_match_distance);
  END IF;
  IF p_hashes_digest IS NOT NULL THEN
    fields := fields || jsonb_build_object('hashes', p_hashes_digest);
  END IF;
  INSERT INTO decisions (uuid, item_id, user_id, verdict, category, category_label, note, method,
    supersedes, parent_uuid, matched_entry_id, match_distance, hashes_digest, decided_at,
    recorded_at, prev_hash, entry_hash)
  VALUES (p_uuid, p_item_id, p_user_id, p_verdict, p_category, p_category_label, p_note,
    p_method, p_supersedes, p_parent_uuid, p_matched_entry_id, p_match_distance,
    p_hashes_digest, at, at, prev, hd_chain_hash(prev, fields))
  RETURNING * INTO d;
  UPDATE hd_chain_lock SET head = d.entry_hash, head_at = at WHERE chain = 'decisions';
  RETURN d;
END $$;

-- Append one audit event in the acting person's name (the schema owner acts as itself, with no
-- account), with the server's time and a fresh UUID (app.core.model.chain.audit_chain_fields).
-- ``p_detail`` is the canonical JSON text of the event's facts (or NULL). Internal.
CREATE OR REPLACE FUNCTION hd_append_audit(p_kind text, p_subject text, p_detail jsonb)
RETURNS audit_events LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE e audit_events; prev text; at timestamp; me users; uid text;
  detail text := CASE WHEN p_detail IS NULL THEN NULL ELSE hd_canonical(p_detail) END;
BEGIN
  SELECT * INTO me FROM users WHERE hd_role_prefix() || 'u_' || username = session_user;
  SELECT COALESCE(head, repeat('0', 64)), greatest(hd_now(), head_at) INTO prev, at
  FROM hd_chain_lock WHERE chain = 'audit events' FOR UPDATE;
  uid := gen_random_uuid()::text;
  INSERT INTO audit_events (uuid, kind, actor_id, actor_name, subject, detail, occurred_at,
    prev_hash, entry_hash)
  VALUES (uid, p_kind, me.id, COALESCE(me.username, session_user::text), p_subject, detail, at,
    prev, hd_chain_hash(prev, jsonb_build_object('uuid', uid, 'kind', p_kind,
      'actor_id', me.id, 'actor_name', COALESCE(me.username, session_user::text),
      'subject', p_subject, 'detail', detail, 'occurred_at', hd_iso(at))))
  RETURNING * INTO e;
  UPDATE hd_chain_lock SET head = e.entry_hash, head_at = at WHERE chain = 'audit events';
  RETURN e;
END $$;
