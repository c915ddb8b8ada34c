-- What every node of a Citus cluster must know: each tenant's status and
-- which roles are bound to which tenants (to check tenancy.tenant_id as
-- strictly as the coordinator does), and the masking key (pseudonymize runs
-- on the worker holding the rows). On a Citus coordinator pg_tenancy makes
-- these tables reference tables, copied to every node (docs/citus.md); on a
-- single node nobody reads them. Triggers keep them equal to tenancy.tenants,
-- tenancy.role_bindings and tenancy.masking_key, which stay the authority.
-- Not dumped: a restore rebuilds them through those triggers.

CREATE TABLE tenancy.cluster_tenants (
    id     uuid PRIMARY KEY,
    status text NOT NULL
);
COMMENT ON TABLE tenancy.cluster_tenants IS
    'Each tenant''s id and status, for the nodes of a Citus cluster (a reference table there); kept equal to tenancy.tenants by a trigger.';
COMMENT ON COLUMN tenancy.cluster_tenants.id IS 'The tenant''s id (tenancy.tenants.id).';
COMMENT ON COLUMN tenancy.cluster_tenants.status IS 'active or suspended (tenancy.tenants.status).';

-- Roles by name: role OIDs differ from node to node, names do not (Citus
-- creates and renames roles on every node).
CREATE TABLE tenancy.cluster_role_bindings (
    role_name text PRIMARY KEY,
    tenants   uuid[] NOT NULL
);
COMMENT ON TABLE tenancy.cluster_role_bindings IS
    'tenancy.role_bindings with roles by name, for the nodes of a Citus cluster (a reference table there); rebuilt by a trigger.';
COMMENT ON COLUMN tenancy.cluster_role_bindings.role_name IS 'The bound role''s name.';
COMMENT ON COLUMN tenancy.cluster_role_bindings.tenants IS 'The tenants it may select.';

CREATE FUNCTION tenancy._copy_tenant_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER  -- whoever may change tenancy.tenants keeps the copy equal to it
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tenancy.cluster_tenants;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM tenancy.cluster_tenants WHERE id OPERATOR(pg_catalog.=) OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO tenancy.cluster_tenants (id, status) VALUES (NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_tenant_to_cluster() IS
    'Internal: keeps tenancy.cluster_tenants equal to tenancy.tenants.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_tenant_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR DELETE OR UPDATE OF id, status ON tenancy.tenants
    FOR EACH ROW EXECUTE FUNCTION tenancy._copy_tenant_to_cluster();
CREATE TRIGGER copy_truncate_to_cluster AFTER TRUNCATE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_tenant_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.tenants IS
    'Keeps tenancy.cluster_tenants (what Citus workers check tenants against) equal to this table.';
COMMENT ON TRIGGER copy_truncate_to_cluster ON tenancy.tenants IS
    'Empties tenancy.cluster_tenants with this table.';

CREATE FUNCTION tenancy._copy_role_bindings_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenancy.cluster_role_bindings;
    INSERT INTO tenancy.cluster_role_bindings (role_name, tenants)
    SELECT r.rolname, b.tenants
      FROM tenancy.role_bindings b
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) b.role::pg_catalog.oid;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_role_bindings_to_cluster() IS
    'Internal: rebuilds tenancy.cluster_role_bindings from tenancy.role_bindings.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_role_bindings_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_role_bindings_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.role_bindings IS
    'Rebuilds tenancy.cluster_role_bindings (what Citus workers check bound roles against) from this table.';

CREATE TABLE tenancy.cluster_masking_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);
REVOKE ALL ON tenancy.cluster_masking_key FROM PUBLIC;
COMMENT ON TABLE tenancy.cluster_masking_key IS
    'tenancy.masking_key, for the nodes of a Citus cluster (a reference table there); kept equal to it by a trigger. Readable by superusers only.';
COMMENT ON COLUMN tenancy.cluster_masking_key.id IS 'Always 1: there is one key.';
COMMENT ON COLUMN tenancy.cluster_masking_key.key IS 'The key (tenancy.masking_key.key).';

CREATE FUNCTION tenancy._copy_masking_key_to_cluster() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenancy.cluster_masking_key;
    INSERT INTO tenancy.cluster_masking_key (id, key) SELECT id, key FROM tenancy.masking_key;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._copy_masking_key_to_cluster() IS
    'Internal: keeps tenancy.cluster_masking_key equal to tenancy.masking_key.';
REVOKE EXECUTE ON FUNCTION tenancy._copy_masking_key_to_cluster() FROM PUBLIC;
CREATE TRIGGER copy_to_cluster AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.masking_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._copy_masking_key_to_cluster();
COMMENT ON TRIGGER copy_to_cluster ON tenancy.masking_key IS
    'Keeps tenancy.cluster_masking_key (the key Citus workers pseudonymize with) equal to this table.';
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_masking_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._masking_key_changed();
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_masking_key IS
    'Makes every backend of this node read the masking key again.';

-- Every node forgets what it cached of tenants and bindings when its copy
-- changes (on a Citus worker the copy is all it has).
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._cluster_copy_changed();
CREATE TRIGGER cached_copy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_role_bindings
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy._cluster_copy_changed();
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_tenants IS
    'Makes every backend of this node reload the tenants and bindings it cached.';
COMMENT ON TRIGGER cached_copy_changed ON tenancy.cluster_role_bindings IS
    'Makes every backend of this node reload the bindings it cached.';

-- The copies start equal to what is there already (an update from 0.2.0).
INSERT INTO tenancy.cluster_masking_key (id, key) SELECT id, key FROM tenancy.masking_key;
INSERT INTO tenancy.cluster_tenants (id, status) SELECT id, status FROM tenancy.tenants;
INSERT INTO tenancy.cluster_role_bindings (role_name, tenants)
SELECT r.rolname, b.tenants
  FROM tenancy.role_bindings b
  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) b.role::pg_catalog.oid;
COMMENT ON FUNCTION tenancy._cluster_copy_changed() IS
    'Internal: the trigger that makes a node reload the tenants and bindings it cached when its cluster copy changes.';
REVOKE EXECUTE ON FUNCTION tenancy._cluster_copy_changed() FROM PUBLIC;
COMMENT ON FUNCTION tenancy._tenant_carried(uuid) IS
    'Internal: the marker that carries the session''s tenant in a Citus shard query; the node that plans the query takes the tenant for the transaction, checked like SET LOCAL. True when the tenant is the session''s.';

-- How a session's tenant and actor reach the Citus workers (src/citus/context.rs):
-- a procedure, because Citus propagates a SET LOCAL run inside one.
CREATE PROCEDURE tenancy._carry_to_workers()
    LANGUAGE c AS 'MODULE_PATHNAME', 'tenancy_carry_to_workers';
COMMENT ON PROCEDURE tenancy._carry_to_workers() IS
    'Internal, pg_tenancy''s own (42501 for any other caller): runs SET LOCAL of the session''s tenant and actor, so that Citus sends them to every worker the transaction reaches, then the write it was called for.';
