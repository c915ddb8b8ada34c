-- Tenants and context: catalog tables.
-- Schema tenancy itself is created by CREATE EXTENSION (control file: schema = tenancy).
-- All three tables are configuration: pg_extension_config_dump makes pg_dump carry
-- their rows, which CREATE EXTENSION alone would not recreate.

CREATE TABLE tenancy.plans (
    name        text PRIMARY KEY
                CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    limits      jsonb NOT NULL DEFAULT '{}'
                CHECK (pg_catalog.jsonb_typeof(limits) = 'object'),
    description text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.plans IS
    'Service plans; every tenant is on one. A plan''s limits apply to all its tenants unless a tenant has its own quota.';
COMMENT ON COLUMN tenancy.plans.name IS 'Plan name, as tenants.plan refers to it (lowercase, digits, - and _).';
COMMENT ON COLUMN tenancy.plans.limits IS 'Resource limits of the plan: a JSON object of resource name to limit.';
COMMENT ON COLUMN tenancy.plans.description IS 'Free text for humans.';
COMMENT ON COLUMN tenancy.plans.created_at IS 'When the plan was created.';

INSERT INTO tenancy.plans (name, description) VALUES ('free', 'Default plan for new tenants');

-- pg_restore replays the dumped plans with COPY after CREATE EXTENSION has already
-- inserted 'free'; merging that one row keeps an edited 'free' plan and lets the
-- restore succeed instead of failing on the primary key.
CREATE FUNCTION tenancy._merge_seeded_plan() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.name = 'free' THEN
        UPDATE tenancy.plans
           SET limits = NEW.limits, description = NEW.description, created_at = NEW.created_at
         WHERE name = NEW.name;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION tenancy._merge_seeded_plan() IS
    'Internal: an INSERT of the built-in plan ''free'' (as pg_restore does) updates the existing row.';
CREATE TRIGGER merge_seeded_plan BEFORE INSERT ON tenancy.plans
    FOR EACH ROW EXECUTE FUNCTION tenancy._merge_seeded_plan();
COMMENT ON TRIGGER merge_seeded_plan ON tenancy.plans IS
    'Turns an INSERT of the built-in plan ''free'' into an update, so pg_restore succeeds.';

CREATE TABLE tenancy.tenants (
    id         uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    plan       text NOT NULL DEFAULT 'free' REFERENCES tenancy.plans (name) ON UPDATE CASCADE,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.tenants IS 'The tenants of this database. Create them with tenancy.create_tenant().';
COMMENT ON COLUMN tenancy.tenants.id IS 'Tenant id: the value tenant columns hold and tenancy.current_tenant() returns.';
COMMENT ON COLUMN tenancy.tenants.slug IS 'Stable short handle (a DNS label: lowercase, digits, - and _).';
COMMENT ON COLUMN tenancy.tenants.name IS 'Display name.';
COMMENT ON COLUMN tenancy.tenants.plan IS 'The tenant''s plan (tenancy.plans.name).';
COMMENT ON COLUMN tenancy.tenants.status IS 'active, or suspended (tenancy.set_tenant refuses a suspended tenant).';
COMMENT ON COLUMN tenancy.tenants.settings IS 'Free-form per-tenant settings for the application.';
COMMENT ON COLUMN tenancy.tenants.created_at IS 'When the tenant was created.';

CREATE TABLE tenancy.tenant_tables (
    tbl           regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    isolated      boolean NOT NULL DEFAULT false,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.tenant_tables IS
    'Tenant-scoped tables (tenancy.register_table / enable_isolation); quotas, statistics, retention and purge use them.';
COMMENT ON COLUMN tenancy.tenant_tables.tbl IS 'The table.';
COMMENT ON COLUMN tenancy.tenant_tables.tenant_column IS 'Its uuid column holding the tenant id.';
COMMENT ON COLUMN tenancy.tenant_tables.isolated IS 'Whether row-level isolation (policy tenancy_isolation) is enabled on it.';
COMMENT ON COLUMN tenancy.tenant_tables.registered_at IS 'When the table was registered.';

SELECT pg_catalog.pg_extension_config_dump('tenancy.plans', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenant_tables', '');

-- Roles bound to tenants (tenancy.bind_role, since 0.2.0): a bound role, and
-- every member of it, can select only these tenants. Configuration: pg_dump
-- carries it (roles by name).
CREATE TABLE tenancy.role_bindings (
    role     regrole PRIMARY KEY,
    tenants  uuid[] NOT NULL CHECK (pg_catalog.cardinality(tenants) > 0),
    bound_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.role_bindings IS
    'Roles bound to tenants (tenancy.bind_role): the role and its members can select only these tenants, by any path.';
COMMENT ON COLUMN tenancy.role_bindings.role IS 'The bound role; its members are bound too.';
COMMENT ON COLUMN tenancy.role_bindings.tenants IS 'The tenants it may select.';
COMMENT ON COLUMN tenancy.role_bindings.bound_at IS 'When the binding was last set.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.role_bindings', '');
