-- Exposure records and comfort defaults: written only through these, in the caller's own name.
-- An exposure record is one unblurred moment (app.core.model.exposure): the server stamps when
-- it was recorded, keeps the moment's own start within the last day, and refuses a duration
-- outside 0 to 86400 seconds or a share of the picture outside 0 to 1 (also CHECK constraints on
-- the table, below). Comfort defaults: a person's own row only.

-- The table holds what the function refuses. Added NOT VALID (new rows are checked at once),
-- then validated unless older rows break it (those are named in a warning and stay).
DO $$
DECLARE c record; bad bigint;
BEGIN
  FOR c IN SELECT * FROM (VALUES
      ('ck_exposure_events_seconds', 'seconds >= 0 AND seconds <= 86400'),
      ('ck_exposure_events_area', 'area >= 0 AND area <= 1')) AS t(name, expr) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'exposure_events'::regclass AND conname = c.name) THEN
      EXECUTE format('ALTER TABLE exposure_events ADD CONSTRAINT %I CHECK (%s) NOT VALID',
                     c.name, c.expr);
    END IF;
    IF NOT (SELECT convalidated FROM pg_constraint
            WHERE conrelid = 'exposure_events'::regclass AND conname = c.name) THEN
      EXECUTE format('SELECT count(*) FROM exposure_events WHERE NOT (%s)', c.expr) INTO bad;
      IF bad = 0 THEN
        EXECUTE format('ALTER TABLE exposure_events VALIDATE CONSTRAINT %I', c.name);
      ELSE
        RAISE WARNING 'hashdesk: % exposure record(s) break % (%): kept; new ones are refused',
          bad, c.name, c.expr;
      END IF;
    END IF;
  END LOOP;
END $$;

-- Record one unblurred moment in the caller's own name; false if its UUID is already recorded
-- (a journal's replay).
CREATE OR REPLACE FUNCTION hd_api_record_exposure(p_uuid text, p_item_id bigint, p_kind text,
  p_started_at timestamp, p_seconds double precision, p_area double precision)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users := hd_require('review'); at timestamp := hd_now(); prev text; entry text;
  started timestamp;
BEGIN
  IF p_uuid IS NULL OR p_uuid !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  THEN
    RAISE EXCEPTION 'hashdesk: % is not an exposure record UUID', quote_nullable(p_uuid)
      USING ERRCODE = '22023';
  END IF;
  IF p_seconds IS NULL OR NOT (p_seconds >= 0 AND p_seconds <= 86400) THEN
    RAISE EXCEPTION 'hashdesk: % seconds of exposure is not within 0 and 86400',
      quote_nullable(p_seconds) USING ERRCODE = '22023';
  END IF;
  IF p_area IS NULL OR NOT (p_area >= 0 AND p_area <= 1) THEN
    RAISE EXCEPTION 'hashdesk: % of the picture is not a share within 0 and 1',
      quote_nullable(p_area) USING ERRCODE = '22023';
  END IF;
  IF p_item_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM items WHERE id = p_item_id) THEN
    RAISE EXCEPTION 'hashdesk: there is no item %', p_item_id USING ERRCODE = '22023';
  END IF;
  IF p_kind IS NULL OR p_kind NOT IN ('reveal', 'region', 'frame') THEN
    RAISE EXCEPTION 'hashdesk: % is not a kind of exposure', quote_nullable(p_kind)
      USING ERRCODE = '22023';
  END IF;
  -- On the exposure chain (chain.sql), under its row lock: a replay changes nothing.
  SELECT COALESCE(head, repeat('0', 64)), greatest(at, head_at) INTO prev, at
  FROM hd_chain_lock WHERE chain = 'exposure' FOR UPDATE;
  IF EXISTS (SELECT 1 FROM exposure_events WHERE uuid = p_uuid) THEN
    RETURN false;
  END IF;
  -- when it happened, as the workstation says, but never ahead of the server nor older than a
  -- day
  started := least(greatest(COALESCE(p_started_at, at), at - interval '1 day'), at);
  entry := hd_chain_hash(prev, jsonb_build_object('uuid', p_uuid, 'user_id', me.id,
    'item_id', p_item_id, 'kind', p_kind, 'started_at', hd_iso(started),
    'ms', floor(p_seconds * 1000)::bigint, 'area_ppm', floor(p_area * 1000000)::bigint,
    'recorded_at', hd_iso(at)));
  INSERT INTO exposure_events (uuid, user_id, item_id, kind, started_at, seconds, area,
    recorded_at, prev_hash, entry_hash)
  VALUES (p_uuid, me.id, p_item_id, p_kind, started, p_seconds, p_area, at, prev, entry);
  UPDATE hd_chain_lock SET head = entry, head_at = at WHERE chain = 'exposure';
  RETURN true;
END $$;

-- Keep the caller's own comfort defaults (greyscale, blur level: an index into
-- app.core.review.preview.BLUR_LEVELS, 0 to 2).
CREATE OR REPLACE FUNCTION hd_api_keep_comfort(p_greyscale boolean, p_blur_level integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users := hd_require('review');
BEGIN
  IF p_greyscale IS NULL THEN
    RAISE EXCEPTION 'hashdesk: greyscale is true or false, not NULL' USING ERRCODE = '22023';
  END IF;
  IF p_blur_level IS NULL OR p_blur_level NOT BETWEEN 0 AND 2 THEN
    RAISE EXCEPTION 'hashdesk: blur level % is not 0 to 2', quote_nullable(p_blur_level)
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO comfort_preferences (user_id, greyscale, blur_level, updated_at)
  VALUES (me.id, p_greyscale, p_blur_level, hd_now())
  ON CONFLICT (user_id) DO UPDATE
    SET greyscale = excluded.greyscale, blur_level = excluded.blur_level,
        updated_at = excluded.updated_at;
END $$;
