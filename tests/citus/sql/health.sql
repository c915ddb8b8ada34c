-- health_check() on the coordinator adds the cluster: each worker reachable,
-- and the per-node checks that matter (connections, wraparound, replication)
-- measured on every worker; tenant_stats() counts the rows on the workers.
-- Last in the schedule: it halts worker 2 and starts it again.
\getenv worker1 WORKER1_PORT
\getenv worker2 WORKER2_PORT
\getenv halt_worker2 HALT_WORKER2
\getenv restart_worker2 RESTART_WORKER2
SET client_min_messages = warning;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;

\c - monitor
-- Values vary from run to run; their presence and status do not.
SELECT check_name, status, value IS NOT NULL AS measured, crit_threshold
  FROM tenancy.health_check() WHERE check_name LIKE 'cluster%' ORDER BY check_name;
SELECT detail FROM tenancy.health_check() WHERE check_name = 'cluster_unreachable_nodes';
SELECT port IN (:worker1, :worker2) AS worker, reachable, check_name, status, value IS NOT NULL AS measured
  FROM tenancy.cluster_health() ORDER BY port, check_name;
-- A worker's figure is the worker's own, not the coordinator's: the
-- connection count there includes the session opened here.
SELECT count(DISTINCT port) AS workers_measured FROM tenancy.cluster_health()
 WHERE check_name = 'connection_saturation' AND value > 0;

-- A worker that stops answering: critical, named, and the per-node figures
-- say which node they could not measure.
\! $HALT_WORKER2
SELECT check_name, status, value FROM tenancy.health_check()
 WHERE check_name IN ('cluster_unreachable_nodes', 'cluster_connection_saturation') ORDER BY check_name;
SELECT replace(detail, :'worker2', 'WORKER2') AS detail FROM tenancy.health_check()
 WHERE check_name = 'cluster_unreachable_nodes';
SELECT position(format('not measured: 127.0.0.1:%s (does not accept connections)', :'worker2') IN detail) > 0 AS names_it
  FROM tenancy.health_check() WHERE check_name = 'cluster_xid_wraparound';
SELECT port = :worker2 AS worker2, reachable, check_name, status FROM tenancy.cluster_health()
 WHERE NOT reachable;
\! $RESTART_WORKER2 >/dev/null
\c - monitor
SELECT status, value FROM tenancy.health_check() WHERE check_name = 'cluster_unreachable_nodes';

-- The thresholds row: disabled, the cluster's reachability is not checked.
\c - postgres
UPDATE tenancy.health_thresholds SET enabled = false WHERE check_name = 'cluster_unreachable_nodes';
SELECT count(*) AS unreachable_rows FROM tenancy.health_check() WHERE check_name = 'cluster_unreachable_nodes';
UPDATE tenancy.health_thresholds SET enabled = true WHERE check_name = 'cluster_unreachable_nodes';

-- tenant_stats(): the coordinator's tables are empty shells; the estimates
-- come from the shards' statistics on the workers and match the rows there
-- (to the estimate's precision: a shard's tenants share it by their
-- frequencies), in every registered table once all are analyzed.
ANALYZE;
SELECT string_agg(format('SELECT %I AS tenant_id FROM %s', tenant_column, tbl), ' UNION ALL ' ORDER BY tbl::text)
       AS every_tenant_row FROM tenancy.tenant_tables \gset
WITH actual AS (
    SELECT tenant_id, count(*) AS n FROM (:every_tenant_row) r GROUP BY tenant_id)
SELECT s.slug, s.tables, a.n AS actual_rows,
       abs(s.rows_estimate - coalesce(a.n, 0)) <= greatest(3, 0.02 * a.n) AS within_2_percent,
       s.bytes_estimate > 0 AS has_bytes, s.stats_as_of IS NOT NULL AS analyzed
  FROM tenancy.tenant_stats() s LEFT JOIN actual a ON a.tenant_id = s.tenant_id
 WHERE s.slug IN ('acme', 'globex', 'initech') ORDER BY s.slug;
-- On one node's tables nothing changes: the Citus part adds no rows there.
SELECT count(*) AS rows_without_citus_tables FROM tenancy._citus_tenant_shares() c
  JOIN tenancy.tenant_tables t ON t.tbl::oid = c.registered
 WHERE NOT EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = t.tbl);
DROP ROLE monitor;
