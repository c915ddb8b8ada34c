-- Usage: request-rate limits and governed settings (docs/usage.md). Both are
-- configuration (dumped); the buckets live in shared memory only.

CREATE TABLE tenancy.throttle_rates (
    resource        text NOT NULL CHECK (resource <> ''),
    plan            text REFERENCES tenancy.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    tenant_id       uuid REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0 AND rate_per_second < 'infinity'),
    burst           double precision NOT NULL CHECK (burst >= 1 AND burst < 'infinity'),
    CHECK ((plan IS NULL) <> (tenant_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (resource, plan, tenant_id)
);
COMMENT ON TABLE tenancy.throttle_rates IS
    'Request rates tenancy.throttle() admits, per resource, for a plan''s tenants or for one tenant (which wins over its plan).';
COMMENT ON COLUMN tenancy.throttle_rates.resource IS 'The name throttle() is called with (any text; not a quota resource).';
COMMENT ON COLUMN tenancy.throttle_rates.plan IS 'The plan whose tenants this rate applies to (NULL for a tenant''s own rate).';
COMMENT ON COLUMN tenancy.throttle_rates.tenant_id IS 'The tenant this rate applies to, whatever its plan (NULL for a plan''s rate).';
COMMENT ON COLUMN tenancy.throttle_rates.rate_per_second IS 'Tokens the bucket gains per second: the sustained rate.';
COMMENT ON COLUMN tenancy.throttle_rates.burst IS 'Tokens the bucket holds at most: what may be spent at once after a quiet spell.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.throttle_rates', '');

CREATE TABLE tenancy.governance (
    setting   text NOT NULL CHECK (setting IN ('statement_timeout', 'lock_timeout', 'work_mem',
                                          'max_parallel_workers_per_gather', 'max_running_statements')),
    value     text NOT NULL,
    plan      text REFERENCES tenancy.plans (name) ON UPDATE CASCADE ON DELETE CASCADE,
    tenant_id uuid REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    CHECK ((plan IS NULL) <> (tenant_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (setting, plan, tenant_id)
);
COMMENT ON TABLE tenancy.governance IS
    'Settings set_tenant gives a tenant''s statements, for a plan''s tenants or for one tenant (which wins over its plan); tenancy.set_governance checks the values.';
COMMENT ON COLUMN tenancy.governance.setting IS 'statement_timeout, lock_timeout, work_mem, max_parallel_workers_per_gather, or max_running_statements (the most statements the tenant''s sessions run at once).';
COMMENT ON COLUMN tenancy.governance.value IS 'The value, as SET takes it (''5s'', ''64MB'', ''0''); a whole number for max_running_statements.';
COMMENT ON COLUMN tenancy.governance.plan IS 'The plan whose tenants get it (NULL for a tenant''s own value).';
COMMENT ON COLUMN tenancy.governance.tenant_id IS 'The tenant that gets it, whatever its plan (NULL for a plan''s value).';
SELECT pg_catalog.pg_extension_config_dump('tenancy.governance', '');
