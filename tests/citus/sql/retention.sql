-- Retention policies on distributed tables (batches by time window, per
-- tenant, on every shard at once) and the job runner on the coordinator.
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
CREATE TABLE logs (tenant_id uuid NOT NULL, id bigint NOT NULL, created_at timestamptz NOT NULL, line text,
                   PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('logs', 'tenant_id', colocate_with => 'orders');
CREATE INDEX ON logs (created_at);
INSERT INTO logs SELECT t, g, now() - g * interval '1 day', 'line ' || g
  FROM unnest(ARRAY[:'acme', :'globex']::uuid[]) t, generate_series(1, 60) g;
SELECT tenancy.enable_isolation('logs');
CREATE TABLE logs_archive (LIKE logs);
SELECT create_distributed_table('logs_archive', 'tenant_id', colocate_with => 'logs');
SELECT tenancy.set_retention('logs', '30 days', 'archive', archive_table => 'logs_archive', batch_size => 7);
SELECT tbl, action, rows_due FROM tenancy.retention_preview() WHERE tbl = 'logs'::regclass;
CALL tenancy.run_retention();
SELECT (SELECT count(*) FROM logs) AS kept, (SELECT count(*) FROM logs_archive) AS archived,
       (SELECT max(now() - created_at) < interval '30 days' FROM logs) AS only_recent_kept;
SELECT job, status, rows FROM tenancy.job_runs WHERE job = 'retention:logs';
-- A delete policy, run by run_jobs: the scheduler's one call.
SELECT tenancy.clear_retention('logs');
SELECT tenancy.set_retention('logs', '10 days', batch_size => 5);
CALL tenancy.run_jobs();
SELECT count(*) AS kept_after_jobs, max(now() - created_at) < interval '10 days' AS only_recent FROM logs;
SELECT status, rows FROM tenancy.job_runs WHERE job = 'retention:logs' ORDER BY started_at DESC LIMIT 1;
-- The background scheduler on the coordinator makes the same call there
-- (set for the coordinator only: ALTER SYSTEM does not reach the workers).
SELECT tenancy.clear_retention('logs');
SELECT tenancy.set_retention('logs', '5 days', batch_size => 5);
SELECT set_config('citus_test.runs_before', coalesce(max(id), 0)::text, false) IS NOT NULL AS noted FROM tenancy.job_runs;
ALTER SYSTEM SET tenancy.scheduler_interval = '1s';
ALTER SYSTEM SET tenancy.scheduler_database = 'tenancy_citus';
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN EXISTS (SELECT FROM tenancy.job_runs
                           WHERE id > current_setting('citus_test.runs_before')::bigint
                             AND job = 'retention:logs' AND status <> 'running');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
ALTER SYSTEM RESET tenancy.scheduler_database;
ALTER SYSTEM RESET tenancy.scheduler_interval;
SELECT pg_reload_conf();
SELECT status, rows > 0 AS deleted FROM tenancy.job_runs
 WHERE id > current_setting('citus_test.runs_before')::bigint AND job = 'retention:logs'
 ORDER BY id LIMIT 1;
SELECT count(*) > 0 AS kept_some, max(now() - created_at) < interval '5 days' AS only_recent FROM logs;
