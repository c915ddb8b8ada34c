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
            OR o.qual IS DISTINCT FROM format('(%s = ( SELECT tenancy.current_tenant() AS current_tenant))', quote_ident(o.tenant_column))
               -- the form a Citus database gets (no subquery in a distributed table's policy)
               AND o.qual IS DISTINCT FROM format('(%s = tenancy.current_tenant())', quote_ident(o.tenant_column)))
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
