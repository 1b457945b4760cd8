-- PostgreSQL for the student activity monitor: the database and its four roles.
--
-- Run once, as a superuser, on the database server:
--   sudo -u postgres psql -v ON_ERROR_STOP=1 -f deploy/postgresql/setup.sql
-- then give each role a password (or use certificate/peer authentication in pg_hba.conf):
--   sudo -u postgres psql -c '\password monitor_owner'      (and monitor_writer, …)
-- then migrate as the owner and grant (deploy/README.md, step "store"):
--   monitor users list --db postgresql+psycopg://monitor_owner:PW@DB/student_monitor
--   (any `monitor users` command migrates the store to the newest schema first)
--   psql postgresql://monitor_owner:PW@DB/student_monitor -v ON_ERROR_STOP=1 -f deploy/postgresql/grants.sql
-- Safe to run again: what exists is left as it is.
--
-- The roles:
--   monitor_owner   owns the tables; runs the migrations (`monitor users list --db …`) and
--                   grants.sql. Used by no running service.
--   monitor_writer  the proxy workers and sensors (district.yaml's store: on the gateways):
--                   add incidents, event ids, daily counts and notification requests; read
--                   teacher overrides. No DELETE of incidents, no DDL, no TRUNCATE, no access
--                   to accounts, sessions or the record of access.
--   monitor_review  the review app (and monitor users, override, notify, incidents purge):
--                   reads incidents and sets their review fields, accounts and sessions, the
--                   record of access (append and retention purge only, never changed), teacher
--                   overrides, notifications.
--   monitor_report  read-only reports and auditors' tools: incidents, daily counts, overrides.
-- Which table each may touch, and how, is in grants.sql (tested: tests/deploy/test_postgresql.py).

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', r)
FROM unnest(ARRAY['monitor_owner', 'monitor_writer', 'monitor_review', 'monitor_report']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
\gexec

SELECT 'CREATE DATABASE student_monitor OWNER monitor_owner ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'student_monitor')
\gexec

-- Only the monitor's roles may connect, and none may make temporary tables.
REVOKE ALL ON DATABASE student_monitor FROM PUBLIC;
GRANT CONNECT ON DATABASE student_monitor
    TO monitor_owner, monitor_writer, monitor_review, monitor_report;
GRANT CREATE, TEMPORARY ON DATABASE student_monitor TO monitor_owner;

\connect student_monitor

-- The tables live in schema public, where only the owner may create anything (PostgreSQL 15
-- already revokes CREATE from PUBLIC there; older versions do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO monitor_owner;
GRANT USAGE ON SCHEMA public TO monitor_writer, monitor_review, monitor_report;

-- A hung client must not hold locks the writers wait for.
ALTER ROLE monitor_writer IN DATABASE student_monitor SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE monitor_review IN DATABASE student_monitor SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE monitor_report IN DATABASE student_monitor SET default_transaction_read_only = on;
