-- Row isolation on distributed, co-located and reference tables: after
-- set_tenant on the coordinator, every kind of statement sees and touches
-- only that tenant's rows, on every worker.
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
SET ROLE app;

-- No tenant: nothing.
SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM order_items) AS items,
       (SELECT count(*) FROM products) AS products, (SELECT count(*) FROM currencies) AS shared;

SELECT tenancy.set_tenant(:'acme');
-- A router query (one shard), a multi-shard query, aggregates.
SELECT id, amount FROM orders WHERE tenant_id = :'acme' AND id = 7;
SELECT count(*), sum(amount), count(DISTINCT tenant_id) AS tenants FROM orders;
SELECT tenant_id = :'acme' AS own, count(*) FROM orders GROUP BY 1;
-- Joins with a co-located table and with reference tables.
SELECT count(*) AS lines, count(DISTINCT o.tenant_id) AS tenants
  FROM orders o JOIN order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id;
SELECT count(*) AS products, count(DISTINCT p.tenant_id) AS tenants
  FROM orders o JOIN products p ON p.tenant_id = o.tenant_id WHERE o.id <= 2;
SELECT count(*) AS priced FROM orders o CROSS JOIN currencies c WHERE o.id = 1;
-- Outer joins keep their null-extended rows: the tenant's filter for a table
-- on the nullable side goes into that join's ON clause, not into WHERE (half
-- of the orders have a matching line here).
SELECT count(*) AS orders, count(i.order_id) AS with_line
  FROM orders o LEFT JOIN order_items i
    ON i.tenant_id = o.tenant_id AND i.order_id = o.id AND i.line = 1 AND i.order_id % 2 = 0;
SELECT count(*) AS orders, count(i.order_id) AS with_line
  FROM order_items i RIGHT JOIN orders o
    ON i.tenant_id = o.tenant_id AND i.order_id = o.id AND i.line = 1 AND i.order_id % 2 = 0;
SELECT count(*) AS rows, count(o.id) AS with_order, count(i.order_id) AS with_line
  FROM (SELECT * FROM orders WHERE id % 2 = 0) o FULL JOIN order_items i
    ON i.tenant_id = o.tenant_id AND i.order_id = o.id AND i.line = 1;
SELECT count(*) AS orders, count(p.sku) AS with_product, count(DISTINCT o.tenant_id) AS tenants
  FROM orders o LEFT JOIN (order_items i JOIN products p ON p.tenant_id = i.tenant_id)
    ON i.tenant_id = o.tenant_id AND i.order_id = o.id AND false;
-- A query naming another tenant finds nothing.
SELECT count(*) AS globex_rows FROM orders WHERE tenant_id = :'globex';

-- Writes: into its own tenant, and refused for another (42501).
INSERT INTO orders VALUES (:'acme', 1001, 1);
SELECT citus_test.sqlstate(format('INSERT INTO orders VALUES (%L, 1001, 1)', :'globex')) AS other_tenant_insert;
SELECT citus_test.sqlstate(format('INSERT INTO products VALUES (%L, %L, %L)', :'globex', 'x', 'x')) AS other_tenant_reference;
SELECT citus_test.sqlstate(format('UPDATE orders SET tenant_id = %L WHERE id = 1001', :'globex')) AS move_away;
-- INSERT ... SELECT and UPDATE/DELETE over every shard touch own rows only.
INSERT INTO order_items SELECT tenant_id, id, 9, 0 FROM orders WHERE id <= 10;
SELECT count(*) AS new_lines FROM order_items WHERE line = 9;
UPDATE orders SET amount = amount + 1 WHERE amount >= 0;
DELETE FROM order_items WHERE line = 9;
-- COPY out shows its own rows only; COPY in is refused under row-level
-- security, by PostgreSQL itself, as on one node (0A000: use INSERT).
COPY (SELECT count(*), count(DISTINCT tenant_id) FROM orders) TO STDOUT;
COPY orders TO STDOUT WITH (FORMAT csv) \g /dev/null
SELECT count(*) AS rows_copied_out FROM orders;
\set VERBOSITY sqlstate
COPY orders FROM STDIN;
00000000-0000-4000-8000-00000000000a	2001	5
\.
\set VERBOSITY default
RESET ROLE;
SELECT tenant_id = :'acme' AS acme, count(*), sum(amount) FROM orders GROUP BY 1 ORDER BY 1;
SET ROLE app;

-- A transaction's own tenant, then the session's again.
BEGIN;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT count(*) AS globex_orders, count(DISTINCT tenant_id) AS tenants FROM orders;
COMMIT;
SELECT count(*) AS acme_again FROM orders;
-- SET LOCAL of the setting itself works the same way.
BEGIN;
SET LOCAL tenancy.tenant_id = :'globex';
SELECT count(*) AS globex_by_set_local FROM orders;
COMMIT;
-- Without a session tenant, a transaction's tenant is gone from the workers
-- in the next transaction on the same connections.
SELECT tenancy.clear_tenant();
BEGIN;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT count(*) AS globex_in_transaction FROM orders;
COMMIT;
SELECT count(*) AS after_commit FROM orders;
BEGIN;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT count(*) FROM orders;
ROLLBACK;
SELECT count(*) AS after_rollback FROM orders;
-- A savepoint rolled back takes its tenant back on the workers too.
SELECT tenancy.set_tenant(:'acme');
BEGIN;
SAVEPOINT s;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT count(*) AS globex_in_savepoint FROM orders;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS acme_after_savepoint FROM orders;
COMMIT;
-- A released savepoint keeps its tenant on the workers too, on connections
-- the transaction opens after it (a write to a reference table reaches every
-- node).
BEGIN;
SAVEPOINT s;
SELECT tenancy.set_tenant(:'globex', is_local => true);
SELECT count(*) AS globex_in_savepoint FROM orders;
RELEASE SAVEPOINT s;
INSERT INTO products VALUES (:'globex', 'sku-released', 'after release');
SELECT count(*) AS globex_product_after_release FROM products WHERE sku = 'sku-released';
ROLLBACK;
-- Prepared statements and PL/pgSQL keep no other tenant's plan.
PREPARE total AS SELECT count(*), min(tenant_id::text) FROM orders;
EXECUTE total;
SELECT tenancy.set_tenant(:'globex');
EXECUTE total;
DEALLOCATE total;
RESET ROLE;

-- The owner is subject to the policy too (FORCE); a superuser is not.
SELECT tenancy.clear_tenant();
SELECT count(*) AS superuser_sees_all FROM orders;

-- A role connecting to a worker directly gets no more than set_tenant would
-- give it on one node: on the worker holding acme's shard, through the
-- distributed table or the shard itself.
SELECT s.shard_name AS acme_shard, s.nodeport AS acme_port FROM citus_shards s
 WHERE s.shardid = get_shard_id_for_distribution_column('orders', :'acme') \gset
SELECT count(*) AS acme_rows_in_shard FROM orders WHERE tenant_id = :'acme';
SELECT inet_server_port() AS coordinator_port \gset
\set coordinator_admin 'host=127.0.0.1 port=' :coordinator_port ' user=postgres dbname=tenancy_citus'
\set acme_worker_app 'host=127.0.0.1 port=' :acme_port ' user=app dbname=tenancy_citus'
\set acme_worker_admin 'host=127.0.0.1 port=' :acme_port ' user=postgres dbname=tenancy_citus'
\c :acme_worker_app
SET client_min_messages = warning;
SELECT count(*) AS no_tenant_on_worker FROM orders;
SELECT count(*) AS no_tenant_in_shard FROM :acme_shard;
SELECT citus_test.sqlstate($$SET tenancy.tenant_id = '00000000-0000-4000-8000-0000000000ff'$$) AS unknown_tenant;
SET tenancy.tenant_id = :'acme';
SELECT count(*) AS acme_from_worker, count(DISTINCT tenant_id) AS tenants FROM orders;
SELECT count(*) AS acme_in_shard, count(DISTINCT tenant_id) AS tenants FROM :acme_shard;
SELECT citus_test.sqlstate(format('INSERT INTO orders VALUES (%L, 4001, 1)', :'globex')) AS other_tenant_from_worker;
SELECT citus_test.sqlstate(format('INSERT INTO %s VALUES (%L, 4001, 1)', :'acme_shard', :'globex')) AS other_tenant_into_shard;
\c :acme_worker_admin
SELECT count(*) AS superuser_in_shard FROM :acme_shard WHERE tenant_id = :'acme';

-- A tenant a role gets at login (ALTER ROLE ... SET) on a Citus node is
-- checked as strictly as set_tenant, at its first use: no query can run
-- while the session starts there.
\c :coordinator_admin
ALTER ROLE app SET tenancy.tenant_id = '00000000-0000-4000-8000-00000000000b';
\c - app
SELECT count(*) AS globex_at_login, count(DISTINCT tenant_id) AS tenants FROM orders;
\c - postgres
ALTER ROLE app SET tenancy.tenant_id = '00000000-0000-4000-8000-0000000000ff';
\c - app
\set VERBOSITY sqlstate
SELECT count(*) AS unknown_at_login FROM orders;
SELECT tenancy.current_tenant() AS still_refused;
\set VERBOSITY default
SELECT tenancy.set_tenant('00000000-0000-4000-8000-00000000000a');
SELECT count(*) AS acme_after_set, count(DISTINCT tenant_id) AS tenants FROM orders;
\c - postgres
ALTER ROLE app RESET tenancy.tenant_id;

-- An autocommit SELECT carries the tenant in its shard query: a marker the
-- planner on the worker adopts (checked like SET LOCAL) instead of a
-- transaction block, so the worker gets one command, no BEGIN or COMMIT.
\c - app
SELECT tenancy.set_tenant(:'globex');
SELECT count(*) AS warm_caches FROM orders;
SET citus.log_remote_commands = on;
SET client_min_messages = notice;
\set VERBOSITY terse
SELECT count(*) AS globex_orders, count(DISTINCT tenant_id) AS tenants FROM orders;
\set VERBOSITY default
RESET client_min_messages;
RESET citus.log_remote_commands;
-- Inside a transaction block the tenant still travels as SET LOCAL.
BEGIN;
SELECT count(*) AS globex_in_transaction FROM orders;
COMMIT;
-- An autocommit write reaches the workers with the tenant too: pg_tenancy
-- makes the transaction a coordinated one and Citus sends the SET LOCAL with
-- its BEGIN. The procedure that runs the SET LOCAL is pg_tenancy's own: a
-- client calling it gets 42501, not a tenant let through unchecked.
UPDATE orders SET amount = amount WHERE id = 1 RETURNING tenant_id = :'globex' AS own_row, id;
INSERT INTO orders VALUES (:'globex', 5001, 1) RETURNING tenant_id = :'globex' AS own_row, id;
DELETE FROM orders WHERE id = 5001 RETURNING tenant_id = :'globex' AS own_row, id;
\set VERBOSITY sqlstate
CALL tenancy._carry_to_workers();
\set VERBOSITY default
SELECT tenancy.current_tenant() = :'globex' AS still_globex;
-- The same through Citus's SQL interface alone, which is all PostgreSQL 16
-- and later have (tenancy.citus_internals = off where citus.so exports the
-- faster way): outside a transaction block and inside one.
\c - postgres
ALTER ROLE app SET tenancy.citus_internals = off;
\c - app
SELECT tenancy.set_tenant(:'globex');
UPDATE orders SET amount = amount WHERE id = 1 RETURNING tenant_id = :'globex' AS own_row, id;
INSERT INTO orders VALUES (:'globex', 5002, 1) RETURNING tenant_id = :'globex' AS own_row, id;
DELETE FROM orders WHERE id = 5002 RETURNING tenant_id = :'globex' AS own_row, id;
SELECT count(*) AS globex_orders, count(DISTINCT tenant_id) AS tenants FROM orders;
BEGIN;
SELECT count(*) AS globex_in_transaction FROM orders;
SELECT tenancy.set_tenant(:'acme', is_local => true);
UPDATE orders SET amount = amount WHERE id = 2 RETURNING tenant_id = :'acme' AS own_row, id;
COMMIT;
SELECT tenancy.current_tenant() = :'globex' AS globex_again;
\c - postgres
ALTER ROLE app RESET tenancy.citus_internals;

-- On a worker the marker gives a role no more than SET LOCAL would: a
-- bound role is refused a tenant it is not bound to, two tenants in one
-- query are an error, and the tenant lasts one transaction.
\c :coordinator_admin
SELECT tenancy.bind_role('support', ARRAY[:'acme']::uuid[]);
\set acme_worker_support 'host=127.0.0.1 port=' :acme_port ' user=support dbname=tenancy_citus'
\c :acme_worker_support
SELECT count(*) AS acme_by_marker FROM orders WHERE tenancy._tenant_carried(:'acme');
SELECT tenancy.current_tenant() IS NULL AS gone_after_the_statement;
\set VERBOSITY sqlstate
SELECT count(*) FROM orders WHERE tenancy._tenant_carried(:'globex');
SELECT count(*) FROM orders WHERE tenancy._tenant_carried(:'acme') AND tenancy._tenant_carried(:'globex');
\set VERBOSITY default
\c :coordinator_admin
SELECT tenancy.unbind_role('support');

-- The policy's tenant is a constant in the plan, so PostgreSQL does not call
-- current_tenant() once per row; a cached plan is made again when the
-- tenant, the role or the role's bindings change, checked as at the start.
CREATE FUNCTION citus_test.bind_support_to_acme_only() RETURNS void
LANGUAGE sql SECURITY DEFINER AS $$ SELECT tenancy.bind_role('support', ARRAY['00000000-0000-4000-8000-00000000000a']::uuid[]) $$;
GRANT EXECUTE ON FUNCTION citus_test.bind_support_to_acme_only() TO support;
CREATE TABLE notes (tenant_id uuid NOT NULL, body text);
INSERT INTO notes VALUES (:'acme', 'a'), (:'globex', 'g1'), (:'globex', 'g2');
SELECT tenancy.enable_isolation('notes');
GRANT SELECT ON notes TO support;
SELECT tenancy.bind_role('support', ARRAY[:'acme', :'globex']::uuid[]);
\c - support
SET plan_cache_mode = force_generic_plan;
SELECT tenancy.set_tenant(:'globex');
PREPARE tenant_notes AS SELECT count(*) FROM notes;
EXECUTE tenant_notes;
EXPLAIN (COSTS OFF) EXECUTE tenant_notes;
SELECT tenancy.set_tenant(:'acme');
EXECUTE tenant_notes;
SELECT tenancy.set_tenant(:'globex');
SELECT citus_test.bind_support_to_acme_only();
\set VERBOSITY sqlstate
EXECUTE tenant_notes;
\set VERBOSITY default
\c :coordinator_admin
SELECT tenancy.unbind_role('support');
-- ... and when the role joins a bound group: membership changes make the
-- plans again too.
CREATE ROLE acme_staff NOLOGIN;
SELECT tenancy.bind_role('acme_staff', ARRAY[:'acme']::uuid[]);
CREATE FUNCTION citus_test.make_support_acme_staff() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE 'GRANT acme_staff TO support'; END $$;
GRANT EXECUTE ON FUNCTION citus_test.make_support_acme_staff() TO support;
\c - support
SET plan_cache_mode = force_generic_plan;
SELECT tenancy.set_tenant(:'globex');
PREPARE tenant_notes AS SELECT count(*) FROM notes;
EXECUTE tenant_notes;
SELECT citus_test.make_support_acme_staff();
\set VERBOSITY sqlstate
EXECUTE tenant_notes;
\set VERBOSITY default
\c :coordinator_admin
REVOKE acme_staff FROM support;
SELECT tenancy.unbind_role('acme_staff');
DROP ROLE acme_staff;
-- A view over a distributed table, owned by a role the policy does not apply
-- to: the workers read the shards as the session's role, under the policy,
-- so the view shows the session's tenant (on one node it shows every one).
CREATE VIEW all_orders AS SELECT tenant_id, id FROM orders;
GRANT SELECT ON all_orders TO app;
\c - app
SELECT tenancy.set_tenant(:'globex');
SELECT count(*) AS via_view, count(DISTINCT tenant_id) AS tenants FROM all_orders;
SELECT count(*) AS joined, count(DISTINCT v.tenant_id) AS tenants
  FROM orders o JOIN all_orders v ON v.tenant_id = o.tenant_id AND v.id = o.id;
\c - postgres
DROP VIEW all_orders;
DROP TABLE notes;
DROP FUNCTION citus_test.bind_support_to_acme_only(), citus_test.make_support_acme_staff();
