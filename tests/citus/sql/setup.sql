-- pg_tenancy on a Citus cluster: CREATE EXTENSION on the coordinator reaches
-- every worker. Tables distributed by tenant (and co-located), a reference
-- table with a tenant column, and a shared reference table; three tenants.
SET client_min_messages = warning;
CREATE EXTENSION pg_tenancy;
\getenv worker1 WORKER1_PORT
\getenv worker2 WORKER2_PORT
SELECT nodeport IN (:worker1, :worker2) AS worker, hasmetadata
  FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeport;
SELECT result AS worker_version FROM run_command_on_workers($$SELECT extversion FROM pg_extension WHERE extname = 'pg_tenancy'$$);

-- Errors by SQLSTATE only: Citus names shards and ports in its messages.
CREATE SCHEMA citus_test;
GRANT USAGE ON SCHEMA citus_test TO PUBLIC;
CREATE FUNCTION citus_test.sqlstate(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

CREATE ROLE app LOGIN;
CREATE ROLE support LOGIN;
SELECT tenancy.create_tenant('acme', 'Acme', id => '00000000-0000-4000-8000-00000000000a');
SELECT tenancy.create_tenant('globex', 'Globex', id => '00000000-0000-4000-8000-00000000000b');
SELECT tenancy.create_tenant('initech', 'Initech', id => '00000000-0000-4000-8000-00000000000c');

CREATE TABLE orders (tenant_id uuid NOT NULL, id bigint NOT NULL, amount int, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('orders', 'tenant_id');
CREATE TABLE order_items (tenant_id uuid NOT NULL, order_id bigint NOT NULL, line int NOT NULL, qty int,
                          PRIMARY KEY (tenant_id, order_id, line));
SELECT create_distributed_table('order_items', 'tenant_id', colocate_with => 'orders');
CREATE TABLE products (tenant_id uuid NOT NULL, sku text NOT NULL, name text, PRIMARY KEY (tenant_id, sku));
SELECT create_reference_table('products');
CREATE TABLE currencies (code text PRIMARY KEY, name text);
SELECT create_reference_table('currencies');

INSERT INTO orders SELECT t, g, g * 10
  FROM unnest(ARRAY['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
                    '00000000-0000-4000-8000-00000000000c']::uuid[]) t,
       generate_series(1, 100) g;
INSERT INTO order_items SELECT tenant_id, id, l, l FROM orders, generate_series(1, 2) l;
INSERT INTO products SELECT t, 'sku-' || g, 'product ' || g
  FROM unnest(ARRAY['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b']::uuid[]) t,
       generate_series(1, 5) g;
INSERT INTO currencies VALUES ('EUR', 'Euro'), ('USD', 'Dollar');

SELECT tenancy.enable_isolation('orders');
SELECT tenancy.enable_isolation('order_items');
SELECT tenancy.enable_isolation('products');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_items, products TO app, support;
GRANT SELECT ON currencies TO app, support;

-- The catalogs workers read are reference tables now, filled.
SELECT logicalrelid, partmethod, repmodel FROM pg_dist_partition
 WHERE logicalrelid::text LIKE 'tenancy.%' ORDER BY 1;
SELECT result AS tenants_on_workers
  FROM run_command_on_workers($$SELECT count(*) FROM tenancy.cluster_tenants$$);
-- Shards carry the policy, without a subquery (which Citus refuses).
SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'orders'::regclass;
SELECT result AS shard_policies
  FROM run_command_on_shards('orders', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass$$)
 GROUP BY result;
SELECT * FROM tenancy.verify_isolation();
