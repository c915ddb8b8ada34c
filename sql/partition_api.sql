-- Partitions: comments, privileges and the committing procedure.

-- Which tables are managed, and how, is no secret (pg_class shows the partitions
-- anyway); reading it lets any owner check their sets and lets run_maintenance_proc
-- list them.
GRANT SELECT ON tenancy.partition_sets TO PUBLIC;

COMMENT ON FUNCTION tenancy.create_partitioned(regclass, name, text, integer, interval, text, timestamptz, bigint, boolean) IS
    'Registers a PARTITION BY RANGE table as a managed set and creates its default partition and children; returns tables created.';
COMMENT ON FUNCTION tenancy.run_maintenance(regclass) IS
    'Premakes children, relocates rows from the default partition, applies retention, for every set (or one); one row per action.';
COMMENT ON FUNCTION tenancy.show_partitions(regclass) IS
    'The children of a partitioned table in range order with bounds, estimated rows and total size.';
COMMENT ON FUNCTION tenancy.undo_partition_set(regclass) IS
    'Stops managing a set; its children and data stay.';

-- run_maintenance() is a function, so every lock it takes is held until the
-- calling transaction ends. This procedure commits after each set instead, so
-- no set's locks outlive its own maintenance: what schedulers should call.
-- No SET search_path here: a procedure with a SET clause cannot COMMIT. It runs
-- with the caller's rights (not SECURITY DEFINER), names everything by schema and
-- pins its one operator, so the caller's search_path cannot redirect it.
CREATE PROCEDURE tenancy.run_maintenance_proc(parent regclass DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    managed regclass;
    outcome record;
BEGIN
    FOR managed IN
        SELECT s.parent FROM tenancy.partition_sets s
         WHERE run_maintenance_proc.parent IS NULL
            OR s.parent OPERATOR(pg_catalog.=) run_maintenance_proc.parent
         ORDER BY s.parent::pg_catalog.text
    LOOP
        FOR outcome IN SELECT * FROM tenancy.run_maintenance(managed) LOOP
            RAISE NOTICE '%: % % %', outcome.parent, outcome.action,
                coalesce(outcome.partition, ''), coalesce(outcome.detail, '');
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE tenancy.run_maintenance_proc(regclass) IS
    'Runs run_maintenance set by set, committing after each so no lock outlives its set; reports actions as NOTICEs.';
