-- Hardening (issue 15, points 4 to 6 and renames): no value, configuration
-- change or missing row reaches a backend crash or an internal error (XX000).
\set VERBOSITY terse
SELECT tenancy.create_tenant('hard-a', 'Hardening A', id => 'aaaaaaaa-0000-0000-0000-0000000000a7');

-- mask_partial: a result larger than a text value can hold is refused before
-- anything is built (54000, as repeat() does), not allocated and then failed.
SELECT tenancy.mask_partial(repeat('x', 1000000), 0, 0, repeat('*', 2000));
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.mask_partial('abc', 0, 0, repeat('*', 400000000));
\echo :LAST_ERROR_SQLSTATE
-- Large results that fit are built exactly; multi-byte values and fills too.
SELECT length(tenancy.mask_partial(repeat('x', 100000), 2, 3, '##')) AS masked_length;
SELECT tenancy.mask_partial('ñandú', 1, 1, '·') AS multibyte, tenancy.mask_partial('4111111111111111', 4, 4) AS card,
       tenancy.mask_partial('abc', 2147483647, 2147483647) AS keep_all_is_fill_all, tenancy.mask_partial('abc', 1, 1, '') AS empty_fill;

-- generalize_date at the lower end of the timestamp range: the start of year
-- (or month) 4714 BC is before the first representable instant, so the
-- result is that instant, still in the same year.
SELECT tenancy.generalize_date('4714-12-01 00:00+00 BC', 'year') AT TIME ZONE 'UTC' AS year_start,
       tenancy.generalize_date('4714-11-30 12:00+00 BC', 'month') AT TIME ZONE 'UTC' AS month_start,
       tenancy.generalize_date('4714-11-30 12:00+00 BC', 'day') AT TIME ZONE 'UTC' AS day_start,
       tenancy.generalize_date('infinity', 'year') AS infinite;

-- ... and at the upper end, whose Unix microseconds do not fit in 64 bits.
SELECT tenancy.generalize_date('294276-12-31 23:59:59+00', 'year') AT TIME ZONE 'UTC' AS last_year_start,
       tenancy.generalize_date('294276-12-31 23:59:59+00', 'day') AT TIME ZONE 'UTC' AS last_day_start;

-- Partition sets whose bounds would overflow 64 bits after a few children are
-- refused up front (22023), instead of failing in the middle of maintenance.
CREATE TABLE hard_span (at timestamptz NOT NULL, n bigint) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('hard_span', 'at', '1 day', premake => 2147483647);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('hard_span', 'at', '100000 years');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE hard_ids (n bigint NOT NULL) PARTITION BY RANGE (n);
SELECT tenancy.create_partitioned('hard_ids', 'n', '9223372036854775807');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE hard_span, hard_ids;
-- The clock refuses an override at the end of time rather than overflow.
SET tenancy.now_override = '294276-12-31 23:59:59+00';
SELECT * FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a7');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.now_override;

-- A renamed tenant column: the catalogs follow it, row quotas keep counting,
-- an excluded column stays excluded, a masking rule stays on its column.
SELECT tenancy.define_resource('hard_rows');
SELECT tenancy.set_quota('aaaaaaaa-0000-0000-0000-0000000000a7', 'hard_rows', 2);
CREATE TABLE hard_items (id int PRIMARY KEY, tenant_id uuid NOT NULL, secret text, made_at timestamptz NOT NULL DEFAULT now());
SELECT tenancy.register_table('hard_items');
SELECT tenancy.enforce_row_quota('hard_items', 'hard_rows');
SELECT tenancy.enable_audit('hard_items', '{secret}');
SELECT tenancy.set_masking_rule('hard_items', 'secret', 'redact');
SELECT tenancy.set_retention('hard_items', '30 days', time_column => 'made_at');
ALTER TABLE hard_items RENAME COLUMN tenant_id TO org_id;
ALTER TABLE hard_items RENAME COLUMN secret TO hidden;
ALTER TABLE hard_items RENAME COLUMN made_at TO created;
SELECT t.tenant_column, q.tenant_column AS quota_column, a.exclude_columns, m.col AS masked, r.time_column
  FROM tenancy.tenant_tables t
  JOIN tenancy.row_quotas q ON q.tbl = t.tbl
  JOIN tenancy.audit_config a ON a.tbl = t.tbl
  JOIN tenancy.masking_rules m ON m.tbl = t.tbl
  JOIN tenancy.retention_policies r ON r.tbl = t.tbl
 WHERE t.tbl = 'hard_items'::regclass;
INSERT INTO hard_items (id, org_id, hidden) VALUES (1, 'aaaaaaaa-0000-0000-0000-0000000000a7', 'top secret');
INSERT INTO hard_items (id, org_id, hidden) VALUES (2, 'aaaaaaaa-0000-0000-0000-0000000000a7', 'top secret'),
                                                  (3, 'aaaaaaaa-0000-0000-0000-0000000000a7', 'top secret');
\echo :LAST_ERROR_SQLSTATE
SELECT used FROM tenancy.quota_status('aaaaaaaa-0000-0000-0000-0000000000a7') WHERE resource = 'hard_rows';
SELECT new_row ? 'hidden' AS audited_the_excluded_column, new_row ? 'org_id' AS has_tenant
  FROM tenancy.audit_log WHERE table_name = 'public.hard_items';
-- A partition key renamed: maintenance keeps working on the set.
CREATE TABLE hard_events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
SET tenancy.now_override = '2026-01-02 12:00+00';
SELECT tenancy.create_partitioned('hard_events', 'at', '1 day', premake => 1, start_at => '2026-01-01');
ALTER TABLE hard_events RENAME COLUMN at TO happened_at;
SELECT control_column FROM tenancy.partition_sets WHERE parent = 'hard_events'::regclass;
SET tenancy.now_override = '2026-01-05 12:00+00';
SELECT action, partition FROM tenancy.run_maintenance('hard_events') ORDER BY partition;
RESET tenancy.now_override;
-- A dropped tenant column (CASCADE takes the row-quota trigger that uses it
-- with it) is a clean 55000 for the row quota's statement triggers, not XX000.
ALTER TABLE hard_items DROP COLUMN org_id CASCADE;
INSERT INTO hard_items (id) VALUES (9);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.disable_row_quota('hard_items');
INSERT INTO hard_items (id) VALUES (9);

-- The masking key gone (deleted by a superuser, or a dump restored without it):
-- pseudonymize says so (55000) and how to put one back.
BEGIN;
DELETE FROM tenancy.masking_key;
\set VERBOSITY default
SELECT tenancy.pseudonymize('someone@example.com');
\set VERBOSITY terse
ROLLBACK;
SELECT length(tenancy.pseudonymize('someone@example.com')) AS token_length;

-- Retention follows tenancy.now_override, like partitions and quota periods:
-- what is due, and what a run removes, is decided by the extension's clock.
CREATE TABLE hard_log (id int PRIMARY KEY, created_at timestamptz NOT NULL);
INSERT INTO hard_log VALUES (1, '2030-01-01 00:00+00'), (2, '2030-02-20 00:00+00'), (3, '2030-03-01 00:00+00');
SELECT tenancy.set_retention('hard_log', '30 days');
SET tenancy.now_override = '2030-03-05 00:00+00';
SELECT tbl, action, rows_due FROM tenancy.retention_preview() WHERE tbl = 'hard_log'::regclass;
CALL tenancy.run_retention();
SELECT id FROM hard_log ORDER BY id;
RESET tenancy.now_override;
SELECT rows_due FROM tenancy.retention_preview() WHERE tbl = 'hard_log'::regclass;
