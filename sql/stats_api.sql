-- Connection and health statistics: the SQL views of PostgreSQL's statistics,
-- privileges and comments. They run with the caller's rights (pg_monitor sees
-- everything); only tenant_stats, which reads planner statistics of tenant
-- tables, runs as the extension owner and is granted to pg_monitor.

CREATE FUNCTION tenancy.connection_stats()
RETURNS TABLE(datname name, usename name, application_name text, state text, connections int,
              waiting int, oldest_xact_age interval, oldest_query_age interval)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.datname, a.usename, a.application_name,
           coalesce(a.state, '<insufficient privilege>'),
           count(*)::int,
           count(*) FILTER (WHERE a.wait_event_type = 'Lock')::int,
           date_trunc('second', max(statement_timestamp() - a.xact_start)),
           date_trunc('second', max(statement_timestamp() - a.query_start) FILTER (WHERE a.state = 'active'))
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend'
     GROUP BY 1, 2, 3, 4
     ORDER BY 5 DESC, 1, 2, 3, 4
$$;
COMMENT ON FUNCTION tenancy.connection_stats() IS
    'Client connections grouped by database, user, application and state: how many, how many wait for a lock, the oldest transaction and running query. Other roles'' states need pg_monitor.';

CREATE FUNCTION tenancy.connection_summary()
RETURNS TABLE(total int, active int, idle int, idle_in_transaction int, waiting int,
              max_connections int, reserved int, saturation_pct numeric)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.total, c.active, c.idle, c.idle_in_transaction, c.waiting, s.max_conn, s.reserved,
           round(100.0 * c.total / GREATEST(s.max_conn - s.reserved, 1), 1)
      FROM (SELECT count(*)::int AS total,
                   count(*) FILTER (WHERE a.state = 'active')::int AS active,
                   count(*) FILTER (WHERE a.state = 'idle')::int AS idle,
                   count(*) FILTER (WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)'))::int
                       AS idle_in_transaction,
                   count(*) FILTER (WHERE a.wait_event_type = 'Lock')::int AS waiting
              FROM pg_stat_activity a
             WHERE a.backend_type = 'client backend') c,
           (SELECT current_setting('max_connections')::int AS max_conn,
                   current_setting('superuser_reserved_connections')::int
                   + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) AS reserved) s
$$;
COMMENT ON FUNCTION tenancy.connection_summary() IS
    'Client connections by state, against max_connections minus the reserved superuser slots (saturation_pct). States of other roles'' sessions need pg_monitor.';

CREATE FUNCTION tenancy.database_stats()
RETURNS TABLE(metric text, value numeric, unit text, counter boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    timed bigint;
    requested bigint;
BEGIN
    RETURN QUERY
    SELECT m.metric, m.value, m.unit, m.counter
      FROM pg_stat_database d,
           LATERAL (VALUES
               ('cache_hit_ratio', round(100.0 * d.blks_hit / nullif(d.blks_hit + d.blks_read, 0), 2), 'percent', false),
               ('blocks_read', d.blks_read::numeric, 'blocks', true),
               ('blocks_hit', d.blks_hit::numeric, 'blocks', true),
               ('commits', d.xact_commit::numeric, 'transactions', true),
               ('rollbacks', d.xact_rollback::numeric, 'transactions', true),
               ('rollback_ratio', round(100.0 * d.xact_rollback / nullif(d.xact_commit + d.xact_rollback, 0), 2), 'percent', false),
               ('deadlocks', d.deadlocks::numeric, 'deadlocks', true),
               ('conflicts', d.conflicts::numeric, 'queries', true),
               ('temp_files', d.temp_files::numeric, 'files', true),
               ('temp_bytes', d.temp_bytes::numeric, 'bytes', true),
               ('database_size', pg_database_size(d.datid)::numeric, 'bytes', false),
               ('xid_age', (SELECT age(datfrozenxid)::numeric FROM pg_database WHERE oid = d.datid), 'transactions', false),
               ('multixact_age', (SELECT mxid_age(datminmxid)::numeric FROM pg_database WHERE oid = d.datid), 'multixacts', false),
               ('oldest_transaction',
                (SELECT round(extract(epoch FROM max(statement_timestamp() - a.xact_start))::numeric, 1)
                   FROM pg_stat_activity a
                  WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()), 'seconds', false),
               ('replication_lag_bytes',
                CASE WHEN pg_is_in_recovery()
                     THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                     ELSE (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)) FROM pg_stat_replication r) END,
                'bytes', false),
               ('replication_lag_seconds',
                CASE WHEN pg_is_in_recovery()
                     THEN round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 1)
                     ELSE (SELECT round(extract(epoch FROM max(r.replay_lag))::numeric, 1) FROM pg_stat_replication r) END,
                'seconds', false)
           ) AS m(metric, value, unit, counter)
     WHERE d.datname = current_database();
    -- PostgreSQL 17 moved checkpoint counters to pg_stat_checkpointer.
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'SELECT num_timed, num_requested FROM pg_catalog.pg_stat_checkpointer' INTO timed, requested;
    ELSE
        EXECUTE 'SELECT checkpoints_timed, checkpoints_req FROM pg_catalog.pg_stat_bgwriter' INTO timed, requested;
    END IF;
    RETURN QUERY VALUES ('checkpoints_timed', timed::numeric, 'checkpoints', true),
                        ('checkpoints_requested', requested::numeric, 'checkpoints', true);
END
$$;
COMMENT ON FUNCTION tenancy.database_stats() IS
    'This database''s figures: cache hit and rollback ratios, deadlocks, temp files, size, xid and multixact age, oldest transaction, replication lag, checkpoints. counter: a running total since the statistics reset.';

CREATE FUNCTION tenancy.table_stats()
RETURNS TABLE(tbl regclass, total_bytes bigint, table_bytes bigint, index_bytes bigint,
              live_tuples bigint, dead_tuples bigint, dead_pct numeric, seq_scans bigint,
              idx_scans bigint, last_vacuum timestamptz, last_analyze timestamptz,
              tenant_column name)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.relid::regclass,
           pg_total_relation_size(s.relid), pg_table_size(s.relid), pg_indexes_size(s.relid),
           s.n_live_tup, s.n_dead_tup,
           round(100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0), 1),
           s.seq_scan, s.idx_scan,
           GREATEST(s.last_vacuum, s.last_autovacuum), GREATEST(s.last_analyze, s.last_autoanalyze),
           t.tenant_column
      FROM pg_stat_user_tables s
      LEFT JOIN tenancy.tenant_tables t ON t.tbl = s.relid
     WHERE s.schemaname <> 'tenancy'
     ORDER BY 2 DESC, 1
$$;
COMMENT ON FUNCTION tenancy.table_stats() IS
    'User tables, biggest first: sizes, live and dead tuples, scans, last (auto)vacuum and (auto)analyze, and the tenant column of registered tables.';

-- On a Citus cluster the rows of a distributed or reference table live in
-- shards on the workers, and its table on the coordinator is an empty shell:
-- per tenant and registered table, the same planner statistics read from the
-- shard that holds the tenant's rows (each worker's own pg_class and pg_stats,
-- one run_command_on_shards per table). No rows where Citus is not used.
-- PL/pgSQL: the Citus functions it calls exist only where Citus does.
CREATE FUNCTION tenancy._citus_tenant_shares()
RETURNS TABLE(tenant_id uuid, registered oid, reltuples float8, bytes bigint, analyzed timestamptz, share float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH leaves AS (
        SELECT tt.tbl::oid AS registered, tt.tenant_column, coalesce(p.relid, tt.tbl)::regclass AS leaf
          FROM tenancy.tenant_tables tt
          LEFT JOIN LATERAL (SELECT t.relid FROM pg_partition_tree(tt.tbl) t WHERE t.isleaf) p ON true
    ), citus_leaves AS (
        SELECT l.*, d.partmethod = 'h' AS by_tenant
          FROM leaves l JOIN pg_dist_partition d ON d.logicalrelid = l.leaf
    ), shard_stats AS (
        -- run_command_on_shards puts each shard's name where %s stands.
        SELECT l.registered, l.leaf, l.by_tenant, r.shardid, r.result::jsonb AS s
          FROM citus_leaves l
         CROSS JOIN LATERAL run_command_on_shards(l.leaf, format(
                 $q$SELECT json_build_object(
                        'reltuples', GREATEST(c.reltuples, 0), 'bytes', pg_total_relation_size(c.oid),
                        'analyzed', GREATEST(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)),
                        'null_frac', s.null_frac, 'mcv', s.most_common_vals::text, 'freqs', s.most_common_freqs,
                        'n_distinct', CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * GREATEST(c.reltuples, 0) ELSE s.n_distinct END)
                      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                                          AND s.attname = %L AND NOT s.inherited
                     WHERE c.oid = '%%s'::regclass$q$, l.tenant_column)) r
         WHERE r.success
    ), parsed AS (
        SELECT ss.registered, ss.leaf, ss.by_tenant, ss.shardid,
               (ss.s->>'reltuples')::float8 AS reltuples, (ss.s->>'bytes')::bigint AS bytes,
               (ss.s->>'analyzed')::timestamptz AS analyzed, (ss.s->>'null_frac')::float8 AS null_frac,
               (ss.s->>'mcv')::uuid[] AS mcv,
               -- JSON null where the shard has no statistics yet.
               ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(ss.s->'freqs')
                                                           WHEN 'array' THEN ss.s->'freqs' ELSE '[]' END)::float8) AS freqs,
               (ss.s->>'n_distinct')::float8 AS n_distinct
          FROM shard_stats ss
    )
    SELECT t.id, p.registered, p.reltuples, p.bytes, p.analyzed,
           CASE WHEN p.by_tenant AND p.shardid <> get_shard_id_for_distribution_column(p.leaf, t.id) THEN 0
                WHEN p.n_distinct IS NULL THEN NULL
                WHEN array_position(p.mcv, t.id) IS NOT NULL THEN p.freqs[array_position(p.mcv, t.id)]
                ELSE GREATEST(1 - p.null_frac - coalesce((SELECT sum(f) FROM unnest(p.freqs) f), 0), 0)
                     / GREATEST(p.n_distinct - coalesce(cardinality(p.mcv), 0), 1) END
      FROM tenancy.tenants t CROSS JOIN parsed p;
END
$fn$;
COMMENT ON FUNCTION tenancy._citus_tenant_shares() IS
    'Internal: on a Citus cluster, per tenant and registered table, the planner statistics of the shard holding the tenant''s rows and the tenant''s share of it (tenant_stats() adds them up).';
REVOKE EXECUTE ON FUNCTION tenancy._citus_tenant_shares() FROM PUBLIC;

-- Per tenant, from planner statistics: pg_class.reltuples of each leaf table
-- times the tenant's share of its tenant column (most_common_vals, else the
-- rows outside them spread over the other distinct values). No table is read.
-- Most tenants are among no leaf's most common values, and their share of a
-- leaf is the same for all of them: it is summed once, and leaf by leaf only
-- for the tenants some leaf names (tenants x leaves terms would be millions).
CREATE FUNCTION tenancy.tenant_stats()
RETURNS TABLE(tenant_id uuid, slug text, tenant_name text, tables int, rows_estimate bigint, bytes_estimate bigint,
              stats_as_of timestamptz, audit_events_24h bigint, top_quota_resource text,
              top_quota_pct numeric, running_statements int, running_cap int,
              cpu_ms_recent double precision, cpu_share_pct numeric)
LANGUAGE sql VOLATILE
SECURITY DEFINER
-- The planner's estimate of the tenants x tables product is far above JIT's
-- thresholds; compiling it costs about a second, running it milliseconds.
SET jit = off
SET search_path = pg_catalog, pg_temp
AS $$
    WITH leaves AS (
        -- A plain table is its own leaf (pg_partition_tree lists partitions only).
        SELECT tt.tbl::oid AS registered, tt.tenant_column, coalesce(p.relid, tt.tbl) AS leaf
          FROM tenancy.tenant_tables tt
          LEFT JOIN LATERAL (SELECT t.relid FROM pg_partition_tree(tt.tbl) t WHERE t.isleaf) p ON true
    ), leaf_columns AS (
        SELECT l.registered, GREATEST(c.reltuples, 0)::float8 AS reltuples, pg_total_relation_size(l.leaf) AS bytes,
               GREATEST(pg_stat_get_last_analyze_time(l.leaf), pg_stat_get_last_autoanalyze_time(l.leaf)) AS analyzed,
               s.null_frac, s.most_common_vals::text::uuid[] AS mcv, s.most_common_freqs AS freqs,
               CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * GREATEST(c.reltuples, 0) ELSE s.n_distinct END AS n_distinct
          FROM leaves l
          JOIN pg_class c ON c.oid = l.leaf
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                              AND s.attname = l.tenant_column AND NOT s.inherited
    ), leaf_stats AS (
        -- other_share: a tenant's share outside the most common values; NULL
        -- without statistics.
        SELECT lc.registered, lc.reltuples, lc.bytes, lc.analyzed, lc.mcv, lc.freqs,
               (CASE WHEN lc.n_distinct IS NULL THEN NULL
                     ELSE GREATEST(1 - lc.null_frac - coalesce((SELECT sum(f) FROM unnest(lc.freqs) f), 0), 0)
                          / GREATEST(lc.n_distinct - coalesce(cardinality(lc.mcv), 0), 1) END)::float8 AS other_share
          FROM leaf_columns lc
    ), any_tenant AS (
        SELECT count(DISTINCT ls.registered)::int AS tables,
               sum(ls.reltuples * ls.other_share) AS rows, sum(ls.bytes * ls.other_share) AS bytes,
               min(ls.analyzed) AS analyzed
          FROM leaf_stats ls
    ), named_tenant AS (
        -- Tenants among some leaf's most common values, leaf by leaf.
        SELECT t.id, sum(ls.reltuples * ls.share) AS rows, sum(ls.bytes * ls.share) AS bytes
          FROM (SELECT DISTINCT m.id FROM leaf_stats ls, unnest(ls.mcv) m(id) WHERE ls.other_share IS NOT NULL) t
         CROSS JOIN LATERAL (
               SELECT l.reltuples, l.bytes,
                      CASE WHEN l.other_share IS NULL THEN NULL
                           ELSE coalesce(l.freqs[array_position(l.mcv, t.id)]::float8, l.other_share) END AS share
                 FROM leaf_stats l) ls
         GROUP BY t.id
    ), citus AS (
        -- Distributed tables: their shards' statistics, read on the workers.
        SELECT c.tenant_id, sum(c.reltuples * c.share) AS rows, sum(c.bytes * c.share) AS bytes,
               min(c.analyzed) AS analyzed
          FROM tenancy._citus_tenant_shares() c
         GROUP BY c.tenant_id
    ), per_tenant AS (
        SELECT t.id, a.tables,
               round(CASE WHEN coalesce(nt.rows, a.rows) IS NULL AND c.rows IS NULL THEN NULL
                          ELSE coalesce(coalesce(nt.rows, a.rows), 0) + coalesce(c.rows, 0) END)::bigint AS rows_estimate,
               round(CASE WHEN coalesce(nt.bytes, a.bytes) IS NULL AND c.bytes IS NULL THEN NULL
                          ELSE coalesce(coalesce(nt.bytes, a.bytes), 0) + coalesce(c.bytes, 0) END)::bigint AS bytes_estimate,
               LEAST(a.analyzed, c.analyzed) AS stats_as_of
          FROM tenancy.tenants t
         CROSS JOIN any_tenant a
          LEFT JOIN named_tenant nt ON nt.id = t.id
          LEFT JOIN citus c ON c.tenant_id = t.id
    ), audit AS (
        -- On Citus, distributed tables' rows are in the cluster log.
        SELECT a.tenant_id, count(*) AS events
          FROM (SELECT l.tenant_id FROM tenancy.audit_log l
                 WHERE l.logged_at >= statement_timestamp() - interval '24 hours'
                UNION ALL
                SELECT c.tenant_id FROM tenancy.cluster_audit_log c
                 WHERE c.logged_at >= statement_timestamp() - interval '24 hours') a
         GROUP BY a.tenant_id
    ), top_quota AS (
        SELECT DISTINCT ON (q.tenant_id) q.tenant_id, q.resource, q.pct_used
          FROM tenancy.quota_status() q
         WHERE q.pct_used IS NOT NULL
         ORDER BY q.tenant_id, q.pct_used DESC, q.resource
    ), activity AS (
        -- Accounting (pg_tenancy preloaded), both periods; tenants beyond the
        -- top are summed in the row without a tenant, so they show NULL.
        SELECT a.tenant_id, sum(a.cpu_ms) AS cpu_ms, sum(sum(a.cpu_ms)) OVER () AS all_ms
          FROM tenancy._tenant_activity(false) a
         GROUP BY a.tenant_id
    )
    SELECT t.id, t.slug, t.name,
           coalesce(p.tables, 0), p.rows_estimate, p.bytes_estimate, p.stats_as_of,
           coalesce(a.events, 0), q.resource, q.pct_used,
           CASE WHEN cap.value IS NOT NULL THEN coalesce(r.running, 0) END, cap.value,
           act.cpu_ms, round((100 * act.cpu_ms / nullif(act.all_ms, 0))::numeric, 1)
      FROM tenancy.tenants t
      LEFT JOIN per_tenant p ON p.id = t.id
      LEFT JOIN audit a ON a.tenant_id = t.id
      LEFT JOIN top_quota q ON q.tenant_id = t.id
      LEFT JOIN LATERAL (
          -- The tenant's own cap wins over its plan's.
          SELECT g.value::int AS value FROM tenancy.governance g
           WHERE g.setting = 'max_running_statements' AND (g.tenant_id = t.id OR g.plan = t.plan)
           ORDER BY g.tenant_id IS NULL LIMIT 1) cap ON true
      LEFT JOIN tenancy._running_statements() r ON r.tenant_id = t.id
      LEFT JOIN activity act ON act.tenant_id = t.id
     ORDER BY t.slug
$$;
COMMENT ON FUNCTION tenancy.tenant_stats() IS
    'Per tenant: registered tables, estimated rows and bytes in them (planner statistics, as fresh as the last ANALYZE: stats_as_of; on Citus those of the shards on the workers), audit rows in the last 24 hours, the highest quota use, the statements running now against its cap (max_running_statements), and the CPU time of its statements in the current and previous accounting period with its share of all tenants'' (tenant_activity(); NULL beyond the top tenants or without preloading).';

-- Reading every tenant's figures is for monitoring roles; so is sampling them.
REVOKE EXECUTE ON FUNCTION tenancy.tenant_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.tenant_stats() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION tenancy.record_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.record_metrics() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION tenancy.metrics_prometheus() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.metrics_prometheus() TO pg_monitor;
-- Thresholds and sampled figures are not secret; alert details quote queries.
GRANT SELECT ON tenancy.health_thresholds TO PUBLIC;
GRANT SELECT ON tenancy.metrics TO PUBLIC;
GRANT SELECT ON tenancy.alerts TO pg_monitor;
GRANT SELECT ON tenancy.health_streaks TO pg_monitor;

COMMENT ON FUNCTION tenancy.cluster_health() IS
    'On a Citus coordinator: each worker''s connection, wraparound and replication figures, judged against the thresholds of the same checks on the coordinator; a worker that refuses connections is one critical row. No rows elsewhere.';
COMMENT ON FUNCTION tenancy.health_check() IS
    'Every enabled check (tenancy.health_thresholds) with status ok, warning or critical, its value, thresholds and the worst offender in detail. Runs with the caller''s rights: grant pg_monitor.';
COMMENT ON FUNCTION tenancy.health() IS
    'Summary of health_check(): {"status": the worst status, "issues": the checks not ok, "checks": how many ran, "checked_at": when}.';
COMMENT ON FUNCTION tenancy.record_metrics() IS
    'Samples database_stats(), connection_summary() and health_check() into tenancy.metrics and opens, refreshes or resolves tenancy.alerts; returns the rows written.';
COMMENT ON FUNCTION tenancy.metrics_prometheus() IS
    'Health checks, connections, database figures and per-tenant figures in the Prometheus text exposition format (for a textfile collector or an HTTP shim).';
