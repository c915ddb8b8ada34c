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
