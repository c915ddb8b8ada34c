//! Audit: tenant-aware statement triggers writing `tenancy.audit_log`
//! directly and in bulk, row history, and per-tenant SHA-256 hash chains.

mod api;
mod capture;
mod catalog_oids;
pub mod jsonb;
mod plan;
mod seal;
mod store;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pub use api::trigger_sql;

use crate::common::privilege::as_extension_owner;
use pgrx::pg_sys::panic::ErrorReportable;
use pgrx::prelude::*;

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
        api::enable_audit,
        api::disable_audit,
        api::seal_audit,
        api::verify_audit,
        capture::_audit_statement,
        tenant::api::current_tenant
    ]
);

/// Registers the relcache callback that keeps cached audit plans fresh;
/// called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback during library load, as the docs prescribe.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(capture::forget), pg_sys::Datum::from(0)) };
}

/// Makes sure `tenancy.audit_log` is a managed partition set with a
/// partition for now (registered on first use, so its partitions are
/// ordinary tables that pg_dump carries, not extension members).
pub fn ensure_audit_log_partitions() {
    let registered = as_extension_owner(|| {
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenancy.partition_sets WHERE parent = 'tenancy.audit_log'::regclass)",
        )
        .expect("partition set lookup failed")
        .unwrap_or(false)
    });
    if registered {
        return;
    }
    as_extension_owner(|| {
        Spi::run(
            "INSERT INTO tenancy.partition_sets (parent, control_column, part_interval, premake, child_ddl)
             VALUES ('tenancy.audit_log', 'logged_at', '1 month', 2,
                     ARRAY['CREATE INDEX ON {child} USING brin (txid, logged_at)'])",
        )
        .expect("registering the audit log's partitions failed");
        let oid = catalog_oids::audit_log();
        let row =
            crate::partition::catalog::load_sets(Some(oid), crate::common::clock::now_micros())
                .pop()
                .expect("the audit log set was just registered");
        crate::partition::maintenance::initialize(&row, None).unwrap_or_report();
    });
}
