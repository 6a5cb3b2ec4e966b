-- Incidents (app.storage.incidents; issue 23): declared by a lead, concluded with an end, people
-- moved onto one. Each call checks who may (hd_require('manage_incidents')), the values (the
-- words of app.core.model.incidents), takes the time from hd_now() and the actor from the
-- session, and appends its audit event itself (the same kind, subject and detail the Python
-- path writes).
-- Two leads declaring one name at once: the unique name decides, the second is told who has it.

CREATE OR REPLACE FUNCTION hd_incident_refuse(p_message text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RAISE EXCEPTION 'hashdesk: %', p_message USING ERRCODE = '22023';
END $$;

-- A JSON list of short words (sources, categories, delta formats), checked.
CREATE OR REPLACE FUNCTION hd_incident_words(p_what text, p_list jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE w jsonb;
BEGIN
  IF p_list IS NULL THEN
    RETURN '[]'::jsonb;
  END IF;
  IF jsonb_typeof(p_list) <> 'array' THEN
    PERFORM hd_incident_refuse(format('%s must be a list', p_what));
  END IF;
  FOR w IN SELECT * FROM jsonb_array_elements(p_list) LOOP
    IF jsonb_typeof(w) <> 'string' OR btrim(w #>> '{}') = '' OR length(w #>> '{}') > 128 THEN
      PERFORM hd_incident_refuse(format('%s %s is empty or longer than 128 characters', p_what,
                                        w::text));
    END IF;
  END LOOP;
  RETURN p_list;
END $$;

CREATE OR REPLACE FUNCTION hd_incident_taken(p_name text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT format('incident %L already exists: declared by %s at %s UTC (%s); choose another name',
    i.name, COALESCE(u.username, 'the system'), to_char(i.started_at, 'YYYY-MM-DD HH24:MI:SS'),
    CASE WHEN i.ended_at IS NULL THEN 'active'
         ELSE 'concluded ' || to_char(i.ended_at, 'YYYY-MM-DD HH24:MI') END)
  FROM incidents i LEFT JOIN users u ON u.id = i.declared_by WHERE i.name = p_name
$$;

-- Put items (and every member of their clusters) under an incident, where they are under none
-- yet. How many moved.
CREATE OR REPLACE FUNCTION hd_incident_tag(p_incident bigint, p_items bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE n integer;
BEGIN
  UPDATE items SET incident_id = p_incident
   WHERE incident_id IS NULL
     AND (id = ANY (p_items)
          OR cluster_id IN (SELECT cluster_id FROM items
                             WHERE id = ANY (p_items) AND cluster_id IS NOT NULL));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- Declare an incident. ``p_seeds``: [[algorithm, hex], ...]; ``p_items``: [item id, ...].
-- Returns the new incident's id.
CREATE OR REPLACE FUNCTION hd_api_incident_declare(p_name text, p_label text, p_sources jsonb,
  p_categories jsonb, p_seeds jsonb, p_items jsonb, p_delta_minutes integer,
  p_delta_formats jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; n text := btrim(COALESCE(p_name, '')); lab text := btrim(COALESCE(p_label, ''));
  inc incidents; seed jsonb; alg text; val text; items bigint[]; missing bigint; tagged integer;
  fmt jsonb;
BEGIN
  u := hd_require('manage_incidents');
  IF n !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' THEN
    PERFORM hd_incident_refuse(format('incident name %L is not allowed: 1-64 letters, digits, '
      '''_'', ''.'', ''-'', starting with a letter or digit', n));
  END IF;
  IF lab = '' THEN
    PERFORM hd_incident_refuse('an incident needs a label (e.g. a CIP reference)');
  END IF;
  IF length(lab) > 255 OR lab ~ '[[:space:]]' THEN
    PERFORM hd_incident_refuse(format('incident label %L must be one word of at most 255 '
      'characters (it becomes a hash-list label)', left(lab, 40)));
  END IF;
  IF p_delta_minutes IS NULL OR p_delta_minutes NOT BETWEEN 1 AND 1440 THEN
    PERFORM hd_incident_refuse(format('delta interval %s minutes is out of range (1 to 1440)',
                                      p_delta_minutes));
  END IF;
  FOR fmt IN SELECT * FROM jsonb_array_elements(hd_incident_words('delta format',
                                                                  p_delta_formats)) LOOP
    IF (fmt #>> '{}') NOT IN ('pytx', 'pytx-csv', 'tat', 'vics') THEN
      PERFORM hd_incident_refuse(format('delta format %L is not one of pytx, pytx-csv, tat, vics',
                                        fmt #>> '{}'));
    END IF;
  END LOOP;
  SELECT COALESCE(array_agg(DISTINCT (x #>> '{}')::bigint), '{}') INTO items
    FROM jsonb_array_elements(COALESCE(p_items, '[]'::jsonb)) x;
  SELECT i INTO missing FROM unnest(items) i WHERE NOT EXISTS (SELECT 1 FROM items t WHERE t.id = i)
   LIMIT 1;
  IF missing IS NOT NULL THEN
    PERFORM hd_incident_refuse(format('seed item %s does not exist', missing));
  END IF;
  BEGIN
    INSERT INTO incidents (name, label, started_at, declared_by, sources, categories,
                           seed_items, delta_minutes, delta_formats)
    VALUES (n, lab, hd_now(), u.id, hd_incident_words('source', p_sources)::text,
            hd_incident_words('category', p_categories)::text, to_jsonb(items)::text,
            p_delta_minutes,
            COALESCE(NULLIF(hd_incident_words('delta format', p_delta_formats), '[]'::jsonb),
                     '["pytx"]'::jsonb)::text)
    ON CONFLICT (name) DO NOTHING
    RETURNING * INTO inc;
  EXCEPTION WHEN lock_not_available THEN
    -- Another lead's declare of this name is still open (longer than the lock timeout).
    PERFORM hd_incident_refuse(format('incident %L is being declared by another lead right '
      'now: see `hashdesk incident list` in a moment', n));
  END;
  IF inc.id IS NULL THEN  -- someone else has the name (perhaps declared at this very moment)
    PERFORM hd_incident_refuse(hd_incident_taken(n));
  END IF;
  FOR seed IN SELECT * FROM jsonb_array_elements(COALESCE(p_seeds, '[]'::jsonb)) LOOP
    alg := seed ->> 0;
    val := lower(seed ->> 1);
    IF hd_signal_hex_len(alg) IS NULL OR length(val) <> hd_signal_hex_len(alg)
       OR val !~ '^[0-9a-f]+$' THEN
      PERFORM hd_incident_refuse(format('seed hash %s:%s is not a hash Hashdesk knows', alg, val));
    END IF;
    INSERT INTO incident_hashes (incident_id, algorithm, value, variant)
    VALUES (inc.id, alg, val, '');
  END LOOP;
  INSERT INTO incident_hashes (incident_id, algorithm, value, variant, item_id)
  SELECT inc.id, g.algorithm, g.value, COALESCE(g.variant, ''), g.item_id
    FROM signals g WHERE g.item_id = ANY (items) AND NOT hd_query_only(g.variant)
   ORDER BY g.id;
  tagged := hd_incident_tag(inc.id, items);
  PERFORM hd_append_audit('incident_declared', n, jsonb_build_object(
    'label', lab, 'sources', inc.sources::jsonb, 'categories', inc.categories::jsonb,
    'seed_hashes', (SELECT COALESCE(jsonb_agg(s ->> 0 || ':' || lower(s ->> 1)), '[]'::jsonb)
                      FROM jsonb_array_elements(COALESCE(p_seeds, '[]'::jsonb)) s),
    'seed_items', to_jsonb(items), 'items_tagged', tagged,
    'delta_minutes', inc.delta_minutes, 'delta_formats', inc.delta_formats::jsonb));
  RETURN inc.id;
END $$;

-- Conclude an active incident (its end: the server's time).
CREATE OR REPLACE FUNCTION hd_api_incident_conclude(p_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; inc incidents; e audit_events;
BEGIN
  u := hd_require('manage_incidents');
  SELECT * INTO inc FROM incidents WHERE name = btrim(COALESCE(p_name, '')) FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM hd_incident_refuse(format('there is no incident %L (`hashdesk incident list`)',
                                      p_name));
  END IF;
  IF inc.ended_at IS NOT NULL THEN
    PERFORM hd_incident_refuse(format('incident %L was already concluded at %s UTC', inc.name,
                                      to_char(inc.ended_at, 'YYYY-MM-DD HH24:MI:SS')));
  END IF;
  e := hd_append_audit('incident_concluded', inc.name, jsonb_build_object(
    'label', inc.label, 'items', (SELECT count(*) FROM items WHERE incident_id = inc.id)));
  UPDATE incidents SET ended_at = e.occurred_at, concluded_by = u.id WHERE id = inc.id;
  RETURN inc.id;
END $$;

-- Move people onto an active incident (or off it: ``p_remove``). ``p_users``: [username, ...].
CREATE OR REPLACE FUNCTION hd_api_incident_assign(p_name text, p_users jsonb, p_remove boolean)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; inc incidents; e audit_events; who text; uid bigint; n integer := 0;
BEGIN
  u := hd_require('manage_incidents');
  SELECT * INTO inc FROM incidents WHERE name = btrim(COALESCE(p_name, ''));
  IF NOT FOUND THEN
    PERFORM hd_incident_refuse(format('there is no incident %L (`hashdesk incident list`)',
                                      p_name));
  END IF;
  IF inc.ended_at IS NOT NULL THEN
    PERFORM hd_incident_refuse(format('incident %L is concluded: nobody can be moved onto it',
                                      inc.name));
  END IF;
  IF p_users IS NULL OR jsonb_typeof(p_users) <> 'array' OR jsonb_array_length(p_users) = 0 THEN
    PERFORM hd_incident_refuse('name at least one person to move');
  END IF;
  FOR who IN SELECT btrim(x #>> '{}') FROM jsonb_array_elements(p_users) x LOOP
    IF NOT EXISTS (SELECT 1 FROM users WHERE username = who AND active) THEN
      PERFORM hd_incident_refuse(format('there is no active account %L', who));
    END IF;
  END LOOP;
  e := hd_append_audit('incident_assigned', inc.name, jsonb_build_object(
    'people', (SELECT jsonb_agg(btrim(x #>> '{}')) FROM jsonb_array_elements(p_users) x),
    'remove', COALESCE(p_remove, false)));
  FOR uid IN SELECT id FROM users WHERE username IN
               (SELECT btrim(x #>> '{}') FROM jsonb_array_elements(p_users) x) LOOP
    IF COALESCE(p_remove, false) THEN
      DELETE FROM incident_assignments WHERE incident_id = inc.id AND user_id = uid;
    ELSE
      INSERT INTO incident_assignments (incident_id, user_id, assigned_by, assigned_at)
      VALUES (inc.id, uid, u.id, e.occurred_at) ON CONFLICT DO NOTHING;
    END IF;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- The active incident a new item goes under, found by the server itself (ingest:
-- hd_api_record_items), as app.storage.incidents.incident_for_new_item finds it: one of the
-- item's hashes near a hash of the incident (a seed hash, a seed item's), the hash-list entry
-- it matched belonging to an item under the incident or carrying its label, or the cluster it
-- joined (``p_rep``) under it; only an incident covering the sighting's source. NULL: none.
CREATE OR REPLACE FUNCTION hd_item_incident(p_item bigint, p_rep bigint, p_pdq integer,
  p_phash integer) RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE it items; inc bigint; src text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM incidents WHERE ended_at IS NULL) THEN
    RETURN NULL;
  END IF;
  SELECT * INTO it FROM items WHERE id = p_item;
  src := (SELECT source FROM sightings WHERE item_id = p_item ORDER BY id DESC LIMIT 1);
  SELECT c.id INTO inc FROM incidents c
   WHERE c.ended_at IS NULL
     AND (c.sources = '[]' OR c.sources::jsonb ? src)
     AND (EXISTS (SELECT 1 FROM incident_hashes h JOIN signals g ON g.item_id = p_item
                   WHERE h.incident_id = c.id
                     AND hd_near(g.algorithm, g.value, h.algorithm, h.value, p_pdq, p_phash))
          OR EXISTS (SELECT 1 FROM hash_list e JOIN items t ON t.id = e.item_id
                      WHERE e.id = it.known_entry_id AND t.incident_id = c.id)
          OR EXISTS (SELECT 1 FROM hash_list e
                      WHERE e.id = it.known_entry_id
                        AND c.label = ANY (string_to_array(COALESCE(e.labels, ''), ' ')))
          OR EXISTS (SELECT 1 FROM items r WHERE r.id = p_rep AND r.incident_id = c.id))
   ORDER BY c.started_at DESC LIMIT 1;
  RETURN inc;
END $$;

-- Record a re-scan (app.storage.rescan): the workstation matched the open and recent items'
-- stored signals against new hashes; the server checks each match and decides by the item's
-- status now. ``p_batch``: {"trigger", "declared": incident id | null, "searched": int,
-- "scanned": int, "policy": {"pdq_threshold", "phash_threshold"},
-- "matches": [{"item", "entry", "distance", "resolve", "note"} | {"item"} (a declare's)]}.
-- An open item resolves (an auto-match decision; its open cluster members with it) or gets
-- the badge; a held one gets the badge; a rejected one is flagged for the leads
-- (rescan_misses); anything else decided is counted. An item matching an entry of an active
-- incident (or, for a declare, its seed hashes) goes under it. Returns the counts.
CREATE OR REPLACE FUNCTION hd_api_rescan_apply(p_batch jsonb,
  OUT rescan_id bigint, OUT resolved integer, OUT badged integer, OUT tagged integer,
  OUT flagged_misses integer, OUT counted_decided integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE
  me users := hd_require('review');
  pdq integer := (p_batch #>> '{policy,pdq_threshold}')::integer;
  phash integer := (p_batch #>> '{policy,phash_threshold}')::integer;
  declared bigint := (p_batch ->> 'declared')::bigint;
  m jsonb; it items; e hash_list; inc bigint; v_note text; v_resolve boolean; d decisions;
  mem items; misses jsonb := '[]'; n integer; at timestamp := hd_now(); r rescans;
  first_inc bigint; sp double precision[];
BEGIN
  resolved := 0; badged := 0; tagged := 0; flagged_misses := 0; counted_decided := 0;
  IF pdq IS NULL OR pdq NOT BETWEEN 0 AND 64 OR phash IS NULL OR phash NOT BETWEEN 0 AND 24
     OR jsonb_typeof(p_batch -> 'matches') IS DISTINCT FROM 'array' THEN
    PERFORM hd_bad_value('re-scan batch', left(p_batch::text, 60));
  END IF;
  IF declared IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM incidents WHERE id = declared AND ended_at IS NULL) THEN
    PERFORM hd_bad_value('incident', declared::text);
  END IF;
  FOR m IN SELECT * FROM jsonb_array_elements(p_batch -> 'matches') LOOP
    SELECT * INTO it FROM items WHERE id = (m ->> 'item')::bigint FOR UPDATE;
    IF NOT FOUND THEN
      PERFORM hd_bad_value('item', m ->> 'item');
    END IF;
    IF declared IS NOT NULL THEN
      -- a declare's re-scan: near one of the incident's hashes
      IF NOT EXISTS (SELECT 1 FROM incident_hashes h JOIN signals g ON g.item_id = it.id
                      WHERE h.incident_id = declared
                        AND hd_near(g.algorithm, g.value, h.algorithm, h.value, pdq, phash)) THEN
        RAISE EXCEPTION 'hashdesk: item % matches none of incident %''s hashes', it.id,
          declared USING ERRCODE = '42501';
      END IF;
      tagged := tagged + hd_incident_tag(declared, ARRAY[it.id]);
      CONTINUE;
    END IF;
    SELECT * INTO e FROM hash_list WHERE id = (m ->> 'entry')::bigint;
    IF NOT FOUND OR e.retracted_at IS NOT NULL OR e.disabled_at IS NOT NULL THEN
      CONTINUE;  -- retracted or disabled since: no longer a match
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM hash_list h JOIN signals g ON g.item_id = it.id
         WHERE (h.id = e.id OR (h.item_id = e.item_id AND h.retracted_at IS NULL))
           AND hd_near(g.algorithm, g.value, h.algorithm, h.value,
                       COALESCE((SELECT l.pdq_threshold FROM hash_lists l
                                  WHERE l.name = e.list_name), pdq), phash)) THEN
      RAISE EXCEPTION 'hashdesk: hash-list entry #% does not match item % (no hash of it '
        'within the threshold)', e.id, it.id USING ERRCODE = '42501';
    END IF;
    v_note := m ->> 'note';
    IF v_note IS NULL OR length(v_note) > 2000 THEN
      PERFORM hd_bad_value('match note', v_note);
    END IF;
    -- a partial copy's spans and shares (checked as ingest's are)
    sp := CASE WHEN jsonb_typeof(m -> 'span') = 'object'
               THEN hd_match_span(m -> 'span', it.duration) END;
    inc := (SELECT c.id FROM incidents c
             WHERE c.ended_at IS NULL
               AND (c.id = (SELECT t.incident_id FROM items t WHERE t.id = e.item_id)
                    OR c.label = ANY (string_to_array(COALESCE(e.labels, ''), ' ')))
             ORDER BY c.started_at DESC LIMIT 1);
    IF inc IS NOT NULL THEN
      first_inc := COALESCE(first_inc, inc);
      tagged := tagged + hd_incident_tag(inc, ARRAY[it.id]);
      SELECT * INTO it FROM items WHERE id = it.id;
    END IF;
    IF it.status IN ('queued', 'unreadable') THEN
      IF it.known_entry_id IS NOT NULL AND it.match_note IS NOT NULL THEN
        CONTINUE;  -- badged already
      END IF;
      v_resolve := COALESCE((m ->> 'resolve')::boolean, false);
      IF v_resolve AND e.list_name <> 'local' THEN
        v_resolve := EXISTS (SELECT 1 FROM hash_lists l WHERE l.name = e.list_name
                             AND l.policy = 'resolve' AND NOT l.allow)
                     AND e.flood_guarded_at IS NULL;
      END IF;
      IF v_resolve THEN
        d := hd_append_decision(gen_random_uuid()::text, it.id, NULL, 'confirm', e.category,
          NULL, v_note, 'auto_match', NULL, NULL, e.id, (m ->> 'distance')::integer, NULL);
        UPDATE items SET status = 'auto_matched', match_note = v_note, known_entry_id = e.id,
          updated_at = at WHERE id = it.id;
        PERFORM hd_set_match_span(it.id, sp);
        resolved := resolved + 1;
        IF it.cluster_id = it.id THEN
          FOR mem IN SELECT * FROM items WHERE cluster_id = it.id AND id <> it.id
                       AND status IN ('queued', 'unreadable') ORDER BY id FOR UPDATE LOOP
            PERFORM hd_append_decision(gen_random_uuid()::text, mem.id, NULL, 'confirm',
              e.category, NULL, format('decided with its cluster''s representative #%s '
              '(re-scan)', it.id), 'auto_match', NULL, d.uuid, e.id,
              (m ->> 'distance')::integer, NULL);
            UPDATE items SET status = 'auto_matched', match_note = v_note,
              incident_id = COALESCE(incident_id, it.incident_id, inc), updated_at = at
             WHERE id = mem.id;
            resolved := resolved + 1;
          END LOOP;
        END IF;
      ELSE
        UPDATE items SET match_note = 'known match: ' || v_note, known_entry_id = e.id
         WHERE id = it.id;
        PERFORM hd_set_match_span(it.id, sp);
        badged := badged + 1;
      END IF;
    ELSIF it.status = 'claimed' THEN
      IF it.known_entry_id IS NULL THEN
        UPDATE items SET match_note = 'known match: ' || v_note, known_entry_id = e.id
         WHERE id = it.id;
        PERFORM hd_set_match_span(it.id, sp);
        badged := badged + 1;
      END IF;
    ELSIF it.status = 'decided' AND (SELECT hd_outcome_of(c.verdict, c.category)
                                       FROM hd_current_decision(it.id) c) = 'reject' THEN
      IF NOT EXISTS (SELECT 1 FROM rescan_misses x WHERE x.item_id = it.id
                      AND x.entry_id = e.id) THEN
        misses := misses || jsonb_build_object('item', it.id, 'entry', e.id, 'note', v_note);
      END IF;
    ELSE
      counted_decided := counted_decided + 1;
    END IF;
  END LOOP;
  flagged_misses := jsonb_array_length(misses);
  INSERT INTO rescans (incident_id, trigger, started_at, finished_at, searched_hashes,
    items_scanned, matched, resolved, badged, tagged, flagged_misses, counted_decided, run_by)
  -- the incident the new hashes belong to; else the only one active, if one is
  VALUES (COALESCE(declared, first_inc, (SELECT min(id) FROM incidents WHERE ended_at IS NULL
                                         HAVING count(*) = 1)),
    left(COALESCE(p_batch ->> 'trigger', 'rescan'), 64), at, hd_now(),
    COALESCE((p_batch ->> 'searched')::integer, 0), COALESCE((p_batch ->> 'scanned')::integer, 0),
    jsonb_array_length(p_batch -> 'matches'), resolved, badged, tagged, flagged_misses,
    counted_decided, me.id)
  RETURNING * INTO r;
  rescan_id := r.id;
  INSERT INTO rescan_misses (rescan_id, item_id, entry_id, note, flagged_at)
  SELECT r.id, (x ->> 'item')::bigint, (x ->> 'entry')::bigint, x ->> 'note', at
    FROM jsonb_array_elements(misses) x;
END $$;

-- A lead clears a possible miss (a rejected item a re-scan found matching a confirmed hash)
-- after looking at it, with a note; audited (``miss_cleared``: the miss, item, entry, note).
CREATE OR REPLACE FUNCTION hd_api_rescan_miss_clear(p_id bigint, p_note text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users; m rescan_misses; e audit_events; note text := btrim(COALESCE(p_note, ''));
BEGIN
  u := hd_require('manage_incidents');
  IF note = '' THEN
    PERFORM hd_incident_refuse('clearing a possible miss needs a note: what was done with it');
  ELSIF length(note) > 2000 THEN
    PERFORM hd_incident_refuse(format('the note is %s characters: at most 2000', length(note)));
  END IF;
  SELECT * INTO m FROM rescan_misses WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM hd_incident_refuse(format('there is no possible miss #%s (`hashdesk incident '
                                      'misses`)', p_id));
  END IF;
  IF m.cleared_at IS NOT NULL THEN
    PERFORM hd_incident_refuse(format('possible miss #%s was already cleared by %s at %s UTC',
      p_id, COALESCE((SELECT username FROM users WHERE id = m.cleared_by), 'someone'),
      to_char(m.cleared_at, 'YYYY-MM-DD HH24:MI:SS')));
  END IF;
  e := hd_append_audit('miss_cleared', 'item:' || m.item_id, jsonb_build_object(
    'miss', m.id, 'item', m.item_id, 'entry', m.entry_id, 'note', note));
  UPDATE rescan_misses SET cleared_at = e.occurred_at, cleared_by = u.id WHERE id = m.id;
  RETURN m.id;
END $$;
