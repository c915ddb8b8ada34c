//! Usage: request-rate limits per tenant (`throttle`), token buckets in
//! shared memory, and governed settings that `set_tenant` applies
//! (`governance`), both set per plan and per tenant (docs/usage.md).

mod api;
mod bucket;
mod governance;
mod rates;
mod running;
mod shared;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/usage_catalog.sql",
    name = "usage_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/usage_api.sql",
    name = "usage_api",
    requires = [
        "usage_catalog",
        api::throttle,
        api::throttle_or_raise,
        api::reset_throttles,
        api::set_governance,
        api::_usage_catalog_changed
    ]
);

/// Sets the buckets aside in shared memory (when preloaded), registers the
/// caches' invalidation and set_tenant's hook; called from `_PG_init`.
pub fn init() {
    shared::init();
    rates::init();
    governance::init();
    running::init();
}
