-- Installing the extension: schema, catalogs, the built-in plan. The upgrade suite
-- runs these suites on a database where an old release was updated instead.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_tenancy;
RESET client_min_messages;
SELECT e.extversion = a.default_version AS at_default_version
  FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
 WHERE e.extname = 'pg_tenancy';
SELECT extname, extrelocatable, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'pg_tenancy';
SELECT name, limits FROM tenancy.plans ORDER BY name;
-- Configuration tables are dumped by pg_dump.
SELECT c::regclass AS config_table
  FROM pg_extension e, unnest(e.extconfig) AS c
 WHERE extname = 'pg_tenancy' ORDER BY c::regclass::text;
-- Every object the extension creates has a comment. (PostgreSQL 17 also
-- records its tables' row types, and their array types, as members: they
-- are described by their tables.)
SELECT pg_describe_object(d.classid, d.objid, 0) AS uncommented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenancy')
   AND d.deptype = 'e'
   AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
   AND NOT EXISTS (SELECT FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND (t.typrelid <> 0 OR e.typrelid <> 0))
 ORDER BY 1;
-- ... and so does every column of its tables and views.
SELECT a.attrelid::regclass AS relation, a.attname AS uncommented_column
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'tenancy'::regnamespace AND c.relkind IN ('r', 'p', 'v')
   AND a.attnum > 0 AND NOT a.attisdropped
   AND col_description(a.attrelid, a.attnum) IS NULL
 ORDER BY a.attrelid::regclass::text, a.attname;
-- current_tenant() is what RLS policies call: its markings matter.
SELECT proname, provolatile, proparallel, proleakproof, proisstrict
  FROM pg_proc
 WHERE pronamespace = 'tenancy'::regnamespace
   AND proname IN ('current_tenant', 'current_actor')
 ORDER BY 1;
-- No SECURITY DEFINER function without a pinned search_path.
SELECT proname AS definer_without_search_path
  FROM pg_proc
 WHERE pronamespace = 'tenancy'::regnamespace AND prosecdef
   AND NOT coalesce(proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'];
