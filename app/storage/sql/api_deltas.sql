-- Hash deltas out and in, as server functions (app.storage.deltas calls them on an enforced
-- database; SQLite and plain PostgreSQL do the same in Python): take the next delta (which
-- entries go in is decided here, from the hash list itself, and recorded), mark it delivered
-- or failed, and record a partner's delta imported into a list in order. Each checks who may
-- (hd_require), takes its times from hd_now() and its actor from the session, and writes its
-- audit event (the same kind, subject and detail as the Python path).

-- Which entries of ``local`` changed in (p_lower, p_upper] now differ from what was last
-- shared: 'add' (active, enabled, the plain picture, not shared now) or 'retract' (shared,
-- no longer so). app.storage.deltas.delta_ops is the same rule.
CREATE OR REPLACE FUNCTION hd_delta_ops(p_lower bigint, p_upper bigint)
RETURNS TABLE (entry_id bigint, op text) LANGUAGE sql STABLE AS $$
  SELECT h.id, CASE WHEN h.shareable THEN 'add' ELSE 'retract' END
    FROM (SELECT id, (retracted_at IS NULL AND disabled_at IS NULL
                      AND COALESCE(variant, '') = '') AS shareable
            FROM hash_list
           WHERE change_seq > p_lower AND change_seq <= p_upper AND list_name = 'local') h
    LEFT JOIN LATERAL (SELECT d.op FROM delta_entries d WHERE d.entry_id = h.id
                        ORDER BY d.delta_seq DESC LIMIT 1) l ON true
   WHERE (h.shareable AND l.op IS DISTINCT FROM 'add') OR (NOT h.shareable AND l.op = 'add')
   ORDER BY h.id
$$;

-- The delta to write now: the oldest not yet delivered, else a new one holding the changes
-- since the last, else NULL (nothing changed, or the last was taken less than p_min_seconds
-- ago). A lead or admin (export).
CREATE OR REPLACE FUNCTION hd_api_delta_plan(p_min_seconds integer, p_incident bigint,
  p_label text, p_formats jsonb) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; last deltas; pending bigint; lower_ bigint; upper_ bigint; n bigint;
  now_ timestamp; added bigint[]; gone bigint[]; f text; lbl text;
BEGIN
  u := hd_require('export');
  IF p_formats IS NULL OR jsonb_typeof(p_formats) <> 'array' OR jsonb_array_length(p_formats) = 0
  THEN
    RAISE EXCEPTION 'hashdesk: a delta needs at least one format' USING ERRCODE = '22023';
  END IF;
  FOR f IN SELECT jsonb_array_elements_text(p_formats) LOOP
    IF f NOT IN ('pytx', 'pytx-csv', 'tat', 'tat-csv', 'vics') THEN
      RAISE EXCEPTION 'hashdesk: delta format % is not one of pytx, pytx-csv, tat, tat-csv, vics',
        quote_literal(f) USING ERRCODE = '22023';
    END IF;
  END LOOP;
  IF p_incident IS NOT NULL THEN  -- the incident's own label, not the caller's
    SELECT label INTO lbl FROM incidents WHERE id = p_incident;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'hashdesk: there is no incident #%', p_incident USING ERRCODE = '22023';
    END IF;
  ELSE
    lbl := p_label;
  END IF;
  IF length(lbl) > 255 THEN
    RAISE EXCEPTION 'hashdesk: a delta label is at most 255 characters' USING ERRCODE = '22023';
  END IF;
  -- One planner at a time: a lock on the deltas table itself (people may read it, never lock
  -- it beyond that: an advisory lock anyone could take and hold).
  LOCK TABLE deltas IN SHARE ROW EXCLUSIVE MODE;
  -- Every transaction already writing the hash list commits first: no entry numbered at or
  -- below the cut can appear after it. One left open (a psql session, say) does not stall the
  -- deltas: after 10 s the round is refused, said so, and retried.
  PERFORM set_config('lock_timeout', '10s', true);
  BEGIN
    LOCK TABLE hash_list IN SHARE MODE;
  EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'hashdesk: a transaction writing the hash list has been open for over 10 s: '
      'the delta is taken at the next round' USING ERRCODE = '22023';
  END;
  PERFORM set_config('lock_timeout', '0', true);
  SELECT seq INTO pending FROM deltas WHERE written_at IS NULL ORDER BY seq LIMIT 1;
  IF pending IS NOT NULL THEN
    RETURN pending;
  END IF;
  SELECT * INTO last FROM deltas ORDER BY seq DESC LIMIT 1;
  now_ := hd_now();
  IF last.seq IS NOT NULL AND now_ - last.span_end < make_interval(secs => p_min_seconds) THEN
    RETURN NULL;
  END IF;
  lower_ := COALESCE(last.upper_seq, 0);
  upper_ := COALESCE((SELECT max(change_seq) FROM hash_list), 0);
  SELECT array_agg(o.entry_id ORDER BY o.entry_id) FILTER (WHERE o.op = 'add'),
         array_agg(o.entry_id ORDER BY o.entry_id) FILTER (WHERE o.op = 'retract')
    INTO added, gone FROM hd_delta_ops(lower_, upper_) o;
  IF added IS NULL AND gone IS NULL THEN
    RETURN NULL;
  END IF;
  n := COALESCE(last.seq, 0) + 1;
  PERFORM hd_append_audit('delta', 'delta:' || n, jsonb_build_object(
    'seq', n, 'window', jsonb_build_array(lower_, upper_),
    'added', COALESCE(cardinality(added), 0), 'retracted', COALESCE(cardinality(gone), 0),
    'added_ids', hd_id_ranges(COALESCE(added, '{}')),
    'retracted_ids', hd_id_ranges(COALESCE(gone, '{}')),
    'label', lbl, 'incident_id', p_incident, 'formats', p_formats));
  INSERT INTO deltas (seq, lower_seq, upper_seq, span_start, span_end, incident_id, label,
                      formats, added, retracted, planned_by, attempts)
  VALUES (n, lower_, upper_, last.span_end, now_, p_incident, lbl, p_formats::text,
          COALESCE(cardinality(added), 0), COALESCE(cardinality(gone), 0), u.id, 0);
  INSERT INTO delta_entries (delta_seq, entry_id, op)
  SELECT n, o.entry_id, o.op FROM hd_delta_ops(lower_, upper_) o;
  RETURN n;
END $$;

-- Delta p_seq delivered: its manifest's SHA-256, its files, where. False when it had been
-- already with the same manifest (a second runner); another manifest is refused.
CREATE OR REPLACE FUNCTION hd_api_delta_written(p_seq bigint, p_sha text, p_files jsonb,
  p_dest text) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; d deltas; e audit_events;
BEGIN
  u := hd_require('export');
  IF p_sha IS NULL OR p_sha !~ '^[0-9a-f]{64}$' THEN
    RAISE EXCEPTION 'hashdesk: % is not a SHA-256', quote_literal(left(p_sha, 80))
      USING ERRCODE = '22023';
  END IF;
  SELECT * INTO d FROM deltas WHERE seq = p_seq FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no delta %', p_seq USING ERRCODE = '22023';
  END IF;
  IF d.written_at IS NOT NULL THEN
    IF d.manifest_sha256 <> p_sha THEN
      RAISE EXCEPTION 'hashdesk: delta % was written before with another manifest (%): its '
        'entries changed on the record', p_seq, d.manifest_sha256 USING ERRCODE = '22023';
    END IF;
    RETURN false;
  END IF;
  e := hd_append_audit('delta_written', 'delta:' || p_seq, jsonb_build_object(
    'seq', p_seq, 'manifest_sha256', p_sha, 'files', p_files, 'destination', p_dest,
    'attempts', d.attempts + 1));
  UPDATE deltas SET written_at = e.occurred_at, written_by = u.id, manifest_sha256 = p_sha,
                    destination = left(p_dest, 1000), attempts = attempts + 1
   WHERE seq = p_seq;
  RETURN true;
END $$;

-- Delta p_seq could not be delivered this time: why (kept with it, shown to the leads, on the
-- record). Returns its attempts so far.
CREATE OR REPLACE FUNCTION hd_api_delta_failed(p_seq bigint, p_message text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; d deltas; why text := left(COALESCE(NULLIF(btrim(p_message), ''),
                                                     'unknown failure'), 1000);
BEGIN
  u := hd_require('export');
  SELECT * INTO d FROM deltas WHERE seq = p_seq FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no delta %', p_seq USING ERRCODE = '22023';
  END IF;
  IF d.written_at IS NOT NULL THEN
    RETURN d.attempts;
  END IF;
  PERFORM hd_append_audit('delta_failed', 'delta:' || p_seq, jsonb_build_object(
    'seq', p_seq, 'error', why, 'attempts', d.attempts + 1));
  UPDATE deltas SET attempts = attempts + 1, last_error = why, last_error_at = hd_now()
   WHERE seq = p_seq;
  RETURN d.attempts + 1;
END $$;

-- A partner's delta p_seq imported into list p_list, in the import's own transaction (its
-- import event must be in it): refused unless it is the next number for that list. An admin
-- (import_hashes), as the import itself.
CREATE OR REPLACE FUNCTION hd_api_delta_imported(p_list text, p_seq bigint, p_sha text,
  p_label text, p_import text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; name_ text; last bigint;
BEGIN
  u := hd_require('import_hashes');
  name_ := hd_list_name(p_list);
  IF p_sha IS NULL OR p_sha !~ '^[0-9a-f]{64}$' THEN
    RAISE EXCEPTION 'hashdesk: % is not a SHA-256', quote_literal(left(p_sha, 80))
      USING ERRCODE = '22023';
  END IF;
  IF p_import IS NOT NULL AND NOT hd_event_here('import', name_) THEN
    RAISE EXCEPTION 'hashdesk: delta % of % has no import in this transaction', p_seq, name_
      USING ERRCODE = '22023';
  END IF;
  LOCK TABLE delta_imports IN SHARE ROW EXCLUSIVE MODE;  -- one import of a delta at a time
  last := COALESCE((SELECT max(seq) FROM delta_imports WHERE list_name = name_), 0);
  IF p_seq <> last + 1 THEN
    RAISE EXCEPTION 'hashdesk: delta % refused: the last imported into % is delta %: nothing '
      'imported from delta %', p_seq, name_, last, p_seq USING ERRCODE = '22023';
  END IF;
  PERFORM hd_append_audit('delta_imported', name_, jsonb_build_object(
    'seq', p_seq, 'manifest_sha256', p_sha, 'label', p_label, 'import', p_import));
  INSERT INTO delta_imports (list_name, seq, manifest_sha256, label, import_uuid, imported_at,
                             imported_by)
  VALUES (name_, p_seq, p_sha, left(p_label, 255), p_import, hd_now(), u.id);
END $$;
