-- Describes every object that belongs to extension pg_tenancy, one line per
-- property, sorted, so that two databases can be compared with diff: a fresh
-- install against a release updated to the same version (scripts/test-upgrade.sh).
--
-- What an upgrade script can get wrong is all here: a missing or extra object,
-- a column type, default, position or comment, a constraint, index, trigger,
-- policy, grant (also as pg_init_privs records them for pg_dump), a function's
-- whole definition, a view's query, configuration-dump registration.
-- Not here: owners (the same role installs both) and OIDs.
\pset format unaligned
\pset tuples_only on
\pset footer off
SET search_path = pg_catalog;

WITH ext AS (
    SELECT oid, extversion, extconfig, extcondition FROM pg_extension WHERE extname = 'pg_tenancy'
),
members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
procs AS (
    SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
),
-- Sorted, so that the same grants given in another order compare equal.
acl(objoid, text) AS (
    SELECT c.oid, string_agg(a, ',' ORDER BY a) FROM rels c, unnest(c.relacl::text[]) a GROUP BY c.oid
    UNION ALL
    SELECT p.oid, string_agg(a, ',' ORDER BY a) FROM procs p, unnest(p.proacl::text[]) a GROUP BY p.oid
),
lines(object, property) AS (
    SELECT 'extension', 'version ' || extversion FROM ext
    UNION ALL
    SELECT 'member ' || pg_describe_object(classid, objid, 0), '' FROM members
    UNION ALL
    -- Configuration tables pg_dump carries, with their filters.
    SELECT 'config ' || cfg::regclass::text, coalesce(nullif(cond, ''), '(all rows)')
      FROM ext, unnest(extconfig, extcondition) AS u(cfg, cond)
    UNION ALL
    SELECT 'schema ' || n.nspname,
           'acl ' || coalesce((SELECT string_agg(a, ',' ORDER BY a) FROM unnest(n.nspacl::text[]) a), '(default)')
             || ' comment ' || coalesce(obj_description(n.oid, 'pg_namespace'), '(none)')
      FROM pg_namespace n WHERE n.nspname = 'tenancy'
    UNION ALL
    -- Relations.
    SELECT 'relation ' || c.oid::regclass::text,
           format('kind %s persistence %s rls %s force_rls %s replident %s options %s partition_key %s',
                  c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
                  coalesce(c.reloptions::text, '{}'),
                  CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '-' END)
      FROM rels c
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text, 'comment ' || coalesce(obj_description(c.oid, 'pg_class'), '(none)')
      FROM rels c
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text, 'acl ' || coalesce(a.text, '(default)')
      FROM rels c LEFT JOIN acl a ON a.objoid = c.oid
    UNION ALL
    -- Column order matters: SETOF tenancy.audit_log and SELECT * see it.
    SELECT 'relation ' || c.oid::regclass::text,
           'columns ' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
      FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     GROUP BY c.oid
    UNION ALL
    SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname),
           format('type %s not_null %s default %s identity %s generated %s collation %s storage %s acl %s comment %s',
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  coalesce(pg_get_expr(ad.adbin, ad.adrelid), '(none)'),
                  nullif(a.attidentity, ''), nullif(a.attgenerated, ''),
                  CASE WHEN a.attcollation <> 0 THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END,
                  a.attstorage,
                  coalesce((SELECT string_agg(x, ',' ORDER BY x) FROM unnest(a.attacl::text[]) x), '(default)'),
                  coalesce(col_description(c.oid, a.attnum), '(none)'))
      FROM rels c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || c.oid::regclass::text || ' ' || quote_ident(k.conname),
           pg_get_constraintdef(k.oid, true) || ' deferrable ' || k.condeferrable || ' comment '
             || coalesce(obj_description(k.oid, 'pg_constraint'), '(none)')
      FROM rels c JOIN pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT 'index ' || i.indexrelid::regclass::text,
           pg_get_indexdef(i.indexrelid) || ' comment ' || coalesce(obj_description(i.indexrelid, 'pg_class'), '(none)')
      FROM rels c JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT 'trigger ' || c.oid::regclass::text || ' ' || quote_ident(t.tgname),
           pg_get_triggerdef(t.oid, true) || ' enabled ' || t.tgenabled::text || ' comment '
             || coalesce(obj_description(t.oid, 'pg_trigger'), '(none)')
      FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || c.oid::regclass::text || ' ' || quote_ident(p.polname),
           format('cmd %s permissive %s roles %s using %s check %s comment %s', p.polcmd, p.polpermissive,
                  (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1)
                     FROM unnest(p.polroles) r),
                  pg_get_expr(p.polqual, p.polrelid, true), pg_get_expr(p.polwithcheck, p.polrelid, true),
                  coalesce(obj_description(p.oid, 'pg_policy'), '(none)'))
      FROM rels c JOIN pg_policy p ON p.polrelid = c.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text, 'view ' || pg_get_viewdef(c.oid, true)
      FROM rels c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'rule ' || c.oid::regclass::text || ' ' || quote_ident(r.rulename), pg_get_ruledef(r.oid, true)
      FROM rels c JOIN pg_rewrite r ON r.ev_class = c.oid AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text,
           format('sequence %s start %s increment %s min %s max %s cache %s cycle %s owned_by %s',
                  format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT d.refobjid::regclass::text || '.' || a.attname
                     FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
      FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    -- Functions and procedures: the whole definition, line by line, then grants and comment.
    SELECT 'function ' || p.oid::regprocedure::text, 'def ' || l.n || ' ' || l.line
      FROM procs p,
           LATERAL (SELECT n, line
                      FROM regexp_split_to_table(pg_get_functiondef(p.oid), E'\n') WITH ORDINALITY AS x(line, n)) l
     WHERE p.prokind IN ('f', 'p', 'w')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text, 'aggregate ' || pg_describe_object('pg_proc'::regclass, p.oid, 0)
      FROM procs p WHERE p.prokind = 'a'
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text,
           'acl ' || coalesce(a.text, '(default)') || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '(none)')
      FROM procs p LEFT JOIN acl a ON a.objoid = p.oid
    UNION ALL
    -- Types of their own (a table's row type comes with the table).
    SELECT 'type ' || t.oid::regtype::text,
           format('typtype %s labels %s comment %s', t.typtype,
                  (SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),
                  coalesce(obj_description(t.oid, 'pg_type'), '(none)'))
      FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'event trigger ' || quote_ident(e.evtname),
           format('on %s tags %s function %s enabled %s comment %s', e.evtevent, e.evttags, e.evtfoid::regprocedure,
                  e.evtenabled, coalesce(obj_description(e.oid, 'pg_event_trigger'), '(none)'))
      FROM pg_event_trigger e JOIN members m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    -- The privileges pg_dump treats as the extension's own (it dumps only changes to them).
    SELECT 'init_privs ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
           ip.privtype::text || ' ' || (SELECT string_agg(a, ',' ORDER BY a) FROM unnest(ip.initprivs::text[]) a)
      FROM pg_init_privs ip
      JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
)
-- Multi-line properties (view queries, policy expressions) on one line each, so
-- that every line of a diff names its object.
SELECT object || ': ' || regexp_replace(property, '\s*\n\s*', ' ', 'g') FROM lines ORDER BY object, property;
