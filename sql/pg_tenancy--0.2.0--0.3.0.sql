-- pg_tenancy 0.2.0 -> 0.3.0
--
-- Run by ALTER EXTENSION pg_tenancy UPDATE. This file ships with the extension and,
-- once 0.3.0 is released, never changes (scripts/check-releases.sh). The upgrade
-- suite (scripts/test-upgrade.sh) proves that 0.2.0 updated with it matches a
-- fresh 0.3.0 install object by object and keeps every row of data.
--
-- 0.3.0 (docs/upgrading.md): Citus. The tenants' status, the role bindings and
-- the masking key get cluster copies that a Citus coordinator makes reference
-- tables (sql/cluster_catalog.sql); verify_isolation() accepts the policy form
-- Citus tables get; row quotas of distributed tables count in co-located
-- counters, against limits copied to every node (sql/quota_cluster.sql);
-- audited distributed tables log beside their shards, in
-- tenancy.cluster_audit_log, read through tenancy.audit_trail and
-- row_history (sql/audit_catalog.sql, sql/audit_api.sql); request-rate
-- limits and governed settings, tenancy.throttle and set_governance, and
-- per-tenant accounting, tenancy.tenant_activity, shown in tenant_stats and
-- two new health checks (sql/usage_catalog.sql, sql/usage_api.sql).
\echo Use "ALTER EXTENSION pg_tenancy UPDATE" to load this file. \quit

-- New C function of the 0.3.0 library.
CREATE FUNCTION tenancy."_cluster_copy_changed"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_cluster_copy_changed_wrapper';

-- sql/cluster_catalog.sql, as a fresh install runs it.
-- What every node of a Citus cluster must know: each tenant's status and
-- which roles are bound to which tenants (to check tenancy.tenant_id as
-- strictly as the coordinator does), and the masking key (pseudonymize runs
-- on the worker holding the rows). On a Citus coordinator pg_tenancy makes
-- these tables reference tables, copied to every node (docs/citus.md); on a
-- single node nobody reads them. Triggers keep them equal to tenancy.tenants,
-- tenancy.role_bindings and tenancy.masking_key, which stay the authority.
-- Not dumped: a restore rebuilds them through those triggers.

CREATE TABLE tenancy.cluster_tenants (
    id     uuid PRIMARY KEY,
    status text NOT NULL
);
COMMENT ON TABLE tenancy.cluster_tenants IS
    'Each tenant''s id and status, for the nodes of a Citus cluster (a reference table there); kept equal to tenancy.tenants by a trigger.';
COMMENT ON COLUMN tenancy.cluster_tenants.id IS 'The tenant''s id (tenancy.tenants.id).';
COMMENT ON COLUMN tenancy.cluster_tenants.status IS 'active or suspended (tenancy.tenants.status).';

-- Roles by name: role OIDs differ from node to node, names do not (Citus
-- creates and renames roles on every node).
CREATE TABLE tenancy.cluster_role_bindings (
    role_name text PRIMARY KEY,
    tenants   uuid[] NOT NULL
);
COMMENT ON TABLE tenancy.cluster_role_bindings IS
    'tenancy.role_bindings with roles by name, for the nodes of a Citus cluster (a reference table there); rebuilt by a trigger.';
COMMENT ON COLUMN tenancy.cluster_role_bindings.role_name IS 'The bound role''s name.';
COMMENT ON COLUMN tenancy.cluster_role_bindings.tenants IS 'The tenants it may select.';

CREATE FUNCTION tenancy._copy_tenant_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- whoever may change tenancy.tenants keeps the copy equal to it
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tenancy.cluster_tenants;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM tenancy.cluster_tenants WHERE id OPERATOR(pg_catalog.=) OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO tenancy.cluster_tenants (id, status) VALUES (NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_tenant_to_cluster() IS
    'Internal: keeps tenancy.cluster_tenants equal to tenancy.tenants.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_tenant_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR DELETE OR UPDATE OF id, status ON tenancy.tenants
    FOR EACH ROW EXECUTE FUNCTION tenancy._copy_tenant_to_cluster();
CREATE TRIGGER copy_truncate_to_cluster AFTER TRUNCATE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_tenant_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.tenants IS
    'Keeps tenancy.cluster_tenants (what Citus workers check tenants against) equal to this table.';
COMMENT ON TRIGGER copy_truncate_to_cluster ON tenancy.tenants IS
    'Empties tenancy.cluster_tenants with this table.';

CREATE FUNCTION tenancy._copy_role_bindings_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenancy.cluster_role_bindings;
    INSERT INTO tenancy.cluster_role_bindings (role_name, tenants)
    SELECT r.rolname, b.tenants
      FROM tenancy.role_bindings b
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) b.role::pg_catalog.oid;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_role_bindings_to_cluster() IS
    'Internal: rebuilds tenancy.cluster_role_bindings from tenancy.role_bindings.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_role_bindings_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_role_bindings_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.role_bindings IS
    'Rebuilds tenancy.cluster_role_bindings (what Citus workers check bound roles against) from this table.';

CREATE TABLE tenancy.cluster_masking_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);
REVOKE ALL ON tenancy.cluster_masking_key FROM PUBLIC;
COMMENT ON TABLE tenancy.cluster_masking_key IS
    'tenancy.masking_key, for the nodes of a Citus cluster (a reference table there); kept equal to it by a trigger. Readable by superusers only.';
COMMENT ON COLUMN tenancy.cluster_masking_key.id IS 'Always 1: there is one key.';
COMMENT ON COLUMN tenancy.cluster_masking_key.key IS 'The key (tenancy.masking_key.key).';

CREATE FUNCTION tenancy._copy_masking_key_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenancy.cluster_masking_key;
    INSERT INTO tenancy.cluster_masking_key (id, key) SELECT id, key FROM tenancy.masking_key;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_masking_key_to_cluster() IS
    'Internal: keeps tenancy.cluster_masking_key equal to tenancy.masking_key.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_masking_key_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.masking_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_masking_key_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.masking_key IS
    'Keeps tenancy.cluster_masking_key (the key Citus workers pseudonymize with) equal to this table.';
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_masking_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._masking_key_changed();
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_masking_key IS
    'Makes every backend of this node read the masking key again.';

-- Every node forgets what it cached of tenants and bindings when its copy
-- changes (on a Citus worker the copy is all it has).
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._cluster_copy_changed();
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._cluster_copy_changed();
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_tenants IS
    'Makes every backend of this node reload the tenants and bindings it cached.';
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_role_bindings IS
    'Makes every backend of this node reload the bindings it cached.';

-- The copies start equal to what is there already (an update from 0.2.0).
INSERT INTO tenancy.cluster_masking_key (id, key) SELECT id, key FROM tenancy.masking_key;
INSERT INTO tenancy.cluster_tenants (id, status) SELECT id, status FROM tenancy.tenants;
INSERT INTO tenancy.cluster_role_bindings (role_name, tenants)
SELECT r.rolname, b.tenants
  FROM tenancy.role_bindings b
  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) b.role::pg_catalog.oid;
COMMENT ON FUNCTION tenancy._cluster_copy_changed() IS
    'Internal: the trigger that makes a node reload the tenants and bindings it cached when its cluster copy changes.';
REVOKE EXECUTE ON FUNCTION tenancy._cluster_copy_changed() FROM PUBLIC;

-- verify_isolation() accepts the policy without a subquery (Citus databases).
CREATE OR REPLACE FUNCTION tenancy.verify_isolation()
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

-- health_check() on a Citus coordinator reports the workers
-- (src/stats/cluster.rs); cluster_health() lists each worker's figures.
CREATE FUNCTION tenancy."cluster_health"() RETURNS TABLE (
	"node" TEXT,  /* String */
	"port" INT,  /* i32 */
	"reachable" bool,  /* bool */
	"check_name" TEXT,  /* Option < String > */
	"status" TEXT,  /* String */
	"value" NUMERIC,  /* Option < AnyNumeric > */
	"detail" TEXT  /* String */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_health_wrapper';
COMMENT ON FUNCTION tenancy.cluster_health() IS
    'On a Citus coordinator: each worker''s connection, wraparound and replication figures, judged against the thresholds of the same checks on the coordinator; a worker that refuses connections is one critical row. No rows elsewhere.';

INSERT INTO tenancy.health_thresholds
    (check_name, warn_threshold, crit_threshold, higher_is_worse, unit, source, description) VALUES
('cluster_unreachable_nodes', NULL, 1, true, 'nodes',
 'pg_tenancy: a Citus worker that refuses connections fails every query that touches its shards (citus_check_connection_to_node)',
 'On a Citus coordinator: active primary workers that do not accept a connection within 5 s. The cluster_<check> rows that follow it judge each worker with <check>''s thresholds.');

-- tenant_stats() counts the rows of distributed tables on the workers.
CREATE FUNCTION tenancy._citus_tenant_shares()
RETURNS TABLE(tenant_id uuid, registered oid, reltuples float8, bytes bigint, analyzed timestamptz, share float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH leaves AS (
        SELECT tt.tbl::oid AS registered, tt.tenant_column, coalesce(p.relid, tt.tbl)::regclass AS leaf
          FROM tenancy.tenant_tables tt
          LEFT JOIN LATERAL (SELECT t.relid FROM pg_partition_tree(tt.tbl) t WHERE t.isleaf) p ON true
    ), citus_leaves AS (
        SELECT l.*, d.partmethod = 'h' AS by_tenant
          FROM leaves l JOIN pg_dist_partition d ON d.logicalrelid = l.leaf
    ), shard_stats AS (
        -- run_command_on_shards puts each shard's name where %s stands.
        SELECT l.registered, l.leaf, l.by_tenant, r.shardid, r.result::jsonb AS s
          FROM citus_leaves l
         CROSS JOIN LATERAL run_command_on_shards(l.leaf, format(
                 $q$SELECT json_build_object(
                        'reltuples', GREATEST(c.reltuples, 0), 'bytes', pg_total_relation_size(c.oid),
                        'analyzed', GREATEST(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)),
                        'null_frac', s.null_frac, 'mcv', s.most_common_vals::text, 'freqs', s.most_common_freqs,
                        'n_distinct', CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * GREATEST(c.reltuples, 0) ELSE s.n_distinct END)
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                                          AND s.attname = %L AND NOT s.inherited
                     WHERE c.oid = '%%s'::regclass$q$, l.tenant_column)) r
         WHERE r.success
    ), parsed AS (
        SELECT ss.registered, ss.leaf, ss.by_tenant, ss.shardid,
               (ss.s->>'reltuples')::float8 AS reltuples, (ss.s->>'bytes')::bigint AS bytes,
               (ss.s->>'analyzed')::timestamptz AS analyzed, (ss.s->>'null_frac')::float8 AS null_frac,
               (ss.s->>'mcv')::uuid[] AS mcv,
               -- JSON null where the shard has no statistics yet.
               ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(ss.s->'freqs')
                                                           WHEN 'array' THEN ss.s->'freqs' ELSE '[]' END)::float8) AS freqs,
               (ss.s->>'n_distinct')::float8 AS n_distinct
          FROM shard_stats ss
    )
    SELECT t.id, p.registered, p.reltuples, p.bytes, p.analyzed,
           CASE WHEN p.by_tenant AND p.shardid <> get_shard_id_for_distribution_column(p.leaf, t.id) THEN 0
                WHEN p.n_distinct IS NULL THEN NULL
                WHEN array_position(p.mcv, t.id) IS NOT NULL THEN p.freqs[array_position(p.mcv, t.id)]
                ELSE GREATEST(1 - p.null_frac - coalesce((SELECT sum(f) FROM unnest(p.freqs) f), 0), 0)
                     / GREATEST(p.n_distinct - coalesce(cardinality(p.mcv), 0), 1) END
      FROM tenancy.tenants t CROSS JOIN parsed p;
END
$fn$;
COMMENT ON FUNCTION tenancy._citus_tenant_shares() IS
    'Internal: on a Citus cluster, per tenant and registered table, the planner statistics of the shard holding the tenant''s rows and the tenant''s share of it (tenant_stats() adds them up).';
REVOKE EXECUTE ON FUNCTION tenancy._citus_tenant_shares() FROM PUBLIC;

-- An autocommit SELECT on a Citus cluster carries the tenant in its shard
-- queries (src/citus/carried.rs).
CREATE FUNCTION tenancy."_tenant_carried"(
	"tenant" uuid /* pgrx :: Uuid */
) RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_tenant_carried_wrapper';
COMMENT ON FUNCTION tenancy._tenant_carried(uuid) IS
    'Internal: the marker that carries the session''s tenant in a Citus shard query; the node that plans the query takes the tenant for the transaction, checked like SET LOCAL. True when the tenant is the session''s.';

-- How a session's tenant and actor reach the Citus workers (src/citus/context.rs):
-- a procedure, because Citus propagates a SET LOCAL run inside one.
CREATE PROCEDURE tenancy._carry_to_workers()
    LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_carry_to_workers';
COMMENT ON PROCEDURE tenancy._carry_to_workers() IS
    'Internal, pg_tenancy''s own (42501 for any other caller): runs SET LOCAL of the session''s tenant and actor, so that Citus sends them to every worker the transaction reaches, then the write it was called for.';

-- sql/quota_cluster.sql, as a fresh install runs it.
-- Row quotas on Citus distributed tables (docs/citus.md). A distributed
-- table's rows land in shards on the workers, where its counting triggers
-- fire, in the transaction that writes them, with no way back to the
-- coordinator's counters short of a network round trip per statement. So the
-- counters of those tables live beside the rows: tenancy.cluster_row_usage,
-- distributed by tenant and co-located with the counted tables (each
-- tenant's counter is in the shard on the node that holds its rows), and the
-- limits that apply travel to every node in tenancy.cluster_quota_limits, a
-- reference table kept equal to what tenants, plans and tenant_quotas say.
-- On a single node nobody reads them. Not dumped: the limits are rebuilt by
-- the triggers below, the counters by enforce_row_quota.

CREATE TABLE tenancy.cluster_quota_limits (
    tenant_id   uuid NOT NULL,
    resource    text NOT NULL,
    quota_limit bigint NOT NULL,
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenancy.cluster_quota_limits IS
    'Each tenant''s limit of each resource that rows of a table count against, for the nodes of a Citus cluster (a reference table there); kept equal to the tenant''s override or plan limit by triggers. No row: unlimited.';
COMMENT ON COLUMN tenancy.cluster_quota_limits.tenant_id IS 'The tenant.';
COMMENT ON COLUMN tenancy.cluster_quota_limits.resource IS 'A resource tenancy.row_quotas counts rows against.';
COMMENT ON COLUMN tenancy.cluster_quota_limits.quota_limit IS 'The limit that applies (tenant_quotas, else the plan''s).';

CREATE TABLE tenancy.cluster_row_usage (
    tenant_id uuid NOT NULL,
    resource  text NOT NULL,
    used      bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenancy.cluster_row_usage IS
    'Row counts of Citus distributed tables with a row quota, per tenant and resource: distributed by tenant_id and co-located with those tables, updated where their rows are written. Read it through tenancy.quota_status().';
COMMENT ON COLUMN tenancy.cluster_row_usage.tenant_id IS 'The tenant.';
COMMENT ON COLUMN tenancy.cluster_row_usage.resource IS 'The resource (period none).';
COMMENT ON COLUMN tenancy.cluster_row_usage.used IS 'Rows of the tenant in the tables counting against the resource.';

-- The limits of `tenants` (every tenant when NULL), for every resource that
-- rows count against: the same rule as quota_status (the tenant's own limit,
-- else its plan's, a JSON number rounded down).
CREATE FUNCTION tenancy._refresh_cluster_quota_limits(tenants uuid[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenancy.cluster_quota_limits
     WHERE tenants IS NULL OR tenant_id OPERATOR(pg_catalog.=) ANY (tenants);
    INSERT INTO tenancy.cluster_quota_limits (tenant_id, resource, quota_limit)
    SELECT t.id, r.name, l.quota_limit
      FROM tenancy.tenants t
     CROSS JOIN (SELECT DISTINCT q.resource AS name FROM tenancy.row_quotas q) r
     CROSS JOIN LATERAL (SELECT COALESCE(
               (SELECT o.quota_limit FROM tenancy.tenant_quotas o
                 WHERE o.tenant_id OPERATOR(pg_catalog.=) t.id AND o.resource OPERATOR(pg_catalog.=) r.name),
               (SELECT CASE WHEN pg_catalog.jsonb_typeof(p.limits OPERATOR(pg_catalog.->) r.name) OPERATOR(pg_catalog.=) 'number'
                            THEN pg_catalog.floor((p.limits OPERATOR(pg_catalog.->>) r.name)::pg_catalog.numeric)::pg_catalog.int8 END
                  FROM tenancy.plans p WHERE p.name OPERATOR(pg_catalog.=) t.plan)) AS quota_limit) l
     WHERE (tenants IS NULL OR t.id OPERATOR(pg_catalog.=) ANY (tenants))
       AND l.quota_limit IS NOT NULL;
END
$$;
COMMENT ON FUNCTION tenancy._refresh_cluster_quota_limits(uuid[]) IS
    'Internal: rewrites tenancy.cluster_quota_limits for the given tenants (all when NULL).';
REVOKE EXECUTE ON FUNCTION tenancy._refresh_cluster_quota_limits(uuid[]) FROM PUBLIC;

CREATE FUNCTION tenancy._cluster_quota_limits_changed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Only a Citus coordinator: a worker's catalogs of tenants and quotas
    -- are not the authority (and its copy of the limits is written by
    -- Citus, from the coordinator).
    -- (Two statements: PL/pgSQL plans the second only where Citus is.)
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_local_group g WHERE g.groupid OPERATOR(pg_catalog.=) 0) THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'tenants' THEN
        PERFORM tenancy._refresh_cluster_quota_limits(ARRAY[CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD.id ELSE NEW.id END]);
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'tenant_quotas' THEN
        PERFORM tenancy._refresh_cluster_quota_limits(CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[NEW.tenant_id]
            WHEN 'DELETE' THEN ARRAY[OLD.tenant_id]
            ELSE ARRAY[OLD.tenant_id, NEW.tenant_id] END);
    ELSIF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'plans' THEN
        PERFORM tenancy._refresh_cluster_quota_limits(ARRAY(
            SELECT t.id FROM tenancy.tenants t WHERE t.plan OPERATOR(pg_catalog.=) NEW.name));
    ELSE
        PERFORM tenancy._refresh_cluster_quota_limits(NULL);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._cluster_quota_limits_changed() IS
    'Internal: keeps tenancy.cluster_quota_limits equal to the limits that apply, on a database with Citus.';
REVOKE EXECUTE ON FUNCTION tenancy._cluster_quota_limits_changed() FROM PUBLIC;

CREATE TRIGGER cluster_quota_limits AFTER INSERT OR DELETE OR UPDATE OF id, plan ON tenancy.tenants
    FOR EACH ROW EXECUTE FUNCTION tenancy._cluster_quota_limits_changed();
CREATE TRIGGER cluster_quota_limits AFTER INSERT OR DELETE OR UPDATE ON tenancy.tenant_quotas
    FOR EACH ROW EXECUTE FUNCTION tenancy._cluster_quota_limits_changed();
CREATE TRIGGER cluster_quota_limits AFTER UPDATE OF limits ON tenancy.plans
    FOR EACH ROW EXECUTE FUNCTION tenancy._cluster_quota_limits_changed();
CREATE TRIGGER cluster_quota_limits AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON tenancy.row_quotas
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._cluster_quota_limits_changed();
COMMENT ON TRIGGER cluster_quota_limits ON tenancy.tenants IS
    'Keeps the tenant''s rows of tenancy.cluster_quota_limits (what Citus workers check row quotas against) current.';
COMMENT ON TRIGGER cluster_quota_limits ON tenancy.tenant_quotas IS
    'Keeps the tenant''s rows of tenancy.cluster_quota_limits current.';
COMMENT ON TRIGGER cluster_quota_limits ON tenancy.plans IS
    'Keeps the rows of tenancy.cluster_quota_limits of the plan''s tenants current.';
COMMENT ON TRIGGER cluster_quota_limits ON tenancy.row_quotas IS
    'Rebuilds tenancy.cluster_quota_limits when the resources rows count against change.';

-- Audit on Citus (src/audit/cluster.rs): the cluster log, from
-- sql/audit_catalog.sql as a fresh install runs it.
-- On a Citus cluster the audit rows of tables distributed by their tenant
-- column are written on the node that holds the changed shard, in the same
-- transaction: into tenancy.cluster_audit_log, distributed by tenant_id and
-- co-located with those tables (docs/citus.md). enable_audit distributes it
-- the first time it audits such a table; on one node it stays empty, without
-- partitions. Same columns, in the same order, as tenancy.audit_log; ids
-- carry the node group they were written on (see src/audit/cluster.rs).
-- Nobody holds a privilege on it: roles read it through tenancy.audit_trail.
-- The log's columns, without its id default (ids are given by the
-- trigger) and with a tenant always (the distribution column).
CREATE TABLE tenancy.cluster_audit_log (LIKE tenancy.audit_log) PARTITION BY RANGE (logged_at);
ALTER TABLE tenancy.cluster_audit_log ALTER COLUMN tenant_id SET NOT NULL,
    ADD CHECK (op IN ('INSERT', 'UPDATE', 'DELETE'));
COMMENT ON TABLE tenancy.cluster_audit_log IS
    'On Citus: the audit rows of distributed tables, written beside the changed shard; distributed by tenant_id, monthly partitions on every node. Read through tenancy.audit_trail.';
COMMENT ON COLUMN tenancy.cluster_audit_log.id IS 'Unique id of the audit row in the cluster: (node group + 1) * 2^52 plus a number from that node''s tenancy.audit_log_id_seq.';
COMMENT ON COLUMN tenancy.cluster_audit_log.logged_at IS 'When the audited statement finished its changes on the shard (the worker''s clock).';
COMMENT ON COLUMN tenancy.cluster_audit_log.tenant_id IS 'The row''s tenant (the table''s distribution column).';
COMMENT ON COLUMN tenancy.cluster_audit_log.table_name IS 'The audited distributed table, schema-qualified and quoted as needed (not the shard).';
COMMENT ON COLUMN tenancy.cluster_audit_log.op IS 'INSERT, UPDATE or DELETE (TRUNCATE is logged on the coordinator, in tenancy.audit_log).';
COMMENT ON COLUMN tenancy.cluster_audit_log.record_key IS 'The changed record''s primary-key (or replica identity) values, as a JSON object.';
COMMENT ON COLUMN tenancy.cluster_audit_log.old_row IS 'The row before the change (UPDATE, DELETE), excluded columns left out.';
COMMENT ON COLUMN tenancy.cluster_audit_log.new_row IS 'The row after the change (INSERT, UPDATE), excluded columns left out.';
COMMENT ON COLUMN tenancy.cluster_audit_log.changed_cols IS 'UPDATE: the audited columns whose values changed, in table order.';
COMMENT ON COLUMN tenancy.cluster_audit_log.actor IS 'tenancy.current_actor() (set_actor on the coordinator reaches the workers), else the role the coordinator connected as.';
COMMENT ON COLUMN tenancy.cluster_audit_log.application_name IS 'The application_name of the connection that wrote the shard (Citus names its own).';
COMMENT ON COLUMN tenancy.cluster_audit_log.client_addr IS 'The address of the connection that wrote the shard (the coordinator''s).';
COMMENT ON COLUMN tenancy.cluster_audit_log.txid IS 'The top-level transaction id on the node that wrote the row (the node group in id tells which).';
COMMENT ON COLUMN tenancy.cluster_audit_log.old_record_key IS 'UPDATE that changed the key: the record''s key before it; else NULL.';
REVOKE ALL ON tenancy.cluster_audit_log FROM PUBLIC;

-- The cluster log keeps what the log keeps: whatever retention is set on
-- tenancy.audit_log's partition set applies to it too, on every node (its
-- partitions are distributed, so dropping one on the coordinator drops it
-- on every worker).
CREATE FUNCTION tenancy._cluster_audit_retention() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE tenancy.partition_sets c
       SET retention = NEW.retention, retention_mode = NEW.retention_mode
     WHERE c.parent OPERATOR(pg_catalog.=) 'tenancy.cluster_audit_log'::pg_catalog.regclass
       AND (c.retention IS DISTINCT FROM NEW.retention OR c.retention_mode OPERATOR(pg_catalog.<>) NEW.retention_mode);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._cluster_audit_retention() IS
    'Internal: gives tenancy.cluster_audit_log the retention of tenancy.audit_log''s partition set.';
REVOKE EXECUTE ON FUNCTION tenancy._cluster_audit_retention() FROM PUBLIC;
CREATE TRIGGER cluster_audit_retention AFTER INSERT OR UPDATE OF retention, retention_mode ON tenancy.partition_sets
    FOR EACH ROW WHEN (NEW.parent OPERATOR(pg_catalog.=) 'tenancy.audit_log'::pg_catalog.regclass)
    EXECUTE FUNCTION tenancy._cluster_audit_retention();
COMMENT ON TRIGGER cluster_audit_retention ON tenancy.partition_sets IS
    'Retention set on tenancy.audit_log applies to tenancy.cluster_audit_log as well.';

-- From sql/audit_api.sql: who reads the cluster log, the view over both logs,
-- and row_history reading both.
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
CREATE FUNCTION tenancy."_cluster_audit_rows"(
	"tables" TEXT[], /* :: std :: option :: Option < Vec < String > > */
	"record_key" jsonb /* Option < pgrx :: JsonB > */
) RETURNS SETOF jsonb /* pgrx :: JsonB */
STABLE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_cluster_audit_rows_wrapper';
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

CREATE OR REPLACE FUNCTION tenancy.row_history(tbl regclass, record_key jsonb)
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

-- Usage (src/usage): request-rate limits and governed settings. New C
-- functions of the 0.3.0 library.
CREATE FUNCTION tenancy."throttle"(
	"tenant" uuid, /* Option < pgrx :: Uuid > */
	"resource" TEXT, /* Option < & str > */
	"cost" double precision DEFAULT 1 /* Option < f64 > */
) RETURNS bool /* error :: Result < bool > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'throttle_wrapper';
CREATE FUNCTION tenancy."throttle_or_raise"(
	"tenant" uuid, /* Option < pgrx :: Uuid > */
	"resource" TEXT, /* Option < & str > */
	"cost" double precision DEFAULT 1 /* Option < f64 > */
) RETURNS VOID /* error :: Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'throttle_or_raise_wrapper';
CREATE FUNCTION tenancy."reset_throttles"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'reset_throttles_wrapper';
CREATE FUNCTION tenancy."set_governance"(
	"setting" TEXT, /* Option < & str > */
	"value" TEXT, /* Option < & str > */
	"plan" TEXT DEFAULT NULL, /* Option < & str > */
	"tenant" uuid DEFAULT NULL /* Option < pgrx :: Uuid > */
) RETURNS VOID /* error :: Result < () > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_governance_wrapper';
CREATE FUNCTION tenancy."_usage_catalog_changed"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', '_usage_catalog_changed_wrapper';

CREATE FUNCTION tenancy."_tenant_activity"(
	"required" bool /* bool */
) RETURNS TABLE (
	"tenant_id" uuid,  /* Option < pgrx :: Uuid > */
	"period_start" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"calls" bigint,  /* i64 */
	"rows" bigint,  /* i64 */
	"exec_ms" double precision,  /* f64 */
	"cpu_ms" double precision,  /* f64 */
	"blks_hit" bigint,  /* i64 */
	"blks_read" bigint,  /* i64 */
	"wal_bytes" bigint,  /* i64 */
	"errors" bigint,  /* i64 */
	"period" TEXT,  /* & '_ str */
	"tenant_rank" INT,  /* Option < i32 > */
	"reset_at" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_tenant_activity_wrapper';
CREATE FUNCTION tenancy."reset_tenant_activity"() RETURNS timestamp with time zone /* Option < TimestampWithTimeZone > */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'reset_tenant_activity_wrapper';
CREATE FUNCTION tenancy."_running_statements"() RETURNS TABLE (
	"tenant_id" uuid,  /* pgrx :: Uuid */
	"running" INT,  /* i32 */
	"running_cap" bigint  /* Option < i64 > */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_running_statements_wrapper';

-- sql/usage_catalog.sql, as a fresh install runs it.
-- Usage: request-rate limits and governed settings (docs/usage.md). Both are
-- configuration (dumped); the buckets live in shared memory only.

CREATE TABLE tenancy.throttle_rates (
    resource        text NOT NULL CHECK (resource <> ''),
    plan            text REFERENCES tenancy.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    tenant_id       uuid REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0 AND rate_per_second < 'infinity'),
    burst           double precision NOT NULL CHECK (burst >= 1 AND burst < 'infinity'),
    CHECK ((plan IS NULL) <> (tenant_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (resource, plan, tenant_id)
);
COMMENT ON TABLE tenancy.throttle_rates IS
    'Request rates tenancy.throttle() admits, per resource, for a plan''s tenants or for one tenant (which wins over its plan).';
COMMENT ON COLUMN tenancy.throttle_rates.resource IS 'The name throttle() is called with (any text; not a quota resource).';
COMMENT ON COLUMN tenancy.throttle_rates.plan IS 'The plan whose tenants this rate applies to (NULL for a tenant''s own rate).';
COMMENT ON COLUMN tenancy.throttle_rates.tenant_id IS 'The tenant this rate applies to, whatever its plan (NULL for a plan''s rate).';
COMMENT ON COLUMN tenancy.throttle_rates.rate_per_second IS 'Tokens the bucket gains per second: the sustained rate.';
COMMENT ON COLUMN tenancy.throttle_rates.burst IS 'Tokens the bucket holds at most: what may be spent at once after a quiet spell.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.throttle_rates', '');

CREATE TABLE tenancy.governance (
    setting   text NOT NULL CHECK (setting IN ('statement_timeout', 'lock_timeout', 'work_mem',
                                          'max_parallel_workers_per_gather', 'max_running_statements')),
    value     text NOT NULL,
    plan      text REFERENCES tenancy.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    tenant_id uuid REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    CHECK ((plan IS NULL) <> (tenant_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (setting, plan, tenant_id)
);
COMMENT ON TABLE tenancy.governance IS
    'Settings set_tenant gives a tenant''s statements, for a plan''s tenants or for one tenant (which wins over its plan); tenancy.set_governance checks the values.';
COMMENT ON COLUMN tenancy.governance.setting IS 'statement_timeout, lock_timeout, work_mem, max_parallel_workers_per_gather, or max_running_statements (the most statements the tenant''s sessions run at once).';
COMMENT ON COLUMN tenancy.governance.value IS 'The value, as SET takes it (''5s'', ''64MB'', ''0''); a whole number for max_running_statements.';
COMMENT ON COLUMN tenancy.governance.plan IS 'The plan whose tenants get it (NULL for a tenant''s own value).';
COMMENT ON COLUMN tenancy.governance.tenant_id IS 'The tenant that gets it, whatever its plan (NULL for a plan''s value).';
SELECT pg_catalog.pg_extension_config_dump('tenancy.governance', '');

-- sql/usage_api.sql, as a fresh install runs it.
-- Usage: setting request rates and governed settings, and the comments and
-- privileges of the usage functions.

CREATE FUNCTION tenancy.set_throttle(resource text, rate_per_second double precision, burst double precision,
                                     plan text DEFAULT NULL, tenant uuid DEFAULT NULL)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO tenancy.throttle_rates (resource, plan, tenant_id, rate_per_second, burst)
    VALUES (set_throttle.resource, set_throttle.plan, set_throttle.tenant,
            set_throttle.rate_per_second, set_throttle.burst)
    ON CONFLICT (resource, plan, tenant_id)
    DO UPDATE SET rate_per_second = EXCLUDED.rate_per_second, burst = EXCLUDED.burst
$$;
COMMENT ON FUNCTION tenancy.set_throttle(text, double precision, double precision, text, uuid) IS
    'Sets the rate (tokens per second) and burst (most tokens at once) throttle() admits for resource, for a plan''s tenants or for one tenant: exactly one of plan and tenant.';

CREATE FUNCTION tenancy.clear_throttle(resource text, plan text DEFAULT NULL, tenant uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM tenancy.throttle_rates r
         WHERE r.resource = clear_throttle.resource
           AND r.plan IS NOT DISTINCT FROM clear_throttle.plan
           AND r.tenant_id IS NOT DISTINCT FROM clear_throttle.tenant
        RETURNING 1)
    SELECT EXISTS (SELECT FROM gone)
$$;
COMMENT ON FUNCTION tenancy.clear_throttle(text, text, uuid) IS
    'Removes the rate set for resource for the plan or the tenant; true if there was one.';

COMMENT ON FUNCTION tenancy.throttle(uuid, text, double precision) IS
    'Whether a request of tenant costing cost may go now: takes cost tokens from the tenant''s bucket for resource (shared memory, no lock wait, no WAL); true when no rate applies.';
COMMENT ON FUNCTION tenancy.throttle_or_raise(uuid, text, double precision) IS
    'As throttle, but raises 53400 with the rate and the wait when the request is over the rate.';
COMMENT ON FUNCTION tenancy.reset_throttles() IS
    'Empties every tenant''s buckets: they start full again (as after a restart).';
COMMENT ON FUNCTION tenancy._usage_catalog_changed() IS
    'Internal: makes every backend read the throttle rates and governed settings again.';
COMMENT ON FUNCTION tenancy.set_governance(text, text, text, uuid) IS
    'Sets the value set_tenant gives setting (statement_timeout, lock_timeout, work_mem, max_parallel_workers_per_gather), or the cap max_running_statements, for a plan''s tenants or for one tenant: exactly one of plan and tenant.';

CREATE FUNCTION tenancy.clear_governance(setting text, plan text DEFAULT NULL, tenant uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM tenancy.governance g
         WHERE g.setting = clear_governance.setting
           AND g.plan IS NOT DISTINCT FROM clear_governance.plan
           AND g.tenant_id IS NOT DISTINCT FROM clear_governance.tenant
        RETURNING 1)
    SELECT EXISTS (SELECT FROM gone)
$$;
COMMENT ON FUNCTION tenancy.clear_governance(text, text, uuid) IS
    'Removes the value set for setting for the plan or the tenant; true if there was one.';

REVOKE EXECUTE ON FUNCTION tenancy.set_throttle(text, double precision, double precision, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.clear_throttle(text, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.reset_throttles() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.set_governance(text, text, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.clear_governance(text, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._usage_catalog_changed() FROM PUBLIC;

-- Every backend remembers the rates and settings it used: a change of them,
-- or of a tenant's plan, makes them all read again.
CREATE TRIGGER throttle_rates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.throttle_rates
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._usage_catalog_changed();
CREATE TRIGGER throttle_rates_changed AFTER UPDATE OF plan OR DELETE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._usage_catalog_changed();
CREATE TRIGGER governance_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.governance
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._usage_catalog_changed();
COMMENT ON TRIGGER throttle_rates_changed ON tenancy.throttle_rates IS
    'Makes every backend read the rates again (tenancy.throttle() remembers them).';
COMMENT ON TRIGGER governance_changed ON tenancy.governance IS
    'Makes every backend read the governed settings again (set_tenant remembers them).';
COMMENT ON TRIGGER throttle_rates_changed ON tenancy.tenants IS
    'A tenant''s plan changed: every backend reads the throttle rates and governed settings again.';

-- Accounting (docs/usage.md): read by monitoring roles, reset by admins.
CREATE FUNCTION tenancy.tenant_activity()
RETURNS TABLE(tenant_id uuid, period_start timestamptz, calls bigint, rows bigint, exec_ms double precision,
              cpu_ms double precision, blks_hit bigint, blks_read bigint, wal_bytes bigint, errors bigint,
              period text, tenant_rank int, reset_at timestamptz)
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM tenancy._tenant_activity(true) $$;
COMMENT ON FUNCTION tenancy.tenant_activity() IS
    'What each tenant''s statements cost (calls, rows, executor and CPU time, shared blocks, WAL, errors), current and previous period (tenancy.activity_period): the top tenancy.activity_top tenants by tenancy.activity_rank_by, then one row (tenant_id NULL) for all the others. Needs pg_tenancy preloaded.';
COMMENT ON FUNCTION tenancy._tenant_activity(boolean) IS
    'Internal: tenant_activity(); where pg_tenancy is not preloaded, 55000 when required, else no rows (for tenant_stats and health checks).';
COMMENT ON FUNCTION tenancy.reset_tenant_activity() IS
    'Forgets every tenant''s accounting figures; returns when.';
COMMENT ON FUNCTION tenancy._running_statements() IS
    'Internal: per tenant with a running cap (max_running_statements), the statements its sessions run now and the cap.';
REVOKE EXECUTE ON FUNCTION tenancy.tenant_activity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.tenant_activity() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION tenancy._tenant_activity(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy._tenant_activity(boolean) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION tenancy._running_statements() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy._running_statements() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION tenancy.reset_tenant_activity() FROM PUBLIC;

-- tenant_stats() shows the running cap and the CPU of accounting: new
-- columns, so the function is made again (and granted again).
DROP FUNCTION tenancy.tenant_stats();
-- Per tenant, from planner statistics: pg_class.reltuples of each leaf table
-- times the tenant's share of its tenant column (most_common_vals, else the
-- rows outside them spread over the other distinct values). No table is read.
-- Most tenants are among no leaf's most common values, and their share of a
-- leaf is the same for all of them: it is summed once, and leaf by leaf only
-- for the tenants some leaf names (tenants x leaves terms would be millions).
CREATE FUNCTION tenancy.tenant_stats()
RETURNS TABLE(tenant_id uuid, slug text, tenant_name text, tables int, rows_estimate bigint, bytes_estimate bigint,
              stats_as_of timestamptz, audit_events_24h bigint, top_quota_resource text,
              top_quota_pct numeric, running_statements int, running_cap int,
              cpu_ms_recent double precision, cpu_share_pct numeric)
LANGUAGE sql VOLATILE
SECURITY DEFINER
-- The planner's estimate of the tenants x tables product is far above JIT's
-- thresholds; compiling it costs about a second, running it milliseconds.
SET jit = off
SET search_path = pg_catalog, pg_temp
AS $$
    WITH leaves AS (
        -- A plain table is its own leaf (pg_partition_tree lists partitions only).
        SELECT tt.tbl::oid AS registered, tt.tenant_column, coalesce(p.relid, tt.tbl) AS leaf
          FROM tenancy.tenant_tables tt
          LEFT JOIN LATERAL (SELECT t.relid FROM pg_partition_tree(tt.tbl) t WHERE t.isleaf) p ON true
    ), leaf_columns AS (
        SELECT l.registered, GREATEST(c.reltuples, 0)::float8 AS reltuples, pg_total_relation_size(l.leaf) AS bytes,
               GREATEST(pg_stat_get_last_analyze_time(l.leaf), pg_stat_get_last_autoanalyze_time(l.leaf)) AS analyzed,
               s.null_frac, s.most_common_vals::text::uuid[] AS mcv, s.most_common_freqs AS freqs,
               CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * GREATEST(c.reltuples, 0) ELSE s.n_distinct END AS n_distinct
          FROM leaves l
          JOIN pg_class c ON c.oid = l.leaf
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                              AND s.attname = l.tenant_column AND NOT s.inherited
    ), leaf_stats AS (
        -- other_share: a tenant's share outside the most common values; NULL
        -- without statistics.
        SELECT lc.registered, lc.reltuples, lc.bytes, lc.analyzed, lc.mcv, lc.freqs,
               (CASE WHEN lc.n_distinct IS NULL THEN NULL
                     ELSE GREATEST(1 - lc.null_frac - coalesce((SELECT sum(f) FROM unnest(lc.freqs) f), 0), 0)
                          / GREATEST(lc.n_distinct - coalesce(cardinality(lc.mcv), 0), 1) END)::float8 AS other_share
          FROM leaf_columns lc
    ), any_tenant AS (
        SELECT count(DISTINCT ls.registered)::int AS tables,
               sum(ls.reltuples * ls.other_share) AS rows, sum(ls.bytes * ls.other_share) AS bytes,
               min(ls.analyzed) AS analyzed
          FROM leaf_stats ls
    ), named_tenant AS (
        -- Tenants among some leaf's most common values, leaf by leaf.
        SELECT t.id, sum(ls.reltuples * ls.share) AS rows, sum(ls.bytes * ls.share) AS bytes
          FROM (SELECT DISTINCT m.id FROM leaf_stats ls, unnest(ls.mcv) m(id) WHERE ls.other_share IS NOT NULL) t
         CROSS JOIN LATERAL (
               SELECT l.reltuples, l.bytes,
                      CASE WHEN l.other_share IS NULL THEN NULL
                           ELSE coalesce(l.freqs[array_position(l.mcv, t.id)]::float8, l.other_share) END AS share
                 FROM leaf_stats l) ls
         GROUP BY t.id
    ), citus AS (
        -- Distributed tables: their shards' statistics, read on the workers.
        SELECT c.tenant_id, sum(c.reltuples * c.share) AS rows, sum(c.bytes * c.share) AS bytes,
               min(c.analyzed) AS analyzed
          FROM tenancy._citus_tenant_shares() c
         GROUP BY c.tenant_id
    ), per_tenant AS (
        SELECT t.id, a.tables,
               round(CASE WHEN coalesce(nt.rows, a.rows) IS NULL AND c.rows IS NULL THEN NULL
                          ELSE coalesce(coalesce(nt.rows, a.rows), 0) + coalesce(c.rows, 0) END)::bigint AS rows_estimate,
               round(CASE WHEN coalesce(nt.bytes, a.bytes) IS NULL AND c.bytes IS NULL THEN NULL
                          ELSE coalesce(coalesce(nt.bytes, a.bytes), 0) + coalesce(c.bytes, 0) END)::bigint AS bytes_estimate,
               LEAST(a.analyzed, c.analyzed) AS stats_as_of
          FROM tenancy.tenants t
         CROSS JOIN any_tenant a
          LEFT JOIN named_tenant nt ON nt.id = t.id
          LEFT JOIN citus c ON c.tenant_id = t.id
    ), audit AS (
        -- On Citus, distributed tables' rows are in the cluster log.
        SELECT a.tenant_id, count(*) AS events
          FROM (SELECT l.tenant_id FROM tenancy.audit_log l
                 WHERE l.logged_at >= statement_timestamp() - interval '24 hours'
                UNION ALL
                SELECT c.tenant_id FROM tenancy.cluster_audit_log c
                 WHERE c.logged_at >= statement_timestamp() - interval '24 hours') a
         GROUP BY a.tenant_id
    ), top_quota AS (
        SELECT DISTINCT ON (q.tenant_id) q.tenant_id, q.resource, q.pct_used
          FROM tenancy.quota_status() q
         WHERE q.pct_used IS NOT NULL
         ORDER BY q.tenant_id, q.pct_used DESC, q.resource
    ), activity AS (
        -- Accounting (pg_tenancy preloaded), both periods; tenants beyond the
        -- top are summed in the row without a tenant, so they show NULL.
        SELECT a.tenant_id, sum(a.cpu_ms) AS cpu_ms, sum(sum(a.cpu_ms)) OVER () AS all_ms
          FROM tenancy._tenant_activity(false) a
         GROUP BY a.tenant_id
    )
    SELECT t.id, t.slug, t.name,
           coalesce(p.tables, 0), p.rows_estimate, p.bytes_estimate, p.stats_as_of,
           coalesce(a.events, 0), q.resource, q.pct_used,
           CASE WHEN cap.value IS NOT NULL THEN coalesce(r.running, 0) END, cap.value,
           act.cpu_ms, round((100 * act.cpu_ms / nullif(act.all_ms, 0))::numeric, 1)
      FROM tenancy.tenants t
      LEFT JOIN per_tenant p ON p.id = t.id
      LEFT JOIN audit a ON a.tenant_id = t.id
      LEFT JOIN top_quota q ON q.tenant_id = t.id
      LEFT JOIN LATERAL (
          -- The tenant's own cap wins over its plan's.
          SELECT g.value::int AS value FROM tenancy.governance g
           WHERE g.setting = 'max_running_statements' AND (g.tenant_id = t.id OR g.plan = t.plan)
           ORDER BY g.tenant_id IS NULL LIMIT 1) cap ON true
      LEFT JOIN tenancy._running_statements() r ON r.tenant_id = t.id
      LEFT JOIN activity act ON act.tenant_id = t.id
     ORDER BY t.slug
$$;
COMMENT ON FUNCTION tenancy.tenant_stats() IS
    'Per tenant: registered tables, estimated rows and bytes in them (planner statistics, as fresh as the last ANALYZE: stats_as_of; on Citus those of the shards on the workers), audit rows in the last 24 hours, the highest quota use, the statements running now against its cap (max_running_statements), and the CPU time of its statements in the current and previous accounting period with its share of all tenants'' (tenant_activity(); NULL beyond the top tenants or without preloading).';
REVOKE EXECUTE ON FUNCTION tenancy.tenant_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.tenant_stats() TO pg_monitor;

INSERT INTO tenancy.health_thresholds
    (check_name, warn_threshold, crit_threshold, higher_is_worse, unit, source, description) VALUES
('tenants_at_running_cap', 1, NULL, true, 'tenants',
 'pg_tenancy: a tenant whose statements fill its cap (tenancy.governance max_running_statements) gets 53400 for the next one',
 'Tenants whose sessions run as many statements now as their cap allows.'),
('tenant_cpu_share', 50, NULL, true, 'percent',
 'pg_tenancy: Citus citus_stat_tenants ranks tenants by CPU; one tenant using half of it is the noisy neighbour to look at',
 'Largest share one tenant has of the CPU time of all tenants'' statements in the current and previous accounting period (tenancy.tenant_activity(); at least 2 tenants and 1 s of CPU).');
