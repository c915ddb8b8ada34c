-- Audit: views, SQL functions, comments and privileges.

-- Application roles read their own tenant's rows and nothing else; no role
-- holds INSERT, UPDATE, DELETE or TRUNCATE on the log (the trigger writes it
-- directly). The policy is copied onto every partition as it is created.
-- Roles given masked access (tenancy.grant_masked_access) read no audit rows at
-- all: the log holds unmasked row images. Both tests are scalar subqueries, so
-- they run once per query (an InitPlan), not once per row.
ALTER TABLE tenancy.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_tenant_reads ON tenancy.audit_log AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (tenant_id OPERATOR(pg_catalog.=) (SELECT tenancy.current_tenant())
           AND (SELECT NOT EXISTS (SELECT FROM tenancy.masked_roles m
                                     JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) m.role_name
                                    WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER'))));
-- The policy reads it as the querying role; role names are no secret (pg_roles).
GRANT SELECT ON tenancy.masked_roles TO PUBLIC;
GRANT SELECT ON tenancy.audit_log TO PUBLIC;
-- The trigger, running as whoever changed an audited table, draws ids from it.
GRANT USAGE ON SEQUENCE tenancy.audit_log_id_seq TO PUBLIC;


CREATE VIEW tenancy.audited_tables AS
SELECT a.tbl AS table_name,
       a.exclude_columns,
       a.enabled_at,
       (SELECT count(*) FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid = a.tbl AND t.tgname::text LIKE 'tenancy\_audit\_%' AND t.tgenabled <> 'D') = 4
           AS triggers_enabled
  FROM tenancy.audit_config a;
COMMENT ON VIEW tenancy.audited_tables IS 'Tables audited by tenancy.enable_audit, with their exclusions and whether all four audit triggers are in place.';
COMMENT ON COLUMN tenancy.audited_tables.table_name IS 'The audited table.';
COMMENT ON COLUMN tenancy.audited_tables.exclude_columns IS 'Columns left out of recorded rows.';
COMMENT ON COLUMN tenancy.audited_tables.enabled_at IS 'When auditing was enabled.';
COMMENT ON COLUMN tenancy.audited_tables.triggers_enabled IS 'Whether the four tenancy_audit_* triggers exist and are enabled.';
GRANT SELECT ON tenancy.audited_tables TO PUBLIC;

-- Who reads which rows of the cluster log (Citus): the same as the policy
-- above lets read tenancy.audit_log. It holds no policy and grants nothing
-- (Citus runs shard queries as the querying role, on the workers, which have
-- neither the masked roles nor the caller's tenant checks), so roles read it
-- through tenancy._cluster_audit_rows(), which applies these two as the
-- caller and reads as the extension owner.
CREATE FUNCTION tenancy._audit_reads_all() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
                      WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false)
$$;
COMMENT ON FUNCTION tenancy._audit_reads_all() IS
    'Internal: whether the current role reads every audit row (superuser or BYPASSRLS, as row-level security has it).';
CREATE FUNCTION tenancy._audit_readable_tenant() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM tenancy.masked_roles m
                               JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) m.role_name
                              WHERE pg_catalog.pg_has_role(r.oid, 'MEMBER'))
                THEN NULL ELSE tenancy.current_tenant() END
$$;
COMMENT ON FUNCTION tenancy._audit_readable_tenant() IS
    'Internal: the tenant whose audit rows the current role reads, as the policy on tenancy.audit_log has it (NULL for masked roles).';
COMMENT ON FUNCTION tenancy._cluster_audit_rows(text[], jsonb) IS
    'Internal: the rows of tenancy.cluster_audit_log the calling role may read (of tables, of one record when record_key is given), as JSON; empty off Citus.';

-- Every audit row a role may read, from every node of a Citus cluster.
-- With the caller's rights: tenancy.audit_log's policy applies as on one node.
CREATE VIEW tenancy.audit_trail WITH (security_invoker = true) AS
SELECT a.* FROM tenancy.audit_log a
UNION ALL
SELECT c.* FROM tenancy._cluster_audit_rows(NULL, NULL) j
 CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::tenancy.cluster_audit_log, j) c;
COMMENT ON VIEW tenancy.audit_trail IS
    'The audit rows the current role may read, from every node of a Citus cluster (tenancy.audit_log and tenancy.cluster_audit_log); on one node, what tenancy.audit_log shows it.';
-- Its columns mean what the log's columns mean.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT a.attname, pg_catalog.col_description(a.attrelid, a.attnum) AS said
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid OPERATOR(pg_catalog.=) 'tenancy.audit_log'::pg_catalog.regclass
                AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN tenancy.audit_trail.%I IS %L', c.attname, c.said);
    END LOOP;
END
$$;
GRANT SELECT ON tenancy.audit_trail TO PUBLIC;

-- Runs with the caller's rights: an application role sees its own tenant's history.
CREATE FUNCTION tenancy.row_history(tbl regclass, record_key jsonb)
RETURNS SETOF tenancy.audit_log
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- A partitioned table's rows may have been written through any partition
    -- (pg_partition_tree lists nothing for a plain table, hence the UNION).
    WITH tables AS (
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
          FROM (SELECT row_history.tbl AS relid
                UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(row_history.tbl) t) p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace)
    SELECT h.* FROM (
        SELECT a.*
          FROM tenancy.audit_log a
         WHERE a.table_name IN (SELECT name FROM tables)
           -- An UPDATE that changed the key belongs to the history of both keys.
           AND (a.record_key = row_history.record_key OR a.old_record_key = row_history.record_key)
        UNION ALL
        SELECT c.*
          FROM tenancy._cluster_audit_rows(ARRAY(SELECT name FROM tables), row_history.record_key) j
         CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::tenancy.cluster_audit_log, j) c) h
     ORDER BY h.logged_at, h.id
$$;
COMMENT ON FUNCTION tenancy.row_history(regclass, jsonb) IS
    'Every audit row of one record (by its record_key, e.g. ''{"id": 42}''), oldest first, including an UPDATE that gave it that key or took it away; for a partitioned table, written through any partition.';

COMMENT ON FUNCTION tenancy.enable_audit(regclass, text[]) IS
    'Audits INSERT, UPDATE, DELETE and TRUNCATE on a table (and its partitions) into tenancy.audit_log, leaving out exclude_columns.';
COMMENT ON FUNCTION tenancy.disable_audit(regclass) IS 'Stops auditing a table; logged rows stay.';
COMMENT ON FUNCTION tenancy.seal_audit() IS
    'Extends each tenant''s SHA-256 chain over the audit rows of finished transactions; returns rows sealed.';
COMMENT ON FUNCTION tenancy.verify_audit(uuid) IS
    'Recomputes the chains and reports, per tenant, rows checked, whether all is intact, and the first bad audit row.';
COMMENT ON FUNCTION tenancy._audit_statement() IS 'Internal: the statement trigger behind every tenancy_audit_* trigger.';

-- Sealing and verifying read every tenant's rows: administrators only.
REVOKE EXECUTE ON FUNCTION tenancy.seal_audit() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.verify_audit(uuid) FROM PUBLIC;

-- CREATE TRIGGER needs EXECUTE on the function (firing does not): with it, any
-- role could attach the audit trigger to a table of its own and forge audit
-- rows. The extension creates its triggers as the extension owner.
REVOKE EXECUTE ON FUNCTION tenancy._audit_statement() FROM PUBLIC;

-- The log and its chains are append-only for every role, whatever it was
-- granted (audit::guard). Every one of these tables has a statement trigger,
-- tenancy_no_changes, for INSERT, UPDATE, DELETE and TRUNCATE (each log
-- partition gets its own from the set's child DDL); the log's parent also has
-- a row trigger, tenancy_append_only, which PostgreSQL clones onto every
-- partition, even one a superuser attaches by hand. The extension's own paths
-- pass; so does a superuser's INSERT, which is how pg_restore brings a dumped
-- log back.
CREATE TRIGGER tenancy_append_only BEFORE INSERT OR UPDATE OR DELETE ON tenancy.audit_log
    FOR EACH ROW EXECUTE FUNCTION tenancy._guard_audit_tables();
COMMENT ON TRIGGER tenancy_append_only ON tenancy.audit_log IS
    'Refuses INSERT (but a superuser''s, as pg_restore does), UPDATE and DELETE of audit rows outside pg_tenancy''s own code (42501), on every partition.';
CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables();
CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables();
CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables();
CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables();
CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.audit_expiry
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables();
COMMENT ON TRIGGER tenancy_no_changes ON tenancy.audit_log IS
    'Refuses INSERT (but a superuser''s), UPDATE, DELETE and TRUNCATE of the audit log outside pg_tenancy''s own code (42501).';
COMMENT ON TRIGGER tenancy_no_changes ON tenancy.audit_chain IS
    'Only tenancy.seal_audit() and tenancy.purge_tenant() write the chain links (42501 for everything else but a superuser''s INSERT).';
COMMENT ON TRIGGER tenancy_no_changes ON tenancy.audit_chain_heads IS
    'Only tenancy.seal_audit() and tenancy.purge_tenant() write the chain heads (42501 for everything else but a superuser''s INSERT).';
COMMENT ON TRIGGER tenancy_no_changes ON tenancy.audit_seals IS
    'Only tenancy.seal_audit() records seals (42501 for everything else but a superuser''s INSERT).';
COMMENT ON TRIGGER tenancy_no_changes ON tenancy.audit_expiry IS
    'Only partition retention records expired audit partitions (42501 for everything else but a superuser''s INSERT).';
COMMENT ON FUNCTION tenancy._guard_audit_tables() IS
    'Internal: the trigger that keeps the audit log and its chains append-only for everything but pg_tenancy''s own code.';
REVOKE EXECUTE ON FUNCTION tenancy._guard_audit_tables() FROM PUBLIC;
