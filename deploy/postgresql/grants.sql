-- Table privileges of the monitor's roles (see setup.sql). Run as monitor_owner after every
-- migration (a new version may add tables, which start with no privileges for anyone):
--   psql postgresql://monitor_owner:PW@DB/student_monitor -v ON_ERROR_STOP=1 -f deploy/postgresql/grants.sql
-- It first takes every privilege back, then grants exactly these: safe to run again.
-- Every table of the store is named below; tests/deploy/test_postgresql.py fails when a
-- migration adds one that is not, and proves what each role can and cannot do.

\set ON_ERROR_STOP on
BEGIN;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM monitor_writer, monitor_review, monitor_report;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM monitor_writer, monitor_review, monitor_report;

-- monitor_writer: proxy workers and sensors ---------------------------------------------------
-- incidents: add, and fold later events into an incident (count, first/last seen, severity);
-- the review fields (status, assignee, notes) are not theirs to change.
GRANT SELECT, INSERT ON incidents TO monitor_writer;
GRANT UPDATE (count, first_seen, last_seen, severity) ON incidents TO monitor_writer;
GRANT USAGE ON SEQUENCE incidents_id_seq TO monitor_writer;
-- event ids applied once; old ones pruned (DELETE of ids older than the replay horizon)
GRANT SELECT, INSERT, DELETE ON applied_events TO monitor_writer;
-- the pseudonym key's fingerprint: claimed by the first writer, read by every one
GRANT SELECT, INSERT ON store_settings TO monitor_writer;
-- teacher overrides: read and applied by every worker and sensor
GRANT SELECT ON overrides TO monitor_writer;
-- daily activity counts: one upsert per flush (requests = requests + new)
GRANT SELECT, INSERT ON daily_activity TO monitor_writer;
GRANT UPDATE (requests, refused) ON daily_activity TO monitor_writer;
-- a notification request in the incident's own transaction
GRANT SELECT, INSERT ON notify_outbox TO monitor_writer;
GRANT USAGE ON SEQUENCE notify_outbox_id_seq TO monitor_writer;

-- monitor_review: the review app and the administrators' commands ------------------------------
GRANT SELECT ON alembic_version TO monitor_review;  -- checks the schema is current at start
GRANT SELECT, DELETE ON incidents TO monitor_review;  -- DELETE: retention purge
GRANT UPDATE (status, assignee, notes) ON incidents TO monitor_review;
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, sessions TO monitor_review;
GRANT USAGE ON SEQUENCE accounts_id_seq TO monitor_review;
-- the record of access: appended to, purged after its retention, never changed
GRANT SELECT, INSERT, DELETE ON access_log, access_subjects TO monitor_review;
GRANT USAGE ON SEQUENCE access_log_id_seq TO monitor_review;
-- teacher overrides: granted and revoked (LOCK TABLE … EXCLUSIVE needs UPDATE); never deleted
GRANT SELECT, INSERT, UPDATE ON overrides TO monitor_review;
GRANT SELECT ON store_settings, daily_activity TO monitor_review;
-- notifications: planned and delivered
GRANT SELECT, UPDATE ON notify_outbox TO monitor_review;
GRANT SELECT, INSERT, UPDATE ON notify_deliveries TO monitor_review;
GRANT USAGE ON SEQUENCE notify_deliveries_id_seq TO monitor_review;

-- monitor_report: read-only reports (no accounts, sessions or record of access) ----------------
GRANT SELECT ON incidents, daily_activity, overrides TO monitor_report;

COMMIT;
