-- Fills every catalog of pg_tenancy 0.2.0 through its own API: all that
-- 0.1.0 had (fill-0.1.0.sql), and what 0.2.0 added: roles bound to tenants.
-- Runs as a superuser in a database where 0.2.0 was just created, with the
-- 0.2.0 library.
\set ON_ERROR_STOP on
\ir fill-0.1.0.sql

-- Role bindings: a support role bound to two tenants.
CREATE ROLE upgrade_support;
SELECT tenancy.bind_role('upgrade_support', ARRAY[tenancy.find_tenant('acme'), tenancy.find_tenant('globex')]);
