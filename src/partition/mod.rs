//! Partitions: range-partitioned tables whose children pg_tenancy premakes,
//! rescues rows from the default partition into, and retires by retention.

mod api;
mod bounds;
mod catalog;
mod ddl;
mod maintenance;
mod plan;

pub use ddl::creating_child;

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

/// The children of a time-partitioned table: their ranges (Unix micros,
/// sorted) and the default partition. Children with bounds this module does
/// not manage (MINVALUE, several columns) are left out.
pub struct TimeChildren {
    pub ranges: Vec<(bounds::Range, pgrx::pg_sys::Oid)>,
    pub default: Option<pgrx::pg_sys::Oid>,
}

/// [`TimeChildren`] of `parent`, read from the catalogs.
pub fn time_children(parent: pgrx::pg_sys::Oid) -> TimeChildren {
    let raw = catalog::load_children(&[parent])
        .remove(&parent)
        .unwrap_or_default();
    let mut children = TimeChildren {
        ranges: Vec::new(),
        default: None,
    };
    for (oid, _, _, bound) in raw {
        match bounds::parse_partition_bound(bounds::ControlKind::TimestampTz, &bound) {
            Ok(Some(range)) => children.ranges.push((range, oid)),
            Ok(None) => children.default = Some(oid),
            Err(_) => {}
        }
    }
    children.ranges.sort_by_key(|(range, _)| range.from);
    children
}

/// Registers the partition settings; called from `_PG_init`.
pub fn init() {
    ddl::init();
}

/// One of the extension's own logs (`tenancy.audit_log`, `tenancy.metrics`)
/// as a partition set: its table in schema tenancy and its settings.
pub struct InternalSet<'a> {
    /// The table's name in schema tenancy.
    pub table: &'a std::ffi::CStr,
    pub control_column: &'a str,
    /// `part_interval`, an interval such as `1 month`.
    pub interval: &'a str,
    pub premake: i32,
    /// `retention`, an interval, or None to keep every child.
    pub retention: Option<&'a str>,
}

/// Makes sure one of the extension's own logs is a managed partition set
/// with a child for now. Registered on first use rather than at install, so
/// its children are ordinary tables that pg_dump carries, not extension members.
pub fn ensure_internal_set(set: &InternalSet) {
    use crate::common::privilege::as_extension_owner;
    use crate::common::sqltypes::RegClass;
    use pgrx::pg_sys::panic::ErrorReportable;
    use pgrx::prelude::*;
    as_extension_owner(|| {
        let oid = crate::common::relation::catalog_relid(set.table)
            .unwrap_or_else(|| panic!("tenancy.{:?} is missing", set.table));
        let registered = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenancy.partition_sets WHERE parent = $1)",
            &[oid.into()],
        )
        .expect("partition set lookup failed")
        .unwrap_or(false);
        if registered {
            return;
        }
        Spi::run_with_args(
            "INSERT INTO tenancy.partition_sets (parent, control_column, part_interval, premake, retention)
             VALUES ($1, $2::text::name, $3, $4, $5::interval)",
            &[
                RegClass(oid).into(),
                set.control_column.into(),
                set.interval.into(),
                set.premake.into(),
                set.retention.into(),
            ],
        )
        .expect("registering an extension log's partitions failed");
        let row = catalog::load_sets(Some(oid), crate::common::clock::now_micros())
            .pop()
            .expect("the set was just registered");
        maintenance::initialize(&row, None).unwrap_or_report();
    });
}

/// Whether `table` is a managed partition set with a retention of its own.
pub fn has_own_retention(table: pgrx::pg_sys::Oid) -> bool {
    catalog::load_sets(Some(table), crate::common::clock::now_micros())
        .iter()
        .any(|s| s.retention)
}

/// What the next maintenance run would retire, per set with a retention:
/// (parent, retention mode, the expired children's OIDs). Reads catalogs only.
pub fn expired_children() -> Vec<(pgrx::pg_sys::Oid, String, Vec<pgrx::pg_sys::Oid>)> {
    maintenance::expired_children()
        .into_iter()
        .map(|(parent, mode, children)| (parent, mode, children.iter().map(|c| c.oid).collect()))
        .collect()
}
