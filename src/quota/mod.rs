//! Quotas: resources with periods, plan limits and per-tenant overrides,
//! exact `consume` under any concurrency, row quotas and storage measurement.

mod api;
mod ledger;
pub mod period;
mod row_quota;
mod status;
mod storage;
mod store;
mod terms;
mod usage;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pub use row_quota::trigger_sql as row_quota_trigger_sql;

use crate::common::error::{required, Result};
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;

pgrx::extension_sql_file!(
    "../../sql/quota_catalog.sql",
    name = "quota_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/quota_api.sql",
    name = "quota_api",
    requires = [
        "quota_catalog",
        api::define_resource,
        api::drop_resource,
        api::set_plan_limit,
        api::clear_plan_limit,
        api::set_quota,
        api::clear_quota,
        api::consume,
        api::require,
        api::release,
        api::check_quota,
        api::quota_status,
        enforce_row_quota,
        disable_row_quota,
        refresh_storage_usage,
        row_quota::_row_quota_statement,
        row_quota::_row_quota_move,
        terms::_quota_terms_changed
    ]
);

/// Registers the transaction callbacks behind the usage ledger; called from `_PG_init`.
pub fn init() {
    usage::init();
    terms::init();
}

/// Makes a table's rows count against a resource (period none) per tenant:
/// existing rows are counted now, an INSERT past a tenant's limit fails with
/// 53400, DELETE and TRUNCATE give units back. The table must be registered.
///
/// ```sql
/// SELECT tenancy.define_resource('projects');
/// SELECT tenancy.enforce_row_quota('projects', 'projects');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn enforce_row_quota(tbl: Option<RegClass>, resource: Option<&str>) -> Result<()> {
    row_quota::enforce(required(tbl, "tbl")?, required(resource, "resource")?)
}

/// Stops counting a table's rows; the usage counted so far stays.
#[pg_extern(volatile, parallel_unsafe)]
fn disable_row_quota(tbl: Option<RegClass>) -> Result<()> {
    row_quota::disable(required(tbl, "tbl")?)
}

/// Internal: row-quota triggers for partitions created or attached by hand
/// (called by the event trigger `tenancy_cover_new_partitions`).
#[pg_extern(volatile, parallel_unsafe)]
fn _row_quota_cover_partitions(tbl: Option<RegClass>) -> Result<()> {
    row_quota::cover_partitions(required(tbl, "tbl")?)
}

/// Internal: re-creates a row-quota table's triggers after its tenant column
/// was renamed (called by the event trigger `tenancy_follow_renamed_columns`,
/// which has already updated tenancy.row_quotas): the triggers name the column.
#[pg_extern(volatile, parallel_unsafe)]
fn _row_quota_follow_rename(tbl: Option<RegClass>) -> Result<()> {
    row_quota::follow_rename(required(tbl, "tbl")?)
}

/// Measures the bytes each tenant occupies across the registered tables and
/// stores them as its `storage_bytes` usage; returns the bytes attributed.
/// Reads every row of those tables: a job for the scheduler, not a request.
#[pg_extern(volatile, parallel_unsafe)]
fn refresh_storage_usage() -> Result<i64> {
    storage::refresh()
}

/// Sets every usage counter of `tenant` to zero (purge_tenant); returns how
/// many counters it reset. Goes through the ledger, so counters this
/// transaction already touched (row quotas of the rows just purged) end at
/// zero too.
pub fn reset_tenant_usage(tenant: [u8; 16]) -> Result<i64> {
    let resources: Vec<String> = crate::common::privilege::as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT resource FROM tenancy.quota_usage WHERE tenant_id = $1 ORDER BY resource",
                    None,
                    &[pgrx::Uuid::from_bytes(tenant).into()],
                )?
                .map(|row| Ok(row.get::<String>(1)?.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading the tenant's usage failed")
    });
    for resource in &resources {
        usage::set_used(
            &ledger::Key {
                tenant,
                resource: resource.clone(),
            },
            0,
        )?;
    }
    Ok(resources.len() as i64)
}
