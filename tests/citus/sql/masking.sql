-- Masked views over distributed tables: masking rules, the view, masked
-- access; a masked role reaches nothing underneath, on any node; a pseudonym
-- is the same whichever node computes it.
\getenv worker1 WORKER1_PORT
\set worker1_analyst 'host=127.0.0.1 port=' :worker1 ' user=analyst dbname=tenancy_citus'
\set worker1_admin 'host=127.0.0.1 port=' :worker1 ' user=postgres dbname=tenancy_citus'
\set coordinator_admin 'host=127.0.0.1 port=' :PORT ' user=postgres dbname=tenancy_citus'
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
CREATE TABLE customers (tenant_id uuid NOT NULL, id int NOT NULL, email text, full_name text, ssn text,
                        PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('customers', 'tenant_id', colocate_with => 'orders');
INSERT INTO customers VALUES
    (:'acme', 1, 'john.doe@example.com', 'John Doe', '123-45-6789'),
    (:'acme', 2, 'jane.roe@example.com', 'Jane Roe', '987-65-4321'),
    (:'globex', 1, 'hank@globex.example', 'Hank Scorpio', '555-55-5555');
SELECT tenancy.enable_isolation('customers');
SELECT tenancy.set_masking_rule('customers', 'email', 'email');
SELECT tenancy.set_masking_rule('customers', 'full_name', 'name');
SELECT tenancy.set_masking_rule('customers', 'ssn', 'pseudonymize');
SELECT tenancy.create_masked_view('customers');
CREATE ROLE analyst LOGIN;
SELECT tenancy.grant_masked_access('analyst');

SET ROLE analyst;
SELECT tenancy.set_tenant(:'acme');
SELECT id, email, full_name, ssn = tenancy.pseudonymize('123-45-6789') AS pseudonym_matches
  FROM tenancy_masked.customers ORDER BY id;
SELECT count(*) AS other_tenants FROM tenancy_masked.customers WHERE tenant_id <> :'acme';
\set VERBOSITY sqlstate
SELECT count(*) FROM customers;
\set VERBOSITY default
RESET ROLE;
SELECT tenancy.pseudonymize('123-45-6789') AS on_coordinator \gset

-- On a worker: the view works, the table and its shards are out of reach,
-- and the worker computes the coordinator's pseudonyms.
SELECT shard_name AS customers_shard, nodeport AS shard_port FROM citus_shards
 WHERE shardid = get_shard_id_for_distribution_column('customers', :'acme') \gset
\set shard_worker_analyst 'host=127.0.0.1 port=' :shard_port ' user=analyst dbname=tenancy_citus'
\c :shard_worker_analyst
SET client_min_messages = warning;
SET tenancy.tenant_id = :'acme';
SELECT id, email, ssn = :'on_coordinator' AS same_pseudonym FROM tenancy_masked.customers ORDER BY id;
SELECT tenancy.pseudonymize('123-45-6789') = :'on_coordinator' AS worker_pseudonymizes_alike;
\set VERBOSITY sqlstate
SELECT count(*) FROM customers;
SELECT count(*) FROM :customers_shard;
\set VERBOSITY default
\c :coordinator_admin
