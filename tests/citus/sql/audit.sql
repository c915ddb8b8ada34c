-- Audit on Citus: a distributed table's changes are logged on the node that
-- holds the changed shard, in the same transaction, into the cluster log
-- (distributed by tenant, co-located); the coordinator reads, seals and
-- verifies them on every node, across a shard move.
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
SELECT tenancy.create_tenant('umbrella', 'Umbrella', id => '00000000-0000-4000-8000-00000000000e') AS umbrella \gset
SELECT inet_server_port() AS coordinator_port \gset
-- Where a tenant's shard of a table is (citus_shards leaves out the extension's tables).
CREATE FUNCTION citus_test.placement(tbl regclass, tenant uuid, OUT port int, OUT shard text)
LANGUAGE sql AS $$
    SELECT n.nodeport, shard_name(tbl, p.shardid)
      FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
     WHERE p.shardid = get_shard_id_for_distribution_column(tbl, tenant)
$$;

CREATE TABLE accounts (tenant_id uuid NOT NULL, id bigint NOT NULL, name text, balance int, password text,
                       PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('accounts', 'tenant_id', colocate_with => 'orders');
SELECT tenancy.enable_isolation('accounts');
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts TO app;

-- Refused, with nothing done: a table not distributed by its tenant column.
CREATE TABLE audit_events (id bigint PRIMARY KEY, tenant_id uuid);
SELECT create_distributed_table('audit_events', 'id');
\set VERBOSITY sqlstate
SELECT tenancy.enable_audit('audit_events');
\set VERBOSITY default
SELECT count(*) AS audited_tables FROM tenancy.audit_config;
SELECT count(*) AS log_distributed FROM pg_dist_partition WHERE logicalrelid = 'tenancy.cluster_audit_log'::regclass;

-- The first audited distributed table distributes the cluster log beside
-- it: same co-location group, monthly partitions on every worker. Each
-- shard has the audit triggers (Citus copies all but TRUNCATE's, which
-- fires on the coordinator).
SELECT tenancy.enable_audit('accounts', exclude_columns => '{password}');
SELECT l.partmethod, l.colocationid = a.colocationid AS colocated
  FROM pg_dist_partition l, pg_dist_partition a
 WHERE l.logicalrelid = 'tenancy.cluster_audit_log'::regclass AND a.logicalrelid = 'accounts'::regclass;
SELECT result::int >= 3 AS log_partitions_on_worker
  FROM run_command_on_workers($$SELECT count(*) FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                                WHERE c.relname LIKE 'cluster\_audit\_log\_p%'$$);
SELECT result AS audit_triggers_per_shard
  FROM run_command_on_shards('accounts', $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'tenancy_audit_%%'$$)
 GROUP BY result;
SELECT table_name, exclude_columns, triggers_enabled FROM tenancy.audited_tables;

-- An application role's changes, as on one node: exclusions, no-op
-- updates skipped, a key change recorded under both keys, rollback logs
-- nothing.
SET ROLE app;
SELECT tenancy.set_tenant(:'acme');
INSERT INTO accounts VALUES (:'acme', 1, 'one', 10, 'pw'), (:'acme', 2, 'two', 20, 'pw');
SELECT tenancy.set_actor('alice@acme');
UPDATE accounts SET balance = balance + 5 WHERE id = 1;
SELECT tenancy.set_actor('');
UPDATE accounts SET password = 'changed' WHERE id = 2;
UPDATE accounts SET name = name WHERE id = 2;
UPDATE accounts SET id = 3 WHERE id = 2;
DELETE FROM accounts WHERE id = 3;
BEGIN;
INSERT INTO accounts VALUES (:'acme', 99, 'rolled back', 0, 'pw');
ROLLBACK;
SELECT tenancy.set_tenant(:'globex');
INSERT INTO accounts VALUES (:'globex', 1, 'globex one', 1, 'pw');
SELECT tenancy.set_tenant(:'acme');
-- The role reads its tenant's rows from the coordinator, wherever they were written.
SELECT op, table_name, record_key ->> 'id' AS id, old_record_key ->> 'id' AS old_id, old_row, new_row - 'tenant_id' AS new_row,
       changed_cols, actor, tenant_id = :'acme' AS own
  FROM tenancy.audit_trail ORDER BY logged_at, id;
SELECT op, record_key ->> 'id' AS id FROM tenancy.row_history('accounts', jsonb_build_object('tenant_id', :'acme', 'id', 3));
SELECT op, record_key ->> 'id' AS id FROM tenancy.row_history('accounts', jsonb_build_object('tenant_id', :'globex', 'id', 1));
-- ... and can change none of them, nor read the log directly.
\set VERBOSITY sqlstate
DELETE FROM tenancy.cluster_audit_log;
UPDATE tenancy.cluster_audit_log SET op = 'DELETE';
SELECT count(*) FROM tenancy.cluster_audit_log;
\set VERBOSITY default
RESET ROLE;
SELECT tenancy.clear_tenant();

-- The rows are in the log's shard for the tenant, on the node holding the
-- tenant's rows, with that node's group in their ids.
SELECT port AS acme_port FROM citus_test.placement('accounts', :'acme') \gset
SELECT port = :acme_port AS log_beside_rows FROM citus_test.placement('tenancy.cluster_audit_log', :'acme');
SELECT count(*) AS acme_rows, bool_and((id >> 52) - 1 = (SELECT groupid FROM pg_dist_node WHERE nodeport = :acme_port)) AS ids_name_the_node
  FROM tenancy.cluster_audit_log WHERE tenant_id = :'acme';
SELECT sum(result::int) AS rows_in_workers_local_logs
  FROM run_command_on_workers($$SELECT count(*) FROM tenancy.audit_log$$);
SELECT audit_events_24h AS acme_events_in_tenant_stats FROM tenancy.tenant_stats() WHERE tenant_id = :'acme';

-- A reference table's rows are logged once, by the coordinator's placement, in its log.
SELECT tenancy.enable_audit('products');
SET ROLE app;
SELECT tenancy.set_tenant(:'acme');
INSERT INTO products VALUES (:'acme', 'sku-audit', 'audited');
RESET ROLE;
SELECT tenancy.clear_tenant();
SELECT count(*) AS product_rows_logged, min(tenant_id::text) = :'acme' AS tenant
  FROM tenancy.audit_log WHERE table_name = 'public.products';
SELECT sum(result::int) AS rows_in_workers_local_logs
  FROM run_command_on_workers($$SELECT count(*) FROM tenancy.audit_log$$);

-- Sealing from the coordinator covers every node's rows, and each node's
-- horizon is recorded under its own system identifier.
SELECT tenancy.seal_audit() AS sealed;
SELECT count(DISTINCT system_identifier) AS nodes_sealed FROM tenancy.audit_seals;
SELECT tenant_id, rows_checked, ok FROM tenancy.verify_audit() ORDER BY 1;
SELECT tenancy.seal_audit() AS sealed_again;

-- A shard moved to the other worker takes its audit rows along (the log is
-- co-located): still found, still verifying, nothing logged twice; new
-- changes are logged on the new node and sealed as well.
-- (Row quotas' counters are co-located too, and move along as well.)
SELECT tenancy.define_resource('accounts');
SELECT tenancy.enforce_row_quota('accounts', 'accounts');
SELECT used AS acme_accounts_before_move FROM tenancy.quota_status() WHERE tenant_id = :'acme' AND resource = 'accounts';
SELECT nodeport AS other_port FROM pg_dist_node WHERE groupid > 0 AND nodeport <> :acme_port \gset
SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('accounts', :'acme'),
                                  '127.0.0.1', :acme_port, '127.0.0.1', :other_port, shard_transfer_mode => 'block_writes');
SELECT port = :other_port AS log_moved FROM citus_test.placement('tenancy.cluster_audit_log', :'acme');
SELECT count(*) AS acme_rows_after_move FROM tenancy.cluster_audit_log WHERE tenant_id = :'acme';
SELECT op, record_key ->> 'id' AS id FROM tenancy.row_history('accounts', jsonb_build_object('tenant_id', :'acme', 'id', 1));
SELECT tenant_id, rows_checked, ok FROM tenancy.verify_audit(:'acme');
SET ROLE app;
SELECT tenancy.set_tenant(:'acme');
UPDATE accounts SET balance = 0 WHERE id = 1;
INSERT INTO accounts VALUES (:'acme', 10, 'after the move', 1, 'pw');
RESET ROLE;
SELECT tenancy.clear_tenant();
SELECT (id >> 52) - 1 = (SELECT groupid FROM pg_dist_node WHERE nodeport = :other_port) AS logged_on_new_node
  FROM tenancy.cluster_audit_log WHERE tenant_id = :'acme' ORDER BY logged_at DESC LIMIT 1;
SELECT used AS acme_accounts_after_move FROM tenancy.quota_status() WHERE tenant_id = :'acme' AND resource = 'accounts';
SELECT tenancy.seal_audit() AS sealed_after_move;
SELECT tenant_id, rows_checked, ok FROM tenancy.verify_audit(:'acme');

-- A superuser on a worker who changes a sealed row, or deletes one, is found.
SELECT port AS acme_port, shard AS acme_log_shard FROM citus_test.placement('tenancy.cluster_audit_log', :'acme') \gset
SELECT port AS globex_port, shard AS globex_log_shard FROM citus_test.placement('tenancy.cluster_audit_log', :'globex') \gset
SELECT min(id) AS acme_changed_id FROM tenancy.cluster_audit_log WHERE tenant_id = :'acme' AND op = 'UPDATE' \gset
SELECT min(id) AS globex_deleted_id FROM tenancy.cluster_audit_log WHERE tenant_id = :'globex' \gset
\set acme_worker 'host=127.0.0.1 port=' :acme_port ' user=postgres dbname=tenancy_citus'
\set globex_worker 'host=127.0.0.1 port=' :globex_port ' user=postgres dbname=tenancy_citus'
\set coordinator 'host=127.0.0.1 port=' :coordinator_port ' user=postgres dbname=tenancy_citus'
\c :acme_worker
UPDATE :acme_log_shard SET new_row = jsonb_set(new_row, '{balance}', '1000000') WHERE id = :acme_changed_id;
\c :globex_worker
DELETE FROM :globex_log_shard WHERE id = :globex_deleted_id;
\c :coordinator
SET client_min_messages = warning;
SELECT tenant_id, ok, first_bad_id = :acme_changed_id AS finds_the_change
  FROM tenancy.verify_audit(:'acme');
SELECT tenant_id, ok, first_bad_id = :globex_deleted_id AS finds_the_delete
  FROM tenancy.verify_audit(:'globex');

-- purge_tenant erases the tenant's audit rows on every node and leaves one
-- PURGE row on the coordinator, which starts a chain that verifies.
INSERT INTO accounts VALUES (:'umbrella', 1, 'u', 1, 'pw'), (:'umbrella', 2, 'u', 2, 'pw');
SELECT tenancy.seal_audit() AS sealed_umbrella;
SELECT tenancy.purge_tenant(:'umbrella');
SELECT count(*) AS umbrella_rows_left FROM tenancy.cluster_audit_log WHERE tenant_id = :'umbrella';
SELECT op, new_row -> 'audit_rows_deleted' AS audit_rows_deleted, new_row -> 'sealed_chain_length' AS chain_length
  FROM tenancy.audit_log WHERE tenant_id = :'umbrella';
SELECT tenancy.seal_audit() AS sealed_purge;
SELECT rows_checked, ok FROM tenancy.verify_audit(:'umbrella');

-- TRUNCATE is logged on the coordinator, for no single tenant.
TRUNCATE accounts;
SELECT op, tenant_id, table_name FROM tenancy.audit_log WHERE op = 'TRUNCATE';

-- Retention set on the log applies to the cluster log, on every node:
-- three months on, this month's partitions are gone everywhere, and
-- verification counts their sealed links as expired.
UPDATE tenancy.partition_sets SET retention = '1 month' WHERE parent = 'tenancy.audit_log'::regclass;
SELECT retention FROM tenancy.partition_sets WHERE parent = 'tenancy.cluster_audit_log'::regclass;
SELECT format('%s', date_trunc('month', now()) + interval '3 months 1 day') AS later \gset
SET tenancy.now_override = :'later';
SELECT count(*) > 0 AS retired FROM tenancy.run_maintenance('tenancy.cluster_audit_log') WHERE action IN ('dropped', 'retired');
RESET tenancy.now_override;
UPDATE tenancy.partition_sets SET retention = NULL WHERE parent = 'tenancy.audit_log'::regclass;
SELECT count(*) AS acme_rows_kept FROM tenancy.cluster_audit_log WHERE tenant_id = :'acme';
SELECT count(*) > 0 AS expiry_recorded FROM tenancy.audit_expiry;

-- disable_audit removes the triggers from every shard, the moved one
-- included (which Citus gave a TRUNCATE trigger as well).
SELECT tenancy.disable_row_quota('accounts');
SELECT tenancy.disable_audit('accounts');
SELECT result AS audit_triggers_per_shard
  FROM run_command_on_shards('accounts', $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'tenancy_audit_%%'$$)
 GROUP BY result;
SELECT tenancy.disable_audit('products');
DROP TABLE accounts, audit_events;
