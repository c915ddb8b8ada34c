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
