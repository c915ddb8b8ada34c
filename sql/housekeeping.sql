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
    IF NOT EXISTS (SELECT FROM tenancy.audit_config) AND NOT EXISTS (SELECT FROM tenancy.row_quotas)
       AND NOT EXISTS (SELECT FROM tenancy.tenant_tables WHERE isolated) THEN
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
        UNION ALL
        -- Isolated tables: a partition queried by name follows its own
        -- row-level security, so it needs the policy too (pg_restore creates
        -- policies after attaching partitions: the parent has none yet then).
        SELECT t.tbl, 'isolation'
          FROM tenancy.tenant_tables t
         WHERE t.isolated
           AND EXISTS (SELECT FROM pg_catalog.pg_policy p
                        WHERE p.polrelid OPERATOR(pg_catalog.=) t.tbl AND p.polname OPERATOR(pg_catalog.=) 'tenancy_isolation')
           AND EXISTS (SELECT FROM pg_catalog.pg_partition_tree(t.tbl) r
                        WHERE r.relid OPERATOR(pg_catalog.=) ANY (touched))
           AND EXISTS (SELECT FROM pg_catalog.pg_partition_tree(t.tbl) r
                        WHERE r.relid OPERATOR(pg_catalog.<>) t.tbl
                          AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p
                                           WHERE p.polrelid OPERATOR(pg_catalog.=) r.relid
                                             AND p.polname OPERATOR(pg_catalog.=) 'tenancy_isolation'))
    LOOP
        IF kind = 'audit' THEN
            PERFORM tenancy._audit_cover_partitions(covered);
        ELSIF kind = 'row quota' THEN
            PERFORM tenancy._row_quota_cover_partitions(covered);
        ELSE
            PERFORM tenancy._isolation_cover_partitions(covered);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenancy._cover_new_partitions() IS
    'Internal: event trigger function that gives partitions created or attached by hand the isolation, audit and row-quota triggers of their tables.';
CREATE EVENT TRIGGER tenancy_cover_new_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION tenancy._cover_new_partitions();
COMMENT ON EVENT TRIGGER tenancy_cover_new_partitions IS
    'Gives partitions created or attached by hand the isolation policy and the audit and row-quota triggers of the tables they belong to.';

-- Catalogs name columns (a tenant column, audit exclusions, masking rules, a
-- partition key, a retention time column), so a column renamed with ALTER
-- TABLE ... RENAME COLUMN would leave them naming nothing: row quotas would
-- refuse every insert and an excluded column would start being audited. After
-- a rename, the one stored name of that table that is no longer a column is
-- the column's old name: it becomes the new one everywhere, and row-quota
-- triggers (whose arguments name the column) are made again.
CREATE FUNCTION tenancy._follow_renamed_columns() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- any table owner may rename a column; only the extension owner writes the catalogs
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    renamed record;
    new_name name;
    gone name;
BEGIN
    FOR renamed IN
        SELECT DISTINCT c.objid AS tbl, c.objsubid AS attnum
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
         WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.objsubid > 0
    LOOP
        SELECT a.attname INTO new_name FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = renamed.tbl AND a.attnum = renamed.attnum AND NOT a.attisdropped;
        CONTINUE WHEN new_name IS NULL;
        FOR gone IN
            SELECT DISTINCT stored.col
              FROM (SELECT t.tenant_column AS col FROM tenancy.tenant_tables t WHERE t.tbl::pg_catalog.oid = renamed.tbl
                    UNION ALL SELECT q.tenant_column FROM tenancy.row_quotas q WHERE q.tbl::pg_catalog.oid = renamed.tbl
                    UNION ALL SELECT m.col FROM tenancy.masking_rules m WHERE m.tbl::pg_catalog.oid = renamed.tbl
                    UNION ALL SELECT p.control_column FROM tenancy.partition_sets p WHERE p.parent::pg_catalog.oid = renamed.tbl
                    UNION ALL SELECT r.time_column FROM tenancy.retention_policies r WHERE r.tbl::pg_catalog.oid = renamed.tbl
                    UNION ALL SELECT e.col::pg_catalog.name FROM tenancy.audit_config a, pg_catalog.unnest(a.exclude_columns) AS e(col)
                     WHERE a.tbl::pg_catalog.oid = renamed.tbl) stored
             WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = renamed.tbl AND a.attname OPERATOR(pg_catalog.=) stored.col
                                  AND NOT a.attisdropped)
        LOOP
            UPDATE tenancy.tenant_tables SET tenant_column = new_name
             WHERE tbl::pg_catalog.oid = renamed.tbl AND tenant_column OPERATOR(pg_catalog.=) gone;
            UPDATE tenancy.masking_rules SET col = new_name
             WHERE tbl::pg_catalog.oid = renamed.tbl AND col OPERATOR(pg_catalog.=) gone;
            UPDATE tenancy.partition_sets SET control_column = new_name
             WHERE parent::pg_catalog.oid = renamed.tbl AND control_column OPERATOR(pg_catalog.=) gone;
            UPDATE tenancy.retention_policies SET time_column = new_name
             WHERE tbl::pg_catalog.oid = renamed.tbl AND time_column OPERATOR(pg_catalog.=) gone;
            UPDATE tenancy.audit_config SET exclude_columns = pg_catalog.array_replace(exclude_columns, gone::text, new_name::text)
             WHERE tbl::pg_catalog.oid = renamed.tbl AND gone::text OPERATOR(pg_catalog.=) ANY (exclude_columns);
            UPDATE tenancy.row_quotas SET tenant_column = new_name
             WHERE tbl::pg_catalog.oid = renamed.tbl AND tenant_column OPERATOR(pg_catalog.=) gone;
            IF FOUND THEN
                PERFORM tenancy._row_quota_follow_rename(renamed.tbl::pg_catalog.regclass);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenancy._follow_renamed_columns() IS
    'Internal: event trigger function that makes the catalogs follow a renamed column of a configured table.';
CREATE EVENT TRIGGER tenancy_follow_renamed_columns ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION tenancy._follow_renamed_columns();
COMMENT ON EVENT TRIGGER tenancy_follow_renamed_columns IS
    'Keeps the column names the tenancy catalogs store (tenant columns, audit exclusions, masking rules, partition keys, retention time columns) in step with ALTER TABLE ... RENAME COLUMN.';
COMMENT ON FUNCTION tenancy._row_quota_follow_rename(regclass) IS
    'Internal: re-creates a row-quota table''s triggers after its tenant column was renamed.';
REVOKE EXECUTE ON FUNCTION tenancy._row_quota_follow_rename(regclass) FROM PUBLIC;

COMMENT ON FUNCTION tenancy._audit_cover_partitions(regclass) IS
    'Internal: puts the audit triggers on partitions of an audited table that lack them.';
COMMENT ON FUNCTION tenancy._row_quota_cover_partitions(regclass) IS
    'Internal: puts the row-quota triggers on partitions of a table with a row quota that lack them, and counts its rows again.';
-- Only the event trigger (running as the extension owner) calls them.
REVOKE EXECUTE ON FUNCTION tenancy._audit_cover_partitions(regclass) FROM PUBLIC;
COMMENT ON FUNCTION tenancy._isolation_cover_partitions(regclass) IS
    'Internal: gives partitions of an isolated table that lack it the table''s row-level security and policy.';
REVOKE EXECUTE ON FUNCTION tenancy._isolation_cover_partitions(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._row_quota_cover_partitions(regclass) FROM PUBLIC;
