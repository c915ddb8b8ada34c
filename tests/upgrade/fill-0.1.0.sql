-- Fills every catalog of pg_tenancy 0.1.0 through its own API, as a user of 0.1.0
-- would have, so the upgrade test can show that ALTER EXTENSION UPDATE keeps it all:
-- plans, tenants (one suspended), registered and isolated tables, audit settings,
-- audit rows with sealed hash chains, partition sets, quota resources, limits and
-- counters, row quotas, masking rules and key, masked views and roles, retention
-- policies, job history, a changed health threshold, metrics and alerts, a purge.
-- Runs as a superuser in a database where 0.1.0 was just created, with the 0.1.0
-- library. Later releases fill with the newest fill-V.sql whose V is not newer.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- Plans and tenants.
INSERT INTO tenancy.plans (name, limits, description) VALUES ('pro', '{}', 'Paying customers');
SELECT tenancy.create_tenant('acme', 'Acme Corp') AS acme \gset
SELECT tenancy.create_tenant('globex', 'Globex', 'pro') AS globex \gset
SELECT tenancy.create_tenant('initech', 'Initech', 'free', '6d1b1c1e-2f0a-4c55-9e0e-3f1f8d2b9a10') AS initech \gset
SELECT tenancy.create_tenant('umbrella', 'Umbrella') AS umbrella \gset
SELECT tenancy.suspend_tenant(:'umbrella');

-- Isolated, audited, row-quota table, written by an application role.
CREATE ROLE upgrade_app;
CREATE TABLE public.projects (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL DEFAULT tenancy.current_tenant(),
    name      text NOT NULL,
    secret    text
);
CREATE INDEX ON public.projects (tenant_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO upgrade_app;
SELECT tenancy.enable_isolation('public.projects');
SELECT tenancy.enable_audit('public.projects', exclude_columns => '{secret}');
SELECT tenancy.define_resource('projects');
SELECT tenancy.set_plan_limit('free', 'projects', 50);
SELECT tenancy.set_quota(:'globex', 'projects', 7);
SELECT tenancy.enforce_row_quota('public.projects', 'projects');

SET ROLE upgrade_app;
SELECT tenancy.set_tenant(:'acme');
SELECT tenancy.set_actor('user:wile.e');
INSERT INTO public.projects (name, secret) SELECT 'acme project ' || g, 's' || g FROM generate_series(1, 5) g;
UPDATE public.projects SET name = name || ' (v2)' WHERE name = 'acme project 2';
DELETE FROM public.projects WHERE name = 'acme project 3';
SELECT tenancy.set_tenant(:'globex', is_local => false);
SELECT tenancy.set_actor('user:hank');
INSERT INTO public.projects (name) SELECT 'globex project ' || g FROM generate_series(1, 4) g;
UPDATE public.projects SET name = 'renamed' WHERE name = 'globex project 1';
RESET ROLE;
SELECT tenancy.clear_tenant();
SELECT tenancy.seal_audit() AS sealed;
-- Rows written after the last seal stay unsealed: the update must keep them so.
SET ROLE upgrade_app;
SELECT tenancy.set_tenant(:'acme');
INSERT INTO public.projects (name) VALUES ('written after the seal');
RESET ROLE;
SELECT tenancy.clear_tenant();

-- Plain registered table (no isolation), counted by tenant_stats and purge.
CREATE TABLE public.notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text, created_at timestamptz NOT NULL);
INSERT INTO public.notes
SELECT g, CASE g % 3 WHEN 0 THEN :'acme'::uuid WHEN 1 THEN :'globex'::uuid ELSE :'initech'::uuid END,
       'note ' || g, now() - g * interval '1 day'
  FROM generate_series(1, 60) g;
SELECT tenancy.register_table('public.notes');

-- Partition sets: time (with retention) and integer.
CREATE TABLE public.events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id  uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    what       text,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
SELECT tenancy.create_partitioned('public.events', 'created_at', '1 day', premake => 3, retention => '30 days');
INSERT INTO public.events (tenant_id, created_at, what) VALUES
    (:'acme', now() - interval '10 days', 'late import'), (:'acme', now(), 'signup'), (:'globex', now(), 'login');
SELECT count(*) AS maintenance_actions FROM tenancy.run_maintenance();
CREATE TABLE public.readings (id bigint NOT NULL, value numeric) PARTITION BY RANGE (id);
SELECT tenancy.create_partitioned('public.readings', 'id', '1000', premake => 2);
INSERT INTO public.readings SELECT g, g / 10.0 FROM generate_series(1, 2500) g;

-- Quotas: a running total, a monthly resource, per-plan and per-tenant limits, usage.
SELECT tenancy.define_resource('seats');
SELECT tenancy.define_resource('tokens', 'month', 'tokens');
SELECT tenancy.set_plan_limit('free', 'seats', 10);
SELECT tenancy.set_plan_limit('pro', 'seats', 100);
SELECT tenancy.set_plan_limit('free', 'tokens', 100000);
SELECT tenancy.set_quota(:'acme', 'seats', 25);
SELECT tenancy.consume(:'acme', 'seats', 3);
SELECT tenancy.consume(:'globex', 'seats', 40);
SELECT tenancy.release(:'globex', 'seats', 5);
SELECT tenancy.consume(:'acme', 'tokens', 1500);
SELECT tenancy.refresh_storage_usage() > 0 AS storage_measured;

-- Masking: rules, a masked view, a masked role; the key stays what it was.
CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id uuid NOT NULL, email text, phone text, card text, born date);
INSERT INTO public.customers VALUES
    (1, :'acme', 'wile.e.coyote@acme.test', '+1 (555) 010-7788', '4111 1111 1111 1111', '1949-09-17'),
    (2, :'globex', 'hank.scorpio@globex.test', '+1 (555) 010-0001', '5500 0000 0000 0004', '1960-01-02');
SELECT tenancy.enable_isolation('public.customers');
SELECT tenancy.set_masking_rule('public.customers', 'email', 'email');
SELECT tenancy.set_masking_rule('public.customers', 'phone', 'phone');
SELECT tenancy.set_masking_rule('public.customers', 'card', 'partial(0,4)', 'restricted');
SELECT tenancy.set_masking_rule('public.customers', 'born', 'generalize(year)');
SELECT tenancy.create_masked_view('public.customers');
CREATE ROLE upgrade_analyst;
SELECT tenancy.grant_masked_access('upgrade_analyst');

-- Retention: an archive policy, run once; a delete policy left due.
CREATE TABLE public.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL,
                              created_at timestamptz NOT NULL DEFAULT now(), body text);
CREATE INDEX ON public.messages (created_at);
INSERT INTO public.messages (tenant_id, created_at, body)
SELECT CASE WHEN g % 2 = 0 THEN :'acme'::uuid ELSE :'globex'::uuid END, now() - g * interval '1 day', 'message ' || g
  FROM generate_series(1, 120) g;
CREATE TABLE public.messages_archive (LIKE public.messages);
SELECT tenancy.set_retention('public.messages', '90 days', 'archive', archive_table => 'public.messages_archive', batch_size => 10);
SELECT tenancy.set_retention('public.notes', '45 days', batch_size => 5);
CALL tenancy.run_retention();

-- Health: a changed threshold, samples, an alert.
UPDATE tenancy.health_thresholds SET warn_threshold = 512, crit_threshold = 1024 WHERE check_name = 'database_size';
SELECT tenancy.record_metrics() > 0 AS sampled;
SELECT tenancy.record_metrics() > 0 AS sampled;
UPDATE tenancy.health_thresholds SET warn_threshold = 90, crit_threshold = 98 WHERE check_name = 'connection_saturation';

-- Jobs, then a GDPR purge of one tenant (recorded in the audit log), then seal again.
CALL tenancy.run_jobs();
SELECT tenancy.purge_tenant(:'initech') AS purged;
SELECT tenancy.seal_audit() AS sealed;
