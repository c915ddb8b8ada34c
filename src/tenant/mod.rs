//! Tenants and context: the registry, the session's tenant and actor, and
//! row-level isolation of tenant-scoped tables.

pub mod api;
pub mod bindings;
mod claims;
pub mod context;
pub mod isolation;
pub mod registry;
mod scope;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/tenant_catalog.sql",
    name = "tenant_catalog",
    bootstrap
);
pgrx::extension_sql_file!("../../sql/tenant_api.sql", name = "tenant_api", finalize);
pgrx::extension_sql_file!(
    "../../sql/tenant_verify.sql",
    name = "tenant_verify",
    requires = ["tenant_catalog", "mask_catalog"]
);

/// Registers the tenant and actor settings; called from `_PG_init`.
pub fn init() {
    context::init();
    bindings::init();
}
