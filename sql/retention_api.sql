-- Retention: the procedure (PL/pgSQL only for COMMIT between steps; every
-- step is Rust, run by the scheduler's job runner), privileges and comments.
--
-- Procedures that COMMIT cannot carry a SET clause or SECURITY DEFINER, so
-- these run with the caller's search_path: every name below is qualified.

CREATE PROCEDURE tenancy.run_retention(dry_run boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    due record;
BEGIN
    IF dry_run THEN
        FOR due IN SELECT p.tbl, p.action, p.rows_due, p.partitions_due FROM tenancy.retention_preview() p LOOP
            IF due.partitions_due > 0 THEN
                RAISE NOTICE 'dry run: % would % % partition(s) (about % rows)',
                    due.tbl, pg_catalog.split_part(due.action, ' ', 1), due.partitions_due, due.rows_due;
            ELSIF due.action NOT LIKE '% partitions' THEN
                RAISE NOTICE 'dry run: % would % % row(s)', due.tbl, due.action, due.rows_due;
            END IF;
        END LOOP;
        RETURN;
    END IF;
    PERFORM tenancy._jobs_begin(true);
    COMMIT;
    WHILE tenancy._jobs_step() LOOP
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE tenancy.run_retention(boolean) IS
    'Applies every retention policy in committed batches (oldest rows first; a killed run loses at most one batch and the next run goes on). dry_run: only NOTICEs of what would happen. Call it outside a transaction block.';

-- Maintenance is for administrators: it deletes and rewrites rows of every
-- table with a policy (each as its owner, see docs/retention.md).
REVOKE EXECUTE ON PROCEDURE tenancy.run_retention(boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.purge_tenant(uuid, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.retention_preview() FROM PUBLIC;
-- set_retention and clear_retention check that the caller owns the table.
GRANT SELECT ON tenancy.retention_policies TO PUBLIC;

COMMENT ON FUNCTION tenancy.set_retention(regclass, interval, text, name, integer, regclass) IS
    'Keeps a table''s rows for keep (by time_column), then deletes, anonymizes (masking rules) or archives them (into archive_table) in committed batches when run_retention or run_jobs runs.';
COMMENT ON FUNCTION tenancy.clear_retention(regclass) IS 'Removes a table''s retention policy.';
COMMENT ON FUNCTION tenancy.retention_preview() IS
    'What run_retention and the next partition maintenance would do now: rows due per policy, partitions due per partition set (with their estimated rows). Changes nothing.';
COMMENT ON FUNCTION tenancy.purge_tenant(uuid, text) IS
    'GDPR erasure: deletes (or anonymizes) one tenant''s rows in every registered table, resets its quota usage, replaces its audit trail with one PURGE audit row; returns the rows purged.';
