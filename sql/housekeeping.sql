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
