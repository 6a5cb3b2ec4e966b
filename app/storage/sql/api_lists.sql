-- The hash lists' writes people make, as server functions (app.storage.hash_lists,
-- list_import, list_feedback call them on an enforced database; SQLite does the same in
-- Python): retract, disable and enable entries, clear a flood guard, a list's rule, feedback on
-- an imported entry, and the import of a partner's list. Each checks who may (hd_require), the
-- values and the state, takes every time from hd_now() and every actor from the session, and
-- writes its audit event itself (the same kind, subject and detail the Python path writes, so
-- `audit verify` reads both alike). Each tells the workstations' hash-list watchers when it
-- commits (the channel of app.storage.notify).

-- A reason as the services take it: trimmed; refused when empty (``p_empty``: the message)
-- or longer than 1000 characters.
CREATE OR REPLACE FUNCTION hd_list_reason(p_reason text, p_empty text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE r text := regexp_replace(COALESCE(p_reason, ''), '^\s+|\s+$', '', 'g');
BEGIN
  IF r = '' THEN
    RAISE EXCEPTION 'hashdesk: %', p_empty USING ERRCODE = '22023';
  END IF;
  IF length(r) > 1000 THEN
    RAISE EXCEPTION 'hashdesk: a reason of % characters is too long (at most 1000)', length(r)
      USING ERRCODE = '22023';
  END IF;
  RETURN r;
END $$;

-- A list name as app.core.matching.hash_lists.check_list_name takes it (trimmed, 1-64
-- characters, no space or ':'); an imported list is never ``local``.
CREATE OR REPLACE FUNCTION hd_list_name(p_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE n text := regexp_replace(COALESCE(p_name, ''), '^\s+|\s+$', '', 'g');
BEGIN
  IF n = '' THEN
    RAISE EXCEPTION 'hashdesk: a list needs a name' USING ERRCODE = '22023';
  END IF;
  IF length(n) > 64 THEN
    RAISE EXCEPTION 'hashdesk: list name %... is longer than 64 characters',
      quote_literal(left(n, 20)) USING ERRCODE = '22023';
  END IF;
  IF n ~ '[[:space:]:]' THEN
    RAISE EXCEPTION 'hashdesk: list name % may not contain spaces or '':''', quote_literal(n)
      USING ERRCODE = '22023';
  END IF;
  IF n = 'local' THEN
    RAISE EXCEPTION 'hashdesk: the local list holds our own confirms: its rule is each '
      'workstation''s known_content setting, and imports go into a list of their own'
      USING ERRCODE = '22023';
  END IF;
  RETURN n;
END $$;

-- A list's rule values, checked as app.core.matching.hash_lists does (and migration 0010's
-- CHECK): policy one of ListPolicy, a PDQ threshold of 0 to 64 bits.
CREATE OR REPLACE FUNCTION hd_list_rule_check(p_policy text, p_pdq_threshold integer,
  p_source text) RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_policy IS NOT NULL AND p_policy NOT IN ('resolve', 'queue', 'off') THEN
    RAISE EXCEPTION 'hashdesk: list policy % is not one of resolve, queue, off',
      quote_literal(p_policy) USING ERRCODE = '22023';
  END IF;
  IF p_pdq_threshold IS NOT NULL AND p_pdq_threshold NOT BETWEEN 0 AND 64 THEN
    RAISE EXCEPTION 'hashdesk: PDQ threshold % is out of range: use 0 to 64 (bits of 256; 31 '
      'is the usual)', p_pdq_threshold USING ERRCODE = '22023';
  END IF;
  IF length(p_source) > 255 THEN
    RAISE EXCEPTION 'hashdesk: a list''s source is at most 255 characters'
      USING ERRCODE = '22023';
  END IF;
END $$;

-- A list's rule as the audit events carry it.
CREATE OR REPLACE FUNCTION hd_list_rule(p hash_lists) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('policy', p.policy, 'pdq_threshold', p.pdq_threshold,
                            'allow', p.allow)
$$;

-- Row ids as app.core.model.chain.id_ranges writes them ("3-7,9,12-13"; none: '').
CREATE OR REPLACE FUNCTION hd_id_ranges(p_ids bigint[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT COALESCE(string_agg(CASE WHEN lo = hi THEN lo::text ELSE lo || '-' || hi END, ','
                             ORDER BY lo), '')
  FROM (SELECT min(i) AS lo, max(i) AS hi
        FROM (SELECT i, i - row_number() OVER (ORDER BY i) AS g
              FROM (SELECT DISTINCT unnest(p_ids) AS i) a) b
        GROUP BY g) c
$$;

-- One hash-list row's line in app.core.model.chain.hash_rows_digest_v2.
CREATE OR REPLACE FUNCTION hd_hash_row_line(p_algorithm text, p_variant text, p_value text,
  p_quality integer, p_frame_ts double precision, p_category text, p_list text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_algorithm || '|' || COALESCE(p_variant, '') || '|' || lower(p_value) || '|'
    || COALESCE(p_quality::text, '') || '|'
    || COALESCE(floor(p_frame_ts * 1000000)::bigint::text, '') || '|'
    || COALESCE(p_category, '') || '|' || p_list
$$;

-- The digest of those lines (sorted by code point, joined by a newline).
CREATE OR REPLACE FUNCTION hd_rows_digest_v2(p_lines text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT 'v2:' || left(encode(sha256(convert_to(COALESCE(
    (SELECT string_agg(l, E'\n' ORDER BY l COLLATE "C") FROM unnest(p_lines) l), ''),
    'UTF8')), 'hex'), 61)
$$;

-- "#1, #2, ... #10 …": the first ten of some entry ids, for a message.
CREATE OR REPLACE FUNCTION hd_entry_names(p_ids bigint[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT (SELECT string_agg('#' || i, ', ' ORDER BY n)
          FROM unnest(p_ids[1:10]) WITH ORDINALITY AS a(i, n))
         || CASE WHEN cardinality(p_ids) > 10 THEN ' …' ELSE '' END
$$;

-- Retract entries (kept, marked retracted, never deleted) with a reason: a lead or admin. The
-- ids already retracted or unknown are left alone. Returns how many changed.
CREATE OR REPLACE FUNCTION hd_api_retract_entries(p_ids bigint[], p_reason text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; why text; ids bigint[]; e audit_events;
BEGIN
  u := hd_require('retract');
  why := hd_list_reason(p_reason, 'a retraction needs a reason');
  SELECT array_agg(id ORDER BY id) INTO ids FROM (
    SELECT id FROM hash_list WHERE id = ANY (p_ids) AND retracted_at IS NULL ORDER BY id
    FOR UPDATE) r;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  e := hd_append_audit('retraction', left(array_to_string(ids, ','), 255),
                       jsonb_build_object('entries', to_jsonb(ids), 'reason', why));
  UPDATE hash_list SET retracted_at = e.occurred_at, retracted_by = u.id,
                       retraction_reason = why
   WHERE id = ANY (ids);
  PERFORM pg_notify('hashdesk_hash_list', '');
  RETURN cardinality(ids);
END $$;

-- Disable entries (kept, never matched) or enable them again, with a reason: a lead or admin.
-- Every id must name an entry (nothing changes otherwise); retracted ones and those already so
-- are left alone. Returns how many changed.
CREATE OR REPLACE FUNCTION hd_api_set_entry_disabled(p_ids bigint[], p_disabled boolean,
  p_reason text) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; why text; missing bigint[]; ids bigint[]; e audit_events;
BEGIN
  u := hd_require('retract');
  IF p_disabled IS NULL THEN
    RAISE EXCEPTION 'hashdesk: disable or enable? (NULL)' USING ERRCODE = '22023';
  END IF;
  why := hd_list_reason(p_reason, CASE WHEN p_disabled THEN 'disabling' ELSE 'enabling' END
                                  || ' needs a reason');
  SELECT array_agg(DISTINCT i ORDER BY i) INTO missing FROM unnest(p_ids) i
   WHERE NOT EXISTS (SELECT 1 FROM hash_list h WHERE h.id = i);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: no hash-list entry %: nothing changed', hd_entry_names(missing)
      USING ERRCODE = '22023';
  END IF;
  SELECT array_agg(id ORDER BY id) INTO ids FROM (
    SELECT id FROM hash_list WHERE id = ANY (p_ids) AND retracted_at IS NULL
       AND (disabled_at IS NULL) = p_disabled ORDER BY id FOR UPDATE) r;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  e := hd_append_audit(CASE WHEN p_disabled THEN 'entry_disabled' ELSE 'entry_enabled' END,
         left((SELECT string_agg('entry:' || i, ',' ORDER BY i) FROM unnest(ids) i), 255),
         jsonb_build_object('entries', to_jsonb(ids), 'reason', why));
  UPDATE hash_list SET
    disabled_at = CASE WHEN p_disabled THEN e.occurred_at END,
    disabled_by = CASE WHEN p_disabled THEN u.id END,
    disabled_reason = CASE WHEN p_disabled THEN why END,
    changed_at = e.occurred_at
   WHERE id = ANY (ids);
  PERFORM pg_notify('hashdesk_hash_list', '');
  RETURN cardinality(ids);
END $$;

-- A lead or admin lets a flood-guarded entry resolve again, with a reason (on the record as an
-- enable that clears the flood guard). Returns the entry's list.
CREATE OR REPLACE FUNCTION hd_api_clear_flood_guard(p_entry_id bigint, p_reason text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; why text; h hash_list; e audit_events;
BEGIN
  u := hd_require('retract');
  why := hd_list_reason(p_reason, 'clearing the flood guard needs a reason');
  SELECT * INTO h FROM hash_list WHERE id = p_entry_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: hash-list entry #% does not exist', p_entry_id
      USING ERRCODE = '22023';
  END IF;
  IF h.retracted_at IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: hash-list entry #% is retracted: nothing to clear', p_entry_id
      USING ERRCODE = '22023';
  END IF;
  IF h.flood_guarded_at IS NULL THEN
    RAISE EXCEPTION 'hashdesk: hash-list entry #% is not held by the flood guard', p_entry_id
      USING ERRCODE = '22023';
  END IF;
  e := hd_append_audit('entry_enabled', 'entry:' || p_entry_id, jsonb_build_object(
         'entries', jsonb_build_array(p_entry_id), 'reason', why, 'flood_guard', 'cleared'));
  UPDATE hash_list SET flood_guarded_at = NULL, changed_at = e.occurred_at
   WHERE id = p_entry_id;
  PERFORM pg_notify('hashdesk_hash_list', '');
  RETURN h.list_name;
END $$;

-- Change a list's policy, PDQ threshold, allow flag or source (NULL: leave it;
-- ``p_clear_threshold``: back to the workstation's): an admin (import_hashes). A list that does
-- not exist is refused (a mistyped name) unless ``p_create``: then it is made empty.
CREATE OR REPLACE FUNCTION hd_api_set_list_rule(p_list text, p_policy text,
  p_pdq_threshold integer, p_clear_threshold boolean, p_allow boolean, p_source text,
  p_create boolean) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; n text; l hash_lists; before jsonb; e audit_events;
BEGIN
  u := hd_require('import_hashes');
  n := hd_list_name(p_list);
  PERFORM hd_list_rule_check(p_policy, p_pdq_threshold, p_source);
  SELECT * INTO l FROM hash_lists WHERE name = n FOR UPDATE;
  IF NOT FOUND THEN
    IF NOT COALESCE(p_create, false) THEN
      RAISE EXCEPTION 'hashdesk: there is no list %: lists are made by an import, or by '
        '`lists set NAME --create`', quote_literal(n) USING ERRCODE = '22023';
    END IF;
    l.name := n; l.policy := 'queue'; l.allow := false;
  END IF;
  before := hd_list_rule(l);
  l.policy := COALESCE(p_policy, l.policy);
  IF p_pdq_threshold IS NOT NULL OR COALESCE(p_clear_threshold, false) THEN
    l.pdq_threshold := p_pdq_threshold;
  END IF;
  l.allow := COALESCE(p_allow, l.allow);
  l.source := COALESCE(p_source, l.source);
  e := hd_append_audit('list_changed', n,
                       jsonb_build_object('before', before, 'after', hd_list_rule(l)));
  IF l.id IS NULL THEN
    INSERT INTO hash_lists (name, source, policy, pdq_threshold, allow, created_at, updated_at)
    VALUES (n, l.source, l.policy, l.pdq_threshold, l.allow, e.occurred_at, e.occurred_at);
  ELSE
    UPDATE hash_lists SET policy = l.policy, pdq_threshold = l.pdq_threshold, allow = l.allow,
                          source = l.source, updated_at = e.occurred_at
     WHERE id = l.id;
  END IF;
  PERFORM pg_notify('hashdesk_hash_list', '');
END $$;

-- Agree or disagree with an imported entry, in one's own name (a moderator may: review;
-- ``p_item_id``: the item that made one say so). Not an audit event: the row is the record,
-- and an event every moderator reads would give a first verdict away. Returns the row's id.
CREATE OR REPLACE FUNCTION hd_api_list_feedback(p_entry_id bigint, p_verdict text,
  p_item_id bigint, p_note text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; list text; fid bigint;
BEGIN
  u := hd_require('review');
  IF p_verdict IS NULL OR p_verdict NOT IN ('agree', 'disagree') THEN
    RAISE EXCEPTION 'hashdesk: feedback % is not agree or disagree', quote_nullable(p_verdict)
      USING ERRCODE = '22023';
  END IF;
  SELECT list_name INTO list FROM hash_list WHERE id = p_entry_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: hash-list entry #% does not exist', p_entry_id
      USING ERRCODE = '22023';
  END IF;
  IF list = 'local' THEN
    RAISE EXCEPTION 'hashdesk: feedback is for imported entries: this one is our own'
      USING ERRCODE = '22023';
  END IF;
  IF p_item_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM items WHERE id = p_item_id) THEN
    RAISE EXCEPTION 'hashdesk: there is no item #%', p_item_id USING ERRCODE = '22023';
  END IF;
  IF length(p_note) > 4000 THEN
    RAISE EXCEPTION 'hashdesk: a feedback note is at most 4000 characters'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO hash_list_feedback (entry_id, item_id, user_id, verdict, note, created_at)
  VALUES (p_entry_id, p_item_id, u.id, p_verdict, p_note, hd_now())
  RETURNING id INTO fid;
  RETURN fid;
END $$;

-- One part of an import into ``p_list`` (an admin: import_hashes), in the caller's
-- transaction; an import is one call, or one per part of a large list (app.storage.list_import
-- sends parts of 10,000 changes), each with its own event. The client has read the list and
-- says what changes; the server checks it and writes it:
-- * ``p_add``: the new entries, a JSON array of objects (algorithm, value, quality, frame_ts,
--   variant, external_id, labels, meta, first_seen, last_seen), each a hash of a known type
--   in lowercase hex of its length, and none already active in the list (frames: within their
--   video, the external id) nor twice in the part;
-- * ``p_update``: provenance that changed ([{id, labels, meta, last_seen}]);
-- * ``p_deleted``, ``p_gone``: active entries of the list to retract (marked deleted in the
--   file; missing from a whole list), with the import's event as the retraction's record;
-- * ``p_facts``: what the client read (file, format, lines, unchanged, bad_lines, unsupported;
--   part, when there are several), carried into the event as they are;
-- * the list's settings (NULL: leave as they are; a new list: queue, not an allow list) and
--   ``p_note``, the import's line for the lists view.
-- The event (kind import, subject the list) has the Python path's keys, and names the rows the
-- part added (their ids and the digest of app.core.model.chain.hash_rows_digest_v2), those it
-- retracted, and the list's rule after it.
CREATE OR REPLACE FUNCTION hd_api_import_entries(p_list text, p_add jsonb, p_update jsonb,
  p_deleted bigint[], p_gone bigint[], p_facts jsonb, p_note text, p_source text,
  p_policy text, p_pdq_threshold integer, p_allow boolean)
RETURNS TABLE (event_uuid text, added integer, updated integer, retracted integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; n text; l hash_lists; at timestamp; bad text; e audit_events;
  add_ids bigint[]; lines text[]; n_updated integer := 0; gone bigint[]; detail jsonb;
  facts jsonb := COALESCE(p_facts, '{}'::jsonb); why text;
BEGIN
  u := hd_require('import_hashes');
  n := hd_list_name(p_list);
  PERFORM hd_list_rule_check(p_policy, p_pdq_threshold, p_source);
  IF jsonb_typeof(COALESCE(p_add, '[]')) <> 'array'
     OR jsonb_typeof(COALESCE(p_update, '[]')) <> 'array'
     OR jsonb_typeof(facts) <> 'object' THEN
    RAISE EXCEPTION 'hashdesk: an import''s entries and updates are JSON arrays, its facts an '
      'object' USING ERRCODE = '22023';
  END IF;
  SELECT k INTO bad FROM jsonb_object_keys(facts) k
   WHERE k NOT IN ('file', 'format', 'lines', 'unchanged', 'bad_lines', 'unsupported', 'part')
   LIMIT 1;
  IF bad IS NOT NULL
     OR jsonb_typeof(COALESCE(facts->'file', '""')) <> 'string'
     OR jsonb_typeof(COALESCE(facts->'format', '""')) <> 'string'
     OR jsonb_typeof(COALESCE(facts->'part', '""')) <> 'string'
     OR jsonb_typeof(COALESCE(facts->'unsupported', '{}')) <> 'object'
     OR EXISTS (SELECT 1 FROM jsonb_each(COALESCE(facts->'unsupported', '{}')) x
                WHERE jsonb_typeof(x.value) <> 'number')
     OR EXISTS (SELECT 1 FROM unnest(ARRAY['lines', 'unchanged', 'bad_lines']) k
                WHERE jsonb_typeof(COALESCE(facts->k, '0')) <> 'number'
                   OR (facts->>k)::numeric <> floor((facts->>k)::numeric)) THEN
    RAISE EXCEPTION 'hashdesk: an import''s facts are file, format, part (text), lines, '
      'unchanged, bad_lines (whole numbers) and unsupported (counts): % refused',
      left(facts::text, 200) USING ERRCODE = '22023';
  END IF;
  IF length(p_note) > 1000 OR length(facts->>'file') > 255 OR length(facts->>'format') > 32 THEN
    RAISE EXCEPTION 'hashdesk: an import''s note, file or format name is too long'
      USING ERRCODE = '22023';
  END IF;

  -- the list, locked for the import (made when new)
  SELECT * INTO l FROM hash_lists WHERE name = n FOR UPDATE;
  at := hd_now();
  IF NOT FOUND THEN
    INSERT INTO hash_lists (name, source, policy, pdq_threshold, allow, created_at, updated_at)
    VALUES (n, p_source, COALESCE(p_policy, 'queue'), p_pdq_threshold, COALESCE(p_allow, false),
            at, at)
    RETURNING * INTO l;
  ELSIF (p_source IS NOT NULL AND p_source IS DISTINCT FROM l.source)
     OR (p_policy IS NOT NULL AND p_policy IS DISTINCT FROM l.policy)
     OR (p_pdq_threshold IS NOT NULL AND p_pdq_threshold IS DISTINCT FROM l.pdq_threshold)
     OR (p_allow IS NOT NULL AND p_allow IS DISTINCT FROM l.allow) THEN
    UPDATE hash_lists SET source = COALESCE(p_source, source),
                          policy = COALESCE(p_policy, policy),
                          pdq_threshold = COALESCE(p_pdq_threshold, pdq_threshold),
                          allow = COALESCE(p_allow, allow), updated_at = at
     WHERE id = l.id RETURNING * INTO l;
  END IF;

  -- the new entries: checked, then written in one statement
  SELECT format('entry %s of the part: %s', p.i, p.problem) INTO bad FROM (
    SELECT a.i, CASE
      WHEN a.algorithm IS NULL OR a.algorithm NOT IN ('pdq', 'pdq_frame', 'phash', 'md5',
                                                      'sha256')
        THEN format('hash type %s is not one of pdq, pdq_frame, phash, md5, sha256',
                    quote_nullable(a.algorithm))
      WHEN a.value IS NULL OR a.value !~ '^[0-9a-f]+$' OR length(a.value) <> CASE a.algorithm
             WHEN 'phash' THEN 16 WHEN 'md5' THEN 32 ELSE 64 END
        THEN format('%s is not a %s hash (lowercase hex, %s digits)',
                    quote_nullable(left(a.value, 80)), a.algorithm,
                    CASE a.algorithm WHEN 'phash' THEN 16 WHEN 'md5' THEN 32 ELSE 64 END)
      WHEN a.quality IS NOT NULL AND CASE WHEN a.quality ~ '^[0-9]{1,3}$'
                                          THEN a.quality::integer > 100 ELSE true END
        THEN format('quality %s is not 0 to 100', a.quality)
      WHEN a.frame_ts IS NOT NULL AND CASE
             WHEN a.frame_ts ~ '^[0-9]{1,10}(\.[0-9]+)?$'
             THEN a.frame_ts::double precision > 1e9 ELSE true END
        THEN format('frame time %s is not a time in a video', a.frame_ts)
      WHEN length(COALESCE(a.variant, '')) > 16
        OR NOT (COALESCE(a.variant, '') IN ('', 'trimmed') OR a.variant LIKE 'region:%')
        THEN format('variant %s is not one of "", trimmed, region:*', quote_literal(a.variant))
      WHEN length(a.external_id) > 256 THEN 'an external id is at most 256 characters'
      WHEN length(a.labels) > 4000 OR length(a.meta) > 20000
        THEN 'its labels or source fields are too long'
      WHEN jsonb_typeof(a.e) <> 'object' OR a.e - ARRAY['algorithm', 'value', 'quality',
             'frame_ts', 'variant', 'external_id', 'labels', 'meta', 'first_seen',
             'last_seen'] <> '{}'::jsonb
        THEN 'unknown field in ' || left(a.e::text, 120)
      WHEN EXISTS (SELECT 1 FROM hash_list h WHERE h.algorithm = a.algorithm
                     AND h.value = a.value AND h.list_name = n AND h.retracted_at IS NULL
                     AND (a.algorithm <> 'pdq_frame'
                          OR COALESCE(h.external_id, '') = COALESCE(a.external_id, '')))
        THEN format('%s %s is in the list already', a.algorithm, a.value)
      WHEN count(*) OVER (PARTITION BY a.algorithm, a.value,
             CASE WHEN a.algorithm = 'pdq_frame' THEN COALESCE(a.external_id, '') END) > 1
        THEN format('%s %s is in the part twice', a.algorithm, a.value)
    END AS problem
    FROM (SELECT x.e, x.i, x.e->>'algorithm' AS algorithm, x.e->>'value' AS value,
                 x.e->>'quality' AS quality, x.e->>'frame_ts' AS frame_ts,
                 x.e->>'variant' AS variant, x.e->>'external_id' AS external_id,
                 x.e->>'labels' AS labels, x.e->>'meta' AS meta
          FROM jsonb_array_elements(COALESCE(p_add, '[]')) WITH ORDINALITY AS x(e, i)) a) p
  WHERE p.problem IS NOT NULL ORDER BY p.i LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: import into %: %', n, bad USING ERRCODE = '22023';
  END IF;
  WITH ins AS (
    INSERT INTO hash_list (algorithm, value, quality, frame_ts, variant, list_name, added_by,
                           added_at, external_id, labels, meta, first_seen, last_seen)
    SELECT x.e->>'algorithm', x.e->>'value', (x.e->>'quality')::integer,
           (x.e->>'frame_ts')::double precision, COALESCE(x.e->>'variant', ''), n, u.id, at,
           x.e->>'external_id', x.e->>'labels', x.e->>'meta',
           COALESCE((x.e->>'first_seen')::timestamp, at),
           COALESCE((x.e->>'last_seen')::timestamp, (x.e->>'first_seen')::timestamp, at)
      FROM jsonb_array_elements(COALESCE(p_add, '[]')) WITH ORDINALITY AS x(e, i)
     ORDER BY x.i
    RETURNING id, algorithm, variant, value, quality, frame_ts, category, list_name)
  SELECT array_agg(id ORDER BY id),
         array_agg(hd_hash_row_line(algorithm, variant, value, quality, frame_ts, category,
                                    list_name))
    INTO add_ids, lines FROM ins;

  -- changed provenance of active entries of the list
  SELECT min(x.i) INTO bad FROM jsonb_array_elements(COALESCE(p_update, '[]'))
                                WITH ORDINALITY AS x(e, i)
   WHERE jsonb_typeof(x.e->'id') IS DISTINCT FROM 'number'
      OR NOT EXISTS (SELECT 1 FROM hash_list h WHERE h.id = (x.e->>'id')::bigint
                       AND h.list_name = n AND h.retracted_at IS NULL)
      OR length(x.e->>'labels') > 4000 OR length(x.e->>'meta') > 20000;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: import into %: update % of the part names no active entry of '
      'the list', n, bad USING ERRCODE = '22023';
  END IF;
  UPDATE hash_list h SET labels = x.e->>'labels', meta = x.e->>'meta',
                         last_seen = (x.e->>'last_seen')::timestamp
    FROM jsonb_array_elements(COALESCE(p_update, '[]')) AS x(e)
   WHERE h.id = (x.e->>'id')::bigint;
  GET DIAGNOSTICS n_updated = ROW_COUNT;

  -- the retractions: active entries of the list, once each
  gone := COALESCE(p_deleted, '{}') || COALESCE(p_gone, '{}');
  IF (SELECT count(*) FROM unnest(gone)) <> (SELECT count(DISTINCT i) FROM unnest(gone) i)
     OR EXISTS (SELECT 1 FROM unnest(gone) i WHERE NOT EXISTS (
                  SELECT 1 FROM hash_list h WHERE h.id = i AND h.list_name = n
                    AND h.retracted_at IS NULL)) THEN
    RAISE EXCEPTION 'hashdesk: import into %: a retraction names no active entry of the list, '
      'or one twice', n USING ERRCODE = '22023';
  END IF;
  PERFORM 1 FROM hash_list WHERE id = ANY (gone) ORDER BY id FOR UPDATE;

  detail := jsonb_build_object(
    'file', COALESCE(facts->'file', '""'), 'format', COALESCE(facts->'format', '""'),
    'lines', COALESCE(facts->'lines', '0'), 'unchanged', COALESCE(facts->'unchanged', '0'),
    'bad_lines', COALESCE(facts->'bad_lines', '0'),
    'unsupported', COALESCE(facts->'unsupported', '{}'),
    'added', COALESCE(cardinality(add_ids), 0), 'updated', n_updated,
    'retracted', cardinality(gone),
    'added_ids', hd_id_ranges(add_ids), 'added_digest', hd_rows_digest_v2(lines),
    'retracted_ids', hd_id_ranges(gone), 'rule', hd_list_rule(l));
  IF facts ? 'part' THEN
    detail := detail || jsonb_build_object('part', facts->'part');
  END IF;
  e := hd_append_audit('import', n, detail);
  -- The rows it added carry the time of the event that names them (`audit verify` compares).
  at := e.occurred_at;
  UPDATE hash_list SET added_at = at WHERE id = ANY (add_ids) AND added_at <> at;
  FOREACH why IN ARRAY ARRAY['marked deleted', 'gone from the list'] LOOP
    UPDATE hash_list SET retracted_at = at, retracted_by = u.id,
      retraction_reason = format('%s in import %s of %s into %s', why, left(e.uuid, 8),
                                 COALESCE(NULLIF(facts->>'file', ''), facts->>'format'), n),
      retraction_decision_uuid = e.uuid
     WHERE id = ANY (CASE WHEN why = 'marked deleted' THEN p_deleted ELSE p_gone END);
  END LOOP;
  UPDATE hash_lists SET last_import_at = at, last_import_note = p_note WHERE id = l.id;
  IF cardinality(add_ids) > 0 OR n_updated > 0 OR cardinality(gone) > 0 THEN
    PERFORM pg_notify('hashdesk_hash_list', '');
  END IF;
  RETURN QUERY SELECT e.uuid::text, COALESCE(cardinality(add_ids), 0), n_updated,
                      cardinality(gone);
END $$;
