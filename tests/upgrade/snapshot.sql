-- Writes, for every table and view of schemas tenancy, tenancy_masked and public,
-- one query that lists its rows as text, one line each (table|row): the upgrade
-- test runs the generated queries before and after ALTER EXTENSION UPDATE and
-- compares the lines. The column lists are today's, so columns an update adds
-- do not count; :excluded (a text[] of table.column) leaves out columns an
-- update changes on purpose (tests/upgrade/changes-V.txt).
\pset format unaligned
\pset tuples_only on
SELECT format('SELECT %L || ''|'' || ROW(%s)::text FROM %s;',
              c.oid::regclass,
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
              c.oid::regclass)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                      AND NOT (c.oid::regclass::text || '.' || a.attname) = ANY (:'excluded'::text[])
 WHERE n.nspname IN ('tenancy', 'tenancy_masked', 'public')
   AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
 GROUP BY c.oid
 ORDER BY c.oid::regclass::text;
