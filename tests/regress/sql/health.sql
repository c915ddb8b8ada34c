-- Connection and health statistics: shapes, thresholds forcing warning and
-- critical, alerts opened once and resolved, Prometheus text, privileges.
-- Figures depend on the cluster, so this suite shows shapes and statuses it
-- controls, not raw values.

-- Shapes: every function answers, with the contract's columns.
SELECT count(*) > 0 AS has_rows, bool_and(connections > 0) AS counted, bool_and(waiting >= 0) AS waiting_ok
  FROM tenancy.connection_stats();
SELECT total >= 1 AS me_counted, total >= active + idle + idle_in_transaction AS states_within_total, active >= 1 AS me_active,
       max_connections = current_setting('max_connections')::int AS max_ok,
       reserved = current_setting('superuser_reserved_connections')::int AS reserved_ok,
       saturation_pct = round(100.0 * total / (max_connections - reserved), 1) AS pct_ok
  FROM tenancy.connection_summary();
SELECT metric, unit, counter, value IS NOT NULL OR metric LIKE 'replication%' OR metric = 'oldest_transaction' AS has_value
  FROM tenancy.database_stats() ORDER BY metric;
SELECT check_name, status IN ('ok', 'warning', 'critical') AS known_status, detail <> '' AS explained
  FROM tenancy.health_check();
-- Checks that do not apply say ok, with a detail that says why.
SELECT check_name, status, value, detail FROM tenancy.health_check()
 WHERE check_name LIKE 'replication_lag%';
SELECT check_name, warn_threshold, crit_threshold, higher_is_worse, unit, alert_after
  FROM tenancy.health_thresholds ORDER BY check_name;

-- table_stats and tenant_stats over a registered table.
SELECT tenancy.create_tenant('health-a', 'Health "A" \ Co', id => 'aaaaaaaa-0000-0000-0000-0000000000e1');
SELECT tenancy.create_tenant('health-b', 'Health B', id => 'bbbbbbbb-0000-0000-0000-0000000000e2');
CREATE TABLE health_items (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
SELECT tenancy.register_table('health_items');
INSERT INTO health_items SELECT g, CASE WHEN g <= 30 THEN 'aaaaaaaa-0000-0000-0000-0000000000e1'::uuid
                                        ELSE 'bbbbbbbb-0000-0000-0000-0000000000e2'::uuid END, 'x'
  FROM generate_series(1, 100) g;
-- The insert counts reach the statistics now, not after ANALYZE has set the
-- live tuples (which they would then count a second time).
SELECT pg_stat_force_next_flush();
-- Before ANALYZE there are no statistics: no estimate rather than a wrong one.
-- (other suites registered tables too: tables counts them all)
SELECT slug, tables >= 1 AS has_tables, rows_estimate FROM tenancy.tenant_stats() WHERE slug LIKE 'health-%';
ANALYZE health_items;
SELECT slug, tenant_name, rows_estimate, bytes_estimate > 0 AS has_bytes, stats_as_of IS NOT NULL AS analyzed,
       audit_events_24h
  FROM tenancy.tenant_stats() WHERE slug LIKE 'health-%';
SELECT tbl, live_tuples, dead_tuples, total_bytes > 0 AS has_bytes, tenant_column
  FROM tenancy.table_stats() WHERE tbl = 'health_items'::regclass;

-- Thresholds decide the status: database_size has none by default.
SELECT status FROM tenancy.health_check() WHERE check_name = 'database_size';
UPDATE tenancy.health_thresholds SET warn_threshold = 1 WHERE check_name = 'database_size';
SELECT status FROM tenancy.health_check() WHERE check_name = 'database_size';
UPDATE tenancy.health_thresholds SET crit_threshold = 2 WHERE check_name = 'database_size';
SELECT status FROM tenancy.health_check() WHERE check_name = 'database_size';
-- Lower is worse for the cache hit ratio: warning below 101%, critical below 100.5%.
UPDATE tenancy.health_thresholds SET warn_threshold = 101, crit_threshold = 100.5 WHERE check_name = 'cache_hit_ratio';
SELECT status FROM tenancy.health_check() WHERE check_name = 'cache_hit_ratio';
-- Thresholds must be ordered the way the check is read.
UPDATE tenancy.health_thresholds SET warn_threshold = 10, crit_threshold = 5 WHERE check_name = 'connection_saturation';
\echo :LAST_ERROR_SQLSTATE
-- A disabled check is not run.
UPDATE tenancy.health_thresholds SET enabled = false WHERE check_name = 'cache_hit_ratio';
SELECT count(*) AS cache_checks FROM tenancy.health_check() WHERE check_name = 'cache_hit_ratio';

-- health() summarises: the worst status, and the checks that are not ok.
SELECT h->>'status' AS status, jsonb_typeof(h->'issues') AS issues, (h->>'checks')::int > 10 AS many_checks,
       (h->>'checked_at')::timestamptz IS NOT NULL AS dated,
       (SELECT i->>'detail' LIKE 'database %' FROM jsonb_array_elements(h->'issues') i WHERE i->>'check' = 'database_size') AS size_issue
  FROM tenancy.health() h;

-- Alerts: one bad sample opens nothing, the second opens one alert, more
-- samples keep that one alert up to date, and good samples resolve it.
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT count(*) AS open_after_one FROM tenancy.alerts WHERE check_name = 'database_size';
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT check_name, status, peak_status, resolved_at IS NULL AS open FROM tenancy.alerts WHERE check_name = 'database_size';
UPDATE tenancy.health_thresholds SET warn_threshold = NULL, crit_threshold = NULL WHERE check_name = 'database_size';
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT count(*) FILTER (WHERE resolved_at IS NULL) AS still_open FROM tenancy.alerts WHERE check_name = 'database_size';
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT check_name, peak_status, resolved_at IS NOT NULL AS resolved FROM tenancy.alerts WHERE check_name = 'database_size';
-- Samples are in tenancy.metrics, a daily partition set kept 30 days.
SELECT count(DISTINCT recorded_at) AS samples, count(*) FILTER (WHERE metric = 'health_database_size') AS size_rows
  FROM tenancy.metrics;
SELECT part_interval, retention FROM tenancy.partition_sets WHERE parent = 'tenancy.metrics'::regclass;
-- The deadlock check counts from the latest sample on.
SELECT detail LIKE '% since the sample of %' AS since_sample FROM tenancy.health_check() WHERE check_name = 'deadlocks';

-- Prometheus text: every line is a HELP, a TYPE or a sample, names are valid,
-- every family has HELP and TYPE before its samples, labels are escaped.
CREATE TEMP TABLE prom AS
    SELECT n, line FROM regexp_split_to_table(rtrim(tenancy.metrics_prometheus(), E'\n'), E'\n') WITH ORDINALITY AS l(line, n);
SELECT count(*) AS malformed FROM prom
 WHERE line !~ '^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* ([^\\\n]|\\\\|\\n)*$'
   AND line !~ '^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (gauge|counter)$'
   AND line !~ '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$';
SELECT count(*) AS samples_without_type FROM prom s
 WHERE s.line !~ '^#'
   AND NOT EXISTS (SELECT 1 FROM prom t WHERE t.n < s.n
                      AND t.line = '# TYPE ' || substring(s.line FROM '^[a-zA-Z0-9_:]+') || ' gauge'
                       OR t.n < s.n AND t.line = '# TYPE ' || substring(s.line FROM '^[a-zA-Z0-9_:]+') || ' counter');
SELECT line FROM prom WHERE line LIKE 'pg_tenancy_tenant_rows_estimate{%health-a%';
SELECT line FROM prom WHERE line LIKE 'pg_tenancy_health_status{check="database_size"}%';

-- Privileges: an ordinary role runs the checks and is told what it cannot see;
-- sampling and per-tenant figures are for pg_monitor.
CREATE ROLE health_app;
CREATE ROLE health_monitor IN ROLE pg_monitor;
SET ROLE health_app;
SELECT status, detail FROM tenancy.health_check() WHERE check_name = 'monitoring_privileges';
SELECT count(*) > 10 AS checks_ran FROM tenancy.health_check() WHERE detail NOT LIKE 'could not run%';
SELECT tenancy.record_metrics();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.tenant_stats();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.alerts;
\echo :LAST_ERROR_SQLSTATE
UPDATE tenancy.health_thresholds SET warn_threshold = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE health_monitor;
SELECT status FROM tenancy.health_check() WHERE check_name = 'monitoring_privileges';
SELECT count(*) FILTER (WHERE detail LIKE 'could not run%') AS failed_checks FROM tenancy.health_check();
SELECT tenancy.record_metrics() > 30 AS recorded;
SELECT slug, rows_estimate FROM tenancy.tenant_stats() WHERE slug LIKE 'health-%';
SELECT tenancy.metrics_prometheus() LIKE '%pg_tenancy_health_status%' AS exported;
RESET ROLE;

-- Clean up what other suites could see.
UPDATE tenancy.health_thresholds SET enabled = true, warn_threshold = 98, crit_threshold = 90 WHERE check_name = 'cache_hit_ratio';
DROP TABLE health_items;
DROP ROLE health_app;
DROP ROLE health_monitor;
