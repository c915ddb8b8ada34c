-- Quotas on a Citus coordinator: 16 clients at once consume from one
-- tenant's limit; exactly the limit is granted, not one call more. Then row
-- quotas on distributed tables, counted on the workers.
\getenv pgbench PGBENCH
\getenv consume_script CONSUME_SCRIPT
SET client_min_messages = warning;
SELECT tenancy.define_resource('api_calls', 'month');
SELECT tenancy.set_plan_limit('free', 'api_calls', 1000);
SELECT tenancy.create_tenant('quota_co', 'Quota Co', 'free', '00000000-0000-4000-8000-0000000000a1');
-- Each call that gets a unit leaves a row in a distributed table, in the
-- same transaction: what was granted is what landed on the workers.
CREATE TABLE granted (tenant_id uuid NOT NULL, n bigserial, PRIMARY KEY (tenant_id, n));
SELECT create_distributed_table('granted', 'tenant_id');
\! $PGBENCH -n -c 16 -j 2 -t 100 -f $CONSUME_SCRIPT >/dev/null
SELECT count(*) AS granted_calls FROM granted;
SELECT used, quota_limit, used <= quota_limit AS within FROM tenancy.quota_status()
 WHERE tenant_id = '00000000-0000-4000-8000-0000000000a1' AND resource = 'api_calls';
DROP TABLE granted;

-- Row quotas on a distributed table: rows are counted on the worker that
-- holds them, in the same transaction, in a counter co-located with them,
-- against limits every node knows.
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
\set quota_co '00000000-0000-4000-8000-0000000000a1'
\getenv ticket_script TICKET_SCRIPT
CREATE TABLE tickets (tenant_id uuid NOT NULL, id bigserial, body text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('tickets', 'tenant_id', colocate_with => 'orders');
SELECT tenancy.register_table('tickets');
INSERT INTO tickets (tenant_id, body) SELECT :'acme', 'old' FROM generate_series(1, 5);
SELECT tenancy.define_resource('tickets');
SELECT tenancy.set_quota(:'acme', 'tickets', 10);
SELECT tenancy.enforce_row_quota('tickets', 'tickets');
SELECT used, quota_limit FROM tenancy.quota_status() WHERE tenant_id = :'acme' AND resource = 'tickets';
-- The tenant's counter is on the node that holds its rows.
SELECT array_agg(p.groupid ORDER BY p.shardid) AS placed FROM pg_dist_placement p
 WHERE p.shardid IN (get_shard_id_for_distribution_column('tickets', :'acme'),
                     get_shard_id_for_distribution_column('tenancy.cluster_row_usage', :'acme')) \gset
SELECT :'placed'::int[] AS groups, (:'placed'::int[])[1] = (:'placed'::int[])[2] AS counter_beside_rows;
INSERT INTO tickets (tenant_id, body) SELECT :'acme', 'new' FROM generate_series(1, 5);
-- One row more is refused (53400), and a statement that would cross the
-- limit fails whole, other tenants' rows in it included.
SELECT citus_test.sqlstate(format('INSERT INTO tickets (tenant_id, body) VALUES (%L, %L)', :'acme', 'over')) AS one_more;
\set SHOW_CONTEXT never
INSERT INTO tickets (tenant_id, body) VALUES (:'globex', 'fits'), (:'acme', 'over');
\set SHOW_CONTEXT errors
SELECT tenant_id = :'acme' AS acme, count(*) FROM tickets GROUP BY 1 ORDER BY 1;
-- DELETE gives units back; a new limit set on the coordinator reaches the
-- workers at once; rows of a tenant without a limit are counted too.
DELETE FROM tickets WHERE tenant_id = :'acme' AND body = 'old';
SELECT tenancy.set_quota(:'acme', 'tickets', 12);
INSERT INTO tickets (tenant_id, body) SELECT :'acme', 'raised' FROM generate_series(1, 7);
INSERT INTO tickets (tenant_id, body) VALUES (:'globex', 'unlimited');
SELECT t.slug, s.used, s.quota_limit FROM tenancy.quota_status() s JOIN tenancy.tenants t ON t.id = s.tenant_id
 WHERE s.resource = 'tickets' ORDER BY 1;
SELECT tenancy.check_quota(:'acme', 'tickets') AS acme_left;
-- TRUNCATE gives every unit back.
TRUNCATE tickets;
SELECT resource, sum(used) AS used FROM tenancy.cluster_row_usage GROUP BY 1;
-- 16 clients insert at once, 800 attempts against a limit of 500: exactly
-- 500 rows land (a client stops at its first refused insert).
SELECT tenancy.set_quota(:'quota_co', 'tickets', 500);
\! $PGBENCH -n -c 16 -j 2 -t 50 -f $TICKET_SCRIPT >/dev/null 2>&1
SELECT count(*) AS landed FROM tickets WHERE tenant_id = :'quota_co';
SELECT used, quota_limit FROM tenancy.quota_status() WHERE tenant_id = :'quota_co' AND resource = 'tickets';

-- A reference table's rows are on every node: its placement on the
-- coordinator counts them, once, in the coordinator's counters.
CREATE TABLE shared_notes (tenant_id uuid NOT NULL, body text);
SELECT create_reference_table('shared_notes');
SELECT tenancy.register_table('shared_notes');
SELECT tenancy.define_resource('notes');
SELECT tenancy.set_quota(:'acme', 'notes', 3);
SELECT tenancy.enforce_row_quota('shared_notes', 'notes');
INSERT INTO shared_notes SELECT :'acme', 'n' || g FROM generate_series(1, 3) g;
SELECT citus_test.sqlstate(format('INSERT INTO shared_notes VALUES (%L, %L)', :'acme', 'n4')) AS fourth_note;
SELECT used, quota_limit FROM tenancy.quota_status(:'acme') WHERE resource = 'notes';
DELETE FROM shared_notes WHERE body = 'n1';
SELECT used FROM tenancy.quota_status(:'acme') WHERE resource = 'notes';
TRUNCATE shared_notes;
SELECT used FROM tenancy.quota_status(:'acme') WHERE resource = 'notes';

-- What row quotas refuse on Citus, with nothing half done (0A000): a table
-- in another co-location group than the counters, and a resource counted on
-- both distributed and local (or reference) tables.
CREATE TABLE elsewhere (tenant_id uuid NOT NULL, body text);
SELECT create_distributed_table('elsewhere', 'tenant_id', colocate_with => 'none', shard_count => 4);
SELECT tenancy.register_table('elsewhere');
CREATE TABLE local_tickets (tenant_id uuid NOT NULL, body text);
SELECT tenancy.register_table('local_tickets');
\set VERBOSITY sqlstate
SELECT tenancy.enforce_row_quota('elsewhere', 'tickets');
SELECT tenancy.enforce_row_quota('local_tickets', 'tickets');
\set VERBOSITY default
SELECT tbl, resource FROM tenancy.row_quotas ORDER BY 1;
SELECT count(*) AS stray_triggers FROM pg_trigger
 WHERE tgrelid IN ('elsewhere'::regclass, 'local_tickets'::regclass)
   AND tgname LIKE 'tenancy%';
-- disable_row_quota takes the triggers off every shard.
SELECT tenancy.disable_row_quota('tickets');
SELECT sum(result::int) AS quota_triggers_on_shards
  FROM run_command_on_shards('tickets', $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'tenancy_quota%%'$$);
INSERT INTO tickets (tenant_id, body) SELECT :'quota_co', 'uncounted';
DROP TABLE tickets, shared_notes, elsewhere, local_tickets;

-- storage_bytes: the bytes of distributed tables are measured in their
-- shards and shared out by each tenant's rows, as on one node.
SELECT tenancy.refresh_storage_usage() > 0 AS attributed;
SELECT t.slug, s.used > 0 AS measured FROM tenancy.quota_status() s JOIN tenancy.tenants t ON t.id = s.tenant_id
 WHERE s.resource = 'storage_bytes' AND t.slug IN ('acme', 'globex') ORDER BY 1;

