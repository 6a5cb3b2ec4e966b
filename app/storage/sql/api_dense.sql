-- Dense references: a confirmed video's frames, hashed densely after the confirm by the
-- workstation that has the file, added to the local list under that confirm
-- (app.storage.dense). The server checks and writes; the client only hands the hashes over.

-- Add ``p_frames`` ([{"value", "quality", "frame_ts", "variant"}], variant "" or "trimmed")
-- as ``pdq_frame`` rows of the item confirmed by ``p_decision_uuid``, under that decision, in
-- the caller's name, with the server's ids and time, and the ``dense_frames`` audit event
-- naming the rows and their digest (``audit verify`` checks them, as an import's). The caller
-- must be allowed to review (what a confirm needs); the decision must be the item's standing
-- confirm, and the item a video. Frames equal to a row the confirm added (the sampled ones)
-- are left out. Idempotent: once the event exists the call adds nothing (``duplicate``).
CREATE OR REPLACE FUNCTION hd_api_add_dense_frames(p_decision_uuid text, p_frames jsonb,
  OUT added integer, OUT duplicate boolean, OUT added_ids text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users; d decisions; it items; standing decisions; at timestamp := hd_now();
  ids bigint[]; lines text[]; first_row hash_list; bad bigint;
BEGIN
  added := 0; duplicate := false; added_ids := '';
  me := hd_require('review');
  SELECT * INTO d FROM decisions WHERE uuid = p_decision_uuid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: no decision %', quote_nullable(p_decision_uuid)
      USING ERRCODE = '22023';
  END IF;
  SELECT * INTO it FROM items WHERE id = d.item_id FOR UPDATE;  -- one call at a time per item
  IF EXISTS (SELECT 1 FROM audit_events WHERE kind = 'dense_frames'
               AND subject = p_decision_uuid) THEN
    duplicate := true;
    RETURN;
  END IF;
  standing := hd_current_decision(it.id);
  IF it.kind <> 'video' OR standing.uuid IS DISTINCT FROM p_decision_uuid
     OR hd_outcome_of(standing.verdict, standing.category) <> 'confirm' THEN
    RAISE EXCEPTION 'hashdesk: decision % is not the standing confirm of a video: its dense '
      'frames are not added', left(p_decision_uuid, 8) USING ERRCODE = '22023';
  END IF;
  SELECT * INTO first_row FROM hash_list WHERE decision_uuid = p_decision_uuid
    AND algorithm = 'pdq_frame' ORDER BY id LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: decision % put no frames in the list', left(p_decision_uuid, 8)
      USING ERRCODE = '22023';
  END IF;
  IF jsonb_typeof(p_frames) IS DISTINCT FROM 'array' OR jsonb_array_length(p_frames) > 200000
  THEN
    RAISE EXCEPTION 'hashdesk: dense frames are a list of at most 200000' USING ERRCODE = '22023';
  END IF;
  SELECT min(x.i) INTO bad FROM jsonb_array_elements(p_frames) WITH ORDINALITY AS x(e, i)
   WHERE jsonb_typeof(x.e) <> 'object'
      OR x.e - ARRAY['value', 'quality', 'frame_ts', 'variant'] <> '{}'::jsonb
      OR COALESCE(x.e->>'value', '') !~ '^[0-9a-f]{64}$'
      OR COALESCE(x.e->>'variant', '') NOT IN ('', 'trimmed')
      OR jsonb_typeof(x.e->'frame_ts') IS DISTINCT FROM 'number'
      OR (x.e->>'frame_ts')::double precision NOT BETWEEN 0 AND 1e7
      OR (x.e ? 'quality' AND jsonb_typeof(x.e->'quality') <> 'null'
          AND (jsonb_typeof(x.e->'quality') <> 'number'
               OR (x.e->>'quality')::numeric NOT BETWEEN 0 AND 100
               OR (x.e->>'quality')::numeric <> trunc((x.e->>'quality')::numeric)));
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'hashdesk: dense frame % is not a video frame''s PDQ', bad
      USING ERRCODE = '22023';
  END IF;
  WITH f AS (
    SELECT DISTINCT ON (COALESCE(x.e->>'variant', ''), x.e->>'value',
                        round((x.e->>'frame_ts')::numeric, 3))
           x.i, x.e->>'value' AS value, (x.e->>'quality')::integer AS quality,
           (x.e->>'frame_ts')::double precision AS frame_ts,
           COALESCE(x.e->>'variant', '') AS variant
      FROM jsonb_array_elements(p_frames) WITH ORDINALITY AS x(e, i)
     ORDER BY COALESCE(x.e->>'variant', ''), x.e->>'value',
              round((x.e->>'frame_ts')::numeric, 3), x.i),
  ins AS (
    INSERT INTO hash_list (algorithm, value, quality, frame_ts, variant, category, list_name,
      decision_uuid, item_id, signal_id, added_by, added_at, labels)
    SELECT 'pdq_frame', f.value, f.quality, f.frame_ts, f.variant, first_row.category, 'local',
           p_decision_uuid, it.id, NULL, me.id, at, first_row.labels
      FROM f
     WHERE NOT EXISTS (SELECT 1 FROM hash_list h WHERE h.decision_uuid = p_decision_uuid
                         AND h.algorithm = 'pdq_frame' AND COALESCE(h.variant, '') = f.variant
                         AND h.value = f.value
                         AND round(h.frame_ts::numeric, 3) = round(f.frame_ts::numeric, 3))
     ORDER BY f.frame_ts, f.variant, f.i
    RETURNING id, algorithm, variant, value, quality, frame_ts, category, list_name)
  SELECT array_agg(id ORDER BY id),
         array_agg(hd_hash_row_line(algorithm, variant, value, quality, frame_ts, category,
                                    list_name))
    INTO ids, lines FROM ins;
  added := COALESCE(cardinality(ids), 0);
  added_ids := hd_id_ranges(COALESCE(ids, '{}'));
  PERFORM hd_append_audit('dense_frames', p_decision_uuid, jsonb_build_object(
    'item', it.id, 'added', added, 'added_ids', added_ids,
    'added_digest', hd_rows_digest_v2(COALESCE(lines, '{}'))));
  IF added > 0 THEN
    PERFORM pg_notify('hashdesk_hash_list', '');
  END IF;
END $$;
