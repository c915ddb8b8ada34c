-- Masking: rules per column (which double as the data classification
-- catalog) and the pseudonymization key.

CREATE TABLE tenancy.masking_rules (
    tbl            regclass NOT NULL,
    col            name NOT NULL,
    rule           text NOT NULL,
    classification text NOT NULL DEFAULT 'confidential'
                   CHECK (classification IN ('public', 'internal', 'confidential', 'restricted')),
    set_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tbl, col)
);
COMMENT ON TABLE tenancy.masking_rules IS
    'Masking rule and data classification of each classified column (tenancy.set_masking_rule).';
COMMENT ON COLUMN tenancy.masking_rules.tbl IS 'The table.';
COMMENT ON COLUMN tenancy.masking_rules.col IS 'The column.';
COMMENT ON COLUMN tenancy.masking_rules.rule IS
    'email, phone, card, name, ip, redact, null, pseudonymize, partial(N,M), generalize(day|month|year), or none (classified, not masked).';
COMMENT ON COLUMN tenancy.masking_rules.classification IS 'public, internal, confidential or restricted.';
COMMENT ON COLUMN tenancy.masking_rules.set_at IS 'When the rule was last set.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.masking_rules', '');

-- 32 random bytes: two version-4 UUIDs (244 random bits from the server's
-- strong random source) without needing pgcrypto.
CREATE TABLE tenancy.masking_key (
    id         int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    key        bytea NOT NULL CHECK (pg_catalog.length(key) >= 16),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON tenancy.masking_key FROM PUBLIC;
COMMENT ON TABLE tenancy.masking_key IS
    'The key of tenancy.pseudonymize (HMAC-SHA256). Readable only by the extension owner; pg_dump carries it, so keep dumps as secret as the data.';
COMMENT ON COLUMN tenancy.masking_key.id IS 'Always 1: there is one key.';
COMMENT ON COLUMN tenancy.masking_key.key IS 'The secret key.';
COMMENT ON COLUMN tenancy.masking_key.created_at IS 'When the key was generated.';
INSERT INTO tenancy.masking_key (key)
SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex');

-- pg_restore replays the dumped key after CREATE EXTENSION generated a new
-- one: the dumped key wins, so tokens stay the same across dump and restore.
CREATE FUNCTION tenancy._merge_restored_key() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE tenancy.masking_key SET key = NEW.key, created_at = NEW.created_at WHERE id = NEW.id;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION tenancy._merge_restored_key() IS
    'Internal: an INSERT of the key row (as pg_restore does) replaces the generated key.';
CREATE TRIGGER merge_restored_key BEFORE INSERT ON tenancy.masking_key
    FOR EACH ROW EXECUTE FUNCTION tenancy._merge_restored_key();
COMMENT ON TRIGGER merge_restored_key ON tenancy.masking_key IS
    'Turns an INSERT of the key (pg_restore) into an update, so the dumped key wins.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.masking_key', '');

CREATE TABLE tenancy.masked_views (
    view       regclass PRIMARY KEY,
    tbl        regclass NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.masked_views IS 'Masked views made by tenancy.create_masked_view, and the tables they show.';
COMMENT ON COLUMN tenancy.masked_views.view IS 'The masked view.';
COMMENT ON COLUMN tenancy.masked_views.tbl IS 'The table it shows.';
COMMENT ON COLUMN tenancy.masked_views.created_at IS 'When it was (re)created.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.masked_views', '');

CREATE TABLE tenancy.masked_roles (
    role_name  name PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.masked_roles IS
    'Roles given masked access (tenancy.grant_masked_access): they read masked views, and new masked views are granted to them.';
COMMENT ON COLUMN tenancy.masked_roles.role_name IS 'The role.';
COMMENT ON COLUMN tenancy.masked_roles.granted_at IS 'When access was granted.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.masked_roles', '');
