//! Partitions: range-partitioned tables whose children pg_tenancy premakes,
//! rescues rows from the default partition into, and retires by retention.

mod api;
pub mod bounds;
pub mod catalog;
mod ddl;

pub use ddl::creating_child;
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

/// Makes sure one of the extension's own logs (`tenancy.audit_log`,
/// `tenancy.metrics`) is a managed partition set with a child for now.
/// Registered on first use rather than at install, so its children are
/// ordinary tables that pg_dump carries, not extension members.
/// `settings` are the partition_sets columns after parent and control column.
pub fn ensure_internal_set(parent: &str, control_column: &str, settings: &str) {
    use crate::common::privilege::as_extension_owner;
    use pgrx::pg_sys::panic::ErrorReportable;
    use pgrx::prelude::*;
    as_extension_owner(|| {
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{parent}'::regclass::oid"))
            .expect("looking up an extension table failed")
            .expect("an oid");
        let registered = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenancy.partition_sets WHERE parent = $1)",
            &[oid.into()],
        )
        .expect("partition set lookup failed")
        .unwrap_or(false);
        if registered {
            return;
        }
        Spi::run(&format!(
            "INSERT INTO tenancy.partition_sets (parent, control_column, part_interval, premake, retention, child_ddl)
             VALUES ('{parent}', '{control_column}', {settings})"
        ))
        .expect("registering an extension log's partitions failed");
        let set = catalog::load_sets(Some(oid), crate::common::clock::now_micros())
            .pop()
            .expect("the set was just registered");
        maintenance::initialize(&set, None).unwrap_or_report();
    });
}
