-- Quotas: resources, limits (plans.limits and per-tenant overrides), usage
-- counters and the tables whose rows count against a resource.

CREATE TABLE tenancy.quota_resources (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    period     text NOT NULL DEFAULT 'none'
               CHECK (period IN ('none', 'minute', 'hour', 'day', 'month')),
    unit       text NOT NULL DEFAULT 'count' CHECK (unit <> ''),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.quota_resources IS
    'Countable resources (tenancy.define_resource). Usage starts again from zero each period, calendar-aligned in UTC.';
COMMENT ON COLUMN tenancy.quota_resources.name IS 'Resource name, as plans.limits keys and quota functions use it.';
COMMENT ON COLUMN tenancy.quota_resources.period IS 'none (a running total), minute, hour, day or month (UTC calendar windows).';
COMMENT ON COLUMN tenancy.quota_resources.unit IS 'What one unit is (count, bytes, tokens...): for humans and metrics.';
COMMENT ON COLUMN tenancy.quota_resources.created_at IS 'When the resource was defined.';

INSERT INTO tenancy.quota_resources (name, period, unit) VALUES ('storage_bytes', 'none', 'bytes');

CREATE TABLE tenancy.tenant_quotas (
    tenant_id   uuid NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    resource    text NOT NULL REFERENCES tenancy.quota_resources (name) ON UPDATE CASCADE ON DELETE CASCADE,
    quota_limit bigint NOT NULL CHECK (quota_limit >= 0),
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenancy.tenant_quotas IS
    'Per-tenant limits (tenancy.set_quota); they win over the plan''s limit for the same resource.';
COMMENT ON COLUMN tenancy.tenant_quotas.tenant_id IS 'The tenant.';
COMMENT ON COLUMN tenancy.tenant_quotas.resource IS 'The resource.';
COMMENT ON COLUMN tenancy.tenant_quotas.quota_limit IS 'Most units the tenant may use per period.';
COMMENT ON COLUMN tenancy.tenant_quotas.set_at IS 'When the override was set.';

-- One row per tenant and resource, updated in place: the row lock is what makes
-- consume exact. fillfactor leaves room for HOT updates on the same page.
CREATE TABLE tenancy.quota_usage (
    tenant_id    uuid NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    resource     text NOT NULL REFERENCES tenancy.quota_resources (name) ON UPDATE CASCADE ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    used         bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (tenant_id, resource)
) WITH (fillfactor = 50);
COMMENT ON TABLE tenancy.quota_usage IS
    'Usage counters. A row whose period_start is before the current period counts as zero. Read it through tenancy.quota_status(), which also sees this transaction''s uncommitted use.';
COMMENT ON COLUMN tenancy.quota_usage.tenant_id IS 'The tenant.';
COMMENT ON COLUMN tenancy.quota_usage.resource IS 'The resource.';
COMMENT ON COLUMN tenancy.quota_usage.period_start IS 'Start of the period "used" counts (-infinity for resources with period none).';
COMMENT ON COLUMN tenancy.quota_usage.used IS 'Units used in that period.';

CREATE TABLE tenancy.row_quotas (
    tbl           regclass PRIMARY KEY,
    resource      text NOT NULL REFERENCES tenancy.quota_resources (name) ON UPDATE CASCADE,
    tenant_column name NOT NULL,
    enforced_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.row_quotas IS
    'Tables whose rows count against a resource per tenant (tenancy.enforce_row_quota).';
COMMENT ON COLUMN tenancy.row_quotas.tbl IS 'The table.';
COMMENT ON COLUMN tenancy.row_quotas.resource IS 'The resource its rows count against (period none).';
COMMENT ON COLUMN tenancy.row_quotas.tenant_column IS 'The tenant column the rows are counted by.';
COMMENT ON COLUMN tenancy.row_quotas.enforced_at IS 'When enforcement started (existing rows were counted then).';

-- The built-in resource is created by CREATE EXTENSION itself; dumping it would
-- make the restore fail on its primary key.
SELECT pg_catalog.pg_extension_config_dump('tenancy.quota_resources', 'WHERE name <> ''storage_bytes''');
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenant_quotas', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.quota_usage', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.row_quotas', '');
