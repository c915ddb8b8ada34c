-- Partitions: the catalog of managed partition sets (configuration: dumped by pg_dump).

CREATE TABLE tenancy.partition_sets (
    parent            regclass PRIMARY KEY,
    control_column    name NOT NULL,
    part_interval     text NOT NULL,
    premake           integer NOT NULL DEFAULT 4 CHECK (premake >= 1),
    retention         interval CHECK (retention > interval '0'),
    retention_mode    text NOT NULL DEFAULT 'drop' CHECK (retention_mode IN ('drop', 'detach')),
    start_at          timestamptz,
    start_value       bigint,
    default_partition boolean NOT NULL DEFAULT true,
    child_ddl         text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.partition_sets IS
    'Range-partitioned tables whose children pg_tenancy creates, relocates and retires (tenancy.create_partitioned).';
COMMENT ON COLUMN tenancy.partition_sets.parent IS 'The partitioned table.';
COMMENT ON COLUMN tenancy.partition_sets.control_column IS 'Its partition key column (timestamptz, timestamp, date or an integer type).';
COMMENT ON COLUMN tenancy.partition_sets.part_interval IS 'Width of each child: an interval (''1 day'', ''1 month'') or, for integer keys, an integer (''100000'').';
COMMENT ON COLUMN tenancy.partition_sets.premake IS 'How many children to keep ready beyond the current one.';
COMMENT ON COLUMN tenancy.partition_sets.retention IS 'Children entirely older than now() minus this are retired; NULL keeps everything.';
COMMENT ON COLUMN tenancy.partition_sets.retention_mode IS 'drop: DROP TABLE the expired child; detach: DETACH it and keep the table.';
COMMENT ON COLUMN tenancy.partition_sets.start_at IS 'Time sets: start of the first child, as asked at creation (NULL: the current period).';
COMMENT ON COLUMN tenancy.partition_sets.start_value IS 'Integer sets: start of the first child, as asked at creation (NULL: the highest value, or 0).';
COMMENT ON COLUMN tenancy.partition_sets.default_partition IS 'Whether the set keeps a DEFAULT partition for rows no child covers.';
COMMENT ON COLUMN tenancy.partition_sets.child_ddl IS
    'Statements run on every new child, {child} standing for its quoted name (run as the parent''s owner).';
COMMENT ON COLUMN tenancy.partition_sets.created_at IS 'When the set was registered.';

SELECT pg_catalog.pg_extension_config_dump('tenancy.partition_sets', '');
