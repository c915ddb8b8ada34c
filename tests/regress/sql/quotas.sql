-- Quotas: resources, limits from plans and overrides, exact consumption,
-- periods, row quotas, storage, errors and privileges.
SET TimeZone = 'UTC';
SET tenancy.now_override = '2026-03-31 23:59:30+00';
INSERT INTO tenancy.plans (name) VALUES ('q-basic'), ('q-pro');
SELECT tenancy.create_tenant('quota-a', 'Quota A', 'q-basic', id => 'aaaaaaaa-0000-0000-0000-0000000000a1');
SELECT tenancy.create_tenant('quota-b', 'Quota B', 'q-pro', id => 'bbbbbbbb-0000-0000-0000-0000000000b1');
SELECT tenancy.create_tenant('quota-c', 'Quota C', 'q-basic', id => 'cccccccc-0000-0000-0000-0000000000c1');
-- Only this suite's tenants, in slug order.
CREATE VIEW my_status AS
    SELECT t.slug, s.* FROM tenancy.quota_status() s JOIN tenancy.tenants t ON t.id = s.tenant_id
     WHERE t.slug LIKE 'quota-%';

-- Resources: periods are UTC calendar windows; storage_bytes is built in.
SELECT tenancy.define_resource('api_calls', 'minute');
SELECT tenancy.define_resource('tokens', 'month', 'tokens');
SELECT tenancy.define_resource('seats');
SELECT tenancy.define_resource('seats');             -- NOTICE: already defined
SELECT name, period, unit FROM tenancy.quota_resources ORDER BY name;

-- Limits: the plan's, a tenant's own override, none (unlimited).
SELECT tenancy.set_plan_limit('q-basic', 'api_calls', 3);
SELECT tenancy.set_plan_limit('q-pro', 'api_calls', 100);
SELECT tenancy.set_plan_limit('q-basic', 'tokens', 1000);
SELECT tenancy.set_quota('cccccccc-0000-0000-0000-0000000000c1', 'api_calls', 5);
SELECT name, limits FROM tenancy.plans WHERE name LIKE 'q-%' ORDER BY name;

-- consume takes while it fits, then refuses without taking anything.
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls') AS first,
       tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', 2) AS two_more,
       tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls') AS over;
SELECT tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls') AS room_left;
-- The override wins over the plan (5 instead of 3); pro gets 100.
SELECT count(*) FILTER (WHERE tenancy.consume('cccccccc-0000-0000-0000-0000000000c1', 'api_calls')) AS c_granted,
       count(*) FILTER (WHERE tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'api_calls')) AS b_granted
  FROM generate_series(1, 10);
-- No limit anywhere: unlimited, but usage is still counted.
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'seats', 1000000) AS unlimited,
       tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'seats') AS room_left;
SELECT slug, resource, period, period_start, period_end, used, quota_limit, remaining, pct_used, unit
  FROM my_status ORDER BY slug, resource;

-- require raises 53400 with limit, usage and period end.
SELECT tenancy.require('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.require('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 600);
SELECT tenancy.require('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 600);
\echo :LAST_ERROR_SQLSTATE

-- A new period starts from zero, with no reset job: 30 seconds later it is
-- April, a new minute and a new month.
SET tenancy.now_override = '2026-04-01 00:00:00+00';
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', 3) AS new_minute,
       tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 1000) AS new_month;
SELECT s.resource, s.period_start, s.used, s.remaining
  FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a1') s ORDER BY s.resource;

-- release gives units back, never below zero.
SELECT tenancy.release('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', 2);
SELECT tenancy.release('aaaaaaaa-0000-0000-0000-0000000000a1', 'seats', 5000000);
SELECT s.resource, s.used FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a1') s ORDER BY s.resource;

-- Transactions: a rolled-back transaction or savepoint takes nothing, and a
-- transaction sees its own uncommitted use.
BEGIN;
SELECT tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'tokens', 10);
SAVEPOINT s1;
SELECT tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'tokens', 5);
SELECT used FROM tenancy.quota_status('bbbbbbbb-0000-0000-0000-0000000000b1') WHERE resource = 'tokens';
ROLLBACK TO s1;
SELECT used FROM tenancy.quota_status('bbbbbbbb-0000-0000-0000-0000000000b1') WHERE resource = 'tokens';
COMMIT;
BEGIN;
SELECT tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'tokens', 100);
ROLLBACK;
SELECT used FROM tenancy.quota_status('bbbbbbbb-0000-0000-0000-0000000000b1') WHERE resource = 'tokens';
-- Many calls in one transaction: counted in memory, written once at commit.
BEGIN;
SELECT count(*) FILTER (WHERE tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'tokens')) AS granted
  FROM generate_series(1, 5000);
COMMIT;
SELECT resource, used FROM tenancy.quota_usage
 WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b1' ORDER BY resource;

-- Changing a limit applies at once; lowering it below usage refuses more.
SELECT tenancy.set_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 1500);
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 500) AS with_override;
SELECT tenancy.clear_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens');
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens', 0) AS zero_over_plan_limit,
       tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens') AS room_left;
SELECT tenancy.clear_plan_limit('q-basic', 'tokens');
SELECT tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'tokens') AS unlimited_again;
-- Moving a tenant to another plan changes its limit.
UPDATE tenancy.tenants SET plan = 'q-pro' WHERE slug = 'quota-a';
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', 50) AS pro_limit;
UPDATE tenancy.tenants SET plan = 'q-basic' WHERE slug = 'quota-a';

-- Bad input: unknown tenant or resource (22023), negative amounts and
-- limits, NULLs, unknown periods and plans, bad names.
SELECT tenancy.consume('00000000-0000-0000-0000-000000000000', 'api_calls');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'nope');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.release('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume(NULL, 'api_calls');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'nope');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_plan_limit('q-basic', 'api_calls', -5);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_plan_limit('gold', 'api_calls', 5);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_plan_limit('q-basic', 'nope', 5);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'api_calls', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_quota('00000000-0000-0000-0000-000000000000', 'api_calls', 5);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.define_resource('messages', 'week');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.define_resource('Bad Name');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.drop_resource('nope');
\echo :LAST_ERROR_SQLSTATE

-- Row quotas: a registered table's rows count per tenant.
CREATE TABLE projects (id serial PRIMARY KEY, tenant_id uuid, name text);
INSERT INTO projects (tenant_id, name) VALUES
    ('aaaaaaaa-0000-0000-0000-0000000000a1', 'a1'), ('aaaaaaaa-0000-0000-0000-0000000000a1', 'a2'),
    ('bbbbbbbb-0000-0000-0000-0000000000b1', 'b1'), (NULL, 'nobody''s');
SELECT tenancy.define_resource('projects');
SELECT tenancy.set_plan_limit('q-basic', 'projects', 3);
SELECT tenancy.enforce_row_quota('projects', 'projects');   -- not registered yet
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_table('projects');
SELECT tenancy.enforce_row_quota('projects', 'api_calls');  -- a resource with a period
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enforce_row_quota('projects', 'nope');
\echo :LAST_ERROR_SQLSTATE
-- Existing rows are counted when enforcement starts.
SELECT tenancy.enforce_row_quota('projects', 'projects');
SELECT tenancy.enforce_row_quota('projects', 'projects');   -- NOTICE
SELECT tgname FROM pg_trigger WHERE tgrelid = 'projects'::regclass ORDER BY 1;
SELECT slug, used, quota_limit FROM my_status WHERE resource = 'projects' ORDER BY slug;
-- From 2 of 3, a statement adding two rows for tenant a would cross the
-- limit: it fails whole, tenant b's row in it included.
INSERT INTO projects (tenant_id, name) VALUES ('aaaaaaaa-0000-0000-0000-0000000000a1', 'x1'),
    ('aaaaaaaa-0000-0000-0000-0000000000a1', 'x2'), ('bbbbbbbb-0000-0000-0000-0000000000b1', 'bx');
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM projects WHERE tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a1') AS rows_of_a,
       (SELECT count(*) FROM projects WHERE name = 'bx') AS b_rows_kept;
SELECT slug, used FROM my_status WHERE resource = 'projects' ORDER BY slug;
-- One more fits; a two-row INSERT that would cross the limit fails whole.
INSERT INTO projects (tenant_id, name) VALUES ('aaaaaaaa-0000-0000-0000-0000000000a1', 'a3');
INSERT INTO projects (tenant_id, name) VALUES ('aaaaaaaa-0000-0000-0000-0000000000a1', 'a4'),
                                              ('bbbbbbbb-0000-0000-0000-0000000000b1', 'b2');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_of_a FROM projects WHERE tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a1';
-- DELETE gives units back; then the insert fits.
DELETE FROM projects WHERE name = 'a1';
INSERT INTO projects (tenant_id, name) VALUES ('aaaaaaaa-0000-0000-0000-0000000000a1', 'a4');
-- Rows without a tenant do not count; moving a row moves its unit.
INSERT INTO projects (tenant_id, name) VALUES (NULL, 'still nobody''s');
UPDATE projects SET tenant_id = 'cccccccc-0000-0000-0000-0000000000c1' WHERE name = 'b1';
UPDATE projects SET tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b1' WHERE name = 'a2';
UPDATE projects SET tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a1' WHERE name = 'nobody''s';
-- quota-a is full again: moving one more row in fails.
UPDATE projects SET tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a1' WHERE name = 'still nobody''s';
\echo :LAST_ERROR_SQLSTATE
SELECT s.slug, s.used, (SELECT count(*) FROM projects p WHERE p.tenant_id = s.tenant_id) AS rows
  FROM my_status s WHERE s.resource = 'projects' ORDER BY s.slug;
-- COPY counts too.
COPY projects (tenant_id, name) FROM stdin;
cccccccc-0000-0000-0000-0000000000c1	copied
\.
SELECT used FROM my_status WHERE slug = 'quota-c' AND resource = 'projects';
-- TRUNCATE gives every unit back.
TRUNCATE projects;
SELECT slug, used FROM my_status WHERE resource = 'projects' ORDER BY slug;
-- The period of a counted resource cannot change; the resource cannot be dropped.
SELECT tenancy.define_resource('projects', 'day');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.drop_resource('projects');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.disable_row_quota('projects');
SELECT tenancy.disable_row_quota('projects');               -- NOTICE
SELECT count(*) AS quota_triggers_left FROM pg_trigger WHERE tgrelid = 'projects'::regclass AND tgname LIKE 'tenancy_quota%';

-- Row quotas on a partitioned table: rows inserted through the parent or
-- straight into a partition count once.
CREATE TABLE events (id bigint, tenant_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT tenancy.register_table('events');
SELECT tenancy.define_resource('events');
SELECT tenancy.set_plan_limit('q-basic', 'events', 4);
SELECT tenancy.enforce_row_quota('events', 'events');
INSERT INTO events VALUES (1, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2026-05-01'), (2, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2026-06-01');
INSERT INTO events_2026 VALUES (3, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2026-07-01');
-- A partition created by hand gets the row-quota triggers at once.
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO events_2027 VALUES (4, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2027-01-01');
INSERT INTO events VALUES (5, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2027-02-01');
\echo :LAST_ERROR_SQLSTATE
SELECT s.used, (SELECT count(*) FROM events) AS rows FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a1') s
 WHERE s.resource = 'events';
DELETE FROM events WHERE id = 4;
TRUNCATE events_2026;
SELECT s.used, (SELECT count(*) FROM events) AS rows FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a1') s
 WHERE s.resource = 'events';
-- A table attached as a partition brings its rows: they are counted, and
-- writes straight into it count from then on.
CREATE TABLE events_2025 (id bigint, tenant_id uuid NOT NULL, at date NOT NULL);
INSERT INTO events_2025 VALUES (6, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2025-03-01'), (7, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2025-04-01');
ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events_2025 VALUES (8, 'aaaaaaaa-0000-0000-0000-0000000000a1', '2025-05-01');
SELECT s.used, (SELECT count(*) FROM events) AS rows FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a1') s
 WHERE s.resource = 'events';
DELETE FROM events;

-- Storage: bytes per tenant across registered tables, shared by row size.
CREATE TABLE documents (id int PRIMARY KEY, tenant_id uuid, body text);
SELECT tenancy.register_table('documents');
INSERT INTO documents SELECT i, CASE WHEN i % 4 = 0 THEN 'bbbbbbbb-0000-0000-0000-0000000000b1'::uuid
                                     ELSE 'aaaaaaaa-0000-0000-0000-0000000000a1'::uuid END, repeat('x', 500)
  FROM generate_series(1, 400) i;
SELECT tenancy.refresh_storage_usage() > 0 AS measured;
SELECT slug, used > 0 AS has_bytes FROM my_status WHERE resource = 'storage_bytes' ORDER BY slug;
-- a has three times b's rows of the same size, so three times its bytes.
SELECT round(a.used::numeric / b.used, 1) AS a_to_b
  FROM tenancy.quota_usage a, tenancy.quota_usage b
 WHERE a.resource = 'storage_bytes' AND b.resource = 'storage_bytes'
   AND a.tenant_id = 'aaaaaaaa-0000-0000-0000-0000000000a1' AND b.tenant_id = 'bbbbbbbb-0000-0000-0000-0000000000b1';
-- Their rows are all in documents: their figures add up to its whole size,
-- indexes and TOAST included (rounding aside).
SELECT abs(sum(used) - pg_total_relation_size('documents')) <= 2 AS adds_up
  FROM tenancy.quota_usage u JOIN tenancy.tenants t ON t.id = u.tenant_id
 WHERE u.resource = 'storage_bytes' AND t.slug LIKE 'quota-%';
-- Above the limit: no room left.
SELECT tenancy.set_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'storage_bytes', 1000);
SELECT tenancy.check_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'storage_bytes') AS a_within_1000_bytes;

-- Privileges: an application role calls consume for its own tenant only,
-- cannot change limits and cannot touch the counters.
CREATE ROLE quota_app;
SET ROLE quota_app;
SELECT tenancy.consume('cccccccc-0000-0000-0000-0000000000c1', 'seats') AS without_tenant_context;
SELECT tenancy.set_tenant('aaaaaaaa-0000-0000-0000-0000000000a1');
SELECT tenancy.consume('aaaaaaaa-0000-0000-0000-0000000000a1', 'seats') AS own_tenant;
SELECT tenancy.consume('bbbbbbbb-0000-0000-0000-0000000000b1', 'seats');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.release('bbbbbbbb-0000-0000-0000-0000000000b1', 'tokens', 100);
\echo :LAST_ERROR_SQLSTATE
SELECT count(DISTINCT tenant_id) AS tenants_visible, min(tenant_id::text) AS tenant FROM tenancy.quota_status();
SELECT tenancy.set_quota('aaaaaaaa-0000-0000-0000-0000000000a1', 'seats', 1000000000);
\echo :LAST_ERROR_SQLSTATE
UPDATE tenancy.quota_usage SET used = 0;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.quota_usage;
\echo :LAST_ERROR_SQLSTATE
-- Nor through the row-quota triggers on a table of its own.
CREATE TEMP TABLE spend (tenant_id uuid);
CREATE TRIGGER spend AFTER INSERT ON spend REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._row_quota_statement('seats', 'tenant_id');
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER refund AFTER UPDATE ON spend
    FOR EACH ROW EXECUTE FUNCTION tenancy._row_quota_move('seats', 'tenant_id');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE spend;
SELECT tenancy.clear_tenant();
RESET ROLE;
DROP ROLE quota_app;
DROP VIEW my_status;

-- A dropped table leaves no row quota behind; dropping a resource drops
-- its limits and usage.
DROP TABLE projects;
SELECT count(*) AS row_quotas_left FROM tenancy.row_quotas WHERE resource = 'projects';
SELECT tenancy.drop_resource('projects');
SELECT count(*) AS plans_mentioning_it FROM tenancy.plans WHERE limits ? 'projects';
SELECT count(*) AS usage_left FROM tenancy.quota_usage WHERE resource = 'projects';
RESET tenancy.now_override;
