-- After an update to 0.2.0 of a database filled by an older release: what the
-- update changed on purpose is there (tests/upgrade/changes-0.2.0.txt lists
-- the data it changes). Every check raises on failure.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DO $$
BEGIN
    -- The logs' children get their index and guard from audit and stats now ...
    IF EXISTS (SELECT FROM tenancy.partition_sets
                WHERE parent IN ('tenancy.audit_log'::regclass, 'tenancy.metrics'::regclass)
                  AND child_ddl <> '{}') THEN
        RAISE 'a log''s set still has the child DDL of 0.1.0';
    END IF;
    -- ... a new audit log partition gets the guard (and the BRIN index) ...
    PERFORM set_config('tenancy.now_override', (now() + interval '6 months')::text, true);
    PERFORM tenancy.run_maintenance('tenancy.audit_log');
    PERFORM set_config('tenancy.now_override', '', true);
    IF EXISTS (SELECT FROM pg_partition_tree('tenancy.audit_log') t JOIN pg_class c ON c.oid = t.relid
                WHERE c.relkind = 'r'
                  AND NOT EXISTS (SELECT FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                                   JOIN pg_am a ON a.oid = ic.relam
                                  WHERE i.indrelid = c.oid AND a.amname = 'brin')) THEN
        RAISE 'an audit log partition lacks its BRIN index';
    END IF;
    -- ... and every partition made before the update has it, and the row guard.
    IF EXISTS (SELECT FROM pg_partition_tree('tenancy.audit_log') t JOIN pg_class c ON c.oid = t.relid
                WHERE c.relkind = 'r'
                  AND (SELECT count(*) FROM pg_trigger g WHERE g.tgrelid = c.oid
                          AND g.tgname IN ('tenancy_no_changes', 'tenancy_append_only')) <> 2) THEN
        RAISE 'an audit log partition lacks a guard';
    END IF;
    -- Every partition of an isolated table is isolated.
    IF EXISTS (SELECT FROM tenancy.verify_isolation() WHERE check_name IN ('partition_not_isolated', 'isolation_incomplete')) THEN
        RAISE 'isolation incomplete after the update: %', (SELECT string_agg(object, ', ') FROM tenancy.verify_isolation());
    END IF;
    IF NOT EXISTS (SELECT FROM tenancy.health_check() WHERE check_name = 'isolation_findings') THEN
        RAISE 'no isolation_findings health check';
    END IF;
END
$$;
-- The log is append-only now, for the superuser running this too.
DO $$
BEGIN
    DELETE FROM tenancy.audit_log WHERE false;
    RAISE 'DELETE FROM tenancy.audit_log was allowed';
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END
$$;
-- Roles can be bound.
SELECT tenancy.bind_role('upgrade_app', ARRAY[tenancy.find_tenant('acme')]);
SELECT tenancy.unbind_role('upgrade_app');
