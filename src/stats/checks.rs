//! The health checks: what each one measures, as one SQL query returning one
//! row `(value numeric, detail text)` with the caller's privileges.
//!
//! Each query reads only PostgreSQL's statistics views and catalogs, so a role
//! with `pg_monitor` sees everything and needs nothing more. A check that does
//! not apply (no standby) returns a NULL value and says so in its detail.

/// Client sessions other than the one running the check.
const OTHER_CLIENTS: &str = "pg_catalog.pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()";

/// `format` arguments naming the session in `a` for a detail text.
const WHO: &str = "a.pid, a.usename, a.datname, a.application_name";

pub struct Check {
    pub name: &'static str,
    pub sql: String,
    /// A function of ours the query calls that an older release's SQL lacks:
    /// under that SQL (before ALTER EXTENSION UPDATE) the check is skipped.
    pub requires: Option<&'static str>,
}

/// A check on the oldest session matching `condition`, aged from `since`.
fn session_age(name: &'static str, condition: &str, since: &str, what: &str, none: &str) -> Check {
    Check {
        name,
        sql: format!(
            "SELECT coalesce(round(extract(epoch FROM pg_catalog.statement_timestamp() - w.since)::numeric, 1), 0),
                    CASE WHEN w.pid IS NULL THEN '{none}'
                         ELSE pg_catalog.format('pid %s (user %s, database %s, application %L) {what} for %s%s',
                                                w.pid, w.usename, w.datname, w.application_name,
                                                pg_catalog.date_trunc('second', pg_catalog.statement_timestamp() - w.since),
                                                w.extra) END
               FROM (SELECT 1) one
               LEFT JOIN LATERAL (
                   SELECT {WHO}, {since} AS since,
                          CASE WHEN a.wait_event IS NOT NULL
                               THEN pg_catalog.format(', waiting on %s:%s', a.wait_event_type, a.wait_event) ELSE '' END
                          || pg_catalog.format(': %s', pg_catalog.left(pg_catalog.regexp_replace(a.query, '\\s+', ' ', 'g'), 80)) AS extra
                     FROM {OTHER_CLIENTS} AND {condition} AND {since} IS NOT NULL
                    ORDER BY {since} LIMIT 1) w ON true"
        ),
        requires: None,
    }
}

/// A check on a cluster-wide wraparound age as a share of its freeze setting.
fn wraparound(name: &'static str, age: &str, setting: &str, what: &str) -> Check {
    Check {
        name,
        sql: format!(
            "SELECT round(100.0 * {age} / pg_catalog.current_setting('{setting}')::numeric, 1),
                    pg_catalog.format('database %s: oldest {what} is %s old (%s = %s)',
                                      d.datname, {age}, '{setting}', pg_catalog.current_setting('{setting}'))
               FROM pg_catalog.pg_database d
              ORDER BY {age} DESC LIMIT 1"
        ),
        requires: None,
    }
}

/// Every check, in the order health_check() reports them.
pub fn all() -> Vec<Check> {
    vec![
        Check {
            name: "connection_saturation",
            sql: "SELECT round(100.0 * s.used / GREATEST(s.max_conn - s.reserved, 1), 1),
                         pg_catalog.format('%s client connections of %s available to ordinary roles (max_connections %s, %s reserved)',
                                           s.used, s.max_conn - s.reserved, s.max_conn, s.reserved)
                    FROM (SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity
                                   WHERE backend_type = 'client backend') AS used,
                                 pg_catalog.current_setting('max_connections')::int AS max_conn,
                                 pg_catalog.current_setting('superuser_reserved_connections')::int
                                 + coalesce(nullif(pg_catalog.current_setting('reserved_connections', true), '')::int, 0)
                                 AS reserved) s"
                .into(),
            requires: None,
        },
        session_age(
            "idle_in_transaction",
            "a.state IN ('idle in transaction', 'idle in transaction (aborted)')",
            "a.state_change",
            "idle in transaction",
            "no session is idle in a transaction",
        ),
        session_age(
            "longest_query",
            "a.state = 'active'",
            "a.query_start",
            "running its query",
            "no other query is running",
        ),
        session_age(
            "oldest_transaction",
            "true",
            "a.xact_start",
            "in its transaction",
            "no other transaction is open",
        ),
        Check {
            name: "blocked_sessions",
            sql: format!(
                "SELECT count(*),
                        CASE WHEN count(*) = 0 THEN 'no session is waiting for a lock'
                             ELSE pg_catalog.format('%s session(s) waiting for a lock; longest: %s', count(*),
                                  (pg_catalog.array_agg(b.what ORDER BY b.since))[1]) END
                   FROM (SELECT a.state_change AS since,
                                pg_catalog.format('pid %s (user %s) for %s, blocked by pid %s', {WHO_SHORT},
                                                  pg_catalog.date_trunc('second', pg_catalog.statement_timestamp() - a.state_change),
                                                  pg_catalog.array_to_string(pg_catalog.pg_blocking_pids(a.pid), ', ')) AS what
                           FROM {OTHER_CLIENTS} AND a.wait_event_type = 'Lock'
                            AND pg_catalog.cardinality(pg_catalog.pg_blocking_pids(a.pid)) > 0) b",
                WHO_SHORT = "a.pid, a.usename",
            ),
            requires: None,
        },
        Check {
            name: "deadlocks",
            // Counted against the latest sample record_metrics() stored, so the
            // figure means "since the last check" for every caller.
            sql: "SELECT CASE WHEN m.value IS NULL OR m.value > d.deadlocks THEN d.deadlocks
                              ELSE d.deadlocks - m.value END,
                         CASE WHEN m.value IS NULL OR m.value > d.deadlocks
                              THEN pg_catalog.format('%s deadlock(s) since the statistics reset (no earlier sample)', d.deadlocks)
                              ELSE pg_catalog.format('%s deadlock(s) since the sample of %s', d.deadlocks - m.value, m.recorded_at) END
                    FROM pg_catalog.pg_stat_database d
                    LEFT JOIN LATERAL (SELECT s.value, s.recorded_at FROM tenancy.metrics s
                                        WHERE s.metric = 'deadlocks' ORDER BY s.recorded_at DESC LIMIT 1) m ON true
                   WHERE d.datname = pg_catalog.current_database()"
                .into(),
            requires: None,
        },
        Check {
            name: "cache_hit_ratio",
            sql: "SELECT round(100.0 * d.blks_hit / nullif(d.blks_hit + d.blks_read, 0), 2),
                         CASE WHEN d.blks_hit + d.blks_read = 0 THEN 'no block has been read yet'
                              ELSE pg_catalog.format('%s of %s block reads served from shared buffers since %s',
                                   d.blks_hit, d.blks_hit + d.blks_read, coalesce(d.stats_reset::text, 'the cluster started')) END
                    FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database()"
                .into(),
            requires: None,
        },
        Check {
            name: "rollback_ratio",
            sql: "SELECT round(100.0 * d.xact_rollback / nullif(d.xact_commit + d.xact_rollback, 0), 2),
                         pg_catalog.format('%s of %s transactions rolled back since %s',
                              d.xact_rollback, d.xact_commit + d.xact_rollback, coalesce(d.stats_reset::text, 'the cluster started'))
                    FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database()"
                .into(),
            requires: None,
        },
        wraparound(
            "xid_wraparound",
            "pg_catalog.age(d.datfrozenxid)",
            "autovacuum_freeze_max_age",
            "unfrozen transaction id",
        ),
        wraparound(
            "multixact_wraparound",
            "pg_catalog.mxid_age(d.datminmxid)",
            "autovacuum_multixact_freeze_max_age",
            "multixact id",
        ),
        Check {
            name: "replication_lag_bytes",
            sql: "SELECT CASE WHEN pg_catalog.pg_is_in_recovery()
                              THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())
                              ELSE r.lag END,
                         CASE WHEN pg_catalog.pg_is_in_recovery() THEN 'standby: WAL received but not yet replayed'
                              WHEN r.standbys = 0 THEN 'no standby is connected'
                              WHEN r.visible = 0 THEN pg_catalog.format('%s standby(s) connected; their positions need pg_monitor', r.standbys)
                              ELSE pg_catalog.format('%s standby(s); largest lag %s (%s)', r.standbys,
                                                     pg_catalog.pg_size_pretty(r.lag), r.worst) END
                    FROM (SELECT count(*) AS standbys, count(s.replay_lsn) AS visible,
                                 max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.replay_lsn)) AS lag,
                                 (pg_catalog.array_agg(s.application_name ORDER BY s.replay_lsn NULLS LAST))[1] AS worst
                            FROM pg_catalog.pg_stat_replication s
                           WHERE NOT pg_catalog.pg_is_in_recovery()) r"
                .into(),
            requires: None,
        },
        Check {
            name: "replication_lag_seconds",
            sql: "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN
                                CASE WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0
                                     ELSE round(extract(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::numeric, 1) END
                              ELSE round(extract(epoch FROM r.lag)::numeric, 1) END,
                         CASE WHEN pg_catalog.pg_is_in_recovery() THEN 'standby: time since the last replayed transaction while behind'
                              WHEN r.standbys = 0 THEN 'no standby is connected'
                              WHEN r.lag IS NULL THEN pg_catalog.format('%s standby(s) connected; no lag measured (idle, or needs pg_monitor)', r.standbys)
                              ELSE pg_catalog.format('%s standby(s); largest replay lag %s', r.standbys, r.lag) END
                    FROM (SELECT count(*) AS standbys, max(s.replay_lag) AS lag
                            FROM pg_catalog.pg_stat_replication s) r"
                .into(),
            requires: None,
        },
        Check {
            name: "inactive_replication_slots",
            sql: "SELECT count(*) FILTER (WHERE NOT s.active),
                         CASE WHEN count(*) FILTER (WHERE NOT s.active) = 0
                              THEN pg_catalog.format('%s replication slot(s), none inactive', count(*))
                              ELSE 'inactive: ' || pg_catalog.string_agg(pg_catalog.format('%s (%s)', s.slot_name, s.slot_type), ', ')
                                   FILTER (WHERE NOT s.active) END
                    FROM pg_catalog.pg_replication_slots s"
                .into(),
            requires: None,
        },
        Check {
            name: "prepared_transactions",
            sql: "SELECT coalesce(round(extract(epoch FROM pg_catalog.statement_timestamp() - min(p.prepared))::numeric, 1), 0),
                         CASE WHEN count(*) = 0 THEN 'no prepared transaction'
                              ELSE pg_catalog.format('%s prepared transaction(s); oldest %L prepared at %s',
                                   count(*), (pg_catalog.array_agg(p.gid ORDER BY p.prepared))[1], min(p.prepared)) END
                    FROM pg_catalog.pg_prepared_xacts p"
                .into(),
            requires: None,
        },
        Check {
            name: "dead_tuples",
            // Only tables with more than 10,000 dead tuples count, as in the
            // postgres_exporter rule; the statistics functions are cheap lookups.
            sql: "SELECT coalesce(t.pct, 0),
                         CASE WHEN t.rel IS NULL THEN 'no table has more than 10,000 dead tuples'
                              ELSE pg_catalog.format('%s: %s dead of %s tuples', t.rel, t.dead, t.dead + t.live) END
                    FROM (SELECT 1) one
                    LEFT JOIN LATERAL (
                        SELECT c.oid::pg_catalog.regclass AS rel, s.dead, s.live,
                               round(100.0 * s.dead / (s.dead + s.live), 1) AS pct
                          FROM pg_catalog.pg_class c
                         CROSS JOIN LATERAL (SELECT pg_catalog.pg_stat_get_dead_tuples(c.oid) AS dead,
                                                    pg_catalog.pg_stat_get_live_tuples(c.oid) AS live) s
                         WHERE c.relkind IN ('r', 'm', 't') AND s.dead > 10000
                         ORDER BY 4 DESC LIMIT 1) t ON true"
                .into(),
            requires: None,
        },
        Check {
            name: "sequence_exhaustion",
            // pg_sequence_last_value reads the sequence itself: only where the
            // caller may, and never another session's temporary sequence.
            sql: "SELECT coalesce(max(q.pct), 0),
                         CASE WHEN count(*) = 0 THEN 'no sequence'
                              ELSE pg_catalog.format('%s sequence(s)%s%s', count(*),
                                   CASE WHEN max(q.pct) IS NULL THEN '' ELSE pg_catalog.format('; most used: %s at %s%%',
                                        (pg_catalog.array_agg(q.seq ORDER BY q.pct DESC NULLS LAST))[1], max(q.pct)) END,
                                   CASE WHEN count(*) FILTER (WHERE NOT q.readable) = 0 THEN ''
                                        ELSE pg_catalog.format('; %s not readable by %s', count(*) FILTER (WHERE NOT q.readable), current_user) END) END
                    FROM (SELECT c.oid::pg_catalog.regclass AS seq, r.readable,
                                 CASE WHEN r.readable THEN
                                      round(100.0 * CASE WHEN s.seqincrement > 0 THEN v.last - s.seqmin ELSE s.seqmax - v.last END
                                            / nullif(s.seqmax::numeric - s.seqmin, 0), 1) END AS pct
                            FROM pg_catalog.pg_sequence s
                            JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
                           CROSS JOIN LATERAL (SELECT pg_catalog.has_sequence_privilege(c.oid, 'SELECT, USAGE') AS readable) r
                           CROSS JOIN LATERAL (SELECT CASE WHEN r.readable THEN pg_catalog.pg_sequence_last_value(c.oid) END AS last) v
                           WHERE NOT pg_catalog.pg_is_other_temp_schema(c.relnamespace)) q"
                .into(),
            requires: None,
        },
        Check {
            name: "database_size",
            // pg_database_size walks every file of the database: once.
            sql: "SELECT d.bytes, pg_catalog.format('database %s: %s', pg_catalog.current_database(), pg_catalog.pg_size_pretty(d.bytes))
                    FROM (SELECT pg_catalog.pg_database_size(pg_catalog.current_database()) AS bytes) d"
                .into(),
            requires: None,
        },
        Check {
            name: "isolation_findings",
            sql: "SELECT count(*),
                         CASE WHEN count(*) = 0 THEN 'nothing found that breaks tenant isolation'
                              ELSE pg_catalog.format('%s finding(s) of tenancy.verify_isolation(); first: %s %s: %s', count(*),
                                   (pg_catalog.array_agg(f.check_name ORDER BY f.check_name, f.object))[1],
                                   (pg_catalog.array_agg(f.object ORDER BY f.check_name, f.object))[1],
                                   (pg_catalog.array_agg(f.detail ORDER BY f.check_name, f.object))[1]) END
                    FROM tenancy.verify_isolation() f"
                .into(),
            requires: Some("tenancy.verify_isolation()"),
        },
        Check {
            name: "tenants_at_running_cap",
            sql: "SELECT count(*) FILTER (WHERE r.running >= r.running_cap),
                         CASE WHEN count(*) FILTER (WHERE r.running >= r.running_cap) = 0
                              THEN 'no tenant runs as many statements as its cap (max_running_statements)'
                              ELSE pg_catalog.format('tenant %s runs %s statements, its cap; %s tenant(s) at their cap',
                                   (pg_catalog.array_agg(r.tenant_id ORDER BY r.tenant_id) FILTER (WHERE r.running >= r.running_cap))[1],
                                   (pg_catalog.array_agg(r.running ORDER BY r.tenant_id) FILTER (WHERE r.running >= r.running_cap))[1],
                                   count(*) FILTER (WHERE r.running >= r.running_cap)) END
                    FROM tenancy._running_statements() r"
                .into(),
            requires: Some("tenancy._running_statements()"),
        },
        Check {
            name: "tenant_cpu_share",
            // Both periods, as tenant_activity() ranks; the row without a
            // tenant (all the others) counts in the total, never as the top.
            sql: "WITH a AS (SELECT t.tenant_id, sum(t.cpu_ms) AS cpu FROM tenancy._tenant_activity(false) t GROUP BY t.tenant_id),
                       s AS (SELECT coalesce(sum(a.cpu), 0) AS total, count(*) FILTER (WHERE a.cpu > 0) AS active FROM a),
                       top AS (SELECT a.tenant_id, a.cpu FROM a WHERE a.tenant_id IS NOT NULL ORDER BY a.cpu DESC, a.tenant_id LIMIT 1)
                  SELECT CASE WHEN s.total >= 1000 AND s.active >= 2 THEN round((100 * top.cpu / s.total)::numeric, 1) END,
                         CASE WHEN s.total = 0 THEN 'no tenant statement counted (tenancy.tenant_activity(), with pg_tenancy preloaded)'
                              WHEN s.active < 2 THEN pg_catalog.format('only tenant %s ran statements (%s ms of CPU)', top.tenant_id, round(s.total::numeric))
                              WHEN s.total < 1000 THEN pg_catalog.format('%s ms of CPU in all tenants'' statements: too little to judge', round(s.total::numeric))
                              ELSE pg_catalog.format('tenant %s used %s%% of the CPU time of tenants'' statements in the current and previous period (%s of %s ms)',
                                                     top.tenant_id, round((100 * top.cpu / s.total)::numeric, 1), round(top.cpu::numeric), round(s.total::numeric)) END
                    FROM s LEFT JOIN top ON true"
                .into(),
            requires: Some("tenancy._tenant_activity(boolean)"),
        },
        Check {
            name: "monitoring_privileges",
            sql: "SELECT CASE WHEN pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN 1 ELSE 0 END,
                         CASE WHEN pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
                              THEN pg_catalog.format('%s sees every session (pg_read_all_stats)', current_user)
                              ELSE pg_catalog.format('%s cannot see other roles'' session states, queries, waits or standby positions, so several checks undercount; GRANT pg_monitor TO %I',
                                                     current_user, current_user) END"
                .into(),
            requires: None,
        },
    ]
}
