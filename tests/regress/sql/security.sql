-- Security (issue 15): tenants bound to roles by every path, pooler-safe
-- context, tenants from JWT claims, and verify_isolation() on planted problems.
-- (The append-only audit log is in audit.sql, crashes and XX000s in hardening.sql.)
\set VERBOSITY terse
SELECT tenancy.create_tenant('sec-a', 'Security A', id => '5ec0000a-0000-4000-8000-0000000000a1');
SELECT tenancy.create_tenant('sec-b', 'Security B', id => '5ec0000b-0000-4000-8000-0000000000b2');
SELECT tenancy.create_tenant('sec-c', 'Security C', id => '5ec0000c-0000-4000-8000-0000000000c3');
CREATE TABLE sec_docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
CREATE INDEX ON sec_docs (tenant_id);
INSERT INTO sec_docs VALUES (1, '5ec0000a-0000-4000-8000-0000000000a1', 'a1'), (2, '5ec0000b-0000-4000-8000-0000000000b2', 'b1'),
                            (3, '5ec0000c-0000-4000-8000-0000000000c3', 'c1');
SELECT tenancy.enable_isolation('sec_docs');
CREATE ROLE sec_app LOGIN;
CREATE ROLE sec_helper;
CREATE ROLE sec_member LOGIN IN ROLE sec_app;
GRANT sec_helper TO sec_app;
GRANT SELECT, INSERT ON sec_docs TO sec_app, sec_helper;
SELECT tenancy.define_resource('sec_calls');
SELECT tenancy.set_plan_limit('free', 'sec_calls', 10);

-- Binding: arguments are checked; binding again is a NOTICE.
SELECT tenancy.bind_role(NULL, ARRAY['5ec0000a-0000-4000-8000-0000000000a1'::uuid]);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.bind_role('sec_app', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.bind_role('sec_app', ARRAY['5ec0000a-0000-4000-8000-0000000000a1'::uuid, NULL]);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.bind_role('sec_app', ARRAY['ffffffff-0000-0000-0000-0000000000ff'::uuid]);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.bind_role(current_user::regrole, ARRAY['5ec0000a-0000-4000-8000-0000000000a1'::uuid]);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.bind_role('sec_app', ARRAY['5ec0000a-0000-4000-8000-0000000000a1', '5ec0000c-0000-4000-8000-0000000000c3']::uuid[]);
SELECT tenancy.bind_role('sec_app', ARRAY['5ec0000c-0000-4000-8000-0000000000c3', '5ec0000a-0000-4000-8000-0000000000a1']::uuid[]);
SELECT role, tenants FROM tenancy.role_bindings;

-- The bound role's own session: no path reaches tenant B.
SET SESSION AUTHORIZATION sec_app;
SELECT tenancy.set_tenant('5ec0000b-0000-4000-8000-0000000000b2');
\echo :LAST_ERROR_SQLSTATE
SET tenancy.tenant_id = '5ec0000b-0000-4000-8000-0000000000b2';
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('tenancy.tenant_id', '5ec0000b-0000-4000-8000-0000000000b2', true);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.find_tenant('sec-b');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.find_tenant('sec-a') AS own_tenant_found;
SELECT tenancy.consume('5ec0000b-0000-4000-8000-0000000000b2', 'sec_calls');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume('5ec0000a-0000-4000-8000-0000000000a1', 'sec_calls') AS consumed_own;
SELECT DISTINCT tenant_id FROM tenancy.quota_status() ORDER BY 1;
-- SET ROLE to an unbound role it is a member of lifts nothing.
SET ROLE sec_helper;
SELECT tenancy.set_tenant('5ec0000b-0000-4000-8000-0000000000b2');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Its own tenants work, by any path, and show only their rows.
SELECT tenancy.set_tenant('5ec0000c-0000-4000-8000-0000000000c3');
SELECT body FROM sec_docs;
SET tenancy.tenant_id = '5ec0000a-0000-4000-8000-0000000000a1';
SELECT body FROM sec_docs;
RESET tenancy.tenant_id;
SELECT body FROM sec_docs;
RESET SESSION AUTHORIZATION;
-- A member of the bound role is bound too.
SET SESSION AUTHORIZATION sec_member;
SELECT tenancy.set_tenant('5ec0000b-0000-4000-8000-0000000000b2');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
-- A tenant chosen first, then SET ROLE to the bound role: refused when used.
SELECT tenancy.set_tenant('5ec0000b-0000-4000-8000-0000000000b2');
SET ROLE sec_app;
SELECT body FROM sec_docs;
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenancy.clear_tenant();
-- A role setting naming another tenant is ignored at login, with a warning.
ALTER ROLE sec_app SET tenancy.tenant_id = '5ec0000b-0000-4000-8000-0000000000b2';
\c - sec_app
SELECT tenancy.current_tenant() IS NULL AS no_tenant;
\c - postgres
ALTER ROLE sec_app RESET tenancy.tenant_id;
-- Unbound, the role selects any active tenant again.
SELECT tenancy.unbind_role('sec_app');
SELECT tenancy.unbind_role('sec_app');
SET SESSION AUTHORIZATION sec_app;
SELECT tenancy.set_tenant('5ec0000b-0000-4000-8000-0000000000b2');
SELECT body FROM sec_docs;
SELECT tenancy.clear_tenant();
RESET SESSION AUTHORIZATION;

-- The tenant from a JWT claim (PostgREST's request.jwt.claims), checked like
-- set_tenant: bound tenants only, active, a uuid.
SELECT tenancy.bind_role('sec_app', ARRAY['5ec0000a-0000-4000-8000-0000000000a1'::uuid]);
SET tenancy.tenant_claim = 'app_metadata.tenant_id';
SET SESSION AUTHORIZATION sec_app;
SET tenancy.tenant_claim = 'tenant_id';
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "u1", "app_metadata": {"tenant_id": "5ec0000a-0000-4000-8000-0000000000a1"}}', true) IS NOT NULL AS claims_set;
SELECT tenancy.current_tenant(), body FROM sec_docs;
COMMIT;
SELECT tenancy.current_tenant() IS NULL AS gone_after_the_transaction;
BEGIN;
SELECT set_config('request.jwt.claims', '{"app_metadata": {"tenant_id": "5ec0000b-0000-4000-8000-0000000000b2"}}', true) IS NOT NULL AS forged;
SELECT body FROM sec_docs;
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"app_metadata": {"tenant_id": 42}}', true) IS NOT NULL AS wrong_type;
SELECT body FROM sec_docs;
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "u1"}', true) IS NOT NULL AS no_claim;
SELECT count(*) AS rows_without_tenant FROM sec_docs;
COMMIT;
RESET SESSION AUTHORIZATION;
RESET tenancy.tenant_claim;
SELECT tenancy.unbind_role('sec_app');

-- Pooler-safe context: with tenancy.require_local_context on (per role), a
-- session-level tenant or actor is refused, by set_tenant at once and by SET
-- or set_config when the transaction commits (which rolls it back).
ALTER ROLE sec_app SET tenancy.require_local_context = on;
\c - sec_app
SELECT tenancy.set_tenant('5ec0000a-0000-4000-8000-0000000000a1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_actor('user:1');
\echo :LAST_ERROR_SQLSTATE
SET tenancy.tenant_id = '5ec0000a-0000-4000-8000-0000000000a1';
\echo :LAST_ERROR_SQLSTATE
SHOW tenancy.tenant_id;
BEGIN;
SELECT set_config('tenancy.tenant_id', '5ec0000a-0000-4000-8000-0000000000a1', false) IS NOT NULL AS session_level;
SELECT body FROM sec_docs;
COMMIT;
SHOW tenancy.tenant_id;
BEGIN;
SELECT tenancy.set_tenant('5ec0000a-0000-4000-8000-0000000000a1', is_local => true);
SELECT tenancy.set_actor('user:1', is_local => true);
SELECT body FROM sec_docs;
COMMIT;
SELECT tenancy.current_tenant() IS NULL AS none_after_commit, tenancy.current_actor() IS NULL AS no_actor;
SET tenancy.require_local_context = off;
\echo :LAST_ERROR_SQLSTATE
\c - postgres
ALTER ROLE sec_app RESET tenancy.require_local_context;

-- verify_isolation(): a clean database gives no row; one of each planted
-- problem gives exactly those findings. In a database of its own, so that the
-- other suites' tables do not count.
CREATE DATABASE tenancy_verify;
\c tenancy_verify
SET client_min_messages = warning;
CREATE EXTENSION pg_tenancy;
CREATE TABLE clean (id int PRIMARY KEY, tenant_id uuid NOT NULL);
CREATE INDEX ON clean (tenant_id);
SELECT tenancy.enable_isolation('clean');
CREATE VIEW clean_view WITH (security_invoker = true) AS SELECT * FROM clean;
SELECT count(*) AS findings_when_clean FROM tenancy.verify_isolation();
-- The problems.
CREATE TABLE t_rls_off (id int, tenant_id uuid);
CREATE INDEX ON t_rls_off (tenant_id);
SELECT tenancy.enable_isolation('t_rls_off');
ALTER TABLE t_rls_off DISABLE ROW LEVEL SECURITY;
CREATE TABLE t_not_forced (id int, tenant_id uuid);
CREATE INDEX ON t_not_forced (tenant_id);
SELECT tenancy.enable_isolation('t_not_forced');
ALTER TABLE t_not_forced NO FORCE ROW LEVEL SECURITY;
CREATE TABLE t_policy_gone (id int, tenant_id uuid);
CREATE INDEX ON t_policy_gone (tenant_id);
SELECT tenancy.enable_isolation('t_policy_gone');
DROP POLICY tenancy_isolation ON t_policy_gone;
CREATE TABLE t_policy_changed (id int, tenant_id uuid);
CREATE INDEX ON t_policy_changed (tenant_id);
SELECT tenancy.enable_isolation('t_policy_changed');
ALTER POLICY tenancy_isolation ON t_policy_changed USING (true);
CREATE TABLE t_extra_policy (id int, tenant_id uuid);
CREATE INDEX ON t_extra_policy (tenant_id);
SELECT tenancy.enable_isolation('t_extra_policy');
CREATE POLICY everyone_reads ON t_extra_policy FOR SELECT USING (true);
CREATE TABLE t_parted (at date NOT NULL, tenant_id uuid) PARTITION BY RANGE (at);
CREATE INDEX ON t_parted (tenant_id);
CREATE TABLE t_parted_2026 PARTITION OF t_parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT tenancy.enable_isolation('t_parted');
ALTER TABLE t_parted_2026 NO FORCE ROW LEVEL SECURITY;
CREATE VIEW v_owner_rights AS SELECT * FROM clean;
CREATE MATERIALIZED VIEW mv_snapshot AS SELECT * FROM clean;
CREATE FUNCTION f_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS 'SELECT count(*) FROM clean';
CREATE TABLE t_unindexed (id int, tenant_id uuid);
SELECT tenancy.register_table('t_unindexed');
CREATE ROLE sec_truncater;
GRANT TRUNCATE ON clean TO sec_truncater;
CREATE ROLE sec_bypass BYPASSRLS;
CREATE ROLE sec_owner LOGIN;
CREATE TABLE t_app_owned (id int, tenant_id uuid);
CREATE INDEX ON t_app_owned (tenant_id);
ALTER TABLE t_app_owned OWNER TO sec_owner;
SELECT tenancy.enable_isolation('t_app_owned');
RESET client_min_messages;
SELECT * FROM tenancy.verify_isolation();
-- Any role may run it, and health_check() counts the findings.
SET ROLE sec_truncater;
SELECT count(*) AS findings_seen_by_any_role FROM tenancy.verify_isolation();
RESET ROLE;
SELECT check_name, status, value, warn_threshold FROM tenancy.health_check() WHERE check_name = 'isolation_findings';
\c tenancy_regress
DROP DATABASE tenancy_verify;
DROP ROLE sec_truncater, sec_bypass, sec_owner;
DROP TABLE sec_docs;
DROP ROLE sec_member, sec_app, sec_helper;
