-- Migrating a set from pg_partman 4.7 (docs/partitions.md): its children and
-- its default partition are adopted, ranges they cover are not created again,
-- and rows stranded in its default partition are moved into a child of their
-- own. pg_partman computes boundaries in the session's time zone: UTC here, as
-- the migration note requires. Figures are relative to today, so the output
-- does not depend on the date.
SET TimeZone = 'UTC';
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
CREATE TABLE "Old Events" (id bigint, created_at timestamptz NOT NULL, body text) PARTITION BY RANGE (created_at);
SELECT partman.create_parent('public.Old Events', 'created_at', 'native', 'daily', p_premake => 2);
INSERT INTO "Old Events" VALUES (1, now(), 'today'), (2, now() - interval '20 days', 'stranded in the default');
SELECT count(*) AS partman_children FROM pg_inherits WHERE inhparent = '"Old Events"'::regclass;
SELECT CASE tableoid::regclass::text
         WHEN format('"Old Events_p%s"', to_char(now(), 'YYYY_MM_DD')) THEN 'today''s child'
         ELSE tableoid::regclass::text END AS partition,
       body
  FROM "Old Events" ORDER BY id;

UPDATE partman.part_config SET automatic_maintenance = 'off' WHERE parent_table = 'public.Old Events';
SELECT tenancy.create_partitioned('"Old Events"', 'created_at', '1 day', premake => 4, retention => '30 days');
-- pg_partman's five children (today and two days either side), ours: the two
-- days after them and the rescued day; and one default.
SELECT count(*) AS children,
       count(*) FILTER (WHERE partition::text ~ '_p\d{4}_\d\d_\d\d"$') AS from_partman,
       count(*) FILTER (WHERE partition::text ~ '_p\d{8}"$') AS ours,
       count(*) FILTER (WHERE is_default) AS defaults,
       bool_and(is_default OR range_to::timestamptz - range_from::timestamptz = interval '1 day') AS all_daily
  FROM tenancy.show_partitions('"Old Events"');
-- No two children overlap, and none is missing up to four days ahead.
SELECT bool_and(next_from IS NULL OR next_from::timestamptz >= range_to::timestamptz) AS no_overlap,
       max(range_to::timestamptz) >= date_trunc('day', now()) + interval '5 days' AS premade
  FROM (SELECT range_from, range_to, lead(range_from) OVER (ORDER BY range_from::timestamptz) AS next_from
          FROM tenancy.show_partitions('"Old Events"') WHERE NOT is_default) s;
SELECT partition::text ~ '_p\d{8}"$' AS in_a_new_child, body FROM (
    SELECT tableoid::regclass AS partition, id, body FROM "Old Events") e ORDER BY id;
-- Nothing left to do.
SELECT count(*) AS actions FROM tenancy.run_maintenance('"Old Events"');

DROP TABLE "Old Events";
DROP EXTENSION pg_partman;
DROP SCHEMA partman CASCADE;  -- pg_partman leaves its template table behind
