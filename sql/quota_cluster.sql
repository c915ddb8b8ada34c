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
