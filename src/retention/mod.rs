//! Retention: row retention policies run in committed batches (delete,
//! anonymize, archive) and tenant purge. The job runner that applies them
//! (`run_retention`, `run_jobs`) is the scheduler's (`crate::scheduler`).
//!
//! The procedure `run_retention` is PL/pgSQL in `sql/retention_api.sql` only
//! because a procedure needs COMMIT between steps; every step is Rust.

mod api;
pub mod batch;
pub mod policy;
mod purge;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/retention_catalog.sql",
    name = "retention_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/retention_api.sql",
    name = "retention_api",
    requires = [
        "retention_catalog",
        "partition_api",
        "scheduler_catalog",
        api::set_retention,
        api::clear_retention,
        api::purge_tenant,
        api::retention_preview,
        scheduler::api::_jobs_begin,
        scheduler::api::_jobs_step,
        scheduler::api::_jobs_end
    ]
);
