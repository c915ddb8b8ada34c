-- The job runner: run_jobs (PL/pgSQL only for COMMIT between steps; every
-- step is Rust), privileges and comments.
--
-- A procedure that COMMITs cannot carry a SET clause or SECURITY DEFINER, so
-- it runs with the caller's search_path: every name below is qualified.

CREATE PROCEDURE tenancy.run_jobs()
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT tenancy._jobs_begin(false) THEN
        RAISE NOTICE 'tenancy.run_jobs() is already running in another session: skipped';
        RETURN;
    END IF;
    COMMIT;
    WHILE tenancy._jobs_step() LOOP
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE tenancy.run_jobs() IS
    'Everything due, each step committed and recorded in tenancy.job_runs: partition maintenance, retention, audit sealing, metrics. A failing step is recorded and the others run; a concurrent call returns at once with a NOTICE.';

-- Maintenance is for administrators.
REVOKE EXECUTE ON PROCEDURE tenancy.run_jobs() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._jobs_begin(boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._jobs_step() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._jobs_end() FROM PUBLIC;
GRANT SELECT ON tenancy.job_runs TO pg_monitor;
COMMENT ON FUNCTION tenancy._jobs_begin(boolean) IS 'Internal: queues a run_jobs (or run_retention) run in this session.';
COMMENT ON FUNCTION tenancy._jobs_step() IS 'Internal: runs the next queued step; false when the run is over.';
COMMENT ON FUNCTION tenancy._jobs_end() IS 'Internal: abandons this session''s run and releases its locks.';
