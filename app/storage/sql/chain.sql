-- The heads of the two chains, for people who may not read every entry (blind second review).

CREATE OR REPLACE FUNCTION hd_chain_head(p_chain text) RETURNS text LANGUAGE plpgsql
STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
  IF p_chain = 'decisions' THEN
    RETURN (SELECT entry_hash FROM decisions ORDER BY id DESC LIMIT 1);
  END IF;
  RETURN (SELECT entry_hash FROM audit_events ORDER BY id DESC LIMIT 1);
END $$;

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
