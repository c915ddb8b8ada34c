//! Usage: request-rate limits per tenant (`throttle`), token buckets in
//! shared memory; governed settings that `set_tenant` applies
//! (`governance`), both set per plan and per tenant; and what each tenant's
//! statements cost (`activity`), in shared memory (docs/usage.md).

mod activity;
mod activity_api;
mod api;
mod bucket;
mod executor;
mod governance;
mod ledger;
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
        api::_usage_catalog_changed,
        activity_api::_tenant_activity,
        activity_api::reset_tenant_activity,
        activity_api::_running_statements
    ]
);

/// Sets the buckets aside in shared memory (when preloaded), registers the
/// caches' invalidation and set_tenant's hook; called from `_PG_init`.
pub fn init() {
    shared::init();
    activity::init();
    rates::init();
    governance::init();
    // SAFETY: reads a flag the postmaster sets while it loads libraries.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        running::init();
        executor::init();
    }
}
