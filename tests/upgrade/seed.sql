-- The rows CREATE EXTENSION (or an update) puts into the extension's own tables,
-- without what differs between any two installs (timestamps, the random masking
-- key): a fresh install and an updated one must hold the same.
\pset format unaligned
\pset tuples_only on
SELECT format('SELECT %L || '': '' || (to_jsonb(t) - %L::text[])::text FROM %s t ORDER BY 1;',
              c.oid::regclass,
              coalesce(array_agg(a.attname::text) FILTER (WHERE a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'bytea'::regtype)), '{}'),
              c.oid::regclass)
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenancy')
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p')
 GROUP BY c.oid
 ORDER BY c.oid::regclass::text
\gexec
