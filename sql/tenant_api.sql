-- Tenants and context: comments, privileges and attributes pgrx cannot express.

COMMENT ON SCHEMA tenancy IS 'pg_tenancy: tenants and isolation, audit, partitions, quotas, masking, health, retention.';

-- Everyone needs the schema: isolation policies call tenancy.current_tenant() as the querying role.
GRANT USAGE ON SCHEMA tenancy TO PUBLIC;

-- current_tenant() and current_actor() take no argument and cannot fail on data,
-- so they cannot leak anything about a row: LEAKPROOF lets the planner treat them
-- like constants under security barriers.
ALTER FUNCTION tenancy.current_tenant() LEAKPROOF;
ALTER FUNCTION tenancy.current_actor() LEAKPROOF;

-- Creating, suspending and activating tenants changes the registry for everyone:
-- administrators only. GRANT EXECUTE on them to a delegated admin role.
REVOKE EXECUTE ON FUNCTION tenancy.create_tenant(text, text, text, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.suspend_tenant(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tenancy.activate_tenant(uuid) FROM PUBLIC;

COMMENT ON FUNCTION tenancy.create_tenant(text, text, text, uuid) IS
    'Creates a tenant (slug, display name, plan default ''free'', optional id) and returns its id.';
COMMENT ON FUNCTION tenancy.set_tenant(uuid, boolean) IS
    'Sets the session''s tenant (the transaction''s when is_local); unknown (22023) or suspended (55000) tenants are refused.';
COMMENT ON FUNCTION tenancy.clear_tenant(boolean) IS
    'Clears the session''s tenant (the transaction''s when is_local): isolated tables then show no rows.';
COMMENT ON FUNCTION tenancy.current_tenant() IS
    'The session''s tenant id, or NULL when none is set. Called by every isolation policy.';
COMMENT ON FUNCTION tenancy.set_actor(text, boolean) IS
    'Sets the application-level actor recorded by audit triggers; an empty string clears it.';
COMMENT ON FUNCTION tenancy.current_actor() IS 'The session''s actor, or NULL when none is set.';
COMMENT ON FUNCTION tenancy.find_tenant(text) IS
    'The id of the tenant with this slug (22023 when there is none, or when it is not one the session''s roles may select).';
COMMENT ON FUNCTION tenancy.suspend_tenant(uuid) IS 'Suspends a tenant: set_tenant refuses it until activate_tenant.';
COMMENT ON FUNCTION tenancy.activate_tenant(uuid) IS 'Re-activates a suspended tenant.';
COMMENT ON FUNCTION tenancy.register_table(regclass, name) IS
    'Records a tenant-scoped table and its uuid tenant column (default tenant_id) in tenancy.tenant_tables.';
COMMENT ON FUNCTION tenancy.unregister_table(regclass) IS
    'Removes a table''s registration; the table must not be isolated.';
COMMENT ON FUNCTION tenancy.enable_isolation(regclass, name) IS
    'Registers the table, enables and forces row-level security with policy tenancy_isolation: rows of current_tenant() only.';
COMMENT ON FUNCTION tenancy.disable_isolation(regclass) IS
    'Drops policy tenancy_isolation (and row-level security when no other policy needs it); keeps the registration.';

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
