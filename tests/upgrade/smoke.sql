-- The window between installing a new library and ALTER EXTENSION UPDATE: a
-- database still on an older release's SQL, filled by fill-V.sql, now served by
-- today's library. Every capability must keep working in it (or refuse with an
-- error that says to run the update, never crash). Uses only the 0.1.0 API.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT id AS acme FROM tenancy.tenants WHERE slug = 'acme' \gset
SELECT id AS globex FROM tenancy.tenants WHERE slug = 'globex' \gset
SELECT tenancy.create_tenant('hooli', 'Hooli') IS NOT NULL AS created;
SET ROLE upgrade_app;
SELECT tenancy.set_tenant(:'acme');
SELECT tenancy.current_tenant() = :'acme' AS tenant_set, tenancy.set_actor('user:smoke') IS NULL AS actor_set;
SELECT count(*) > 0 AS sees_own_rows, bool_and(tenant_id = :'acme') AS only_own_rows FROM public.projects;
INSERT INTO public.projects (name) VALUES ('smoke insert');
UPDATE public.projects SET name = 'smoke update' WHERE name = 'smoke insert';
DELETE FROM public.projects WHERE name = 'smoke update';
BEGIN;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT bool_and(tenant_id = :'globex') AS only_globex FROM public.projects;
COMMIT;
RESET ROLE;
SELECT tenancy.clear_tenant();
SELECT count(*) AS history_rows FROM tenancy.row_history('public.projects', '{"id": 1}');
SELECT tenancy.seal_audit() >= 3 AS sealed_new_rows;
SELECT bool_and(ok) AS chains_verify FROM tenancy.verify_audit();
SELECT tenancy.consume(:'acme', 'seats') AS consumed, tenancy.check_quota(:'acme', 'seats') AS room_left;
SELECT tenancy.release(:'acme', 'seats');
SELECT count(*) > 0 AS quota_rows FROM tenancy.quota_status(:'acme');
SELECT tenancy.mask_email('john.doe@example.com') AS email, tenancy.mask_partial('4111111111111111', 4, 4) AS partial,
       length(tenancy.pseudonymize('x')) AS token_length, tenancy.mask_ip('192.168.7.41') AS ip;
SELECT count(*) AS masked_rows FROM tenancy_masked.customers;
SELECT count(*) >= 0 AS maintenance_ran FROM tenancy.run_maintenance();
SELECT count(*) > 0 AS health_checks FROM tenancy.health_check();
SELECT tenancy.health() ? 'status' AS health_json;
SELECT tenancy.record_metrics() > 0 AS metrics_recorded;
SELECT length(tenancy.metrics_prometheus()) > 0 AS prometheus_text;
SELECT count(*) >= 0 AS stats FROM tenancy.tenant_stats();
SELECT count(*) > 0 AS preview FROM tenancy.retention_preview();
CALL tenancy.run_retention();
CALL tenancy.run_jobs();
SELECT count(*) > 0 AS detected FROM tenancy.detect_pii('public.customers');
SELECT tenancy.purge_tenant(tenancy.find_tenant('hooli')) AS purged;
