-- Catalog housekeeping shared by all capabilities.

-- A dropped table leaves no registration behind in any catalog keyed by it (a
-- dangling regclass would also make pg_dump's output unrestorable).
CREATE FUNCTION tenancy._forget_dropped_tables() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- any table owner may drop a table; only the extension owner writes the catalogs
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[];
    orphaned record;
BEGIN
    SELECT array_agg(d.objid) INTO dropped
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0;
    IF dropped IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM tenancy.tenant_tables WHERE tbl::pg_catalog.oid = ANY (dropped);
    DELETE FROM tenancy.partition_sets WHERE parent::pg_catalog.oid = ANY (dropped);
    DELETE FROM tenancy.audit_config WHERE tbl::pg_catalog.oid = ANY (dropped);
    DELETE FROM tenancy.row_quotas WHERE tbl::pg_catalog.oid = ANY (dropped);
    DELETE FROM tenancy.masking_rules WHERE tbl::pg_catalog.oid = ANY (dropped);
    DELETE FROM tenancy.masked_views WHERE view::pg_catalog.oid = ANY (dropped) OR tbl::pg_catalog.oid = ANY (dropped);
    -- A table whose archive was dropped keeps its rows, but no longer expires
    -- them: say so, instead of leaving it to be noticed months later.
    FOR orphaned IN
        SELECT p.tbl FROM tenancy.retention_policies p
         WHERE p.archive_table::pg_catalog.oid = ANY (dropped) AND NOT p.tbl::pg_catalog.oid = ANY (dropped)
    LOOP
        RAISE WARNING 'retention policy of table % removed: its archive table was dropped', orphaned.tbl
            USING HINT = 'Set a new one with tenancy.set_retention().';
    END LOOP;
    DELETE FROM tenancy.retention_policies
     WHERE tbl::pg_catalog.oid = ANY (dropped) OR archive_table::pg_catalog.oid = ANY (dropped);
END
$$;
COMMENT ON FUNCTION tenancy._forget_dropped_tables() IS
    'Internal: event trigger function that removes catalog rows of dropped tables.';
CREATE EVENT TRIGGER tenancy_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION tenancy._forget_dropped_tables();
COMMENT ON EVENT TRIGGER tenancy_forget_dropped_tables IS
    'Removes tenancy catalog rows (table registrations, partition sets, audit settings, row quotas, masking rules and views, retention policies) of dropped tables.';

-- A statement trigger fires only on the table a statement names, and one with
-- transition tables is never cloned to partitions: a partition created or
-- attached by hand (CREATE TABLE ... PARTITION OF, ALTER TABLE ... ATTACH
-- PARTITION) would take writes that escape the audit log and the row quota of
-- its parent. After such DDL, the partitions of every audited or row-quota
-- table in the tree get the triggers they lack (and row quotas count again).
-- Only under a table that has its own trigger: pg_restore adds constraints
-- (ALTER TABLE) to a restored table before it creates the dumped triggers,
-- and must not find them already made.
CREATE FUNCTION tenancy._cover_new_partitions() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- any table owner may add a partition; the trigger functions are the extension owner's to attach
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched oid[];
    covered regclass;
    kind text;
BEGIN
    -- Most DDL touches no configured table: leave at once.
    IF NOT EXISTS (SELECT FROM tenancy.audit_config) AND NOT EXISTS (SELECT FROM tenancy.row_quotas) THEN
        RETURN;
    END IF;
    SELECT array_agg(c.objid) INTO touched
      FROM pg_catalog.pg_event_trigger_ddl_commands() c
     WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.objsubid = 0;
    IF touched IS NULL THEN
        RETURN;
    END IF;
    FOR covered, kind IN
        SELECT c.tbl, c.kind
          FROM (SELECT a.tbl, 'audit' AS kind, 'tenancy_audit_insert'::name AS trigger_name FROM tenancy.audit_config a
                UNION ALL
                SELECT q.tbl, 'row quota', 'tenancy_quota_insert' FROM tenancy.row_quotas q) c
         WHERE EXISTS (SELECT FROM pg_catalog.pg_trigger g
                        WHERE g.tgrelid OPERATOR(pg_catalog.=) c.tbl
                          AND g.tgname OPERATOR(pg_catalog.=) c.trigger_name)
           AND EXISTS (SELECT FROM pg_catalog.pg_partition_tree(c.tbl) t
                        WHERE t.relid OPERATOR(pg_catalog.=) ANY (touched))
           AND EXISTS (SELECT FROM pg_catalog.pg_partition_tree(c.tbl) t
                        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                                           WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                                             AND g.tgname OPERATOR(pg_catalog.=) c.trigger_name))
    LOOP
        IF kind = 'audit' THEN
            PERFORM tenancy._audit_cover_partitions(covered);
        ELSE
            PERFORM tenancy._row_quota_cover_partitions(covered);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenancy._cover_new_partitions() IS
    'Internal: event trigger function that gives partitions created or attached by hand the audit and row-quota triggers of their tables.';
CREATE EVENT TRIGGER tenancy_cover_new_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION tenancy._cover_new_partitions();
COMMENT ON EVENT TRIGGER tenancy_cover_new_partitions IS
    'Gives partitions created or attached by hand the audit and row-quota triggers of the tables they belong to.';

COMMENT ON FUNCTION tenancy._audit_cover_partitions(regclass) IS
    'Internal: puts the audit triggers on partitions of an audited table that lack them.';
COMMENT ON FUNCTION tenancy._row_quota_cover_partitions(regclass) IS
    'Internal: puts the row-quota triggers on partitions of a table with a row quota that lack them, and counts its rows again.';
-- Only the event trigger (running as the extension owner) calls them.
REVOKE EXECUTE ON FUNCTION tenancy._audit_cover_partitions(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._row_quota_cover_partitions(regclass) FROM PUBLIC;
