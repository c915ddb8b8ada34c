-- Partition sets: registration, premake, relocation out of the default
-- partition, retention, idempotence, errors. The clock is pinned with
-- tenancy.now_override so child names are stable.
SET tenancy.now_override = '2026-11-22 15:00:00+00';
SET TimeZone = 'UTC';

-- A daily set: the default partition, today, and premake (3) days ahead.
CREATE TABLE events (
    id   bigint GENERATED ALWAYS AS IDENTITY,
    at   timestamptz NOT NULL,
    kind text NOT NULL CHECK (kind <> ''),
    body jsonb,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX events_kind_idx ON events (kind);
CREATE ROLE tenancy_reader;
GRANT SELECT ON events TO tenancy_reader;
SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 3);
SELECT partition, range_from, range_to, is_default FROM tenancy.show_partitions('events');
SELECT parent, control_column, part_interval, premake, retention, retention_mode, default_partition
  FROM tenancy.partition_sets;
-- Children carry the parent's indexes, constraints, owner and grants.
SELECT c.relname, pg_get_userbyid(c.relowner) = current_user AS owner_is_parents,
       has_table_privilege('tenancy_reader', c.oid, 'SELECT') AS reader_can_select,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
       (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c') AS checks
  FROM pg_class c WHERE c.relkind = 'r' AND (c.relname LIKE 'events_p%' OR c.relname = 'events_default') ORDER BY 1;
-- Registering twice is a NOTICE.
SELECT tenancy.create_partitioned('events', 'at', '1 day');
-- Nothing to do: an idempotent second run returns no rows.
SELECT * FROM tenancy.run_maintenance();

-- Rows with no child land in the default partition ...
INSERT INTO events (at, kind) VALUES
    ('2026-11-10 10:00+00', 'early'), ('2026-11-10 23:59:59+00', 'early'),
    ('2026-12-24 18:00+00', 'late'), ('2026-11-23 09:00+00', 'tomorrow');
SELECT tableoid::regclass AS stored_in, count(*) FROM events GROUP BY 1 ORDER BY tableoid::regclass::text;
-- ... and maintenance moves them into children of their own, and premakes on
-- a new day even though no new data arrived.
SET tenancy.now_override = '2026-11-24 00:00:01+00';
SELECT * FROM tenancy.run_maintenance();
SELECT tableoid::regclass AS stored_in, at, kind FROM events ORDER BY at;
SELECT count(*) AS rows_left_in_default FROM ONLY events_default;
SELECT * FROM tenancy.run_maintenance();

-- Retention: children entirely older than 3 days are dropped; today's and
-- future children never are, whatever the retention.
UPDATE tenancy.partition_sets SET retention = '3 days' WHERE parent = 'events'::regclass;
SET tenancy.now_override = '2026-11-26 12:00:00+00';
SELECT * FROM tenancy.run_maintenance('events');
SELECT partition, range_from FROM tenancy.show_partitions('events') WHERE NOT is_default;

-- Detach mode keeps the tables.
UPDATE tenancy.partition_sets SET retention_mode = 'detach' WHERE parent = 'events'::regclass;
SET tenancy.now_override = '2026-11-28 12:00:00+00';
SELECT * FROM tenancy.run_maintenance('events');
SELECT relname, relispartition FROM pg_class WHERE relname IN ('events_p20261123', 'events_p20261124') ORDER BY 1;

-- A monthly set on a timestamp column, started in the past: one child per month.
SET tenancy.now_override = '2026-11-22 15:00:00+00';
CREATE TABLE invoices (issued timestamp NOT NULL, total numeric) PARTITION BY RANGE (issued);
SELECT tenancy.create_partitioned('invoices', 'issued', '1 month', premake => 2,
                                  start_at => '2026-08-15', default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('invoices');
-- Quarters and weeks align on calendar units.
CREATE TABLE quarterly (d date NOT NULL) PARTITION BY RANGE (d);
SELECT tenancy.create_partitioned('quarterly', 'd', '3 months', premake => 1, default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('quarterly');
CREATE TABLE weekly (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('weekly', 'at', '1 week', premake => 1, default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('weekly');
-- Sub-day children carry the time in their name.
CREATE TABLE ticks (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('ticks', 'at', '6 hours', premake => 2, default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('ticks');

-- DST: boundaries are UTC midnights whatever the session's time zone, so the
-- night Berlin switches to summer time still gets one 24-hour child.
SET TimeZone = 'Europe/Berlin';
SET tenancy.now_override = '2026-03-28 23:30:00+01';
CREATE TABLE dst (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('dst', 'at', '1 day', premake => 2, default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('dst');
SELECT pg_get_expr(c.relpartbound, c.oid) AS bound_in_session_zone
  FROM pg_class c WHERE c.relname = 'dst_p20260329';
INSERT INTO dst VALUES ('2026-03-29 01:59:59+01'), ('2026-03-29 03:00:00+02'), ('2026-03-30 01:59:59+02');
SELECT tableoid::regclass, at FROM dst ORDER BY at;
SET TimeZone = 'UTC';
SET tenancy.now_override = '2026-11-22 15:00:00+00';

-- An integer set: children of 1000 ids, premade ahead of the highest id.
CREATE TABLE readings (id bigint NOT NULL, value real) PARTITION BY RANGE (id);
SELECT tenancy.create_partitioned('readings', 'id', '1000', premake => 2);
SELECT partition, range_from, range_to, is_default FROM tenancy.show_partitions('readings');
INSERT INTO readings SELECT g, 0 FROM generate_series(1, 2500) g;
SELECT * FROM tenancy.run_maintenance('readings');
-- Rows past every child went to the default; maintenance rescues them.
INSERT INTO readings VALUES (7777, 1), (7778, 1);
SELECT * FROM tenancy.run_maintenance('readings');
SELECT partition, range_from, range_to FROM tenancy.show_partitions('readings') WHERE NOT is_default;
-- smallint sets stop where the type ends.
CREATE TABLE small (n smallint NOT NULL) PARTITION BY RANGE (n);
SELECT tenancy.create_partitioned('small', 'n', '10000', premake => 5, start_value => 20000, default_partition => false);
SELECT partition, range_from, range_to FROM tenancy.show_partitions('small');

-- Names with capitals, spaces and quotes, in a schema that needs quoting.
CREATE SCHEMA "Data Lake";
CREATE TABLE "Data Lake"."Click ""Stream"" Log" ("Event Time" timestamptz NOT NULL) PARTITION BY RANGE ("Event Time");
SELECT tenancy.create_partitioned('"Data Lake"."Click ""Stream"" Log"', 'Event Time', '1 day', premake => 1);
SELECT partition FROM tenancy.show_partitions('"Data Lake"."Click ""Stream"" Log"');
INSERT INTO "Data Lake"."Click ""Stream"" Log" VALUES ('2026-11-01 12:00+00');
SELECT * FROM tenancy.run_maintenance('"Data Lake"."Click ""Stream"" Log"');
-- A very long name is cut so the child's name fits in 63 bytes.
CREATE TABLE a_table_with_a_really_quite_remarkably_long_name_for_partitions (at date NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('a_table_with_a_really_quite_remarkably_long_name_for_partitions', 'at', '1 day', premake => 1, default_partition => false);
SELECT partition, length(partition::text) FROM tenancy.show_partitions('a_table_with_a_really_quite_remarkably_long_name_for_partitions');

-- An isolated parent's children are isolated too.
CREATE TABLE tenant_logs (tenant_id uuid NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.enable_isolation('tenant_logs');
SELECT tenancy.create_partitioned('tenant_logs', 'at', '1 day', premake => 1);
SELECT c.relname, c.relforcerowsecurity, count(p.polname) AS policies
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.relname LIKE 'tenant_logs_%' GROUP BY 1, 2 ORDER BY 1;
-- Rows in an isolated default partition are still rescued (the owner is subject
-- to FORCE ROW LEVEL SECURITY, which maintenance lifts for its own transaction).
CREATE ROLE tenancy_log_owner;
GRANT CREATE ON SCHEMA public TO tenancy_log_owner;
ALTER TABLE tenant_logs OWNER TO tenancy_log_owner;
ALTER TABLE tenant_logs_default OWNER TO tenancy_log_owner;
INSERT INTO tenant_logs VALUES ('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', '2026-11-01 08:00+00');
SELECT action, partition, detail FROM tenancy.run_maintenance('tenant_logs');
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.relforcerowsecurity
  FROM pg_class c WHERE c.relname IN ('tenant_logs_default', 'tenant_logs_p20261101') ORDER BY 1;
SELECT tableoid::regclass, at FROM tenant_logs;

-- One broken set does not stop the others: a table squats on the name the
-- next child needs, and another set's interval was edited into nonsense.
CREATE TABLE squat (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('squat', 'at', '1 day', premake => 1, default_partition => false);
CREATE TABLE squat_p20261124 (at timestamptz);
CREATE TABLE broken (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT tenancy.create_partitioned('broken', 'at', '1 day', premake => 1, default_partition => false);
UPDATE tenancy.partition_sets SET part_interval = 'fortnightly' WHERE parent = 'broken'::regclass;
SET tenancy.now_override = '2026-11-23 12:00:00+00';
SELECT parent, action, partition, detail FROM tenancy.run_maintenance()
 WHERE parent IN ('squat'::regclass, 'broken'::regclass, 'ticks'::regclass) ORDER BY parent::text, action, partition;
DROP TABLE squat_p20261124;
SELECT parent, action, partition FROM tenancy.run_maintenance('squat');
-- The committing procedure runs the sets one by one and reports as NOTICEs.
SET tenancy.now_override = '2026-11-24 12:00:00+00';
CALL tenancy.run_maintenance_proc('squat');
CALL tenancy.run_maintenance_proc('squat');

-- Errors.
SELECT tenancy.create_partitioned('no_such_table', 'at', '1 day');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE plain (at timestamptz);
SELECT tenancy.create_partitioned('plain', 'at', '1 day');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE by_list (region text, at timestamptz) PARTITION BY LIST (region);
SELECT tenancy.create_partitioned('by_list', 'at', '1 day');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE two_times (created timestamptz, updated timestamptz) PARTITION BY RANGE (created);
SELECT tenancy.create_partitioned('two_times', 'updated', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'deleted', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', 'sometimes');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', '500 milliseconds');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', '1 month 2 days');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', '1 day', premake => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', '1 day', retention_mode => 'archive');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', '1 day', retention => '-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('two_times', 'created', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('readings', 'id', '1 day');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE by_int (n int NOT NULL) PARTITION BY RANGE (n);
SELECT tenancy.create_partitioned('by_int', 'n', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_partitioned('by_int', 'n', '100', retention => '30 days');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE daily_dates (d date NOT NULL) PARTITION BY RANGE (d);
SELECT tenancy.create_partitioned('daily_dates', 'd', '1 hour');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE by_text (k text NOT NULL) PARTITION BY RANGE (k);
SELECT tenancy.create_partitioned('by_text', 'k', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.run_maintenance('plain');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.show_partitions('plain');
\echo :LAST_ERROR_SQLSTATE
-- Only the owner registers a table.
CREATE ROLE tenancy_stranger;
SET ROLE tenancy_stranger;
SELECT tenancy.create_partitioned('two_times', 'created', '1 day');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- undo_partition_set stops managing and keeps every child and row.
SELECT tenancy.undo_partition_set('readings');
SELECT tenancy.undo_partition_set('readings');
SELECT count(*) AS readings_rows, (SELECT count(*) FROM tenancy.show_partitions('readings')) AS children FROM readings;
SELECT count(*) AS sets_for_readings FROM tenancy.partition_sets WHERE parent = 'readings'::regclass;
-- Dropping a managed table forgets its set.
DROP TABLE ticks;
SELECT count(*) AS sets_for_ticks FROM tenancy.partition_sets WHERE parent::text = 'ticks';

DROP TABLE events, invoices, quarterly, weekly, dst, readings, small, "Data Lake"."Click ""Stream"" Log",
    a_table_with_a_really_quite_remarkably_long_name_for_partitions, tenant_logs, squat, broken,
    plain, by_list, two_times, by_int, daily_dates, by_text, events_p20261123, events_p20261124;
DROP SCHEMA "Data Lake";
REVOKE CREATE ON SCHEMA public FROM tenancy_log_owner;
DROP ROLE tenancy_reader, tenancy_log_owner, tenancy_stranger;
RESET tenancy.now_override;
