-- Accounting: every statement a tenant's session sends is counted for that
-- tenant in shared memory (pg_tenancy is preloaded here). Exact per tenant,
-- nested statements once, errors with their cost, top N plus "other" in
-- fixed memory, and at most N+1 tenant labels in the Prometheus text.
SELECT tenancy.create_tenant('acct-a', 'Acct A', id => 'aaaaaaaa-0000-0000-0000-00000000acc1') AS a \gset
SELECT tenancy.create_tenant('acct-b', 'Acct B', id => 'bbbbbbbb-0000-0000-0000-00000000acc2') AS b \gset
CREATE TABLE acct_items (id int PRIMARY KEY, tenant_id uuid NOT NULL, v int NOT NULL);
INSERT INTO acct_items SELECT g, CASE WHEN g <= 50 THEN :'b'::uuid ELSE :'a'::uuid END, 0 FROM generate_series(1, 100) g;
SELECT tenancy.register_table('acct_items');
SELECT tenancy.reset_tenant_activity() IS NOT NULL AS reset;

-- Tenant A sends 500 SELECTs, tenant B 50 UPDATEs, each its own statement.
-- SET and RESET of the tenant are not counted, nor is the statement that
-- writes the script (no tenant is set while it runs).
\o /dev/null
\set ECHO none
SELECT cmd FROM (
    SELECT 0 AS n, format('SET tenancy.tenant_id = %L', :'a') AS cmd
    UNION ALL SELECT g, format('SELECT v FROM acct_items WHERE id = %s', 51 + g % 50) FROM generate_series(1, 500) g
    UNION ALL SELECT 501, 'RESET tenancy.tenant_id'
    UNION ALL SELECT 502, format('SET tenancy.tenant_id = %L', :'b')
    UNION ALL SELECT 502 + g, format('UPDATE acct_items SET v = v + 1 WHERE id = %s', g) FROM generate_series(1, 50) g
    UNION ALL SELECT 600, 'RESET tenancy.tenant_id') s ORDER BY n \gexec
\set ECHO all
\o
-- Both periods summed: a period may have ended during the test.
SELECT CASE tenant_id WHEN :'a' THEN 'A' WHEN :'b' THEN 'B' END AS tenant,
       sum(calls) AS calls, sum(rows) AS rows, sum(errors) AS errors,
       sum(blks_hit + blks_read) > 0 AS read_blocks, sum(wal_bytes) > 0 AS wrote_wal,
       sum(exec_ms) > 0 AS timed, sum(cpu_ms) > 0 AS used_cpu
  FROM tenancy.tenant_activity() WHERE tenant_id IN (:'a', :'b')
 GROUP BY tenant_id ORDER BY 1;
-- Two rows per tenant (current and previous period), then two for the rest,
-- each with its period's start.
SELECT period, tenant_rank, tenant_id IS NULL AS other,
       period_start = to_timestamp(floor(extract(epoch FROM now()) / 60) * 60)
                      - CASE period WHEN 'previous' THEN interval '60 seconds' ELSE interval '0' END AS period_start_ok
  FROM tenancy.tenant_activity() ORDER BY tenant_rank NULLS LAST, period;

-- Nested statements are inside the statement that runs them: a SELECT
-- calling a function that reads and writes is one call, and so is a DO
-- block running it twice.
CREATE FUNCTION acct_touch(n int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE s bigint;
BEGIN
    SELECT sum(v) INTO s FROM acct_items;
    UPDATE acct_items SET v = v WHERE id = n;
    RETURN s;
END $$;
SELECT tenancy.reset_tenant_activity() IS NOT NULL AS reset;
SET tenancy.tenant_id = :'a';
SELECT acct_touch(60) AS sum_of_v;
DO $$ BEGIN PERFORM acct_touch(61); PERFORM acct_touch(62); END $$;
RESET tenancy.tenant_id;
SELECT sum(calls) AS calls, sum(rows) AS rows, sum(wal_bytes) > 0 AS wrote_wal
  FROM tenancy.tenant_activity() WHERE tenant_id = :'a';

-- Errors: a statement cancelled by statement_timeout and one failing inside
-- a savepoint count as errors, with the time they ran; a statement the
-- planner refuses never started and is not counted.
SELECT tenancy.reset_tenant_activity() IS NOT NULL AS reset;
\set VERBOSITY sqlstate
SET tenancy.tenant_id = :'b';
SET statement_timeout = '100ms';
SELECT pg_sleep(2);
RESET statement_timeout;
BEGIN;
SAVEPOINT s;
SELECT 1 / (v - v) FROM acct_items WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS after_savepoint FROM acct_items WHERE id = 1;
COMMIT;
SELECT 1 / 0;
RESET tenancy.tenant_id;
\set VERBOSITY default
SELECT sum(calls) AS calls, sum(errors) AS errors, sum(exec_ms) >= 100 AS timed_until_cancelled
  FROM tenancy.tenant_activity() WHERE tenant_id = :'b';

-- tenant_stats and health_check: a tenant using most of the CPU of tenants'
-- statements (at least a second of it, and two tenants at least).
SET tenancy.tenant_id = :'a';
SELECT sum(g) > 0 AS busy FROM generate_series(1, 20000000) g;
RESET tenancy.tenant_id;
SELECT slug, cpu_ms_recent > 900 AS busy, cpu_share_pct > 90 AS most, running_statements, running_cap
  FROM tenancy.tenant_stats() WHERE slug IN ('acct-a', 'acct-b') ORDER BY slug;
SELECT check_name, status, value > 90 AS most, detail LIKE 'tenant ' || :'a' || ' used %' AS names_tenant
  FROM tenancy.health_check() WHERE check_name IN ('tenant_cpu_share', 'tenants_at_running_cap');

-- Who may read and reset: pg_monitor reads; nobody else, and only admins reset.
CREATE ROLE acct_watcher IN ROLE pg_monitor;
CREATE ROLE acct_nobody;
SET ROLE acct_watcher;
SELECT count(*) > 0 AS watcher_reads FROM tenancy.tenant_activity();
SELECT tenancy.reset_tenant_activity();
SET ROLE acct_nobody;
SELECT count(*) FROM tenancy.tenant_activity();
RESET ROLE;

-- 10,000 tenants, each sending a statement: the ledger's shared memory does
-- not grow, tenant_activity() names the top tenancy.activity_top (here 5)
-- and sums every other tenant in one row, exactly (10,000 calls in all),
-- and the Prometheus text has 6 tenant labels.
SELECT allocated_size AS ledger_bytes FROM pg_shmem_allocations WHERE name = 'pg_tenancy_activity' \gset
SELECT :ledger_bytes > 0 AS ledger_in_shared_memory;
ALTER SYSTEM SET tenancy.activity_top = 5;
SELECT pg_reload_conf();
SELECT count(tenancy.create_tenant('acct-many-' || g, 'Many ' || g)) AS created FROM generate_series(1, 10000) g;
SELECT tenancy.reset_tenant_activity() IS NOT NULL AS reset;
\o /dev/null
\set ECHO none
SELECT cmd FROM (
    SELECT 2 * row_number() OVER (ORDER BY slug) AS n, format('SET tenancy.tenant_id = %L', id) AS cmd
      FROM tenancy.tenants WHERE slug LIKE 'acct-many-%'
    UNION ALL
    SELECT 2 * row_number() OVER (ORDER BY slug) + 1, 'SELECT 1'
      FROM tenancy.tenants WHERE slug LIKE 'acct-many-%'
    UNION ALL SELECT 100000, 'RESET tenancy.tenant_id') s ORDER BY n \gexec
\set ECHO all
\o
SHOW tenancy.activity_top;
SELECT count(DISTINCT tenant_id) AS named, count(*) FILTER (WHERE tenant_id IS NULL) AS other_rows,
       sum(calls) AS calls
  FROM tenancy.tenant_activity();
SELECT allocated_size = :ledger_bytes AS same_memory FROM pg_shmem_allocations WHERE name = 'pg_tenancy_activity';
SELECT count(DISTINCT m[1]) AS tenant_labels
  FROM regexp_matches(tenancy.metrics_prometheus(), 'tenant_id="([^"]*)"', 'g') m;
SELECT count(*) AS other_series
  FROM regexp_split_to_table(tenancy.metrics_prometheus(), E'\n') l
 WHERE l LIKE 'pg_tenancy_tenant_calls{tenant_id="",tenant="other"%';
ALTER SYSTEM RESET tenancy.activity_top;
SELECT pg_reload_conf();
