//! Partitions: range-partitioned tables whose children pg_tenancy premakes,
//! rescues rows from the default partition into, and retires by retention.

mod api;
pub mod bounds;
pub mod catalog;
mod ddl;
pub mod maintenance;
pub mod plan;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/partition_catalog.sql",
    name = "partition_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/partition_api.sql",
    name = "partition_api",
    requires = [
        "partition_catalog",
        api::create_partitioned,
        api::run_maintenance,
        api::show_partitions,
        api::undo_partition_set
    ]
);

/// Registers the partition settings; called from `_PG_init`.
pub fn init() {
    ddl::init();
}
