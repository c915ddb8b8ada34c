-- pg_tenancy demo: run by `make demo` in a throwaway cluster (psql -e shows each query).
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = notice;

\echo
\echo '=== Install: one CREATE EXTENSION ==='
CREATE EXTENSION pg_tenancy;
\dx pg_tenancy

\echo
\echo '=== Tenants and context ==='
SELECT tenancy.create_tenant('acme', 'Acme Corp') AS acme \gset
SELECT tenancy.create_tenant('globex', 'Globex Inc') AS globex \gset
SELECT slug, name, plan, status FROM tenancy.tenants ORDER BY slug;

\echo
\echo '--- An ordinary tenant-scoped table, isolated with one call'
CREATE TABLE public.projects (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL DEFAULT tenancy.current_tenant(),
    name      text NOT NULL
);
CREATE INDEX ON public.projects (tenant_id);
INSERT INTO public.projects (tenant_id, name) VALUES
    (:'acme', 'Roadrunner trap'), (:'acme', 'Rocket skates'), (:'globex', 'Doomsday device');
SELECT tenancy.enable_isolation('public.projects');
\d public.projects

\echo
\echo '--- The application connects as an ordinary role and sets its tenant per request'
CREATE ROLE demo_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO demo_app;
SET ROLE demo_app;
SELECT count(*) AS visible_without_tenant FROM public.projects;
SELECT tenancy.set_tenant(tenancy.find_tenant('acme'));
SELECT tenancy.set_actor('user:wile.e');
SELECT name FROM public.projects ORDER BY name;
INSERT INTO public.projects (name) VALUES ('Giant magnet');   -- tenant_id defaults to current_tenant()
SELECT name FROM public.projects ORDER BY name;

\echo
\echo '--- Writing into another tenant is refused'
\set ON_ERROR_STOP off
INSERT INTO public.projects (tenant_id, name) VALUES (:'globex', 'Sabotage');
\set ON_ERROR_STOP on

\echo
\echo '--- Transaction-local tenant, as a pooled connection uses it'
BEGIN;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT name FROM public.projects ORDER BY name;
COMMIT;
SELECT tenancy.current_tenant() = :'acme' AS back_to_acme;
RESET ROLE;

\echo
\echo '--- Suspended tenants cannot be selected'
SELECT tenancy.suspend_tenant(:'globex');
\set ON_ERROR_STOP off
SELECT tenancy.set_tenant(:'globex');
\set ON_ERROR_STOP on
SELECT tenancy.activate_tenant(:'globex');

\echo
\echo '--- Registered tables (superusers bypass isolation: the admin path)'
SELECT tbl, tenant_column, isolated FROM tenancy.tenant_tables;
SELECT t.slug, count(*) AS projects
  FROM public.projects p JOIN tenancy.tenants t ON t.id = p.tenant_id
 GROUP BY t.slug ORDER BY t.slug;

\echo
\echo '=== Partitions ==='
CREATE TABLE public.events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id  uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    what       text,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
SELECT tenancy.create_partitioned('public.events', 'created_at', '1 day', premake => 3, retention => '30 days');
SELECT partition, range_from, range_to, is_default FROM tenancy.show_partitions('public.events');

\echo
\echo '--- A row from ten days ago has no child: it lands in the default partition ...'
INSERT INTO public.events (tenant_id, created_at, what) VALUES
    (:'acme', now() - interval '10 days', 'late import'), (:'acme', now(), 'signup');
SELECT tableoid::regclass AS stored_in, what FROM public.events ORDER BY created_at;
\echo '--- ... and maintenance moves it into a child of its own'
SELECT action, partition, detail FROM tenancy.run_maintenance();
SELECT tableoid::regclass AS stored_in, what FROM public.events ORDER BY created_at;
\echo '--- A second run has nothing to do'
SELECT count(*) AS actions FROM tenancy.run_maintenance();

\echo
\echo '=== Audit ==='
SELECT tenancy.enable_audit('public.projects');
SET ROLE demo_app;
SELECT tenancy.set_tenant(:'acme');
SELECT tenancy.set_actor('user:wile.e');
UPDATE public.projects SET name = name || ' (v2)' WHERE name = 'Giant magnet';
DELETE FROM public.projects WHERE name = 'Rocket skates';
\echo '--- The application reads its own tenant''s audit trail, and cannot change it'
SELECT op, record_key, old_row, new_row, changed_cols, actor FROM tenancy.audit_log ORDER BY logged_at, id;
\set ON_ERROR_STOP off
DELETE FROM tenancy.audit_log;
\set ON_ERROR_STOP on
RESET ROLE;
\echo '--- Sealing chains the rows per tenant; the log is append-only even for a superuser ...'
SELECT tenancy.seal_audit() AS rows_sealed;
SELECT t.slug, v.rows_checked, v.ok FROM tenancy.verify_audit() v JOIN tenancy.tenants t ON t.id = v.tenant_id;
\set ON_ERROR_STOP off
UPDATE tenancy.audit_log SET actor = 'someone else' WHERE op = 'DELETE';
\set ON_ERROR_STOP on
\echo '--- ... who can still switch the guards off, and whose edit is then caught'
SET session_replication_role = replica;
UPDATE tenancy.audit_log SET actor = 'someone else' WHERE op = 'DELETE';
RESET session_replication_role;
SELECT t.slug, v.rows_checked, v.ok, v.first_bad_id IS NOT NULL AS found_the_edit
  FROM tenancy.verify_audit() v JOIN tenancy.tenants t ON t.id = v.tenant_id;

\echo
\echo '=== Quotas ==='
SELECT tenancy.define_resource('api_calls', 'minute');
SELECT tenancy.set_plan_limit('free', 'api_calls', 3);
\echo '--- Three calls fit in this minute, the fourth does not; require() explains why'
SELECT tenancy.consume(:'acme', 'api_calls') AS call FROM generate_series(1, 4);
\set ON_ERROR_STOP off
SELECT tenancy.require(:'acme', 'api_calls');
\set ON_ERROR_STOP on
\echo '--- Rows of a table can count too: acme may have 4 projects'
SELECT tenancy.define_resource('projects');
SELECT tenancy.set_quota(:'acme', 'projects', 4);
SELECT tenancy.enforce_row_quota('public.projects', 'projects');
SET ROLE demo_app;
SELECT tenancy.set_tenant(:'acme');
INSERT INTO public.projects (name) VALUES ('Earthquake pills');
\set ON_ERROR_STOP off
INSERT INTO public.projects (name) VALUES ('Batman outfit'), ('Jet-propelled unicycle');
\set ON_ERROR_STOP on
SELECT resource, period, used, quota_limit, remaining, pct_used FROM tenancy.quota_status() ORDER BY resource;
RESET ROLE;
\echo '--- Request rates: a token bucket per tenant in shared memory (no WAL, no lock wait); 3 at once, then 2 a second'
SELECT tenancy.set_throttle('search', 2, 3, plan => 'free');
SELECT tenancy.throttle(:'acme', 'search') AS request FROM generate_series(1, 5);

\echo
\echo '=== Masking ==='
SELECT tenancy.mask_email('wile.e.coyote@acme.test') AS email, tenancy.mask_phone('+1 (555) 010-7788') AS phone,
       tenancy.mask_name('Wile E. Coyote') AS name, tenancy.pseudonymize('wile.e.coyote@acme.test') AS token;
CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id uuid NOT NULL, email text, phone text, card text);
CREATE INDEX ON public.customers (tenant_id);
INSERT INTO public.customers VALUES
    (1, :'acme', 'wile.e.coyote@acme.test', '+1 (555) 010-7788', '4111 1111 1111 1111'),
    (2, :'globex', 'hank.scorpio@globex.test', '+1 (555) 010-0001', '5500 0000 0000 0004');
SELECT tenancy.enable_isolation('public.customers');
\echo '--- What looks like personal data?'
SELECT column_name, suggested_rule, reason FROM tenancy.detect_pii('public.customers');
SELECT tenancy.set_masking_rule('public.customers', 'email', 'email');
SELECT tenancy.set_masking_rule('public.customers', 'phone', 'phone');
SELECT tenancy.set_masking_rule('public.customers', 'card', 'partial(0,4)', 'restricted');
SELECT tenancy.create_masked_view('public.customers');
CREATE ROLE demo_analyst;
SELECT tenancy.grant_masked_access('demo_analyst');
\echo '--- An analyst reads masked rows of one tenant, and nothing underneath'
SET ROLE demo_analyst;
SELECT tenancy.set_tenant(:'acme');
SELECT * FROM tenancy_masked.customers;
\set ON_ERROR_STOP off
SELECT * FROM public.customers;
\set ON_ERROR_STOP on
RESET ROLE;

\echo
\echo '=== Security ==='
\echo '--- A role bound to one tenant reaches no other, by any path'
CREATE ROLE demo_acme_user;
GRANT SELECT ON public.projects TO demo_acme_user;
SELECT tenancy.bind_role('demo_acme_user', ARRAY[:'acme'::uuid]);
SET SESSION AUTHORIZATION demo_acme_user;
\set ON_ERROR_STOP off
SELECT tenancy.set_tenant(:'globex');
SET tenancy.tenant_id = :'globex';
SELECT tenancy.find_tenant('globex');
\set ON_ERROR_STOP on
SET tenancy.tenant_id = :'acme';
SELECT name FROM public.projects ORDER BY name;
RESET SESSION AUTHORIZATION;
RESET tenancy.tenant_id;
\echo '--- Behind a transaction-pooling pooler: session-level tenants are refused, is_local ones work'
ALTER ROLE demo_acme_user SET tenancy.require_local_context = on;
SET tenancy.require_local_context = on;  -- what the role setting gives its next sessions
SET SESSION AUTHORIZATION demo_acme_user;
\set ON_ERROR_STOP off
SELECT tenancy.set_tenant(:'acme');
\set ON_ERROR_STOP on
BEGIN;
SELECT tenancy.set_tenant(:'acme', is_local => true);
SELECT count(*) AS acme_projects FROM public.projects;
COMMIT;
RESET SESSION AUTHORIZATION;
RESET tenancy.require_local_context;
\echo '--- What breaks isolation? Nothing here (try a view over projects without security_invoker)'
SELECT * FROM tenancy.verify_isolation();

\echo
\echo '=== Health ==='
SELECT total, active, idle, idle_in_transaction, waiting, max_connections, reserved, saturation_pct
  FROM tenancy.connection_summary();
ANALYZE public.projects;
\echo '--- Which tenant? Each statement a tenant''s session sends is counted for it, in shared memory'
SELECT tenancy.reset_tenant_activity() IS NOT NULL AS reset;
SET tenancy.tenant_id = :'acme';
SELECT count(*) AS acme_projects FROM public.projects;
SELECT sum(g) AS acme_report FROM generate_series(1, 3000000) g;
SET tenancy.tenant_id = :'globex';
SELECT count(*) AS globex_projects FROM public.projects;
RESET tenancy.tenant_id;
SELECT coalesce(t.slug, '(all others)') AS tenant, a.calls, a.rows, round(a.cpu_ms) AS cpu_ms, a.blks_hit, a.errors
  FROM tenancy.tenant_activity() a LEFT JOIN tenancy.tenants t ON t.id = a.tenant_id
 WHERE a.period = 'current' ORDER BY a.tenant_rank NULLS LAST;
\echo '--- Per tenant, from planner statistics (no table scanned), the running cap and the CPU share'
SELECT slug, tables, rows_estimate, audit_events_24h, top_quota_resource, top_quota_pct,
       running_statements, running_cap, cpu_share_pct
  FROM tenancy.tenant_stats();
\echo '--- Checks with thresholds from check_postgres, postgres_exporter and pganalyze'
SELECT check_name, status, value, warn_threshold, crit_threshold, detail FROM tenancy.health_check();
\echo '--- A database-size budget of 1 kB makes the database critical; two samples open one alert'
UPDATE tenancy.health_thresholds SET warn_threshold = 512, crit_threshold = 1024 WHERE check_name = 'database_size';
SELECT tenancy.health() -> 'status' AS status;
SELECT tenancy.record_metrics() AS sampled;
SELECT tenancy.record_metrics() AS sampled;
SELECT check_name, status, value, opened_at IS NOT NULL AS open FROM tenancy.alerts;
UPDATE tenancy.health_thresholds SET warn_threshold = NULL, crit_threshold = NULL WHERE check_name = 'database_size';
\echo '--- The same figures for Prometheus (first lines)'
SELECT line FROM regexp_split_to_table(tenancy.metrics_prometheus(), E'\n') AS line LIMIT 8;

\echo
\echo '=== Retention and jobs ==='
CREATE TABLE public.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL,
                              created_at timestamptz NOT NULL DEFAULT now(), body text);
CREATE INDEX ON public.messages (created_at);
CREATE INDEX ON public.messages (tenant_id);
INSERT INTO public.messages (tenant_id, created_at, body)
SELECT CASE WHEN g % 2 = 0 THEN :'acme'::uuid ELSE :'globex'::uuid END, now() - g * interval '1 day', 'message ' || g
  FROM generate_series(1, 120) g;
CREATE TABLE public.messages_archive (LIKE public.messages);
SELECT tenancy.set_retention('public.messages', '90 days', 'archive', archive_table => 'public.messages_archive', batch_size => 10);
\echo '--- What is due, then the run: committed batches of 10, oldest first'
SELECT tbl, action, rows_due FROM tenancy.retention_preview();
CALL tenancy.run_retention();
SELECT (SELECT count(*) FROM public.messages) AS kept, (SELECT count(*) FROM public.messages_archive) AS archived;
\echo '--- Everything due in one call: maintenance, retention, sealing, metrics'
CALL tenancy.run_jobs();
SELECT job, status, rows FROM tenancy.job_runs ORDER BY id;
\echo '--- GDPR erasure of globex: every registered table, its quota usage, its audit trail'
SELECT tenancy.register_table('public.messages');
SELECT tenancy.purge_tenant(:'globex') AS rows_purged;
SELECT op, new_row -> 'tables' AS tables FROM tenancy.audit_log WHERE tenant_id = :'globex';
\echo '(With shared_preload_libraries = pg_tenancy and tenancy.scheduler_database set, a background worker runs run_jobs every tenancy.scheduler_interval: see docs/scheduler.md.)'
