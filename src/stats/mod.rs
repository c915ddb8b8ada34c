//! Connection and health statistics: the figures a DBA reads from psql
//! (`connection_stats`, `database_stats`, `table_stats`, `tenant_stats` are
//! SQL in `sql/stats_api.sql`), health checks against editable thresholds,
//! sampled history with alerts, and a Prometheus view.

mod api;
mod checks;
mod cluster;
mod evaluate;
mod health;
mod prometheus;
mod record;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Registers what statistics adds to partition maintenance; called from
/// `_PG_init`.
pub fn init() {
    crate::common::hooks::on_child_attached(record::child_attached);
}

pgrx::extension_sql_file!(
    "../../sql/stats_catalog.sql",
    name = "stats_catalog",
    requires = ["tenant_catalog", "partition_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/stats_api.sql",
    name = "stats_api",
    requires = [
        "stats_catalog",
        "quota_api",
        "audit_catalog",
        "usage_api",
        api::health_check,
        api::health,
        api::cluster_health,
        api::record_metrics,
        api::metrics_prometheus
    ]
);
