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
        families.extend(tenant_families(client)?);
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .expect("reading statistics for metrics_prometheus() failed");
    prometheus::render(&families)
}

/// One tenant's figures from `tenant_stats()`, and its rank in accounting.
struct TenantFigures {
    id: String,
    slug: String,
    name: String,
    rows: Option<i64>,
    bytes: Option<i64>,
    audit_events: i64,
    quota_resource: Option<String>,
    quota_pct: Option<AnyNumeric>,
}

/// The per-tenant families, with at most `tenancy.activity_top` tenants
/// named and the rest summed as `tenant="other"`, so that the number of
/// series stays fixed however many tenants there are: the top tenants of
/// accounting, then the largest by bytes.
fn tenant_families(client: &pgrx::spi::SpiClient<'_>) -> pgrx::spi::SpiResult<Vec<Family>> {
    let top: usize = client
        .select(
            "SELECT pg_catalog.current_setting('tenancy.activity_top')::int",
            Some(1),
            &[],
        )?
        .first()
        .get::<i32>(1)?
        .map_or(100, |n| n.max(1) as usize);
    // An older release's SQL (before ALTER EXTENSION UPDATE) has no accounting.
    let accounting = client
        .select(
            "SELECT pg_catalog.to_regprocedure('tenancy._tenant_activity(boolean)') IS NOT NULL",
            Some(1),
            &[],
        )?
        .first()
        .get::<bool>(1)?
        .unwrap_or(false);
    let ranked = if accounting {
        "LEFT JOIN tenancy._tenant_activity(false) a ON a.tenant_id = s.tenant_id AND a.period = 'current'"
    } else {
        "LEFT JOIN (SELECT NULL::uuid AS tenant_id, NULL::int AS tenant_rank) a ON false"
    };
    let mut tenants = vec![];
    for row in client.select(
        &format!(
            "SELECT s.tenant_id::text, s.slug, s.tenant_name, s.rows_estimate, s.bytes_estimate,
                    s.audit_events_24h, s.top_quota_resource, s.top_quota_pct
               FROM tenancy.tenant_stats() s
               {ranked}
              ORDER BY a.tenant_rank NULLS LAST, s.bytes_estimate DESC NULLS LAST, s.slug"
        ),
        None,
        &[],
    )? {
        tenants.push(TenantFigures {
            id: row.get(1)?.unwrap_or_default(),
            slug: row.get(2)?.unwrap_or_default(),
            name: row.get(3)?.unwrap_or_default(),
            rows: row.get(4)?,
            bytes: row.get(5)?,
            audit_events: row.get(6)?.unwrap_or(0),
            quota_resource: row.get(7)?,
            quota_pct: row.get(8)?,
        });
    }
    let others = tenants.split_off(top.min(tenants.len()));
    let mut rows = Family::gauge(
        "pg_tenancy_tenant_rows_estimate",
        "Rows per tenant in registered tables (planner statistics).",
    );
    let mut bytes = Family::gauge(
        "pg_tenancy_tenant_bytes_estimate",
        "Bytes per tenant in registered tables (planner statistics).",
    );
    let mut audit = Family::gauge(
        "pg_tenancy_tenant_audit_events_24h",
        "Audit rows per tenant in the last 24 hours.",
    );
    let mut quota = Family::gauge(
        "pg_tenancy_tenant_quota_used_percent",
        "The tenant's highest quota use, percent of the limit.",
    );
    for t in &tenants {
        rows.add(labels_of(t), t.rows.map(|v| v.to_string()));
        bytes.add(labels_of(t), t.bytes.map(|v| v.to_string()));
        audit.add(labels_of(t), Some(t.audit_events.to_string()));
        let mut with_resource = labels_of(t);
        with_resource.push(("resource", t.quota_resource.clone().unwrap_or_default()));
        quota.add(with_resource, t.quota_pct.as_ref().map(|v| v.to_string()));
    }
    if !others.is_empty() {
        let sum = |f: fn(&TenantFigures) -> Option<i64>| others.iter().filter_map(f).sum::<i64>();
        rows.add(other_labels(), Some(sum(|t| t.rows).to_string()));
        bytes.add(other_labels(), Some(sum(|t| t.bytes).to_string()));
        audit.add(
            other_labels(),
            Some(sum(|t| Some(t.audit_events)).to_string()),
        );
        let highest = others
            .iter()
            .filter_map(|t| t.quota_pct.as_ref().map(|p| (p, t)))
            .max_by(|a, b| a.0.cmp(b.0));
        if let Some((pct, t)) = highest {
            let mut with_resource = other_labels();
            with_resource.push(("resource", t.quota_resource.clone().unwrap_or_default()));
            quota.add(with_resource, Some(pct.to_string()));
        }
    }
    let mut families = vec![rows, bytes, audit, quota];
    if accounting {
        families.extend(activity_families(client, &tenants)?);
    }
    Ok(families)
}

fn labels_of(t: &TenantFigures) -> Vec<(&'static str, String)> {
    vec![
        ("tenant_id", t.id.clone()),
        ("tenant", t.slug.clone()),
        ("tenant_name", t.name.clone()),
    ]
}

/// The labels of the series that sums the tenants not named.
fn other_labels() -> Vec<(&'static str, String)> {
    vec![
        ("tenant_id", String::new()),
        ("tenant", "other".to_string()),
        ("tenant_name", "all other tenants".to_string()),
    ]
}

/// Accounting per tenant (pg_tenancy preloaded): the figures of the current
/// and of the previous period as gauges, for the tenants `tenant_families`
/// names; all the others, however they rank, in the `other` series.
/// Gauges, not counters: a tenant enters and leaves the top, which a
/// counter's series could not follow without false resets.
fn activity_families(
    client: &pgrx::spi::SpiClient<'_>,
    named: &[TenantFigures],
) -> pgrx::spi::SpiResult<Vec<Family>> {
    const MEASURES: [(&str, &str, &str); 8] = [
        ("calls", "calls", "Statements of the tenant that completed"),
        (
            "errors",
            "errors",
            "Statements of the tenant that failed or were cancelled",
        ),
        (
            "rows",
            "rows",
            "Rows the tenant's statements returned or changed",
        ),
        (
            "exec_ms / 1000",
            "exec_seconds",
            "Executor time of the tenant's statements, seconds",
        ),
        (
            "cpu_ms / 1000",
            "cpu_seconds",
            "CPU time of the tenant's statements, seconds",
        ),
        (
            "blks_hit",
            "shared_blks_hit",
            "Shared blocks the tenant's statements found in shared buffers",
        ),
        (
            "blks_read",
            "shared_blks_read",
            "Shared blocks the tenant's statements read",
        ),
        (
            "wal_bytes",
            "wal_bytes",
            "WAL the tenant's statements wrote, bytes",
        ),
    ];
    let mut families: Vec<Family> = MEASURES
        .iter()
        .map(|(_, name, help)| {
            Family::gauge(
                format!("pg_tenancy_tenant_{name}"),
                format!("{help}, in the accounting period (label period: current or previous; tenancy.tenant_activity())."),
            )
        })
        .collect();
    let columns: Vec<String> = MEASURES
        .iter()
        .map(|(expression, _, _)| format!("sum({expression})::float8::text"))
        .collect();
    let named_ids: Vec<String> = named.iter().map(|t| t.id.clone()).collect();
    let sql = format!(
        "SELECT CASE WHEN a.tenant_id::text = ANY ($1) THEN a.tenant_id::text END AS id, a.period, {}
           FROM tenancy._tenant_activity(false) a
          GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2",
        columns.join(", ")
    );
    let mut any = false;
    for row in client.select(&sql, None, &[named_ids.into()])? {
        let id: Option<String> = row.get(1)?;
        let period: String = row.get(2)?.unwrap_or_default();
        let mut labels = match id.and_then(|id| named.iter().find(|t| t.id == id)) {
            Some(t) => labels_of(t),
            None => other_labels(),
        };
        labels.push(("period", period));
        for (i, family) in families.iter_mut().enumerate() {
            family.add(labels.clone(), row.get::<String>(i + 3)?);
        }
        any = true;
    }
    if any {
        let mut period = Family::gauge(
            "pg_tenancy_activity_period_seconds",
            "Length of an accounting period (tenancy.activity_period).",
        );
        period.add(
            vec![],
            client
                .select(
                    "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'tenancy.activity_period'",
                    Some(1),
                    &[],
                )?
                .first()
                .get::<String>(1)?,
        );
        families.push(period);
    }
    Ok(families)
}
