-- Accounts change only through these (admins; a person's own password). Each function checks
-- who may do it and the values itself, makes the change on the server (the person's login role,
-- the users row) and appends its audit event, all in the caller's transaction: no one can make
-- the change without the event, nor the event without the change. A user name reaches a role
-- name only through hd_person_role (roles.sql), which refuses any name Hashdesk would not make
-- (never truncated). Disabling takes effect at once: NOLOGIN, the person's open sessions ended
-- (the owner needs pg_signal_backend: server_security.install checks it), and every check reads
-- the active flag.

-- The functions of an older program (the client wrote the event first; these checked it).
DROP FUNCTION IF EXISTS hd_account_create(text, text, text, text);
DROP FUNCTION IF EXISTS hd_account_set_active(text, boolean);
DROP FUNCTION IF EXISTS hd_account_set_password(text, text);

-- Who may change accounts: the trusted (the owner at set-up) or an admin (manage_users).
-- Returns the acting account (NULL for the trusted). Internal.
CREATE OR REPLACE FUNCTION hd_account_manager() RETURNS users LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF hd_trusted() THEN RETURN NULL; END IF;
  RETURN hd_require('manage_users');
END $$;

-- A password the server will set: at least 8 characters (app.core.model.security). Internal.
CREATE OR REPLACE FUNCTION hd_check_password(p_password text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_password IS NULL OR length(p_password) < 8 THEN
    RAISE EXCEPTION 'hashdesk: a password needs at least 8 characters' USING ERRCODE = '22023';
  END IF;
  IF length(p_password) > 1024 THEN
    RAISE EXCEPTION 'hashdesk: a password may have at most 1024 characters'
      USING ERRCODE = '22023';
  END IF;
END $$;

-- A new account: its login role (a member of its role's group, with the people's timeouts)
-- and its row; the event "user_added". Returns the new account's id.
CREATE OR REPLACE FUNCTION hd_api_account_create(p_username text, p_display text, p_role text,
  p_password text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE new_id bigint; r text; display text;
BEGIN
  PERFORM hd_account_manager();
  r := hd_person_role(p_username);  -- refuses a name Hashdesk would not make (22023)
  IF p_role IS NULL OR p_role NOT IN ('moderator', 'lead', 'admin', 'worker') THEN
    RAISE EXCEPTION 'hashdesk: role % is not one of: moderator, lead, admin, worker',
      quote_nullable(p_role) USING ERRCODE = '22023';
  END IF;
  display := COALESCE(NULLIF(btrim(p_display), ''), p_username);
  IF length(display) > 128 THEN
    RAISE EXCEPTION 'hashdesk: a display name may have at most 128 characters (% has %)',
      quote_literal(left(display, 20) || '...'), length(display) USING ERRCODE = '22023';
  END IF;
  PERFORM hd_check_password(p_password);
  IF EXISTS (SELECT 1 FROM users WHERE username = p_username) THEN
    RAISE EXCEPTION 'hashdesk: user % already exists', quote_literal(p_username)
      USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', r, p_password);
  ELSE
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', r, p_password);
  END IF;
  EXECUTE format('GRANT %I TO %I', hd_role_prefix() || p_role, r);
  PERFORM hd_person_limits(r);
  INSERT INTO users (username, display_name, role, password_hash, active, created_at)
  VALUES (p_username, display, p_role, '(PostgreSQL login)', true, hd_now())
  RETURNING id INTO new_id;
  PERFORM hd_append_audit('user_added', p_username,
                          jsonb_build_object('role', p_role, 'display_name', display));
  RETURN new_id;
END $$;

-- Enable or disable an account (internal: hd_api_account_enable / _disable). Never one's own
-- account off, never the last active admin (the admins' rows are locked first, so two admins
-- disabling each other at once cannot both pass). Disabling ends the person's open sessions
-- and fails loudly if it cannot.
CREATE OR REPLACE FUNCTION hd_account_activate(p_username text, p_active boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE me users := hd_account_manager(); r text := hd_person_role(p_username); u users;
  pid_ integer;
BEGIN
  IF NOT p_active THEN
    PERFORM 1 FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE;
  END IF;
  SELECT * INTO u FROM users WHERE username = p_username FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no user %', quote_literal(p_username)
      USING ERRCODE = '22023';
  END IF;
  IF NOT p_active THEN
    IF me.id = u.id THEN
      RAISE EXCEPTION 'hashdesk: you cannot disable your own account' USING ERRCODE = '22023';
    END IF;
    IF u.role = 'admin' AND u.active
       AND (SELECT count(*) FROM users WHERE role = 'admin' AND active) <= 1 THEN
      RAISE EXCEPTION 'hashdesk: % is the last active admin: add another first', u.username
        USING ERRCODE = '22023';
    END IF;
    IF NOT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') THEN
      RAISE EXCEPTION 'hashdesk: the schema owner % cannot end open sessions: a superuser '
        'runs GRANT pg_signal_backend TO %', current_user, quote_ident(current_user::text)
        USING ERRCODE = '42501';
    END IF;
  END IF;
  UPDATE users SET active = p_active WHERE id = u.id;
  EXECUTE format('ALTER ROLE %I %s', r, CASE WHEN p_active THEN 'LOGIN' ELSE 'NOLOGIN' END);
  IF NOT p_active THEN
    -- Each session of the person ends now (waiting up to 5 s for each to be gone).
    FOR pid_ IN SELECT a.pid FROM pg_stat_activity a
                WHERE a.usename = r AND a.pid <> pg_backend_pid() LOOP
      IF NOT pg_terminate_backend(pid_, 5000) THEN
        RAISE EXCEPTION 'hashdesk: the session % of % did not end', pid_, u.username
          USING ERRCODE = '55000';
      END IF;
    END LOOP;
  END IF;
  PERFORM hd_append_audit(CASE WHEN p_active THEN 'user_enabled' ELSE 'user_disabled' END,
                          u.username, NULL);
END $$;

CREATE OR REPLACE FUNCTION hd_api_account_disable(p_username text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  PERFORM hd_account_activate(p_username, false);
END $$;

CREATE OR REPLACE FUNCTION hd_api_account_enable(p_username text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  PERFORM hd_account_activate(p_username, true);
END $$;

-- A new password for the person's login (SCRAM, kept by the server): an admin's for anyone, a
-- person's for their own account. The event "password_changed".
CREATE OR REPLACE FUNCTION hd_api_account_set_password(p_username text, p_password text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
DECLARE r text := hd_person_role(p_username); u users;
BEGIN
  IF NOT hd_trusted() AND session_user::text = r THEN
    PERFORM hd_account();  -- one's own password: an active account
  ELSE
    PERFORM hd_account_manager();
  END IF;
  PERFORM hd_check_password(p_password);
  SELECT * INTO u FROM users WHERE username = p_username FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hashdesk: there is no user %', quote_literal(p_username)
      USING ERRCODE = '22023';
  END IF;
  EXECUTE format('ALTER ROLE %I %s PASSWORD %L', r,
                 CASE WHEN u.active THEN 'LOGIN' ELSE 'NOLOGIN' END, p_password);
  UPDATE users SET password_hash = '(PostgreSQL login)' WHERE id = u.id;
  PERFORM hd_append_audit('password_changed', u.username, NULL);
END $$;

-- Accounts from before the server enforced the roles kept an argon2id hash of their Hashdesk
-- password in users.password_hash. The server's logins are the passwords now: no hash stays
-- (and people may not read the column at all: grants.sql).
UPDATE users SET password_hash = '(PostgreSQL login)'
 WHERE password_hash IS DISTINCT FROM '(PostgreSQL login)';
