-- Audit: the log, its chain of seals, and the audited tables' settings.

-- Ids are drawn in blocks: one sequence value v gives ids v*1000 .. v*1000+999,
-- so a bulk statement calls nextval once per thousand rows. Ids only need to be
-- unique (history is ordered by logged_at, chains by transaction).
CREATE SEQUENCE tenancy.audit_log_id_seq;
COMMENT ON SEQUENCE tenancy.audit_log_id_seq IS 'Blocks of tenancy.audit_log ids: value v stands for ids v*1000 to v*1000+999.';

CREATE TABLE tenancy.audit_log (
    id               bigint NOT NULL DEFAULT pg_catalog.nextval('tenancy.audit_log_id_seq') * 1000,
    logged_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    tenant_id        uuid,
    table_name       text NOT NULL,
    op               text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'PURGE')),
    record_key       jsonb,
    old_row          jsonb,
    new_row          jsonb,
    changed_cols     text[],
    actor            text,
    application_name text,
    client_addr      inet,
    txid             bigint NOT NULL,
    old_record_key   jsonb
) PARTITION BY RANGE (logged_at);
ALTER SEQUENCE tenancy.audit_log_id_seq OWNED BY tenancy.audit_log.id;
-- Each partition gets a BRIN index on (txid, logged_at) as it is created
-- (audit's partition hook, src/audit/partitions.rs): audit rows arrive in transaction order, so it is
-- nearly free to maintain and lets sealing find recent transactions without a
-- full scan. It is not declared on the parent: the parent belongs to the
-- extension and is not dumped, so a partitioned index would clash with the
-- dumped partitions' own indexes on restore.

COMMENT ON TABLE tenancy.audit_log IS
    'One row per audited change (tenancy.enable_audit), monthly partitions managed like any partition set. Only the extension writes it.';
COMMENT ON COLUMN tenancy.audit_log.id IS 'Unique id of the audit row.';
COMMENT ON COLUMN tenancy.audit_log.logged_at IS 'When the audited statement finished its changes (clock time).';
COMMENT ON COLUMN tenancy.audit_log.tenant_id IS 'The row''s tenant: its tenant column for registered tables, else current_tenant(); NULL for TRUNCATE of a registered table (every tenant''s rows).';
COMMENT ON COLUMN tenancy.audit_log.table_name IS 'The audited table, schema-qualified and quoted as needed.';
COMMENT ON COLUMN tenancy.audit_log.op IS 'INSERT, UPDATE, DELETE or TRUNCATE; PURGE for tenancy.purge_tenant (new_row says what it erased).';
COMMENT ON COLUMN tenancy.audit_log.record_key IS 'The changed record''s primary-key (or replica identity) values, as a JSON object.';
COMMENT ON COLUMN tenancy.audit_log.old_row IS 'The row before the change (UPDATE, DELETE), excluded columns left out.';
COMMENT ON COLUMN tenancy.audit_log.new_row IS 'The row after the change (INSERT, UPDATE), excluded columns left out.';
COMMENT ON COLUMN tenancy.audit_log.changed_cols IS 'UPDATE: the audited columns whose values changed, in table order.';
COMMENT ON COLUMN tenancy.audit_log.actor IS 'tenancy.current_actor(), else the session user.';
COMMENT ON COLUMN tenancy.audit_log.application_name IS 'The client''s application_name.';
COMMENT ON COLUMN tenancy.audit_log.client_addr IS 'The client''s address (NULL over a Unix socket).';
COMMENT ON COLUMN tenancy.audit_log.txid IS 'The top-level transaction id of the change.';
COMMENT ON COLUMN tenancy.audit_log.old_record_key IS 'UPDATE that changed the key: the record''s key before it (record_key is the new one); else NULL.';

-- On a Citus cluster the audit rows of tables distributed by their tenant
-- column are written on the node that holds the changed shard, in the same
-- transaction: into tenancy.cluster_audit_log, distributed by tenant_id and
-- co-located with those tables (docs/citus.md). enable_audit distributes it
-- the first time it audits such a table; on one node it stays empty, without
-- partitions. Same columns, in the same order, as tenancy.audit_log; ids
-- carry the node group they were written on (see src/audit/cluster.rs).
-- Nobody holds a privilege on it: roles read it through tenancy.audit_trail.
-- The log's columns, without its id default (ids are given by the
-- trigger) and with a tenant always (the distribution column).
CREATE TABLE tenancy.cluster_audit_log (LIKE tenancy.audit_log) PARTITION BY RANGE (logged_at);
ALTER TABLE tenancy.cluster_audit_log ALTER COLUMN tenant_id SET NOT NULL,
    ADD CHECK (op IN ('INSERT', 'UPDATE', 'DELETE'));
COMMENT ON TABLE tenancy.cluster_audit_log IS
    'On Citus: the audit rows of distributed tables, written beside the changed shard; distributed by tenant_id, monthly partitions on every node. Read through tenancy.audit_trail.';
COMMENT ON COLUMN tenancy.cluster_audit_log.id IS 'Unique id of the audit row in the cluster: (node group + 1) * 2^52 plus a number from that node''s tenancy.audit_log_id_seq.';
COMMENT ON COLUMN tenancy.cluster_audit_log.logged_at IS 'When the audited statement finished its changes on the shard (the worker''s clock).';
COMMENT ON COLUMN tenancy.cluster_audit_log.tenant_id IS 'The row''s tenant (the table''s distribution column).';
COMMENT ON COLUMN tenancy.cluster_audit_log.table_name IS 'The audited distributed table, schema-qualified and quoted as needed (not the shard).';
COMMENT ON COLUMN tenancy.cluster_audit_log.op IS 'INSERT, UPDATE or DELETE (TRUNCATE is logged on the coordinator, in tenancy.audit_log).';
COMMENT ON COLUMN tenancy.cluster_audit_log.record_key IS 'The changed record''s primary-key (or replica identity) values, as a JSON object.';
COMMENT ON COLUMN tenancy.cluster_audit_log.old_row IS 'The row before the change (UPDATE, DELETE), excluded columns left out.';
COMMENT ON COLUMN tenancy.cluster_audit_log.new_row IS 'The row after the change (INSERT, UPDATE), excluded columns left out.';
COMMENT ON COLUMN tenancy.cluster_audit_log.changed_cols IS 'UPDATE: the audited columns whose values changed, in table order.';
COMMENT ON COLUMN tenancy.cluster_audit_log.actor IS 'tenancy.current_actor() (set_actor on the coordinator reaches the workers), else the role the coordinator connected as.';
COMMENT ON COLUMN tenancy.cluster_audit_log.application_name IS 'The application_name of the connection that wrote the shard (Citus names its own).';
COMMENT ON COLUMN tenancy.cluster_audit_log.client_addr IS 'The address of the connection that wrote the shard (the coordinator''s).';
COMMENT ON COLUMN tenancy.cluster_audit_log.txid IS 'The top-level transaction id on the node that wrote the row (the node group in id tells which).';
COMMENT ON COLUMN tenancy.cluster_audit_log.old_record_key IS 'UPDATE that changed the key: the record''s key before it; else NULL.';
REVOKE ALL ON tenancy.cluster_audit_log FROM PUBLIC;

-- The cluster log keeps what the log keeps: whatever retention is set on
-- tenancy.audit_log's partition set applies to it too, on every node (its
-- partitions are distributed, so dropping one on the coordinator drops it
-- on every worker).
CREATE FUNCTION tenancy._cluster_audit_retention() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE tenancy.partition_sets c
       SET retention = NEW.retention, retention_mode = NEW.retention_mode
     WHERE c.parent OPERATOR(pg_catalog.=) 'tenancy.cluster_audit_log'::pg_catalog.regclass
       AND (c.retention IS DISTINCT FROM NEW.retention OR c.retention_mode OPERATOR(pg_catalog.<>) NEW.retention_mode);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenancy._cluster_audit_retention() IS
    'Internal: gives tenancy.cluster_audit_log the retention of tenancy.audit_log''s partition set.';
REVOKE EXECUTE ON FUNCTION tenancy._cluster_audit_retention() FROM PUBLIC;
CREATE TRIGGER cluster_audit_retention AFTER INSERT OR UPDATE OF retention, retention_mode ON tenancy.partition_sets
    FOR EACH ROW WHEN (NEW.parent OPERATOR(pg_catalog.=) 'tenancy.audit_log'::pg_catalog.regclass)
    EXECUTE FUNCTION tenancy._cluster_audit_retention();
COMMENT ON TRIGGER cluster_audit_retention ON tenancy.partition_sets IS
    'Retention set on tenancy.audit_log applies to tenancy.cluster_audit_log as well.';

CREATE TABLE tenancy.audit_config (
    tbl             regclass PRIMARY KEY,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.audit_config IS 'Audited tables and their excluded columns (tenancy.enable_audit).';
COMMENT ON COLUMN tenancy.audit_config.tbl IS 'The audited table.';
COMMENT ON COLUMN tenancy.audit_config.exclude_columns IS 'Columns left out of old_row and new_row.';
COMMENT ON COLUMN tenancy.audit_config.enabled_at IS 'When auditing was enabled.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_config', '');

-- Seals: per tenant, a chain of SHA-256 links over the audit rows.
CREATE TABLE tenancy.audit_chain (
    tenant_key uuid NOT NULL,
    pos        bigint NOT NULL,
    audit_id   bigint NOT NULL,
    logged_at  timestamptz NOT NULL,
    txid       bigint NOT NULL,
    link_hash  bytea NOT NULL,
    PRIMARY KEY (tenant_key, pos)
);
CREATE UNIQUE INDEX audit_chain_audit_id ON tenancy.audit_chain (audit_id);
COMMENT ON TABLE tenancy.audit_chain IS
    'Hash chain links: link_hash = sha256(previous link_hash || sha256(audit row content)), per tenant (tenancy.seal_audit).';
COMMENT ON COLUMN tenancy.audit_chain.tenant_key IS 'The tenant, or 00000000-0000-0000-0000-000000000000 for rows without one.';
COMMENT ON COLUMN tenancy.audit_chain.pos IS 'Position in the tenant''s chain, from 1.';
COMMENT ON COLUMN tenancy.audit_chain.audit_id IS 'The sealed audit row''s id.';
COMMENT ON COLUMN tenancy.audit_chain.logged_at IS 'The sealed audit row''s logged_at (finds its partition).';
COMMENT ON COLUMN tenancy.audit_chain.txid IS 'The sealed audit row''s transaction id.';
COMMENT ON COLUMN tenancy.audit_chain.link_hash IS 'SHA-256 over the previous link and the row''s content.';

CREATE TABLE tenancy.audit_chain_heads (
    tenant_key uuid PRIMARY KEY,
    pos        bigint NOT NULL,
    link_hash  bytea NOT NULL
);
COMMENT ON TABLE tenancy.audit_chain_heads IS
    'The last link of each tenant''s chain. Copy it somewhere a database superuser cannot write to prove the chains later.';
COMMENT ON COLUMN tenancy.audit_chain_heads.tenant_key IS 'The tenant (nil UUID: rows without one).';
COMMENT ON COLUMN tenancy.audit_chain_heads.pos IS 'Length of the chain.';
COMMENT ON COLUMN tenancy.audit_chain_heads.link_hash IS 'Hash of its last link.';

CREATE TABLE tenancy.audit_seals (
    seal_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sealed_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    system_identifier bigint NOT NULL,
    below_txid        bigint NOT NULL,
    rows_sealed       bigint NOT NULL
);
COMMENT ON TABLE tenancy.audit_seals IS 'One row per seal_audit() run.';
COMMENT ON SEQUENCE tenancy.audit_seals_seal_id_seq IS 'Numbers of seal_audit() runs.';
COMMENT ON COLUMN tenancy.audit_seals.seal_id IS 'Run number.';
COMMENT ON COLUMN tenancy.audit_seals.sealed_at IS 'When it ran.';
COMMENT ON COLUMN tenancy.audit_seals.system_identifier IS 'The cluster it ran on (transaction ids are per cluster).';
COMMENT ON COLUMN tenancy.audit_seals.below_txid IS 'Every row of a transaction below this id was finished and is sealed.';
COMMENT ON COLUMN tenancy.audit_seals.rows_sealed IS 'Rows it added to the chains.';

-- What retention removed from the log. verify_audit treats the links of rows
-- logged before the newest expired_before as expired; rows gone from any other
-- range (a partition dropped or detached by hand) are missing links.
CREATE TABLE tenancy.audit_expiry (
    expired_before timestamptz NOT NULL,
    expired_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    mode           text NOT NULL CHECK (mode IN ('dropped', 'detached')),
    partitions     text[] NOT NULL
);
COMMENT ON TABLE tenancy.audit_expiry IS
    'Audit log partitions retired by partition retention; verify_audit accepts missing rows only before the newest expired_before.';
COMMENT ON COLUMN tenancy.audit_expiry.expired_before IS 'Every retired partition ended at or before this time.';
COMMENT ON COLUMN tenancy.audit_expiry.expired_at IS 'When retention retired them.';
COMMENT ON COLUMN tenancy.audit_expiry.mode IS 'dropped or detached (retention_mode of the set).';
COMMENT ON COLUMN tenancy.audit_expiry.partitions IS 'The partitions retired.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_expiry', '');

-- The chains are data that must travel with the log, and so must the
-- sequences' positions: restored ids must not be handed out again.
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_seals_seal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_chain', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_chain_heads', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_seals', '');
