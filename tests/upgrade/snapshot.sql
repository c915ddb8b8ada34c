-- Writes, for every table and view of schemas tenancy, tenancy_masked and public,
-- one query that counts its rows and hashes their text: the upgrade test runs
-- the generated queries before and after ALTER EXTENSION UPDATE and diffs the
-- results. The column lists are today's, so columns an update adds do not count.
\pset format unaligned
\pset tuples_only on
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(r, E''\n'' ORDER BY r), '''')) FROM (SELECT ROW(%s)::text AS r FROM %s) s;',
              c.oid::regclass,
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
              c.oid::regclass)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname IN ('tenancy', 'tenancy_masked', 'public')
   AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
 GROUP BY c.oid
 ORDER BY c.oid::regclass::text;
