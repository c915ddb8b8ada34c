//! Quotas: resources with periods, plan limits and per-tenant overrides,
//! exact `consume` under any concurrency, row quotas and storage measurement.

pub mod api;
mod cluster;
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

use crate::common::error::Result;
use pgrx::prelude::*;

pgrx::extension_sql_file!(
    "../../sql/quota_catalog.sql",
    name = "quota_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/quota_cluster.sql",
    name = "quota_cluster",
    requires = ["quota_catalog", "tenant_catalog"]
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
        api::enforce_row_quota,
        api::disable_row_quota,
        api::refresh_storage_usage,
        row_quota::_row_quota_statement,
        row_quota::_row_quota_move,
        terms::_quota_terms_changed
    ]
);

/// Registers the transaction callbacks behind the usage ledger; called from `_PG_init`.
pub fn init() {
    usage::init();
    terms::init();
    cluster::init();
    crate::common::hooks::on_child_attached(row_quota::child_attached);
    crate::common::hooks::on_tenant_purged(reset_tenant_usage);
}

/// Quotas' part in a tenant purge (`common::hooks`): every usage counter of
/// the tenant back to zero, through the ledger, so counters this transaction
/// already touched (row quotas of the rows just purged) end at zero too.
fn reset_tenant_usage(
    event: &crate::common::hooks::TenantPurged,
    report: &mut crate::common::hooks::PurgeReport,
) -> Result<()> {
    let tenant = event.tenant;
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
    report.facts.insert(
        "quota_counters_reset".into(),
        (resources.len() as i64).into(),
    );
    Ok(())
}
