//! Audit: tenant-aware statement triggers writing `tenancy.audit_log`
//! directly and in bulk, row history, and per-tenant SHA-256 hash chains.

mod api;
mod capture;
mod catalog_oids;
mod chunks;
mod cluster;
mod guard;
pub mod jsonb;
mod partitions;
mod plan;
mod purge;
mod row_json;
mod seal;
mod store;
mod triggers;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/audit_catalog.sql",
    name = "audit_catalog",
    requires = ["partition_catalog", "tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/audit_api.sql",
    name = "audit_api",
    requires = [
        "audit_catalog",
        "mask_catalog",
        api::enable_audit,
        api::disable_audit,
        api::seal_audit,
        api::verify_audit,
        api::_cluster_audit_rows,
        capture::_audit_statement,
        guard::_guard_audit_tables,
        tenant::api::current_tenant
    ]
);

/// Registers the relcache callback that keeps cached audit plans fresh, and
/// audit's part in partition maintenance and tenant purges; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(capture::forget);
    cluster::init();
    crate::common::hooks::on_child_attached(partitions::child_attached);
    crate::common::hooks::on_children_retired(partitions::children_retired);
    crate::common::hooks::on_purge_recorded(purge::record);
}

/// Makes sure `tenancy.audit_log` is a managed partition set (monthly) with a
/// partition for now. Each child gets its index and guard from
/// [`partitions::child_attached`].
pub fn ensure_audit_log_partitions() {
    ensure_monthly_set(c"audit_log");
}

/// Makes sure `tenancy.cluster_audit_log` is a managed partition set like
/// the log, with the log's retention (a trigger on `tenancy.partition_sets`
/// keeps it so), before it is distributed.
pub fn ensure_cluster_audit_log_partitions() {
    ensure_monthly_set(c"cluster_audit_log");
    crate::common::privilege::as_extension_owner(|| {
        pgrx::Spi::run(
            "UPDATE tenancy.partition_sets c SET retention = a.retention, retention_mode = a.retention_mode
               FROM tenancy.partition_sets a
              WHERE a.parent = 'tenancy.audit_log'::regclass AND c.parent = 'tenancy.cluster_audit_log'::regclass",
        )
    })
    .expect("giving the cluster audit log the log's retention failed");
}

fn ensure_monthly_set(table: &std::ffi::CStr) {
    crate::partition::ensure_internal_set(&crate::partition::InternalSet {
        table,
        control_column: "logged_at",
        interval: "1 month",
        premake: 2,
        retention: None,
    });
}
