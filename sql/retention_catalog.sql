-- Retention and jobs: row retention policies and the record of every job run.

CREATE TABLE tenancy.retention_policies (
    tbl                regclass PRIMARY KEY,
    keep               interval NOT NULL CHECK (keep > interval '0'),
    action             text NOT NULL CHECK (action IN ('delete', 'anonymize', 'archive')),
    time_column        name NOT NULL,
    batch_size         integer NOT NULL CHECK (batch_size > 0),
    archive_table      regclass,
    anonymized_through timestamptz,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((action = 'archive') = (archive_table IS NOT NULL))
);
COMMENT ON TABLE tenancy.retention_policies IS
    'Row retention per table (tenancy.set_retention): rows whose time_column is older than keep are deleted, anonymized or archived by run_retention.';
COMMENT ON COLUMN tenancy.retention_policies.tbl IS 'The table.';
COMMENT ON COLUMN tenancy.retention_policies.keep IS 'How long rows are kept: rows older than now() minus keep are due.';
COMMENT ON COLUMN tenancy.retention_policies.action IS 'delete, anonymize (rewrite with the table''s masking rules) or archive (move to archive_table).';
COMMENT ON COLUMN tenancy.retention_policies.time_column IS 'The timestamptz, timestamp or date column that dates a row.';
COMMENT ON COLUMN tenancy.retention_policies.batch_size IS 'Rows per committed batch.';
COMMENT ON COLUMN tenancy.retention_policies.archive_table IS 'Where archive moves rows (same columns and types).';
COMMENT ON COLUMN tenancy.retention_policies.anonymized_through IS
    'anonymize: rows dated up to here are done (moved forward in the same transaction as each batch).';
COMMENT ON COLUMN tenancy.retention_policies.created_at IS 'When the policy was set.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.retention_policies', '');

CREATE TABLE tenancy.job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    rows        bigint,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_started_at ON tenancy.job_runs (started_at);
COMMENT ON INDEX tenancy.job_runs_started_at IS 'Recent runs first.';
COMMENT ON TABLE tenancy.job_runs IS
    'One row per job step run by tenancy.run_jobs() (and per run_retention table): what ran, when, how it ended and how many rows it handled.';
COMMENT ON COLUMN tenancy.job_runs.id IS 'Run id.';
COMMENT ON COLUMN tenancy.job_runs.job IS 'partition_maintenance, retention, retention:<table>, audit_seal, record_metrics or run_jobs.';
COMMENT ON COLUMN tenancy.job_runs.started_at IS 'When the step started.';
COMMENT ON COLUMN tenancy.job_runs.finished_at IS 'When it finished (NULL while running, or if its session died).';
COMMENT ON COLUMN tenancy.job_runs.status IS 'running, ok, failed or skipped.';
COMMENT ON COLUMN tenancy.job_runs.rows IS 'Rows (or partitions, or samples) the step handled.';
COMMENT ON COLUMN tenancy.job_runs.detail IS 'What the step reports: per table counts, the error and its SQLSTATE.';
COMMENT ON SEQUENCE tenancy.job_runs_id_seq IS 'Ids of tenancy.job_runs.';
