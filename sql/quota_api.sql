-- Quotas: comments and privileges.

-- Administration changes limits for everyone: administrators only.
REVOKE EXECUTE ON FUNCTION tenancy.define_resource(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.drop_resource(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.set_plan_limit(text, text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.clear_plan_limit(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.set_quota(uuid, text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.clear_quota(uuid, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.refresh_storage_usage() FROM PUBLIC;
-- enforce_row_quota and disable_row_quota check that the caller owns the table.

-- Resource definitions are not secret; limits and usage are read through the functions.
GRANT SELECT ON tenancy.quota_resources TO PUBLIC;

COMMENT ON FUNCTION tenancy.define_resource(text, text, text) IS
    'Defines a countable resource: period none (running total), minute, hour, day or month (UTC calendar windows), and its unit.';
COMMENT ON FUNCTION tenancy.drop_resource(text) IS
    'Removes a resource with its plan limits, tenant overrides and usage (refused while a row quota counts against it).';
COMMENT ON FUNCTION tenancy.set_plan_limit(text, text, bigint) IS
    'Sets a plan''s limit for a resource (plans.limits); applies to the plan''s tenants without their own quota.';
COMMENT ON FUNCTION tenancy.clear_plan_limit(text, text) IS
    'Removes a plan''s limit for a resource: its tenants without their own quota become unlimited for it.';
COMMENT ON FUNCTION tenancy.set_quota(uuid, text, bigint) IS
    'Gives one tenant its own limit for a resource, winning over its plan''s limit.';
COMMENT ON FUNCTION tenancy.clear_quota(uuid, text) IS
    'Removes a tenant''s own limit for a resource; the plan''s limit applies again.';
COMMENT ON FUNCTION tenancy.consume(uuid, text, bigint) IS
    'Atomically takes amount units if they fit under the tenant''s limit in the current period (true), else takes nothing (false).';
COMMENT ON FUNCTION tenancy.require(uuid, text, bigint) IS
    'As consume, but raises 53400 with the limit, the usage and the period end when the units do not fit.';
COMMENT ON FUNCTION tenancy.release(uuid, text, bigint) IS
    'Gives back up to amount units of the current period (usage never goes below zero).';
COMMENT ON FUNCTION tenancy.check_quota(uuid, text) IS
    'Whether the tenant has room left for the resource in the current period (or no limit); takes and locks nothing.';
COMMENT ON FUNCTION tenancy.quota_status(uuid) IS
    'Usage per tenant and resource in the current period, with limit, remaining units and percentage used.';
COMMENT ON FUNCTION tenancy.enforce_row_quota(regclass, text) IS
    'Makes a registered table''s rows count against a resource (period none) per tenant; INSERT past the limit fails with 53400.';
COMMENT ON FUNCTION tenancy.disable_row_quota(regclass) IS
    'Stops counting a table''s rows against its resource; usage already counted stays.';
COMMENT ON FUNCTION tenancy.refresh_storage_usage() IS
    'Measures bytes per tenant across registered tables (size shared by row bytes) into resource storage_bytes; returns the total.';
COMMENT ON FUNCTION tenancy._row_quota_statement() IS
    'Internal: statement trigger counting inserted, deleted and truncated rows against a row quota.';
COMMENT ON FUNCTION tenancy._row_quota_move() IS
    'Internal: row trigger moving a row''s unit when its tenant column changes.';
COMMENT ON FUNCTION tenancy._quota_terms_changed() IS
    'Internal: trigger that makes every backend forget its cached quota terms when limits, plans, tenants or resources change.';

-- Backends cache each tenant's terms (period and limit) across transactions;
-- any change to where they come from makes every backend forget them.
CREATE TRIGGER quota_terms_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.quota_resources
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._quota_terms_changed();
CREATE TRIGGER quota_terms_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.tenant_quotas
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._quota_terms_changed();
CREATE TRIGGER quota_terms_changed AFTER UPDATE OR DELETE OR TRUNCATE ON tenancy.plans
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._quota_terms_changed();
CREATE TRIGGER quota_terms_changed AFTER UPDATE OR DELETE OR TRUNCATE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._quota_terms_changed();
COMMENT ON TRIGGER quota_terms_changed ON tenancy.quota_resources IS 'Makes backends forget cached quota terms.';
COMMENT ON TRIGGER quota_terms_changed ON tenancy.tenant_quotas IS 'Makes backends forget cached quota terms.';
COMMENT ON TRIGGER quota_terms_changed ON tenancy.plans IS 'Makes backends forget cached quota terms.';
COMMENT ON TRIGGER quota_terms_changed ON tenancy.tenants IS 'Makes backends forget cached quota terms.';

-- CREATE TRIGGER needs EXECUTE on the function (firing does not): with it, any
-- role could attach these to a table of its own and spend or refund any
-- tenant's units. The extension creates its triggers as the extension owner.
REVOKE EXECUTE ON FUNCTION tenancy._row_quota_statement() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy._row_quota_move() FROM PUBLIC;
