//! Audit: tenant-aware statement triggers writing `tenancy.audit_log`
//! directly and in bulk, row history, and per-tenant SHA-256 hash chains.

mod api;
mod capture;
mod catalog_oids;
mod guard;
pub mod jsonb;
mod plan;
mod seal;
mod store;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pub use api::trigger_sql;

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
        "mask_catalog",
        api::enable_audit,
        api::disable_audit,
        api::seal_audit,
        api::verify_audit,
        capture::_audit_statement,
        guard::_guard_audit_tables,
        tenant::api::current_tenant
    ]
);

/// Registers the relcache callback that keeps cached audit plans fresh;
/// called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback during library load, as the docs prescribe.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(capture::forget), pg_sys::Datum::from(0)) };
}

/// Records that partition retention retired audit log partitions ending at or
/// before `before` (a timestamptz literal), so `verify_audit` expires their
/// links instead of reporting them missing.
pub fn record_expiry(before: &str, mode: &str, partitions: Vec<String>) {
    crate::common::internal_writes::with_internal_writes(|| crate::common::privilege::as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.audit_expiry (expired_before, mode, partitions) VALUES ($1::timestamptz, $2, $3)",
            &[before.into(), mode.into(), partitions.into()],
        )
    }))
    .expect("recording expired audit partitions failed");
}

/// Makes sure `tenancy.audit_log` is a managed partition set (monthly) with a
/// partition for now. Each child gets a BRIN index on (txid, logged_at) and
/// the statement guard (statement triggers are not cloned to partitions; the
/// parent's row guard is), see audit::guard.
pub fn ensure_audit_log_partitions() {
    crate::partition::ensure_internal_set(
        "tenancy.audit_log",
        "logged_at",
        "'1 month', 2, NULL, ARRAY['CREATE INDEX ON {child} USING brin (txid, logged_at)', \
         'CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {child} \
          FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables()']",
    );
}
