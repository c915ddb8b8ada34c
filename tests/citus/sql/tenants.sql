-- Tenants created, suspended, bound and purged on the coordinator take effect
-- on every node; management runs on the coordinator only.
\getenv worker1 WORKER1_PORT
\getenv worker2 WORKER2_PORT
\set worker1_app 'host=127.0.0.1 port=' :worker1 ' user=app dbname=tenancy_citus'
\set worker2_support 'host=127.0.0.1 port=' :worker2 ' user=support dbname=tenancy_citus'
\set worker1_admin 'host=127.0.0.1 port=' :worker1 ' user=postgres dbname=tenancy_citus'
\set coordinator_admin 'host=127.0.0.1 port=' :PORT ' user=postgres dbname=tenancy_citus'
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
\set initech '00000000-0000-4000-8000-00000000000c'

-- A new tenant is known to the workers at once.
SELECT tenancy.create_tenant('hooli', 'Hooli', id => '00000000-0000-4000-8000-00000000000d');
INSERT INTO orders VALUES ('00000000-0000-4000-8000-00000000000d', 1, 1);
\c :worker1_app
SET tenancy.tenant_id = '00000000-0000-4000-8000-00000000000d';
SELECT count(*) AS hooli_orders_from_worker FROM orders;

-- A suspended tenant is refused on the workers too, for the coordinator's
-- sessions and for direct ones.
\c :coordinator_admin
SELECT tenancy.suspend_tenant(:'globex');
SET ROLE app;
SELECT citus_test.sqlstate(format('SELECT tenancy.set_tenant(%L)', :'globex')) AS coordinator_refuses;
RESET ROLE;
\c :worker1_app
SET tenancy.tenant_id = :'globex';
\c :coordinator_admin
SELECT tenancy.activate_tenant(:'globex');
\c :worker1_app
SET tenancy.tenant_id = :'globex';
SELECT count(*) AS globex_again FROM orders;

-- A bound role is held to its tenants on the workers too.
\c :coordinator_admin
SELECT tenancy.bind_role('support', ARRAY[:'acme'::uuid]);
SELECT result AS bindings_on_workers
  FROM run_command_on_workers($$SELECT string_agg(role_name || ':' || array_length(tenants, 1), ',') FROM tenancy.cluster_role_bindings$$);
SET ROLE support;
SELECT citus_test.sqlstate(format('SELECT tenancy.set_tenant(%L)', :'globex')) AS coordinator_refuses_bound;
SELECT tenancy.set_tenant(:'acme');
SELECT count(*) AS support_sees_acme FROM orders;
RESET ROLE;
\c :worker2_support
SET tenancy.tenant_id = :'globex';
SET tenancy.tenant_id = :'acme';
SELECT count(DISTINCT tenant_id) AS tenants FROM orders;
\c :coordinator_admin
SELECT tenancy.unbind_role('support');
\c :worker2_support
SET tenancy.tenant_id = :'globex';
SELECT count(*) > 0 AS unbound_sees_globex FROM orders;

-- Purge: the tenant's rows are gone from every shard of every registered
-- (here: isolated) table, in one distributed transaction.
\c :coordinator_admin
SELECT tenancy.purge_tenant(:'initech') AS purged;
SELECT result AS initech_rows_per_shard
  FROM run_command_on_shards('orders', format($$SELECT count(*) FROM %%s WHERE tenant_id = %L$$, :'initech'))
 GROUP BY result;
SELECT result AS initech_items_per_shard
  FROM run_command_on_shards('order_items', format($$SELECT count(*) FROM %%s WHERE tenant_id = %L$$, :'initech'))
 GROUP BY result;

-- Management belongs to the coordinator.
\c :worker1_admin
SET client_min_messages = warning;
SELECT tenancy.create_tenant('rogue', 'Rogue');
SELECT tenancy.suspend_tenant('00000000-0000-4000-8000-00000000000a');
\c :coordinator_admin
SELECT count(*) AS no_rogue_tenant FROM tenancy.tenants WHERE slug = 'rogue';
