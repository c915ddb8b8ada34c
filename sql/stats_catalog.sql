-- Connection and health statistics: thresholds, sampled metrics, alerts.

CREATE TABLE tenancy.health_thresholds (
    check_name      text PRIMARY KEY,
    warn_threshold  numeric,
    crit_threshold  numeric,
    enabled         boolean NOT NULL DEFAULT true,
    higher_is_worse boolean NOT NULL DEFAULT true,
    alert_after     integer NOT NULL DEFAULT 2 CHECK (alert_after BETWEEN 1 AND 100),
    unit            text NOT NULL DEFAULT '',
    source          text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    CHECK (warn_threshold IS NULL OR crit_threshold IS NULL
           OR (higher_is_worse AND warn_threshold <= crit_threshold)
           OR (NOT higher_is_worse AND warn_threshold >= crit_threshold))
);
COMMENT ON TABLE tenancy.health_thresholds IS
    'Thresholds of tenancy.health_check(): one row per check. Change them with UPDATE; a NULL threshold disables that level.';
COMMENT ON COLUMN tenancy.health_thresholds.check_name IS 'The check, as health_check() names it.';
COMMENT ON COLUMN tenancy.health_thresholds.warn_threshold IS 'The value at which the check reports warning (NULL: never).';
COMMENT ON COLUMN tenancy.health_thresholds.crit_threshold IS 'The value at which the check reports critical (NULL: never).';
COMMENT ON COLUMN tenancy.health_thresholds.enabled IS 'false leaves the check out of health_check(), health() and alerts.';
COMMENT ON COLUMN tenancy.health_thresholds.higher_is_worse IS
    'true: a value at or above a threshold trips it; false (cache hit ratio): a value below it does.';
COMMENT ON COLUMN tenancy.health_thresholds.alert_after IS
    'record_metrics() opens an alert after this many consecutive bad samples and resolves it after as many good ones.';
COMMENT ON COLUMN tenancy.health_thresholds.unit IS 'Unit of the value and thresholds.';
COMMENT ON COLUMN tenancy.health_thresholds.source IS 'Where the default thresholds come from.';
COMMENT ON COLUMN tenancy.health_thresholds.description IS 'What the check measures.';

INSERT INTO tenancy.health_thresholds
    (check_name, warn_threshold, crit_threshold, higher_is_worse, unit, source, description) VALUES
('connection_saturation', 80, 95, true, 'percent',
 'warning: postgres_exporter mixin HighConnections (80% of max_connections minus reserved); critical: check_postgres backends (95%)',
 'Client connections as a share of max_connections minus the slots reserved for superusers.'),
('idle_in_transaction', 1800, 3600, true, 'seconds',
 'pganalyze idle transaction check (1800 s, critical after 3600 s)',
 'Longest time a session has been idle inside an open transaction.'),
('longest_query', 120, 300, true, 'seconds',
 'postgres_exporter mixin SlowQueries (2 minutes); check_postgres query_time examples (2 and 5 minutes)',
 'Longest-running active query of a client session.'),
('oldest_transaction', 300, 3600, true, 'seconds',
 'warning: CloudNativePG sample rules (transaction over 300 s); critical: pganalyze''s one hour for an idle transaction',
 'Age of the oldest open transaction of a client session (it holds back vacuum everywhere).'),
('blocked_sessions', 5, 20, true, 'sessions',
 'warning: pgEdge alert rules (more than 5 blocked sessions); critical: pg_tenancy (20)',
 'Client sessions waiting for a lock another session holds.'),
('deadlocks', 5, NULL, true, 'deadlocks',
 'postgres_exporter mixin HasHighDeadLocks and awesome-prometheus-alerts DeadLocks (more than 5 a minute)',
 'Deadlocks in this database since the previous record_metrics() sample (since the statistics reset before the first).'),
('cache_hit_ratio', 98, 90, false, 'percent',
 'warning: postgres_exporter mixin CacheHitRatio (below 98%); critical: pg_tenancy (below 90%)',
 'Share of this database''s block reads served from shared buffers since the statistics reset.'),
('rollback_ratio', 2, 10, true, 'percent',
 'warning: awesome-prometheus-alerts HighRollbackRate (2%); critical: postgres_exporter mixin HasTooManyRollbacks (10%)',
 'Share of this database''s transactions that rolled back since the statistics reset.'),
('xid_wraparound', 90, 700, true, 'percent of autovacuum_freeze_max_age',
 'warning: check_postgres autovac_freeze (90%); critical: check_postgres txn_wraparound (1.4 billion, 700% of the 200M default)',
 'Age of the oldest unfrozen transaction id of any database, as a share of autovacuum_freeze_max_age.'),
('multixact_wraparound', 90, 350, true, 'percent of autovacuum_multixact_freeze_max_age',
 'no anchor checks multixacts: check_postgres''s xid rules applied to them (90%; 1.4 billion, 350% of the 400M default)',
 'Age of the oldest multixact id of any database, as a share of autovacuum_multixact_freeze_max_age.'),
('replication_lag_bytes', 104857600, 1073741824, true, 'bytes',
 'pganalyze replication high lag check (100 MB, critical at 1024 MB)',
 'Largest replay lag of a standby in bytes of WAL (on a standby: received but not yet replayed).'),
('replication_lag_seconds', 300, 3600, true, 'seconds',
 'warning: CloudNativePG sample rules (300 s); critical: postgres_exporter mixin ReplicationLaggingMore1Hour',
 'Largest replay lag of a standby in time.'),
('inactive_replication_slots', 1, NULL, true, 'slots',
 'awesome-prometheus-alerts UnusedReplicationSlot and postgres_exporter mixin HasReplicationSlotUsed (any inactive slot)',
 'Replication slots no client is using: they keep WAL until they are used or dropped.'),
('prepared_transactions', 1, 30, true, 'seconds',
 'check_postgres prepared_txns (1 s, critical 30 s)',
 'Age of the oldest prepared (two-phase) transaction.'),
('dead_tuples', 10, 50, true, 'percent',
 'warning: postgres_exporter mixin and awesome-prometheus-alerts TooManyDeadTuples (10% of a table with over 10,000 dead tuples); critical: pg_tenancy (50%)',
 'Largest share of dead tuples in a table with more than 10,000 of them.'),
('sequence_exhaustion', 85, 95, true, 'percent',
 'check_postgres sequence (85%, critical 95%)',
 'Largest share of its range a readable sequence has used.'),
('database_size', NULL, NULL, true, 'bytes',
 'check_postgres database_size has no default: set thresholds that fit your disk',
 'Size of this database.'),
('monitoring_privileges', 1, NULL, false, 'boolean',
 'PostgreSQL''s documented monitoring role pg_monitor (pg_read_all_stats)',
 '1 when the caller sees every session''s state, query and waits (pg_read_all_stats, part of pg_monitor), else 0.'),
('isolation_findings', 1, NULL, true, 'findings',
 'pg_tenancy: any finding of tenancy.verify_isolation() (the checks of Supabase''s RLS linter, and more, inside the database)',
 'What tenancy.verify_isolation() finds that breaks tenant isolation: unforced or missing policies, owner-rights views, BYPASSRLS roles, TRUNCATE grants...'),
('tenants_at_running_cap', 1, NULL, true, 'tenants',
 'pg_tenancy: a tenant whose statements fill its cap (tenancy.governance max_running_statements) gets 53400 for the next one',
 'Tenants whose sessions run as many statements now as their cap allows.'),
('tenant_cpu_share', 50, NULL, true, 'percent',
 'pg_tenancy: Citus citus_stat_tenants ranks tenants by CPU; one tenant using half of it is the noisy neighbour to look at',
 'Largest share one tenant has of the CPU time of all tenants'' statements in the current and previous accounting period (tenancy.tenant_activity(); at least 2 tenants and 1 s of CPU).'),
('cluster_unreachable_nodes', NULL, 1, true, 'nodes',
 'pg_tenancy: a Citus worker that refuses connections fails every query that touches its shards (citus_check_connection_to_node)',
 'On a Citus coordinator: active primary workers that do not accept a connection within 5 s. The cluster_<check> rows that follow it judge each worker with <check>''s thresholds.');

-- pg_restore replays dumped thresholds with COPY after CREATE EXTENSION inserted the
-- defaults; merging keeps the edited values and lets the restore succeed.
CREATE FUNCTION tenancy._merge_restored_threshold() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE tenancy.health_thresholds
       SET warn_threshold = NEW.warn_threshold, crit_threshold = NEW.crit_threshold,
           enabled = NEW.enabled, higher_is_worse = NEW.higher_is_worse,
           alert_after = NEW.alert_after, unit = NEW.unit, source = NEW.source,
           description = NEW.description
     WHERE check_name = NEW.check_name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION tenancy._merge_restored_threshold() IS
    'Internal: an INSERT of an existing check''s thresholds (as pg_restore does) updates the row.';
CREATE TRIGGER merge_restored_threshold BEFORE INSERT ON tenancy.health_thresholds
    FOR EACH ROW EXECUTE FUNCTION tenancy._merge_restored_threshold();
COMMENT ON TRIGGER merge_restored_threshold ON tenancy.health_thresholds IS
    'Turns an INSERT of an existing check (as pg_restore does) into an update, so pg_restore succeeds.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.health_thresholds', '');

-- Samples written by record_metrics(); daily partitions managed by the partition
-- manager (registered on first use, kept 30 days; change partition_sets.retention).
CREATE TABLE tenancy.metrics (
    recorded_at timestamptz NOT NULL,
    metric      text NOT NULL,
    value       numeric,
    labels      jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (recorded_at);
COMMENT ON TABLE tenancy.metrics IS
    'Samples of the health and database figures, one row per metric and labels per tenancy.record_metrics() call; daily partitions kept 30 days.';
COMMENT ON COLUMN tenancy.metrics.recorded_at IS 'When the sample was taken (the recording transaction''s start).';
COMMENT ON COLUMN tenancy.metrics.metric IS 'Metric name: a database_stats() metric, connections_<state>, or health_<check>.';
COMMENT ON COLUMN tenancy.metrics.value IS 'The figure (NULL when it could not be measured).';
COMMENT ON COLUMN tenancy.metrics.labels IS 'Dimensions of the figure (database, status).';

CREATE TABLE tenancy.alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_name  text NOT NULL,
    status      text NOT NULL CHECK (status IN ('warning', 'critical')),
    value       numeric,
    detail      text,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    peak_status text NOT NULL CHECK (peak_status IN ('warning', 'critical'))
);
-- At most one open alert per check.
CREATE UNIQUE INDEX alerts_one_open_per_check ON tenancy.alerts (check_name) WHERE resolved_at IS NULL;
COMMENT ON INDEX tenancy.alerts_one_open_per_check IS 'At most one open alert per check.';
COMMENT ON TABLE tenancy.alerts IS
    'Alerts opened and resolved by tenancy.record_metrics(): one open row per failing check, after alert_after consecutive bad samples.';
COMMENT ON COLUMN tenancy.alerts.id IS 'Alert id.';
COMMENT ON COLUMN tenancy.alerts.check_name IS 'The failing check.';
COMMENT ON COLUMN tenancy.alerts.status IS 'warning or critical: the status of the latest bad sample.';
COMMENT ON COLUMN tenancy.alerts.value IS 'The check''s value at the latest bad sample.';
COMMENT ON COLUMN tenancy.alerts.detail IS 'The check''s detail at the latest bad sample.';
COMMENT ON COLUMN tenancy.alerts.opened_at IS 'When the alert opened.';
COMMENT ON COLUMN tenancy.alerts.updated_at IS 'The latest sample that kept it open.';
COMMENT ON COLUMN tenancy.alerts.resolved_at IS 'When it resolved (NULL while open).';
COMMENT ON COLUMN tenancy.alerts.peak_status IS 'The worst status it reached.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.alerts', '');
COMMENT ON SEQUENCE tenancy.alerts_id_seq IS 'Ids of tenancy.alerts.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.alerts_id_seq', '');

-- The anti-flap memory: each check's status in the latest samples.
CREATE TABLE tenancy.health_streaks (
    check_name text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('ok', 'warning', 'critical')),
    bad        boolean NOT NULL,
    streak     integer NOT NULL CHECK (streak >= 1),
    sampled_at timestamptz NOT NULL
);
COMMENT ON TABLE tenancy.health_streaks IS
    'Internal: per check, whether the latest record_metrics() samples were bad (warning or critical) and for how many samples in a row.';
COMMENT ON COLUMN tenancy.health_streaks.check_name IS 'The check.';
COMMENT ON COLUMN tenancy.health_streaks.status IS 'Its status in the latest sample.';
COMMENT ON COLUMN tenancy.health_streaks.bad IS 'Whether the latest sample was bad.';
COMMENT ON COLUMN tenancy.health_streaks.streak IS 'How many samples in a row have been as bad (or as good) as the latest.';
COMMENT ON COLUMN tenancy.health_streaks.sampled_at IS 'When the latest sample was taken.';
