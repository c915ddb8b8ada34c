-- pg_tenancy 0.1.0 -> 0.2.0
--
-- Run by ALTER EXTENSION pg_tenancy UPDATE. This file ships with the extension and,
-- once 0.2.0 is released, never changes (scripts/check-releases.sh). The upgrade
-- suite (scripts/test-upgrade.sh) proves that 0.1.0 updated with it matches a
-- fresh 0.2.0 install object by object and keeps every row of data.
--
-- 0.2.0 (docs/upgrading.md): tenants bound to roles, a tenant setting every path
-- checks, pooler-safe context, tenants from JWT claims, an append-only audit log,
-- tenancy.verify_isolation() and its health check, catalogs that follow renamed
-- columns, isolation for partitions made by hand.
\echo Use "ALTER EXTENSION pg_tenancy UPDATE" to load this file. \quit

-- New C functions of the 0.2.0 library.
CREATE FUNCTION tenancy."bind_role"(
	"role" regrole, /* Option < RegRole > */
	"tenants" uuid[] /* :: std :: option :: Option < Vec < Option < pgrx :: Uuid > > > */
) RETURNS VOID /* Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bind_role_wrapper';
CREATE FUNCTION tenancy."unbind_role"(
	"role" regrole /* Option < RegRole > */
) RETURNS VOID /* Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unbind_role_wrapper';
CREATE FUNCTION tenancy."_isolation_cover_partitions"(
	"tbl" regclass /* Option < RegClass > */
) RETURNS VOID /* Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_isolation_cover_partitions_wrapper';
CREATE FUNCTION tenancy."_row_quota_follow_rename"(
	"tbl" regclass /* Option < RegClass > */
) RETURNS VOID /* Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_row_quota_follow_rename_wrapper';
CREATE FUNCTION tenancy."_guard_audit_tables"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_guard_audit_tables_wrapper';
CREATE FUNCTION tenancy."_role_bindings_changed"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_role_bindings_changed_wrapper';

-- Roles bound to tenants (tenancy.bind_role, since 0.2.0): a bound role, and
-- every member of it, can select only these tenants. Configuration: pg_dump
-- carries it (roles by name).
CREATE TABLE tenancy.role_bindings (
    role     regrole PRIMARY KEY,
    tenants  uuid[] NOT NULL CHECK (pg_catalog.cardinality(tenants) > 0),
    bound_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.role_bindings IS
    'Roles bound to tenants (tenancy.bind_role): the role and its members can select only these tenants, by any path.';
COMMENT ON COLUMN tenancy.role_bindings.role IS 'The bound role; its members are bound too.';
COMMENT ON COLUMN tenancy.role_bindings.tenants IS 'The tenants it may select.';
COMMENT ON COLUMN tenancy.role_bindings.bound_at IS 'When the binding was last set.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.role_bindings', '');

-- Roles bound to tenants. Binding changes what other roles may do: administrators only.
REVOKE EXECUTE ON FUNCTION tenancy.bind_role(regrole, uuid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.unbind_role(regrole) FROM PUBLIC;
COMMENT ON FUNCTION tenancy.bind_role(regrole, uuid[]) IS
    'Binds a role and its members to these tenants: they can select no other, by any path (set_tenant, SET, set_config, ALTER ROLE, a JWT claim, SET ROLE).';
COMMENT ON FUNCTION tenancy.unbind_role(regrole) IS 'Removes a role''s binding to tenants.';
-- However role_bindings changes, every backend reloads it at commit.
CREATE TRIGGER tenancy_bindings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._role_bindings_changed();
COMMENT ON TRIGGER tenancy_bindings_changed ON tenancy.role_bindings IS
    'Makes every backend reload the role bindings when this table changes.';
COMMENT ON FUNCTION tenancy._role_bindings_changed() IS
    'Internal: the trigger that makes every backend reload tenancy.role_bindings.';
REVOKE EXECUTE ON FUNCTION tenancy._role_bindings_changed() FROM PUBLIC;

COMMENT ON FUNCTION tenancy.find_tenant(text) IS
    'The id of the tenant with this slug (22023 when there is none, or when it is not one the session''s roles may select).';

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

-- The extension's own logs no longer keep their children's index in child_ddl:
-- audit and statistics give each new child of theirs its index (and the audit
-- log's children their statement guard) when the partition manager attaches
-- it. Only the statements 0.1.0 wrote are cleared; anything else is the DBA's.
UPDATE tenancy.partition_sets
   SET child_ddl = '{}'
 WHERE (parent = 'tenancy.audit_log'::regclass
        AND child_ddl = ARRAY['CREATE INDEX ON {child} USING brin (txid, logged_at)'])
    OR (parent = 'tenancy.metrics'::regclass
        AND child_ddl = ARRAY['CREATE INDEX ON {child} (metric, recorded_at)']);
-- Partitions of the log made by 0.1.0 get the statement guard every new one
-- gets now (the row guard above is cloned onto them already).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT c.oid::regclass FROM pg_catalog.pg_partition_tree('tenancy.audit_log') t
                  JOIN pg_catalog.pg_class c ON c.oid = t.relid
                 WHERE t.relid <> 'tenancy.audit_log'::regclass AND c.relkind = 'r'
                   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                                    WHERE g.tgrelid = c.oid AND g.tgname = 'tenancy_no_changes')
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables()', part);
    END LOOP;
END
$$;

-- Partitions made by hand now get their table's isolation at once.
CREATE OR REPLACE FUNCTION tenancy._cover_new_partitions() RETURNS event_trigger
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
COMMENT ON FUNCTION tenancy._cover_new_partitions() IS
    'Internal: event trigger function that gives partitions created or attached by hand the isolation, audit and row-quota triggers of their tables.';
COMMENT ON EVENT TRIGGER tenancy_cover_new_partitions IS
    'Gives partitions created or attached by hand the isolation policy and the audit and row-quota triggers of the tables they belong to.';
COMMENT ON FUNCTION tenancy._isolation_cover_partitions(regclass) IS
    'Internal: gives partitions of an isolated table that lack it the table''s row-level security and policy.';
REVOKE EXECUTE ON FUNCTION tenancy._isolation_cover_partitions(regclass) FROM PUBLIC;
-- ... and those 0.1.0 left without it are isolated now.
DO $$
DECLARE
    isolated regclass;
BEGIN
    FOR isolated IN SELECT t.tbl FROM tenancy.tenant_tables t WHERE t.isolated LOOP
        PERFORM tenancy._isolation_cover_partitions(isolated);
    END LOOP;
END
$$;

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


-- tenancy.verify_isolation(): what breaks tenant isolation, one row per finding,
-- in the spirit of Supabase's RLS linter but inside the database. A clean
-- database gives no row; health_check() reports the count.
--
-- SECURITY DEFINER so that any role can run it (tenant_tables is not readable
-- by application roles); it reports only catalog facts every role can already
-- see (pg_class, pg_policy, pg_roles, pg_proc), named.
CREATE FUNCTION tenancy.verify_isolation()
RETURNS TABLE(check_name text, object text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH RECURSIVE
isolated AS (
    SELECT t.tbl::oid AS root, t.tenant_column
      FROM tenancy.tenant_tables t
     WHERE t.isolated AND EXISTS (SELECT FROM pg_class c WHERE c.oid = t.tbl::oid)
),
-- Every relation of an isolated table's tree: itself and its partitions at any
-- depth (pg_partition_tree lists nothing for a plain table, hence the UNION).
tree AS (
    SELECT i.root, i.root AS relid, 0 AS level, i.tenant_column FROM isolated i
    UNION
    SELECT i.root, p.relid::oid, p.level, i.tenant_column
      FROM isolated i, pg_partition_tree(i.root::regclass) p
),
-- The expected policy's expression, as PostgreSQL prints it for each table.
ours AS (
    SELECT t.relid, t.level, t.tenant_column, c.relrowsecurity, c.relforcerowsecurity, c.relowner, c.relacl,
           p.polcmd, p.polpermissive, p.polroles,
           pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
      FROM tree t
      JOIN pg_class c ON c.oid = t.relid
      LEFT JOIN pg_policy p ON p.polrelid = t.relid AND p.polname = 'tenancy_isolation'
),
-- Views and materialized views reading an isolated table, directly or
-- through views that run with their reader's rights (security_invoker).
readers(view, base) AS (
    SELECT DISTINCT r.ev_class, t.relid
      FROM tree t
      JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.relid AND d.classid = 'pg_rewrite'::regclass
      JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> t.relid
    UNION
    SELECT r.ev_class, x.base
      FROM readers x
      JOIN pg_class v ON v.oid = x.view AND v.relkind = 'v'
                     AND EXISTS (SELECT FROM unnest(v.reloptions) o WHERE o ~* '^security_invoker=(true|on|yes|1)$')
      JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = x.view AND d.classid = 'pg_rewrite'::regclass
      JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> x.view
),
bypassers AS (
    SELECT oid AS role FROM pg_roles WHERE rolsuper OR rolbypassrls
),
extension_objects AS (
    SELECT d.objid FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
),
findings(check_name, object, detail) AS (
    -- The isolated table itself, and each partition (a partition queried by
    -- name is governed by its own row-level security, not its parent's).
    SELECT CASE WHEN o.level = 0 THEN 'isolation_incomplete' ELSE 'partition_not_isolated' END,
           o.relid::regclass::text,
           concat_ws('; ',
               CASE WHEN NOT o.relrowsecurity THEN 'row-level security is disabled' END,
               CASE WHEN NOT o.relforcerowsecurity THEN 'row-level security is not forced, so the owner bypasses it' END,
               CASE WHEN o.polcmd IS NULL THEN 'policy tenancy_isolation is missing' END)
      FROM ours o
     WHERE NOT o.relrowsecurity OR NOT o.relforcerowsecurity OR o.polcmd IS NULL
    UNION ALL
    -- Our policy, changed: for some commands or roles only, restrictive, or
    -- comparing something else than the tenant column with current_tenant().
    SELECT 'policy_changed', o.relid::regclass::text,
           format('policy tenancy_isolation is %s FOR %s TO %s USING (%s) WITH CHECK (%s); expected permissive, for all commands, to PUBLIC, comparing %I with tenancy.current_tenant() both ways',
                  CASE WHEN o.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                  CASE o.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' ELSE 'DELETE' END,
                  (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ') FROM unnest(o.polroles) r),
                  o.qual, o.withcheck, o.tenant_column)
      FROM ours o
     WHERE o.polcmd IS NOT NULL
       AND (o.polcmd <> '*' OR NOT o.polpermissive OR o.polroles <> '{0}'::oid[]
            OR o.qual IS DISTINCT FROM o.withcheck
            OR o.qual IS DISTINCT FROM format('(%s = ( SELECT tenancy.current_tenant() AS current_tenant))', quote_ident(o.tenant_column)))
    UNION ALL
    -- Other permissive policies are OR-ed with ours: each widens what a tenant sees.
    SELECT 'extra_permissive_policy', o.relid::regclass::text,
           format('permissive policy %I also grants %s to %s: permissive policies are OR-ed, so it widens what each tenant sees (create it AS RESTRICTIVE)',
                  p.polname,
                  CASE p.polcmd WHEN '*' THEN 'every command' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' ELSE 'DELETE' END,
                  (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ') FROM unnest(p.polroles) r))
      FROM ours o
      JOIN pg_policy p ON p.polrelid = o.relid AND p.polpermissive AND p.polname <> 'tenancy_isolation'
    UNION ALL
    -- A view runs with its owner's rights unless it is security_invoker, and a
    -- materialized view holds whatever its owner saw when it was refreshed.
    -- Masked views (tenancy.create_masked_view) filter on the tenant themselves.
    (SELECT DISTINCT ON (v.oid)
           CASE WHEN v.relkind = 'm' THEN 'materialized_view_over_isolated_table' ELSE 'view_runs_as_owner' END,
           v.oid::regclass::text,
           format('%s %s with the rights of its owner %s%s',
                  CASE WHEN v.relkind = 'm' THEN 'stores rows of' ELSE 'reads' END,
                  x.base::regclass, v.relowner::regrole,
                  CASE WHEN v.relowner IN (SELECT role FROM bypassers) THEN ', who bypasses row-level security: every tenant''s rows'
                       WHEN v.relkind = 'm' THEN ': the rows of whichever tenant was set at refresh, for every reader'
                       ELSE ' (ALTER VIEW ... SET (security_invoker = true) makes it use its reader''s)' END)
      FROM readers x
      JOIN pg_class v ON v.oid = x.view AND v.relkind IN ('v', 'm')
     WHERE (v.relkind = 'm' OR NOT EXISTS (SELECT FROM unnest(v.reloptions) o WHERE o ~* '^security_invoker=(true|on|yes|1)$'))
       AND NOT EXISTS (SELECT FROM tenancy.masked_views m WHERE m.view::oid = v.oid)
     ORDER BY v.oid, x.base::regclass::text)
    UNION ALL
    -- A SECURITY DEFINER function runs with its owner's rights: an owner who
    -- bypasses row-level security reads every tenant's rows through it.
    (SELECT DISTINCT ON (p.oid) 'definer_function_reads_isolated_table', p.oid::regprocedure::text,
           format('SECURITY DEFINER function owned by %s%s names isolated table %s',
                  p.proowner::regrole,
                  CASE WHEN p.proowner IN (SELECT role FROM bypassers) THEN ' (who bypasses row-level security)' ELSE '' END,
                  c.oid::regclass)
      FROM pg_proc p
      JOIN isolated i ON true
      JOIN pg_class c ON c.oid = i.root
     WHERE p.prosecdef
       AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND p.oid NOT IN (SELECT objid FROM extension_objects)
       AND (p.prosrc ~* ('\m' || regexp_replace(c.relname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '\M')
            OR EXISTS (SELECT FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid))
     ORDER BY p.oid, c.oid::regclass::text)
    UNION ALL
    -- Every query of an isolated table filters on its tenant column, and
    -- retention, purge and statistics group by it: without an index starting
    -- with it, each one reads the whole table.
    SELECT 'tenant_column_not_indexed', t.tbl::text,
           format('no index starts with tenant column %I', t.tenant_column)
      FROM tenancy.tenant_tables t
      JOIN pg_attribute a ON a.attrelid = t.tbl::oid AND a.attname = t.tenant_column AND NOT a.attisdropped
     WHERE NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = t.tbl::oid AND x.indkey[0] = a.attnum)
    UNION ALL
    -- TRUNCATE ignores row-level security: one tenant's session would empty
    -- every tenant's rows.
    SELECT 'truncate_granted', o.relid::regclass::text,
           format('TRUNCATE is granted to %s; it ignores row-level security and empties every tenant''s rows',
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END)
      FROM ours o, aclexplode(o.relacl) g
     WHERE g.privilege_type = 'TRUNCATE' AND g.grantee <> o.relowner
    UNION ALL
    SELECT 'role_bypasses_rls', quote_ident(r.rolname),
           'role has BYPASSRLS: no isolation policy applies to it'
      FROM pg_roles r
     WHERE r.rolbypassrls AND NOT r.rolsuper
    UNION ALL
    -- The owner of an isolated table can turn row-level security off or drop
    -- the policy: an application that logs in as the owner is one statement
    -- away from every tenant's rows. Own tables with a role that cannot log in.
    (SELECT DISTINCT ON (o.relid) 'app_role_owns_isolated_table', o.relid::regclass::text,
           format('owned by %s, which %s: an owner can disable row-level security or drop the policy',
                  o.relowner::regrole,
                  concat_ws(' and ',
                      CASE WHEN r.rolcanlogin THEN 'can log in' END,
                      CASE WHEN EXISTS (SELECT FROM tenancy.role_bindings b WHERE b.role::oid = r.oid) THEN 'is bound to tenants' END))
      FROM ours o
      JOIN pg_roles r ON r.oid = o.relowner
     WHERE o.level = 0 AND NOT r.rolsuper
       AND (r.rolcanlogin OR EXISTS (SELECT FROM tenancy.role_bindings b WHERE b.role::oid = r.oid))
     ORDER BY o.relid)
    UNION ALL
    SELECT 'binding_of_dropped_role', b.role::oid::text,
           'tenancy.role_bindings names a role that no longer exists (a new role could get its OID)'
      FROM tenancy.role_bindings b
     WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = b.role::oid)
)
SELECT f.check_name, f.object, f.detail FROM findings f ORDER BY f.check_name, f.object
$$;
COMMENT ON FUNCTION tenancy.verify_isolation() IS
    'What breaks tenant isolation, one row per finding naming the object: tables and partitions without forced row-level security or the policy, changed or widening policies, views and SECURITY DEFINER functions that read isolated tables with their owner''s rights, unindexed tenant columns, TRUNCATE grants, BYPASSRLS roles, application roles owning isolated tables. No row: nothing found.';
GRANT EXECUTE ON FUNCTION tenancy.verify_isolation() TO PUBLIC;

INSERT INTO tenancy.health_thresholds
    (check_name, warn_threshold, crit_threshold, higher_is_worse, unit, source, description) VALUES
('isolation_findings', 1, NULL, true, 'findings',
 'pg_tenancy: any finding of tenancy.verify_isolation() (the checks of Supabase''s RLS linter, and more, inside the database)',
 'What tenancy.verify_isolation() finds that breaks tenant isolation: unforced or missing policies, owner-rights views, BYPASSRLS roles, TRUNCATE grants...');
