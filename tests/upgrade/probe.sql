-- What the extension's functions say about the data filled by fill-V.sql. Run
-- before the update (with the old library) and after it (with today's): the two
-- outputs must be identical. Only figures that cannot move between the two runs.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
SELECT slug, name, plan, status FROM tenancy.tenants ORDER BY slug;
SELECT tenancy.find_tenant('acme') = id AS find_tenant_works FROM tenancy.tenants WHERE slug = 'acme';
-- Hash chains sealed by the old library verify with the new one.
SELECT t.slug, v.rows_checked, v.ok, v.first_bad_id
  FROM tenancy.verify_audit() v LEFT JOIN tenancy.tenants t ON t.id = v.tenant_id ORDER BY t.slug NULLS FIRST;
SELECT op, record_key, old_row, new_row, changed_cols, actor
  FROM tenancy.row_history('public.projects', '{"id": 2}') ORDER BY id;
SELECT table_name, exclude_columns, triggers_enabled FROM tenancy.audited_tables ORDER BY table_name::text;
SELECT t.slug, q.resource, q.period_start, q.used, q.quota_limit, q.remaining, q.pct_used
  FROM tenancy.quota_status() q JOIN tenancy.tenants t ON t.id = q.tenant_id
 WHERE q.resource <> 'storage_bytes' ORDER BY t.slug, q.resource;
SELECT tenancy.check_quota(tenancy.find_tenant('acme'), 'seats') AS acme_has_seats,
       tenancy.check_quota(tenancy.find_tenant('globex'), 'projects') AS globex_has_projects;
SELECT partition, range_from, range_to, is_default FROM tenancy.show_partitions('public.events') ORDER BY range_from NULLS FIRST;
SELECT partition, range_from, range_to, is_default FROM tenancy.show_partitions('public.readings') ORDER BY range_from NULLS FIRST;
-- The masking key survived: the same token, the same masked rows.
SELECT tenancy.pseudonymize('alice@example.com') AS token;
SELECT tenancy.set_tenant(tenancy.find_tenant('acme'));
SELECT * FROM tenancy_masked.customers ORDER BY id;
SELECT tenancy.clear_tenant();
SELECT tbl, action, rows_due, partitions_due FROM tenancy.retention_preview() ORDER BY tbl::text;
SELECT check_name, status, value FROM tenancy.alerts ORDER BY id;
