-- Row-level isolation of tenant-scoped tables, seen by an ordinary application role.
SELECT tenancy.create_tenant('alpha', 'Alpha', id => 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT tenancy.create_tenant('beta', 'Beta', id => 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');

CREATE TABLE orders (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL,
    item      text NOT NULL
);
CREATE INDEX ON orders (tenant_id);
INSERT INTO orders (tenant_id, item) VALUES
    ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'anvil'),
    ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'rocket'),
    ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'bolt');

SELECT tenancy.enable_isolation('orders');
-- Twice is a NOTICE, not an error.
SELECT tenancy.enable_isolation('orders');
SELECT tbl, tenant_column, isolated FROM tenancy.tenant_tables ORDER BY tbl::text;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'orders'::regclass;
SELECT polname, polpermissive, polcmd, polroles::regrole[],
       pg_get_expr(polqual, polrelid) AS using_expr,
       pg_get_expr(polwithcheck, polrelid) AS check_expr
  FROM pg_policy WHERE polrelid = 'orders'::regclass;

-- An ordinary role: not superuser, not owner, no BYPASSRLS.
CREATE ROLE tenancy_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO tenancy_app;
SET ROLE tenancy_app;

-- No tenant set: nothing visible, nothing writable.
SELECT count(*) FROM orders;
INSERT INTO orders (tenant_id, item) VALUES ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'sneaky');
\echo :LAST_ERROR_SQLSTATE
UPDATE orders SET item = 'x';
DELETE FROM orders;

-- Tenant alpha sees and changes only its own rows.
SELECT tenancy.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT item FROM orders ORDER BY item;
SELECT count(*) FROM orders WHERE tenant_id = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb';
INSERT INTO orders (tenant_id, item) VALUES ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'magnet');
-- Writing into tenant beta fails, by INSERT or by moving a row with UPDATE.
INSERT INTO orders (tenant_id, item) VALUES ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'trojan');
\echo :LAST_ERROR_SQLSTATE
UPDATE orders SET tenant_id = 'bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb' WHERE item = 'anvil';
\echo :LAST_ERROR_SQLSTATE
-- UPDATE and DELETE cannot reach beta's rows.
UPDATE orders SET item = item || '!' WHERE item = 'bolt';
DELETE FROM orders WHERE item = 'bolt';
SELECT item FROM orders ORDER BY item;

-- Tenant beta sees its row, untouched.
SELECT tenancy.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT item FROM orders ORDER BY item;
-- COPY TO goes through the same policy; PostgreSQL refuses COPY FROM under RLS.
COPY (SELECT item FROM orders ORDER BY item) TO stdout;
COPY orders TO stdout;
-- (From a file: PostgreSQL 16 refuses before psql would send inline rows,
-- which psql would then read as SQL.)
\copy orders (tenant_id, item) FROM '/dev/null'
\echo :LAST_ERROR_SQLSTATE

-- The role cannot switch isolation off: it does not own the table.
SELECT tenancy.disable_isolation('orders');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_isolation('orders');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_table('orders');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenancy.clear_tenant();

-- The admin path: superusers and BYPASSRLS roles see every tenant.
SELECT tenant_id, item FROM orders ORDER BY item;
CREATE ROLE tenancy_ops BYPASSRLS;
GRANT SELECT ON orders TO tenancy_ops;
SET ROLE tenancy_ops;
SELECT count(*) AS ops_sees_all FROM orders;
RESET ROLE;

-- The table owner is subject to the policy too (FORCE ROW LEVEL SECURITY).
CREATE ROLE tenancy_owner;
CREATE TABLE owned (tenant_id uuid, v int);
ALTER TABLE owned OWNER TO tenancy_owner;
INSERT INTO owned VALUES ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 1), ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 2);
SET ROLE tenancy_owner;
SELECT tenancy.enable_isolation('owned');
SELECT count(*) AS owner_without_tenant FROM owned;
SELECT tenancy.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT v AS owner_as_beta FROM owned;
SELECT tenancy.disable_isolation('owned');
SELECT count(*) AS owner_after_disable FROM owned;
RESET ROLE;
SELECT tenancy.clear_tenant();
DROP TABLE owned;

-- Identifiers with capitals, spaces and quotes.
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Line ""Items""" ("Tenant Key" uuid NOT NULL, "Qty" int);
INSERT INTO "Sales Dept"."Line ""Items""" VALUES
    ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 1), ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 2);
SELECT tenancy.enable_isolation('"Sales Dept"."Line ""Items"""', 'Tenant Key');
GRANT USAGE ON SCHEMA "Sales Dept" TO tenancy_app;
GRANT SELECT ON "Sales Dept"."Line ""Items""" TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb');
SELECT "Qty" FROM "Sales Dept"."Line ""Items""";
RESET ROLE;
SELECT tenancy.clear_tenant();
SELECT tbl, tenant_column, isolated FROM tenancy.tenant_tables ORDER BY tbl::text;

-- A partitioned table: the parent and every partition get the policy.
CREATE TABLE events (tenant_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO events VALUES
    ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '2026-05-01', 'a1'),
    ('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', '2027-05-01', 'b1');
SELECT tenancy.enable_isolation('events');
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname) AS policies
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'events%' GROUP BY 1, 2, 3 ORDER BY 1;
GRANT SELECT ON events, events_2026, events_2027 TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT what FROM events;
-- Reading a partition directly is isolated as well.
SELECT what FROM events_2027;
RESET ROLE;
-- A partition created or attached later is covered at once (the event trigger
-- tenancy_cover_new_partitions); running enable_isolation again finds it done.
CREATE TABLE events_2028 PARTITION OF events FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'events_2028';
SELECT tenancy.enable_isolation('events');
SELECT count(*) AS events_2028_policies FROM pg_policy WHERE polrelid = 'events_2028'::regclass;
SELECT tenancy.clear_tenant();

-- Errors.
SELECT tenancy.enable_isolation('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_isolation('orders', 'customer_id');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE text_keyed (tenant_id text);
SELECT tenancy.enable_isolation('text_keyed');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW orders_view AS SELECT * FROM orders;
SELECT tenancy.enable_isolation('orders_view');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_isolation(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.enable_isolation('orders', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_table(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.disable_isolation(NULL);
\echo :LAST_ERROR_SQLSTATE
-- A regclass that outlived its table.
CREATE TABLE doomed (tenant_id uuid);
SELECT 'doomed'::regclass::oid AS doomed_oid \gset
DROP TABLE doomed;
\set VERBOSITY sqlstate
SELECT tenancy.enable_isolation(:doomed_oid::regclass);
\set VERBOSITY default
-- Changing the tenant column of an isolated table needs disable_isolation first.
ALTER TABLE orders ADD COLUMN other_tenant uuid;
SELECT tenancy.enable_isolation('orders', 'other_tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_table('orders', 'other_tenant');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.unregister_table('orders');
\echo :LAST_ERROR_SQLSTATE

-- register_table alone: no policy, idempotent, column change is reported.
CREATE TABLE invoices (tenant_id uuid, owner_tenant uuid, total numeric);
SELECT tenancy.register_table('invoices');
SELECT tenancy.register_table('invoices');
SELECT tenancy.register_table('invoices', 'owner_tenant');
SELECT relrowsecurity FROM pg_class WHERE oid = 'invoices'::regclass;
SELECT tenancy.unregister_table('invoices');
SELECT tenancy.unregister_table('invoices');

-- Other permissive policies widen access: enabling isolation warns about them.
CREATE TABLE notes (tenant_id uuid, body text);
CREATE INDEX ON notes (tenant_id);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON notes FOR SELECT USING (true);
SELECT tenancy.enable_isolation('notes');
-- Disabling keeps row-level security on while another policy needs it.
SELECT tenancy.disable_isolation('notes');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'notes'::regclass;
SELECT polname FROM pg_policy WHERE polrelid = 'notes'::regclass;
SELECT tenancy.disable_isolation('notes');

-- disable_isolation keeps the registration; dropping a table forgets it.
SELECT tenancy.disable_isolation('orders');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'orders'::regclass;
SELECT tbl, tenant_column, isolated FROM tenancy.tenant_tables ORDER BY tbl::text;
DROP TABLE "Sales Dept"."Line ""Items""";
DROP TABLE events;
SELECT tbl, tenant_column, isolated FROM tenancy.tenant_tables ORDER BY tbl::text;

DROP TABLE orders, text_keyed, invoices, notes CASCADE;
DROP SCHEMA "Sales Dept";
DROP ROLE tenancy_app, tenancy_ops, tenancy_owner;
