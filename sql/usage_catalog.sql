-- Usage: request-rate limits (docs/usage.md). The rates are configuration
-- (dumped); the buckets live in shared memory only.

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
