-- The roles of one Hashdesk database on the PostgreSQL server (app.storage.server_roles names
-- them). Runs as the schema owner, with the settings app.storage.server_security.install
-- binds: hashdesk.role_prefix. Names are quoted here, by the server (%I), never in Python.

-- The prefix of every role of this database: hd<8 hex>_ (app.storage.server_roles.role_prefix).
DO $$
BEGIN
  EXECUTE format('CREATE OR REPLACE FUNCTION hd_role_prefix() RETURNS text '
                 'LANGUAGE sql IMMUTABLE AS %L',
                 format('SELECT %L::text', current_setting('hashdesk.role_prefix')));
END $$;

-- What a user name may be, since it becomes part of a role name: lower-case letters, digits,
-- '.', '_', '-'; 1 to 50 bytes (app.storage.server_roles.username_problem; the CHECK on
-- users.username, migration 0011, is the same expression).
CREATE OR REPLACE FUNCTION hd_valid_username(p_username text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT ltrim(p_username, 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = ''
     AND length(p_username) BETWEEN 1 AND 50
$$;

-- A person's login role, for a valid user name only (anything else is refused, so no name
-- can reach a role that is not a Hashdesk login, not even by PostgreSQL's 63-byte truncation).
CREATE OR REPLACE FUNCTION hd_person_role(p_username text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF p_username IS NULL OR NOT hd_valid_username(p_username) THEN
    RAISE EXCEPTION 'hashdesk: % is not a valid user name (lower-case letters a-z, digits, '
      '''.'', ''_'' or ''-''; 1 to 50 bytes)', quote_literal(p_username)
      USING ERRCODE = '22023';
  END IF;
  RETURN hd_role_prefix() || 'u_' || p_username;
END $$;

-- What every person's login carries: no lock waited on, no statement run and no transaction left
-- idle for long (a person cannot stall the others by holding locks in an idle session). Set on
-- the role (ALTER ROLE ... SET): each new session of the person starts with them. Internal.
CREATE OR REPLACE FUNCTION hd_person_limits(p_role text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER ROLE %I SET lock_timeout = %L', p_role, '5s');
  EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', p_role, '60s');
  EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', p_role, '60s');
END $$;

-- The group roles, one per Hashdesk role: lead includes moderator, admin includes lead; worker
-- (an ingest worker's login) is apart: it includes none and none includes it.
DO $$
DECLARE
  p text := current_setting('hashdesk.role_prefix');
  g text;
BEGIN
  FOREACH g IN ARRAY ARRAY['moderator', 'lead', 'admin', 'worker'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p || g) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', p || g);
    END IF;
  END LOOP;
  EXECUTE format('GRANT %I TO %I', p || 'moderator', p || 'lead');
  EXECUTE format('GRANT %I TO %I', p || 'lead', p || 'admin');
END $$;

-- Accounts made before the server enforced the roles get a login role each, without a
-- password (so no login) until `hashdesk users passwd NAME --as ADMIN` sets one. A row whose
-- name or role is not one Hashdesk makes (written around the application) gets nothing.
DO $$
DECLARE
  p text := current_setting('hashdesk.role_prefix');
  u record;
BEGIN
  FOR u IN SELECT username, role FROM users ORDER BY id LOOP
    IF NOT hd_valid_username(u.username)
       OR u.role NOT IN ('moderator', 'lead', 'admin', 'worker') THEN
      RAISE WARNING 'hashdesk: account % (role %) gets no login role: not a valid user name '
        'or role', quote_literal(u.username), quote_literal(u.role);
      CONTINUE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = hd_person_role(u.username)) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', hd_person_role(u.username));
    END IF;
    EXECUTE format('GRANT %I TO %I', p || u.role, hd_person_role(u.username));
    PERFORM hd_person_limits(hd_person_role(u.username));
  END LOOP;
END $$;
