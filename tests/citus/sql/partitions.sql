-- Partition sets on a distributed partitioned table: creation, maintenance,
-- default-row relocation and retention keep the children on every node in
-- step, and no row is lost.
SET client_min_messages = warning;
\set acme '00000000-0000-4000-8000-00000000000a'
\set globex '00000000-0000-4000-8000-00000000000b'
SET tenancy.now_override = '2030-01-10 12:00:00+00';
CREATE TABLE events (tenant_id uuid NOT NULL, at timestamptz NOT NULL, payload text) PARTITION BY RANGE (at);
SELECT create_distributed_table('events', 'tenant_id');
SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 2, retention => '3 days');
SELECT tenancy.enable_isolation('events');
GRANT SELECT, INSERT ON events TO app;
-- Every child is a distributed table co-located with the parent, on every node.
SELECT partition, range_from, range_to FROM tenancy.show_partitions('events') ORDER BY range_from NULLS FIRST;
SELECT p.logicalrelid::text AS child, p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass) AS colocated
  FROM pg_dist_partition p WHERE p.logicalrelid::text LIKE 'events_%' ORDER BY 1;
SELECT result AS children_on_each_worker
  FROM run_command_on_workers($$SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass$$);
-- Rows for today and for a day with no child yet (they land in the default).
INSERT INTO events SELECT t, '2030-01-10 08:00+00', 'today' FROM unnest(ARRAY[:'acme', :'globex']::uuid[]) t;
INSERT INTO events SELECT t, '2030-01-20 08:00+00', 'later' FROM unnest(ARRAY[:'acme', :'globex']::uuid[]) t, generate_series(1, 3);
SELECT (SELECT count(*) FROM events_p20300110) AS in_today, (SELECT count(*) FROM events_default) AS in_default;
-- Ten days later: new children, the default's rows relocated into theirs,
-- the old children retired by retention.
SET tenancy.now_override = '2030-01-20 12:00:00+00';
SELECT action, partition, detail FROM tenancy.run_maintenance('events') ORDER BY action, partition;
SELECT (SELECT count(*) FROM events_p20300120) AS in_new_child, (SELECT count(*) FROM events_default) AS in_default,
       (SELECT count(*) FROM events) AS in_all;
SELECT p.logicalrelid::text AS child FROM pg_dist_partition p WHERE p.logicalrelid::text LIKE 'events_%' ORDER BY 1;
SELECT result AS children_on_each_worker
  FROM run_command_on_workers($$SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass$$);
-- New children are isolated like the parent, on every shard.
SELECT result AS policies_per_shard
  FROM run_command_on_shards('events_p20300120', $$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass$$)
 GROUP BY result;
SET ROLE app;
SELECT tenancy.set_tenant(:'acme');
SELECT count(*) AS acme_events, count(DISTINCT tenant_id) AS tenants FROM events;
RESET ROLE;
RESET tenancy.now_override;
-- show_partitions() measures each child in its shards (the coordinator's
-- children are empty shells); the rows' estimate is left unknown there.
SELECT partition, is_default, est_rows, total_bytes > 0 AS has_bytes,
       total_bytes = citus_total_relation_size(partition) AS shards_bytes
  FROM tenancy.show_partitions('events') ORDER BY partition::text;
