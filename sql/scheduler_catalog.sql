-- The job runner: the record of every job step run.

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
