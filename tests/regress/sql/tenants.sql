-- Tenant registry and session context.
SELECT tenancy.create_tenant('acme', 'Acme Corp', id => '11111111-1111-1111-1111-111111111111');
SELECT tenancy.create_tenant('globex', 'Globex', 'free', '22222222-2222-2222-2222-222222222222');
SELECT tenancy.create_tenant('initech', 'Initech') IS NOT NULL AS created_with_random_id;
SELECT slug, name, plan, status, settings FROM tenancy.tenants ORDER BY slug;
SELECT tenancy.find_tenant('globex');

-- Bad input to create_tenant.
SELECT tenancy.create_tenant('acme', 'Another Acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('acme2', 'Dup id', 'free', '11111111-1111-1111-1111-111111111111');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('Bad Slug', 'Bad');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('hooli', 'Hooli', 'enterprise');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('hooli', '  ');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant(NULL, 'Hooli');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('hooli', 'Hooli', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.find_tenant('nobody');
\echo :LAST_ERROR_SQLSTATE

-- The session's tenant.
SELECT tenancy.current_tenant() IS NULL AS no_tenant_yet;
SELECT tenancy.set_tenant('11111111-1111-1111-1111-111111111111');
SELECT tenancy.current_tenant();
SHOW tenancy.tenant_id;
SELECT tenancy.set_tenant(tenancy.find_tenant('globex'));
SELECT tenancy.current_tenant();
SELECT tenancy.clear_tenant();
SELECT tenancy.current_tenant() IS NULL AS cleared;

-- is_local lasts until the end of the transaction; a rollback undoes a session set.
SELECT tenancy.set_tenant('11111111-1111-1111-1111-111111111111');
BEGIN;
SELECT tenancy.set_tenant('22222222-2222-2222-2222-222222222222', true);
SELECT tenancy.current_tenant();
COMMIT;
SELECT tenancy.current_tenant();
BEGIN;
SELECT tenancy.set_tenant('22222222-2222-2222-2222-222222222222');
ROLLBACK;
SELECT tenancy.current_tenant();
-- is_local outside a transaction block is a WARNING: it would last one statement.
SELECT tenancy.set_tenant('22222222-2222-2222-2222-222222222222', true);
SELECT tenancy.current_tenant();
-- RESET ALL (what a pooler's DISCARD ALL does) clears it.
RESET ALL;
SELECT tenancy.current_tenant() IS NULL AS reset_clears;

-- Unknown, suspended and NULL tenants are refused.
SELECT tenancy.set_tenant('99999999-9999-9999-9999-999999999999');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant('11111111-1111-1111-1111-111111111111', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend_tenant('22222222-2222-2222-2222-222222222222');
SELECT tenancy.suspend_tenant('22222222-2222-2222-2222-222222222222');
SELECT tenancy.set_tenant('22222222-2222-2222-2222-222222222222');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.activate_tenant('22222222-2222-2222-2222-222222222222');
SELECT tenancy.set_tenant('22222222-2222-2222-2222-222222222222');
SELECT tenancy.current_tenant();
SELECT tenancy.suspend_tenant('99999999-9999-9999-9999-999999999999');
\echo :LAST_ERROR_SQLSTATE
-- A superuser may SET the setting directly, but only to a UUID.
SET tenancy.tenant_id = 'not-a-uuid';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.tenant_id = '';
SELECT tenancy.current_tenant() IS NULL AS empty_is_none;
-- Our prefix is reserved: a typo is an error, not a silent new setting.
SET tenancy.tennant_id = 'x';
\echo :LAST_ERROR_SQLSTATE

-- The actor.
SELECT tenancy.current_actor() IS NULL AS no_actor_yet;
SELECT tenancy.set_actor('user:42');
SELECT tenancy.current_actor();
BEGIN;
SELECT tenancy.set_actor('job:nightly', is_local => true);
SELECT tenancy.current_actor();
COMMIT;
SELECT tenancy.current_actor();
SELECT tenancy.set_actor('');
SELECT tenancy.current_actor() IS NULL AS cleared;
SELECT tenancy.set_actor(NULL);
\echo :LAST_ERROR_SQLSTATE

-- An application role: no direct writes, no tenant admin, and a SET of the
-- tenant gets the checks set_tenant makes (here: no such tenant, 22023).
CREATE ROLE tenancy_app_role;
SET ROLE tenancy_app_role;
SELECT tenancy.set_tenant('11111111-1111-1111-1111-111111111111');
SELECT tenancy.current_tenant();
SET tenancy.tenant_id = '22222222-2222-2222-2222-222222222222';
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant('evil', 'Evil');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend_tenant('22222222-2222-2222-2222-222222222222');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.tenants;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.plans (name) VALUES ('gold');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.find_tenant('acme');
RESET ROLE;
RESET ALL;
DROP ROLE tenancy_app_role;

-- A delegated administrator needs only EXECUTE.
CREATE ROLE tenancy_admin_role;
GRANT EXECUTE ON FUNCTION tenancy.create_tenant(text, text, text, uuid) TO tenancy_admin_role;
SET ROLE tenancy_admin_role;
SELECT tenancy.create_tenant('umbrella', 'Umbrella') IS NOT NULL AS delegated_create;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenancy.create_tenant(text, text, text, uuid) FROM tenancy_admin_role;
DROP ROLE tenancy_admin_role;

-- The built-in plan can be edited; INSERTing it again (as pg_restore does) merges.
UPDATE tenancy.plans SET limits = '{"seats": 3}' WHERE name = 'free';
INSERT INTO tenancy.plans (name, limits, description) VALUES ('free', '{"seats": 5}', 'Restored');
SELECT name, limits, description FROM tenancy.plans ORDER BY name;
INSERT INTO tenancy.plans (name) VALUES ('pro');
INSERT INTO tenancy.plans (name) VALUES ('pro');
\echo :LAST_ERROR_SQLSTATE
