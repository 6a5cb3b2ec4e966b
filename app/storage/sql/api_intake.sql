-- The intake's write API (app.storage.intake): arrivals and their jobs, a job's runs and
-- failures, the workers that run them. Each call needs the `ingest` permission (an admin, or
-- an ingest worker's account: role `worker`); ids, times and the actor are the server's. An
-- arrival is marked done only by hd_api_record_items (api_ingest.sql), in the transaction that
-- records its sighting.

-- A new arrival: its row, and its job on the queue (procrastinate's own defer function) in the
-- same transaction. The jobs of one content carry its lock (one after the other): the first
-- records every arrival of the content then waiting, the others find theirs recorded.
-- p_meta: {"source", "external_id", "source_url", "reason", "reporter", "score",
-- "received_at", "deadline"} (app.core.ingest.sidecar.IntakeMeta). p_key: the arrival's own
-- key (a drop folder's claim): an arrival given again under its key is the one already
-- recorded (its row returned, nothing added). One row: the arrival's id,
-- whether its content was received before (a duplicate), the job's id (NULL: none made).
CREATE OR REPLACE FUNCTION hd_api_intake_receive(p_sha256 text, p_size bigint, p_via text,
  p_name text, p_meta jsonb, p_intake_source bigint, p_key text)
RETURNS TABLE (receipt_id bigint, duplicate boolean, job_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
  at timestamp := hd_now();
  v_received timestamp; v_deadline timestamp; v_waiting boolean; v_id bigint; v_job bigint;
BEGIN
  IF COALESCE(p_sha256, '') !~ '^[0-9a-f]{64}$' THEN
    PERFORM hd_bad_value('SHA-256', p_sha256);
  ELSIF p_size IS NULL OR p_size < 0 THEN
    PERFORM hd_bad_value('size', p_size::text);
  ELSIF p_via IS NULL OR p_via NOT IN ('cli', 'drop', 'http') THEN
    PERFORM hd_bad_value('way in', p_via);
  ELSIF jsonb_typeof(p_meta) IS DISTINCT FROM 'object' OR COALESCE(p_meta ->> 'source', '') = ''
        OR length(p_meta ->> 'source') > 128 THEN
    PERFORM hd_bad_value('source', p_meta ->> 'source');
  ELSIF length(p_meta ->> 'external_id') > 256 THEN
    PERFORM hd_bad_value('external id', p_meta ->> 'external_id');
  ELSIF length(p_meta ->> 'reporter') > 256 THEN
    PERFORM hd_bad_value('reporter', p_meta ->> 'reporter');
  ELSIF (p_meta ->> 'score')::float8 = 'NaN' THEN
    PERFORM hd_bad_value('score', p_meta ->> 'score');
  END IF;
  v_received := (p_meta ->> 'received_at')::timestamp;
  v_deadline := (p_meta ->> 'deadline')::timestamp;
  IF v_received IS NULL OR v_received > at + interval '1 minute' THEN
    PERFORM hd_bad_value('time received', p_meta ->> 'received_at');
  ELSIF v_deadline < v_received THEN
    PERFORM hd_bad_value('deadline', p_meta ->> 'deadline');
  END IF;
  IF length(p_key) > 128 THEN
    PERFORM hd_bad_value('arrival key', p_key);
  END IF;
  IF p_key IS NOT NULL THEN
    SELECT r.id INTO v_id FROM intake_receipts r WHERE r.intake_key = p_key;
    IF FOUND THEN
      receipt_id := v_id;
      duplicate := true;
      job_id := NULL;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;
  v_waiting := EXISTS (SELECT 1 FROM intake_receipts r
                        WHERE r.sha256 = p_sha256 AND r.state = 'waiting');
  duplicate := v_waiting OR EXISTS (SELECT 1 FROM items i WHERE i.sha256 = p_sha256)
               OR EXISTS (SELECT 1 FROM intake_receipts r WHERE r.sha256 = p_sha256);
  INSERT INTO intake_receipts (sha256, size, via, original_name, source, external_id,
    source_url, reason, reporter, score, received_at, deadline, intake_source_id,
    received_by_id, created_at, state, runs, failures, intake_key)
  VALUES (p_sha256, p_size, p_via, left(p_name, 1000), p_meta ->> 'source',
    p_meta ->> 'external_id', p_meta ->> 'source_url', p_meta ->> 'reason',
    p_meta ->> 'reporter', (p_meta ->> 'score')::float8, v_received, v_deadline,
    p_intake_source, me.id, at, 'waiting', 0, 0, p_key)
  RETURNING id INTO v_id;
  SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW('hashdesk_intake',
    'hashdesk.intake.record', 0, 'sha256:' || p_sha256, NULL,
    jsonb_build_object('receipt_id', v_id), NULL)::procrastinate_job_to_defer_v1]))
    INTO v_job;
  receipt_id := v_id;
  job_id := v_job;
  RETURN NEXT;
END $$;

-- A job starts (or starts again) on a worker: the arrival's runs counted. One row: its runs
-- and failures so far (NULL: the arrival is not waiting any more).
CREATE OR REPLACE FUNCTION hd_api_intake_start(p_receipt bigint, p_worker bigint)
RETURNS TABLE (runs integer, failures integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
  w intake_workers;
BEGIN
  SELECT * INTO w FROM intake_workers iw WHERE iw.id = p_worker;
  UPDATE intake_receipts r SET runs = r.runs + 1,
         worker = CASE WHEN w.id IS NULL THEN NULL ELSE left(w.name || '#' || w.id, 128) END
   WHERE r.id = p_receipt AND r.state = 'waiting'
  RETURNING r.runs, r.failures INTO runs, failures;
  IF w.id IS NOT NULL THEN
    UPDATE intake_workers iw SET last_job_at = hd_now() WHERE iw.id = w.id;
  END IF;
  RETURN NEXT;
END $$;

-- A job failed (it will run again, or its worker records the file as unreadable): the count of
-- failures and the reason.
CREATE OR REPLACE FUNCTION hd_api_intake_fail(p_receipt bigint, p_reason text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
  n integer;
BEGIN
  UPDATE intake_receipts r SET failures = r.failures + 1, error = left(p_reason, 2000)
   WHERE r.id = p_receipt AND r.state = 'waiting'
  RETURNING r.failures INTO n;
  RETURN COALESCE(n, 0);
END $$;

-- An arrival the record does not take (a value refused, as ingest refuses it): kept with the
-- reason, never an item.
CREATE OR REPLACE FUNCTION hd_api_intake_refuse(p_receipt bigint, p_reason text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
BEGIN
  UPDATE intake_receipts r SET state = 'refused', error = left(p_reason, 2000),
         finished_at = hd_now()
   WHERE r.id = p_receipt AND r.state = 'waiting';
END $$;

-- A queue worker says who it is: its heartbeat row (procrastinate_workers, which it keeps
-- beating) gets a name and an account.
CREATE OR REPLACE FUNCTION hd_api_intake_worker(p_worker bigint, p_name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  me users := CASE WHEN hd_trusted() THEN NULL ELSE hd_require('ingest') END;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM procrastinate_workers w WHERE w.id = p_worker) THEN
    PERFORM hd_bad_value('worker', p_worker::text);
  ELSIF COALESCE(p_name, '') = '' OR length(p_name) > 128 THEN
    PERFORM hd_bad_value('worker name', p_name);
  END IF;
  INSERT INTO intake_workers (id, name, user_id, started_at)
  VALUES (p_worker, p_name, me.id, hd_now())
  ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, user_id = EXCLUDED.user_id;
END $$;
