-- Ingest's write API: the admin's workstation (a role with the `ingest` permission) analyses
-- files and matches them with its in-memory indexes; the server records them, one call per
-- batch of files (app.storage.ingest_recorder). The server sets every id, every time and the
-- actor; it checks every value, and what it can of the client's matches: a known match names an
-- active hash-list entry within the algorithm's threshold of one of the item's own signals, a
-- cluster names an open item with a signal within the threshold of one of the item's. The
-- flood guard and the auto-match decision are the server's own, in the same transaction.

-- The hash type's index table (app.core.matching.signal_types.SignalType.index_table), and its
-- hex length; NULL for an algorithm Hashdesk does not know.
CREATE OR REPLACE FUNCTION hd_signal_table(p_algorithm text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_algorithm WHEN 'pdq' THEN 'b256' WHEN 'pdq_frame' THEN 'b256'
    WHEN 'phash' THEN 'b64' WHEN 'md5' THEN 'md5' WHEN 'sha256' THEN 'sha256'
    WHEN 'audio' THEN 'audio' END
$$;
CREATE OR REPLACE FUNCTION hd_signal_hex_len(p_algorithm text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_algorithm WHEN 'pdq' THEN 64 WHEN 'pdq_frame' THEN 64 WHEN 'phash' THEN 16
    WHEN 'md5' THEN 32 WHEN 'sha256' THEN 64 WHEN 'audio' THEN 64 END
$$;

-- Bits that differ between two hex values of one length (NULL for different lengths).
CREATE OR REPLACE FUNCTION hd_hamming(a text, b text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN length(a) = length(b)
    THEN bit_count(('x' || a)::varbit # ('x' || b)::varbit)::integer END
$$;

-- Whether two signals could match under the thresholds (PDQ, pHash; exact types: equal). A
-- necessary condition of every rule of app.core.matching.match_rules (a whole picture, a half,
-- a frame set all need one pair of hashes of one table within the threshold).
-- Two blocks of the fingerprint of a sound (app.core.matching.audio_match.block_near, the same
-- rule): 64 hex digits, the first 8 a number, then 7 sub-fingerprints of 8; at some shift of
-- up to 3 sub-fingerprints, at most 400 thousandths of the bits they then share differ.
CREATE OR REPLACE FUNCTION hd_audio_near(a text, b text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT length(a) = 64 AND length(b) = 64 AND EXISTS (
    SELECT 1 FROM generate_series(-3, 3) s
     WHERE bit_count(('x' || substr(a, 9 + 8 * greatest(s, 0), 8 * (7 - abs(s))))::varbit
                   # ('x' || substr(b, 9 + 8 * greatest(-s, 0), 8 * (7 - abs(s))))::varbit)
           * 1000 <= 400 * 32 * (7 - abs(s)))
$$;

CREATE OR REPLACE FUNCTION hd_near(p_alg_a text, p_a text, p_alg_b text, p_b text,
                                   p_pdq integer, p_phash integer) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT hd_signal_table(p_alg_a) = hd_signal_table(p_alg_b)
     AND CASE hd_signal_table(p_alg_a)
           WHEN 'audio' THEN hd_audio_near(p_a, p_b)
           ELSE hd_hamming(p_a, p_b) <= CASE hd_signal_table(p_alg_a) WHEN 'b256' THEN p_pdq
                                           WHEN 'b64' THEN p_phash ELSE 0 END END
$$;

-- A value from the client that is not one Hashdesk writes.
CREATE OR REPLACE FUNCTION hd_bad_value(p_what text, p_value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RAISE EXCEPTION 'hashdesk: % % is not valid', p_what, left(quote_nullable(p_value), 120)
    USING ERRCODE = '22023';
END $$;

-- A partial copy's spans and shares as a known match claims them ("span": {"query": [start,
-- end], "ref": [start, end] (numbers, or nulls when the reference's times are unknown),
-- "query_share": 0..1, "ref_share": 0..1 or null}), checked against the item's duration, as
-- the item's columns (migration 0019): match_start, match_end, match_ref_start, match_ref_end,
-- match_query_share, match_ref_share. The claimed entry is checked as any known match's is.
CREATE OR REPLACE FUNCTION hd_match_span(p jsonb, p_duration double precision)
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v double precision[];
BEGIN
  IF jsonb_typeof(p -> 'query') IS DISTINCT FROM 'array'
     OR jsonb_typeof(p -> 'query' -> 0) IS DISTINCT FROM 'number'
     OR jsonb_typeof(p -> 'query' -> 1) IS DISTINCT FROM 'number'
     OR jsonb_typeof(p -> 'query_share') IS DISTINCT FROM 'number'
     OR jsonb_typeof(p -> 'ref') IS DISTINCT FROM 'array'
     OR jsonb_typeof(p -> 'ref' -> 0) NOT IN ('number', 'null')
     OR jsonb_typeof(p -> 'ref' -> 1) NOT IN ('number', 'null')
     OR jsonb_typeof(p -> 'ref_share') NOT IN ('number', 'null') THEN
    PERFORM hd_bad_value('match span', left(p::text, 100));
  END IF;
  v := ARRAY[(p -> 'query' ->> 0)::double precision, (p -> 'query' ->> 1)::double precision,
             (p -> 'ref' ->> 0)::double precision, (p -> 'ref' ->> 1)::double precision,
             (p ->> 'query_share')::double precision, (p ->> 'ref_share')::double precision];
  IF NOT (0 <= v[1] AND v[1] <= v[2] AND v[2] <= COALESCE(p_duration + 1, v[2]))
     OR (v[3] IS NULL) <> (v[4] IS NULL) OR NOT COALESCE(0 <= v[3] AND v[3] <= v[4], true)
     OR v[5] NOT BETWEEN 0 AND 1 OR NOT COALESCE(v[6] BETWEEN 0 AND 1, true) THEN
    PERFORM hd_bad_value('match span', left(p::text, 100));
  END IF;
  RETURN v;
END $$;

-- The item's partial-copy columns from hd_match_span's array (NULL: a match of another kind,
-- the columns cleared).
CREATE OR REPLACE FUNCTION hd_set_match_span(p_item bigint, v double precision[])
RETURNS void
LANGUAGE sql AS $$
  UPDATE items SET match_start = v[1], match_end = v[2], match_ref_start = v[3],
         match_ref_end = v[4], match_query_share = v[5], match_ref_share = v[6]
   WHERE id = p_item
$$;

-- Whether a hash-list entry matches an item's stored signals within the thresholds: the
-- entry, or one of the same reference: a confirmed item's, an imported video's frames
-- (imported together: the ids after the first frame's); a block of the sound only itself (a
-- sound has hundreds: the claim names the one that agrees). Not granted to anyone: the write
-- API's own check.
CREATE OR REPLACE FUNCTION hd_entry_matches_item(e hash_list, p_item bigint, p_pdq integer,
                                                 p_phash integer) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT EXISTS (
    SELECT 1 FROM (
        SELECT h.algorithm, h.value FROM hash_list h
         WHERE h.id = e.id
        UNION ALL
        SELECT h.algorithm, h.value FROM hash_list h
         WHERE h.item_id = e.item_id AND h.retracted_at IS NULL
           AND h.disabled_at IS NULL AND h.algorithm <> 'audio'
        UNION ALL
        SELECT h.algorithm, h.value FROM hash_list h
         WHERE e.item_id IS NULL AND e.external_id IS NOT NULL
           AND h.id > e.id AND h.id <= e.id + 100000 AND h.list_name = e.list_name
           AND h.external_id = e.external_id AND h.retracted_at IS NULL
           AND h.disabled_at IS NULL) h
      JOIN signals g ON g.item_id = p_item
     WHERE hd_near(g.algorithm, g.value, h.algorithm, h.value, p_pdq, p_phash))
$$;

-- Record a batch of ingested files, in order. ``p_batch``:
--   {"policy": {"pdq_threshold": int 0..64, "phash_threshold": int 0..24,
--               "flood_per_hour": int >= 0},
--    "items": [{"sha256", "md5", "kind", "mime", "size", "width", "height", "duration",
--               "content_key", "preview_key", "preview_frames", "error",
--               "signals": [[algorithm, value, quality, frame_ts, variant], ...],
--               "sighting": {"source", "external_id", "source_url", "original_name", "reason",
--                            "score", "flagged_at", "deadline", "receipt_id"},
--               "known": {"entry": id, "distance": int, "resolve": bool, "note": text,
--                         "span": a partial copy's spans and shares (hd_match_span) | absent,
--                         "fallback": {"entry": id, "distance": int, "note": text} | absent}
--                        | null,
--               "allow_note": text | null,
--               "cluster": item id | null, "cluster_in_batch": earlier position | null}]}
-- A file whose SHA-256 is already recorded (by an earlier file of the batch too) is a copy: its
-- sighting is added to the item. A sighting that names an intake arrival ("receipt_id", a
-- waiting intake_receipts row of the same content) takes the arrival's facts from its row, not
-- from the client, and marks the arrival done (api_intake.sql). A known match's note is the client's description of the match
-- (app.storage.ingest_recorder.match_note, without the flood guard's words: the server adds
-- them, and the allow list's). A known match's fallback is the nearest resolving match of
-- another list: when the flood guard holds the known entry (before, or switched by this item)
-- the item resolves on the fallback, checked as the known match is (active, matching, its
-- list resolving, not held itself); the item stays on the held entry's count. One row per file, in order: the item, what became of the file,
-- the item's status, its cluster (its own id when it has none), whether it is open on its own
-- (its signals then go in the workstation's queue index), the representative it joined, and
-- the ids of its new signals in the order given.
CREATE OR REPLACE FUNCTION hd_api_record_items(p_batch jsonb)
RETURNS TABLE (n integer, item_id bigint, outcome text, status text, ref bigint,
               open_alone boolean, joined bigint, signal_ids bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  -- a person whose role may ingest; or the schema owner (trusted: set-up, demos)
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
  pol jsonb := p_batch -> 'policy';
  pdq integer; phash integer; flood integer;
  f jsonb; s jsonb; k jsonb; sig jsonb;
  at timestamp; it items; e hash_list; rep items;
  ids bigint[] := '{}'; batch_ids bigint[] := '{}'; matched jsonb := '[]'; m jsonb;
  v_new boolean; v_known boolean; v_resolve boolean; v_note text; v_pdq integer;
  v_joined bigint; v_outcome text; v_rep bigint; v_n bigint; v_guarded boolean;
  v_flagged timestamp; v_deadline timestamp; bad text; rc intake_receipts;
  fe hash_list; fb jsonb; v_held boolean; v_dist integer;
BEGIN
  IF jsonb_typeof(pol) IS DISTINCT FROM 'object'
     OR jsonb_typeof(p_batch -> 'items') IS DISTINCT FROM 'array' THEN
    PERFORM hd_bad_value('ingest batch', left(p_batch::text, 60));
  END IF;
  pdq := (pol ->> 'pdq_threshold')::integer;
  phash := (pol ->> 'phash_threshold')::integer;
  flood := (pol ->> 'flood_per_hour')::integer;
  IF pdq IS NULL OR pdq NOT BETWEEN 0 AND 64 THEN
    PERFORM hd_bad_value('PDQ threshold', pol ->> 'pdq_threshold');
  ELSIF phash IS NULL OR phash NOT BETWEEN 0 AND 24 THEN
    PERFORM hd_bad_value('pHash threshold', pol ->> 'phash_threshold');
  ELSIF flood IS NULL OR flood < 0 THEN
    PERFORM hd_bad_value('flood guard limit', pol ->> 'flood_per_hour');
  END IF;
  FOR f, n IN SELECT a.value, (a.ord - 1)::integer
              FROM jsonb_array_elements(p_batch -> 'items') WITH ORDINALITY a(value, ord) LOOP
    at := hd_now();
    s := f -> 'sighting';
    k := f -> 'known';
    rc := NULL;
    IF s ->> 'receipt_id' IS NOT NULL THEN  -- an intake arrival: the facts are its row's
      SELECT * INTO rc FROM intake_receipts r
       WHERE r.id = (s ->> 'receipt_id')::bigint FOR UPDATE;
      IF NOT FOUND OR rc.state <> 'waiting' OR rc.sha256 IS DISTINCT FROM f ->> 'sha256' THEN
        PERFORM hd_bad_value('intake arrival (not waiting, or another content)',
                             s ->> 'receipt_id');
      END IF;
      s := s || jsonb_build_object('source', rc.source, 'external_id', rc.external_id,
        'source_url', rc.source_url, 'original_name', rc.original_name, 'reason', rc.reason,
        'score', rc.score, 'flagged_at', rc.received_at,
        'deadline', COALESCE(rc.deadline, (s ->> 'deadline')::timestamp));
    END IF;
    -- the values -------------------------------------------------------------------------
    IF COALESCE(f ->> 'sha256', '') !~ '^[0-9a-f]{64}$' THEN
      PERFORM hd_bad_value('SHA-256', f ->> 'sha256');
    ELSIF f ->> 'md5' IS NULL OR f ->> 'md5' !~ '^([0-9a-f]{32})?$' THEN  -- '': not read
      PERFORM hd_bad_value('MD5', f ->> 'md5');
    ELSIF COALESCE(f ->> 'kind', '') NOT IN ('image', 'video', 'animated', 'audio',
                                             'unreadable') THEN
      PERFORM hd_bad_value('media kind', f ->> 'kind');
    ELSIF jsonb_typeof(f -> 'size') IS DISTINCT FROM 'number' OR (f ->> 'size')::numeric < 0
          OR (f ->> 'size')::numeric <> trunc((f ->> 'size')::numeric) THEN
      PERFORM hd_bad_value('size', f ->> 'size');
    ELSIF (f ->> 'width')::numeric < 0 OR (f ->> 'height')::numeric < 0 THEN
      PERFORM hd_bad_value('picture size', concat(f ->> 'width', 'x', f ->> 'height'));
    ELSIF (f ->> 'duration')::float8 < 0 OR (f ->> 'duration')::float8 = 'NaN' THEN
      PERFORM hd_bad_value('duration', f ->> 'duration');
    ELSIF (f ->> 'preview_frames')::integer < 1 THEN
      PERFORM hd_bad_value('number of preview frames', f ->> 'preview_frames');
    ELSIF f ->> 'content_key' !~ '^[0-9a-f]{64}$' THEN
      PERFORM hd_bad_value('content key', f ->> 'content_key');
    ELSIF f ->> 'preview_key' !~ '^[0-9a-f]{64}$' THEN
      PERFORM hd_bad_value('preview key', f ->> 'preview_key');
    ELSIF length(f ->> 'mime') > 64 THEN
      PERFORM hd_bad_value('MIME type', f ->> 'mime');
    ELSIF jsonb_typeof(f -> 'signals') IS DISTINCT FROM 'array' THEN
      PERFORM hd_bad_value('signal list', f ->> 'signals');
    ELSIF jsonb_typeof(s) IS DISTINCT FROM 'object' OR COALESCE(s ->> 'source', '') = ''
          OR length(s ->> 'source') > 128 THEN
      PERFORM hd_bad_value('sighting source', s ->> 'source');
    ELSIF length(s ->> 'external_id') > 256 THEN
      PERFORM hd_bad_value('external id', s ->> 'external_id');
    ELSIF (s ->> 'score')::float8 = 'NaN' THEN
      PERFORM hd_bad_value('score', s ->> 'score');
    END IF;
    -- the report's own times: not from the future (a minute's skew), the deadline after
    v_flagged := (s ->> 'flagged_at')::timestamp;
    v_deadline := (s ->> 'deadline')::timestamp;
    IF v_flagged IS NULL OR v_flagged > at + interval '1 minute' THEN
      PERFORM hd_bad_value('time the report was received', s ->> 'flagged_at');
    ELSIF v_deadline < v_flagged THEN
      PERFORM hd_bad_value('deadline (before the report was received)', s ->> 'deadline');
    END IF;
    SELECT g.value::text INTO bad FROM jsonb_array_elements(f -> 'signals') g
     WHERE jsonb_typeof(g.value) IS DISTINCT FROM 'array' OR jsonb_array_length(g.value) <> 5
        OR hd_signal_hex_len(g.value ->> 0) IS NULL
        OR COALESCE(g.value ->> 1, '') !~ '^[0-9a-f]+$'
        OR length(g.value ->> 1) <> hd_signal_hex_len(g.value ->> 0)
        OR (g.value ->> 2)::integer NOT BETWEEN 0 AND 100
        OR (g.value ->> 3)::float8 < 0 OR (g.value ->> 3)::float8 = 'NaN'
        OR g.value ->> 4 IS NULL OR length(g.value ->> 4) > 16
        OR (g.value ->> 4) !~ '^[a-z0-9:_-]*$'
     LIMIT 1;
    IF FOUND THEN
      PERFORM hd_bad_value('signal', bad);
    END IF;

    -- the item: new, or the copy of one recorded already -----------------------------------
    INSERT INTO items (sha256, md5, kind, mime, size, width, height, duration, content_key,
      preview_key, preview_frames, status, priority, deadline, error, created_at, updated_at)
    VALUES (f ->> 'sha256', f ->> 'md5', f ->> 'kind', f ->> 'mime', (f ->> 'size')::bigint,
      (f ->> 'width')::integer, (f ->> 'height')::integer, (f ->> 'duration')::float8,
      f ->> 'content_key', f ->> 'preview_key', COALESCE((f ->> 'preview_frames')::integer, 1),
      CASE WHEN f ->> 'kind' = 'unreadable' THEN 'unreadable' ELSE 'queued' END, 0, v_deadline,
      f ->> 'error', at, at)
    ON CONFLICT (sha256) DO NOTHING
    RETURNING * INTO it;
    v_new := FOUND;
    v_joined := NULL;
    ids := '{}';
    IF NOT v_new THEN
      SELECT * INTO it FROM items i WHERE i.sha256 = f ->> 'sha256' FOR UPDATE;
      v_outcome := 'copy';
      IF v_deadline IS NOT NULL AND (it.deadline IS NULL OR v_deadline < it.deadline) THEN
        UPDATE items i SET deadline = v_deadline, updated_at = at WHERE i.id = it.id
          RETURNING * INTO it;
      END IF;
    ELSE
      v_outcome := 'new';
      WITH added AS (
        INSERT INTO signals (item_id, algorithm, value, quality, frame_ts, variant)
        SELECT it.id, g.value ->> 0, g.value ->> 1, (g.value ->> 2)::integer,
               (g.value ->> 3)::float8, g.value ->> 4
          FROM jsonb_array_elements(f -> 'signals') WITH ORDINALITY g(value, ord)
         ORDER BY g.ord
        RETURNING id)
      SELECT COALESCE(array_agg(added.id ORDER BY added.id), '{}') INTO ids FROM added;

      -- a known match: the entry must be active and match one of the item's signals ---------
      v_known := false;
      IF jsonb_typeof(k) = 'object' THEN
        SELECT * INTO e FROM hash_list h WHERE h.id = (k ->> 'entry')::bigint;
        IF NOT FOUND THEN
          PERFORM hd_bad_value('hash-list entry', k ->> 'entry');
        END IF;
        -- retracted or disabled since the workstation read the list: no longer a match
        v_known := e.retracted_at IS NULL AND e.disabled_at IS NULL;
      END IF;
      IF v_known THEN
        v_pdq := pdq;
        IF e.list_name <> 'local' THEN
          v_pdq := COALESCE((SELECT l.pdq_threshold FROM hash_lists l
                             WHERE l.name = e.list_name), pdq);
        END IF;
        -- the distance of a sound is a bit error rate in thousandths
        IF (k ->> 'distance')::integer IS NULL OR (k ->> 'distance')::integer < 0
           OR (k ->> 'distance')::integer > (CASE WHEN e.algorithm = 'audio' THEN 1000
                                                 ELSE greatest(v_pdq, phash) END) THEN
          PERFORM hd_bad_value('match distance', k ->> 'distance');
        END IF;
        -- the entry, or one of the same reference: a confirmed item's, an imported video's
        -- frames (imported together: the ids after the first frame's); a block of the sound
        -- only itself (a sound has hundreds: the claim names the one that agrees)
        IF NOT hd_entry_matches_item(e, it.id, v_pdq, phash) THEN
          RAISE EXCEPTION 'hashdesk: hash-list entry #% does not match item % (no hash of it '
            'within the threshold)', e.id, it.sha256 USING ERRCODE = '42501';
        END IF;
        v_guarded := e.flood_guarded_at IS NOT NULL;
        v_note := k ->> 'note';
        IF v_note IS NULL OR length(v_note) > 2000 THEN
          PERFORM hd_bad_value('match note', v_note);
        END IF;
        IF v_guarded THEN
          v_note := v_note || ' (flood guard: queued for verification)';
        END IF;
        v_resolve := COALESCE((k ->> 'resolve')::boolean, false);
        v_held := false;
        v_dist := (k ->> 'distance')::integer;
        UPDATE items i SET known_entry_id = e.id WHERE i.id = it.id;
        IF jsonb_typeof(k -> 'span') = 'object' THEN
          PERFORM hd_set_match_span(it.id, hd_match_span(k -> 'span', it.duration));
        END IF;
        IF v_resolve AND e.list_name <> 'local' THEN
          -- the list's rule as it is now (a lead may have changed it since)
          v_resolve := EXISTS (SELECT 1 FROM hash_lists l WHERE l.name = e.list_name
                               AND l.policy = 'resolve' AND NOT l.allow);
          -- the flood guard: an imported entry matching more than the limit in an hour is
          -- held to "queue" from then on, and the leads are told (the audit record)
          IF v_resolve AND v_guarded THEN
            v_resolve := false;
            v_held := true;
          ELSIF v_resolve AND flood > 0 THEN
            SELECT count(*) INTO v_n FROM items i
             WHERE i.known_entry_id = e.id AND i.created_at >= at - interval '1 hour';
            IF v_n > flood THEN
              v_resolve := false;
              v_held := true;
              SELECT * INTO e FROM hash_list h WHERE h.id = e.id FOR UPDATE;
              IF e.flood_guarded_at IS NULL THEN
                PERFORM hd_append_audit('flood_guard', left('entry:' || e.id, 255),
                  jsonb_build_object('entry', e.id, 'list', e.list_name,
                    'matches_in_hour', v_n, 'limit', flood, 'item', it.id));
                UPDATE hash_list h SET flood_guarded_at = at, changed_at = at
                 WHERE h.id = e.id;
              END IF;
            END IF;
          END IF;
        END IF;
        -- a held entry does not hide another list's resolving match: the fallback resolves
        fb := k -> 'fallback';
        IF v_held AND f ->> 'allow_note' IS NULL AND jsonb_typeof(fb) = 'object' THEN
          SELECT * INTO fe FROM hash_list h WHERE h.id = (fb ->> 'entry')::bigint;
          IF NOT FOUND OR fe.list_name = e.list_name THEN
            PERFORM hd_bad_value('fallback hash-list entry', fb ->> 'entry');
          END IF;
          v_pdq := pdq;
          IF fe.list_name <> 'local' THEN
            v_pdq := COALESCE((SELECT l.pdq_threshold FROM hash_lists l
                               WHERE l.name = fe.list_name), pdq);
          END IF;
          IF (fb ->> 'distance')::integer IS NULL OR (fb ->> 'distance')::integer < 0
             OR (fb ->> 'distance')::integer > (CASE WHEN fe.algorithm = 'audio' THEN 1000
                                                     ELSE greatest(v_pdq, phash) END) THEN
            PERFORM hd_bad_value('fallback match distance', fb ->> 'distance');
          END IF;
          IF fb ->> 'note' IS NULL OR length(fb ->> 'note') > 2000 THEN
            PERFORM hd_bad_value('fallback match note', fb ->> 'note');
          END IF;
          IF fe.retracted_at IS NULL AND fe.disabled_at IS NULL
             AND (fe.list_name = 'local'
                  OR (fe.flood_guarded_at IS NULL
                      AND EXISTS (SELECT 1 FROM hash_lists l WHERE l.name = fe.list_name
                                  AND l.policy = 'resolve' AND NOT l.allow))) THEN
            IF NOT hd_entry_matches_item(fe, it.id, v_pdq, phash) THEN
              RAISE EXCEPTION 'hashdesk: hash-list entry #% does not match item % (no hash of '
                'it within the threshold)', fe.id, it.sha256 USING ERRCODE = '42501';
            END IF;
            IF NOT v_guarded THEN
              v_note := v_note || ' (flood guard: queued for verification)';
            END IF;
            v_note := v_note || '; resolved on ' || (fb ->> 'note');
            v_dist := (fb ->> 'distance')::integer;
            e := fe;
            v_resolve := true;
          END IF;
        END IF;
        IF f ->> 'allow_note' IS NOT NULL THEN
          v_resolve := false;
          v_note := v_note || '; ' || (f ->> 'allow_note') || ': not resolved automatically';
        END IF;
        IF NOT v_resolve THEN
          UPDATE items i SET match_note = 'known match: ' || v_note WHERE i.id = it.id;
        ELSE
          -- resolved at the end of the batch: the decision chain is locked only that long
          UPDATE items i SET match_note = v_note WHERE i.id = it.id;
          matched := matched || jsonb_build_object('item', it.id, 'entry', e.id,
            'category', e.category, 'note', v_note, 'distance', v_dist);
          v_outcome := 'auto_matched';
        END IF;
      ELSIF f ->> 'allow_note' IS NOT NULL THEN
        UPDATE items i SET match_note = f ->> 'allow_note' WHERE i.id = it.id;
      END IF;

      -- a near-duplicate of an open item joins its cluster ---------------------------------
      v_rep := COALESCE((f ->> 'cluster')::bigint,
                        batch_ids[(f ->> 'cluster_in_batch')::integer + 1]);
      IF v_rep IS NULL AND f ->> 'cluster_in_batch' IS NOT NULL THEN
        PERFORM hd_bad_value('cluster (position in the batch)', f ->> 'cluster_in_batch');
      END IF;
      IF v_outcome = 'new' AND NOT v_known AND v_rep IS NOT NULL THEN
        SELECT * INTO rep FROM items i WHERE i.id = v_rep FOR UPDATE;
        IF NOT FOUND OR rep.id = it.id THEN
          PERFORM hd_bad_value('cluster', v_rep::text);
        END IF;
        -- decided since the workstation read the queue: the item stays on its own
        IF rep.status IN ('queued', 'unreadable', 'claimed')
           AND (rep.cluster_id IS NULL OR rep.cluster_id = rep.id)
           AND NOT matched @> jsonb_build_array(jsonb_build_object('item', rep.id)) THEN
          IF NOT EXISTS (
              SELECT 1 FROM signals g JOIN signals r ON r.item_id = rep.id
               WHERE g.item_id = it.id AND g.algorithm <> 'audio'
                 AND hd_near(g.algorithm, g.value, r.algorithm, r.value, pdq, phash)) THEN
            RAISE EXCEPTION 'hashdesk: item % is not a near-duplicate of item % (no hash of '
              'it within the threshold)', it.sha256, rep.id USING ERRCODE = '42501';
          END IF;
          IF rep.cluster_id IS NULL THEN
            UPDATE items i SET cluster_id = rep.id, updated_at = at WHERE i.id = rep.id;
          END IF;
          UPDATE items i SET cluster_id = rep.id WHERE i.id = it.id;
          v_joined := rep.id;
        END IF;
      END IF;
      SELECT * INTO it FROM items i WHERE i.id = it.id;
    END IF;

    -- the sighting: the report's facts, the server's time ----------------------------------
    INSERT INTO sightings (item_id, source, external_id, source_url, original_name, reason,
      score, flagged_at, deadline, created_at, receipt_id)
    VALUES (it.id, s ->> 'source', s ->> 'external_id', s ->> 'source_url',
      s ->> 'original_name', s ->> 'reason', (s ->> 'score')::float8, v_flagged, v_deadline, at,
      rc.id);
    IF rc.id IS NOT NULL THEN
      UPDATE intake_receipts r SET state = 'done', item_id = it.id, finished_at = at
       WHERE r.id = rc.id;
    END IF;
    batch_ids := batch_ids || it.id;
    -- under an active incident: the server finds which itself (api_incidents.sql)
    IF v_new THEN
      UPDATE items i SET incident_id = hd_item_incident(it.id, v_joined, pdq, phash)
       WHERE i.id = it.id AND i.incident_id IS NULL;
    END IF;

    item_id := it.id;
    outcome := v_outcome;
    status := it.status;
    ref := COALESCE(it.cluster_id, it.id);
    open_alone := v_outcome = 'new' AND it.status IN ('queued', 'unreadable', 'claimed')
                  AND (it.cluster_id IS NULL OR it.cluster_id = it.id);
    IF v_outcome = 'auto_matched' THEN
      status := 'auto_matched';
    END IF;
    joined := v_joined;
    signal_ids := ids;
    RETURN NEXT;
  END LOOP;
  -- the auto-matches, in the files' order: each decision, then the status it sets
  FOR m IN SELECT a.value FROM jsonb_array_elements(matched) WITH ORDINALITY a(value, ord)
           ORDER BY a.ord LOOP
    PERFORM hd_append_decision(gen_random_uuid()::text, (m ->> 'item')::bigint, NULL,
      'confirm', m ->> 'category', NULL, m ->> 'note', 'auto_match', NULL, NULL,
      (m ->> 'entry')::bigint, (m ->> 'distance')::integer, NULL);
    UPDATE items i SET status = 'auto_matched', updated_at = hd_now()
     WHERE i.id = (m ->> 'item')::bigint;
  END LOOP;
END $$;
