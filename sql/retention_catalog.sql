-- Retention: row retention policies.

CREATE TABLE tenancy.retention_policies (
    tbl                regclass PRIMARY KEY,
    keep               interval NOT NULL CHECK (keep > interval '0'),
    action             text NOT NULL CHECK (action IN ('delete', 'anonymize', 'archive')),
    time_column        name NOT NULL,
    batch_size         integer NOT NULL CHECK (batch_size > 0),
    archive_table      regclass,
    anonymized_through timestamptz,
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((action = 'archive') = (archive_table IS NOT NULL))
);
COMMENT ON TABLE tenancy.retention_policies IS
    'Row retention per table (tenancy.set_retention): rows whose time_column is older than keep are deleted, anonymized or archived by run_retention.';
COMMENT ON COLUMN tenancy.retention_policies.tbl IS 'The table.';
COMMENT ON COLUMN tenancy.retention_policies.keep IS 'How long rows are kept: rows older than now() minus keep are due.';
COMMENT ON COLUMN tenancy.retention_policies.action IS 'delete, anonymize (rewrite with the table''s masking rules) or archive (move to archive_table).';
COMMENT ON COLUMN tenancy.retention_policies.time_column IS 'The timestamptz, timestamp or date column that dates a row.';
COMMENT ON COLUMN tenancy.retention_policies.batch_size IS 'Rows per committed batch.';
COMMENT ON COLUMN tenancy.retention_policies.archive_table IS 'Where archive moves rows (same columns and types).';
COMMENT ON COLUMN tenancy.retention_policies.anonymized_through IS
    'anonymize: rows dated up to here are done (moved forward in the same transaction as each batch).';
COMMENT ON COLUMN tenancy.retention_policies.created_at IS 'When the policy was set.';
SELECT pg_catalog.pg_extension_config_dump('tenancy.retention_policies', '');
