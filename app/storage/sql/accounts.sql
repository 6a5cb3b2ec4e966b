-- Accounts change only through these (admins; a person's own password), each requiring its
-- audit event in the same transaction; disabling one takes effect at once (NOLOGIN, open
-- sessions ended, and every check reads the active flag). A user name reaches a role name only
-- through hd_person_role (roles.sql), which refuses any name Hashdesk would not make.

CREATE OR REPLACE FUNCTION hd_account_create(p_username text, p_display text, p_role text,
  p_password text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE new_id bigint; r text := hd_person_role(p_username);
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('manage_users'); END IF;
  IF p_role NOT IN ('moderator', 'lead', 'admin') THEN
    RAISE EXCEPTION 'hashdesk: % is not a role', p_role USING ERRCODE = '22023';
  END IF;
  IF NOT hd_event_here('user_added', p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', r, p_password);
  ELSE
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', r, p_password);
  END IF;
  EXECUTE format('GRANT %I TO %I', hd_role_prefix() || p_role, r);
  INSERT INTO users (username, display_name, role, password_hash, active, created_at)
  VALUES (p_username, p_display, p_role, '(PostgreSQL login)', true,
          now() AT TIME ZONE 'utc')
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;

CREATE OR REPLACE FUNCTION hd_account_set_active(p_username text, p_active boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE r text := hd_person_role(p_username);
BEGIN
  IF NOT hd_trusted() THEN PERFORM hd_require('manage_users'); END IF;
  IF NOT hd_event_here(CASE WHEN p_active THEN 'user_enabled' ELSE 'user_disabled' END,
                       p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  UPDATE users SET active = p_active WHERE username = p_username;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no account %', p_username USING ERRCODE = '22023';
  END IF;
  EXECUTE format('ALTER ROLE %I %s', r, CASE WHEN p_active THEN 'LOGIN' ELSE 'NOLOGIN' END);
  IF NOT p_active THEN
    BEGIN
      PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r;
    EXCEPTION WHEN insufficient_privilege THEN
      NULL;  -- the owner lacks pg_signal_backend: every check reads the active flag anyway
    END;
  END IF;
END $$;

CREATE OR REPLACE FUNCTION hd_account_set_password(p_username text, p_password text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
  IF NOT hd_trusted() AND session_user::text <> hd_person_role(p_username) THEN
    PERFORM hd_require('manage_users');
  END IF;
  IF NOT hd_event_here('password_changed', p_username) THEN
    RAISE EXCEPTION 'hashdesk: an account change must be on the record' USING ERRCODE = '42501';
  END IF;
  EXECUTE format('ALTER ROLE %I %s PASSWORD %L', hd_person_role(p_username),
    CASE WHEN (SELECT active FROM users WHERE username = p_username) THEN 'LOGIN'
         ELSE 'NOLOGIN' END, p_password);
END $$;
