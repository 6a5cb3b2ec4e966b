-- Who is acting, and what their role allows. Every check of the team server starts here.
-- Runs as the schema owner, with the settings app.storage.server_security.install binds:
-- hashdesk.role_permissions (app.core.model.roles.ROLE_PERMISSIONS as [role, permission] pairs).

-- The trusted: the owner of these functions (the schema owner, who installs them: inside a
-- SECURITY DEFINER function current_user is its owner) and superusers.
CREATE OR REPLACE FUNCTION hd_trusted() RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT session_user = current_user
      OR COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
$$;

-- Which role may do what: the pairs of ROLE_PERMISSIONS, as a constant list.
DO $$
DECLARE pairs text;
BEGIN
  SELECT string_agg(format('(%L, %L)', pair->>0, pair->>1), ', '
                    ORDER BY pair->>0, pair->>1)
    INTO pairs
    FROM jsonb_array_elements(current_setting('hashdesk.role_permissions')::jsonb) pair;
  EXECUTE format('CREATE OR REPLACE FUNCTION hd_allowed(p_role text, p_perm text) '
                 'RETURNS boolean LANGUAGE sql IMMUTABLE AS %L',
                 'SELECT (p_role, p_perm) IN (VALUES ' || pairs || ')');
END $$;

CREATE OR REPLACE FUNCTION hd_me_id() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT id FROM users WHERE hd_role_prefix() || 'u_' || username = session_user AND active
$$;

CREATE OR REPLACE FUNCTION hd_account() RETURNS users LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE u users;
BEGIN
  SELECT * INTO u FROM users WHERE hd_role_prefix() || 'u_' || username = session_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: % is not an account of this Hashdesk database', session_user
      USING ERRCODE = '42501';
  END IF;
  IF NOT u.active THEN
    RAISE EXCEPTION 'hashdesk: the account of % is disabled', u.username USING ERRCODE = '42501';
  END IF;
  RETURN u;
END $$;

CREATE OR REPLACE FUNCTION hd_require(p_perm text) RETURNS users LANGUAGE plpgsql
STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE u users;
BEGIN
  u := hd_account();
  IF NOT hd_allowed(u.role, p_perm) THEN
    RAISE EXCEPTION 'hashdesk: % (%) may not %', u.username, u.role, replace(p_perm, '_', ' ')
      USING ERRCODE = '42501';
  END IF;
  RETURN u;
END $$;

CREATE OR REPLACE FUNCTION hd_in_this_transaction(p_xmin xid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_xmin::text::bigint = txid_current() % 4294967296
$$;

CREATE OR REPLACE FUNCTION hd_event_here(p_kind text, p_subject text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT AS $$
  SELECT EXISTS (SELECT 1 FROM audit_events e WHERE e.kind = p_kind
                 AND e.subject IS NOT DISTINCT FROM p_subject
                 AND hd_in_this_transaction(e.xmin))
$$;
