//! pg_tenancy: the operational layer of a multi-tenant SaaS database.
//! This file only wires the capability modules together (see DESIGN.md).

// Every API function returns pgrx's ErrorReport (the only error pgrx raises with its
// own SQLSTATE, detail and hint). It is large, but an error ends the statement, so
// its size never costs anything that matters.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

mod audit;
mod citus;
mod common;
mod mask;
mod partition;
mod quota;
mod retention;
mod scheduler;
mod stats;
mod tenant;
mod usage;

// Catalog housekeeping spans capabilities: it runs after all their catalogs exist.
pgrx::extension_sql_file!(
    "../sql/housekeeping.sql",
    name = "housekeeping",
    requires = [
        "tenant_catalog",
        "partition_catalog",
        "audit_catalog",
        "quota_catalog",
        "mask_catalog",
        "retention_catalog",
        audit::api::_audit_cover_partitions,
        quota::api::_row_quota_cover_partitions,
        quota::api::_row_quota_follow_rename,
        tenant::api::_isolation_cover_partitions
    ]
);

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    common::clock::init();
    common::internal_writes::init();
    tenant::init();
    partition::init();
    audit::init();
    quota::init();
    mask::init();
    stats::init();
    scheduler::init();
    citus::init();
    usage::init();
    // Nothing else may claim our GUC prefix (a typo in `SET tenancy.x` is then an error).
    // SAFETY: called from _PG_init, after our GUCs are defined.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"tenancy".as_ptr()) };
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
