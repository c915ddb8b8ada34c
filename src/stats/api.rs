//! SQL API for "Connection and health statistics" (DESIGN.md): health checks,
//! the health summary, metric samples and the Prometheus text. (The
//! statistics views are SQL in sql/stats_api.sql.)

use super::evaluate::Status;
use super::health;
use super::prometheus::{self, metric_name, Family};
use super::record;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};

/// Every enabled check: its status (`ok`, `warning`, `critical`), value,
/// thresholds and a detail naming the worst offender. Runs with the caller's
/// privileges; `pg_monitor` sees everything.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn health_check() -> TableIterator<
    'static,
    (
        name!(check_name, String),
        name!(status, String),
        name!(value, Option<AnyNumeric>),
        name!(warn_threshold, Option<AnyNumeric>),
        name!(crit_threshold, Option<AnyNumeric>),
        name!(detail, String),
    ),
> {
    TableIterator::new(health::run().into_iter().map(|c| {
        (
            c.name,
            c.status.as_str().to_string(),
            c.value,
            c.warn,
            c.crit,
            c.detail,
        )
    }))
}

/// On a Citus coordinator, each worker's figures of the checks that matter
/// on every node (connections, wraparound, replication), judged against the
/// same thresholds as the coordinator's own; a worker that does not accept
/// connections is one critical row. No rows anywhere else.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn cluster_health() -> TableIterator<
    'static,
    (
        name!(node, String),
        name!(port, i32),
        name!(reachable, bool),
        name!(check_name, Option<String>),
        name!(status, String),
        name!(value, Option<AnyNumeric>),
        name!(detail, String),
    ),
> {
    TableIterator::new(health::run_per_node().into_iter().map(|(f, status)| {
        (
            f.node,
            f.port,
            f.reachable,
            f.check,
            status.as_str().to_string(),
            f.value,
            f.detail,
        )
    }))
}

/// `{"status": worst, "issues": [bad checks], "checked_at": now, "checks": n}`.
#[pg_extern(volatile, parallel_unsafe)]
fn health() -> JsonB {
    let checks = health::run();
    let worst = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
    let issues: Vec<serde_json::Value> = checks
        .iter()
        .filter(|c| c.status.is_bad())
        .map(|c| {
            serde_json::json!({
                "check": c.name,
                "status": c.status.as_str(),
                "value": c.value.as_ref().map(|v| v.to_string()),
                "warn_threshold": c.warn.as_ref().map(|v| v.to_string()),
                "crit_threshold": c.crit.as_ref().map(|v| v.to_string()),
                "detail": c.detail,
            })
        })
        .collect();
    let checked_at: String = Spi::get_one("SELECT pg_catalog.statement_timestamp()::text")
        .expect("statement_timestamp")
        .unwrap_or_default();
    JsonB(serde_json::json!({
        "status": worst.as_str(),
        "issues": issues,
        "checks": checks.len(),
        "checked_at": checked_at,
    }))
}

/// Samples every figure into `tenancy.metrics` and opens, refreshes or
/// resolves `tenancy.alerts`; returns the number of metric rows written.
#[pg_extern(volatile, parallel_unsafe)]
fn record_metrics() -> i64 {
    record::record()
}

/// Connections, database figures, health checks and per-tenant figures in
/// the Prometheus text exposition format.
#[pg_extern(volatile, parallel_unsafe)]
fn metrics_prometheus() -> String {
    let mut families = vec![];
    let mut status = Family::gauge(
        "pg_tenancy_health_status",
        "Health check status: 0 ok, 1 warning, 2 critical.",
    );
    let mut value = Family::gauge(
        "pg_tenancy_health_value",
        "Health check value (unit per check, see tenancy.health_thresholds).",
    );
    for c in health::run() {
        status.add(
            vec![("check", c.name.clone())],
            Some(c.status.severity().to_string()),
        );
        value.add(vec![("check", c.name)], c.value.map(|v| v.to_string()));
    }
    families.push(status);
    families.push(value);
    Spi::connect(|client| {
        let database: String = client
            .select("SELECT pg_catalog.current_database()::text", Some(1), &[])?
            .first()
            .get(1)?
            .unwrap_or_default();
        let mut connections = Family::gauge("pg_tenancy_connections", "Client connections by state.");
        let summary = client
            .select(
                "SELECT total, active, idle, idle_in_transaction, waiting, max_connections, reserved
                   FROM tenancy.connection_summary()",
                Some(1),
                &[],
            )?
            .first();
        for (i, state) in ["total", "active", "idle", "idle_in_transaction", "waiting"].iter().enumerate() {
            connections.add(
                vec![("state", state.to_string())],
                summary.get::<i32>(i + 1)?.map(|v| v.to_string()),
            );
        }
        families.push(connections);
        let mut limit = Family::gauge(
            "pg_tenancy_max_connections",
            "max_connections minus the slots reserved for superusers.",
        );
        limit.add(
            vec![],
            match (summary.get::<i32>(6)?, summary.get::<i32>(7)?) {
                (Some(max), Some(reserved)) => Some((max - reserved).to_string()),
                _ => None,
            },
        );
        families.push(limit);
        for row in client.select(
            "SELECT metric, value::text, unit, counter FROM tenancy.database_stats() ORDER BY metric",
            None,
            &[],
        )? {
            let metric: String = row.get(1)?.unwrap_or_default();
            let unit: String = row.get(3)?.unwrap_or_default();
            let counter = row.get::<bool>(4)?.unwrap_or(false);
            let name = format!("pg_tenancy_{}", metric_name(&metric));
            let help = format!("{metric} ({unit}), from tenancy.database_stats().");
            let mut family = if counter {
                Family::counter(format!("{name}_total"), help)
            } else {
                Family::gauge(name, help)
            };
            family.add(vec![("database", database.clone())], row.get::<String>(2)?);
            families.push(family);
        }
        let mut rows = Family::gauge("pg_tenancy_tenant_rows_estimate", "Rows per tenant in registered tables (planner statistics).");
        let mut bytes = Family::gauge("pg_tenancy_tenant_bytes_estimate", "Bytes per tenant in registered tables (planner statistics).");
        let mut audit = Family::gauge("pg_tenancy_tenant_audit_events_24h", "Audit rows per tenant in the last 24 hours.");
        let mut quota = Family::gauge("pg_tenancy_tenant_quota_used_percent", "The tenant's highest quota use, percent of the limit.");
        for row in client.select(
            "SELECT tenant_id::text, slug, tenant_name, rows_estimate::text, bytes_estimate::text, audit_events_24h::text,
                    top_quota_resource, top_quota_pct::text
               FROM tenancy.tenant_stats() ORDER BY slug",
            None,
            &[],
        )? {
            let labels = vec![
                ("tenant_id", row.get::<String>(1)?.unwrap_or_default()),
                ("tenant", row.get::<String>(2)?.unwrap_or_default()),
                ("tenant_name", row.get::<String>(3)?.unwrap_or_default()),
            ];
            rows.add(labels.clone(), row.get(4)?);
            bytes.add(labels.clone(), row.get(5)?);
            audit.add(labels.clone(), row.get(6)?);
            let mut with_resource = labels;
            with_resource.push(("resource", row.get::<String>(7)?.unwrap_or_default()));
            quota.add(with_resource, row.get(8)?);
        }
        families.extend([rows, bytes, audit, quota]);
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .expect("reading statistics for metrics_prometheus() failed");
    prometheus::render(&families)
}
