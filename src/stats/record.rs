//! `record_metrics()`: one sample of every figure into `tenancy.metrics`,
//! and the alerts it opens, refreshes and resolves in `tenancy.alerts`.

use super::evaluate::{alert_action, AlertAction, Streak};
use super::health::{self, CheckResult};
use crate::common::privilege::as_extension_owner;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB};

/// Makes sure `tenancy.metrics` is a managed partition set: daily children
/// kept 30 days (change it in tenancy.partition_sets); [`child_attached`]
/// indexes each child.
fn ensure_metrics_partitions() {
    crate::partition::ensure_internal_set(&crate::partition::InternalSet {
        table: c"metrics",
        control_column: "recorded_at",
        interval: "1 day",
        premake: 3,
        retention: Some("30 days"),
    });
}

/// Partition maintenance hook (`common::hooks`): every child of
/// `tenancy.metrics` gets an index for the latest sample of a metric (not
/// declared on the parent, whose children pg_dump carries with their own).
pub fn child_attached(event: &crate::common::hooks::ChildAttached) {
    if Some(event.parent) != crate::common::relation::catalog_relid(c"metrics") {
        return;
    }
    as_extension_owner(|| {
        Spi::run(&format!(
            "CREATE INDEX ON {} (metric, recorded_at)",
            event.child
        ))
    })
    .expect("indexing a metrics partition failed");
}

/// The figures of `database_stats()` and `connection_summary()`, read with the
/// caller's privileges: (metric, value, labels).
fn figures() -> Vec<(String, Option<AnyNumeric>, serde_json::Value)> {
    Spi::connect(|client| {
        let mut out = vec![];
        for row in client.select("SELECT metric, value, unit FROM tenancy.database_stats()", None, &[])? {
            out.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<AnyNumeric>(2)?,
                serde_json::json!({ "unit": row.get::<String>(3)?.unwrap_or_default() }),
            ));
        }
        let summary = client
            .select(
                "SELECT total, active, idle, idle_in_transaction, waiting, max_connections, reserved, saturation_pct
                   FROM tenancy.connection_summary()",
                Some(1),
                &[],
            )?
            .first();
        for (i, name) in [
            "connections_total",
            "connections_active",
            "connections_idle",
            "connections_idle_in_transaction",
            "connections_waiting",
            "max_connections",
            "reserved_connections",
        ]
        .iter()
        .enumerate()
        {
            let value = summary.get::<i32>(i + 1)?.map(AnyNumeric::from);
            out.push((name.to_string(), value, serde_json::json!({ "unit": "connections" })));
        }
        out.push((
            "connection_saturation".into(),
            summary.get::<AnyNumeric>(8)?,
            serde_json::json!({ "unit": "percent" }),
        ));
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .expect("reading database_stats() and connection_summary() failed")
}

/// Takes one sample; returns the number of metric rows written.
pub fn record() -> i64 {
    ensure_metrics_partitions();
    let checks = health::run();
    let mut rows = figures();
    for check in &checks {
        rows.push((
            format!("health_{}", check.name),
            check.value.clone(),
            serde_json::json!({ "status": check.status.as_str() }),
        ));
    }
    let count = rows.len() as i64;
    let (metrics, values, labels): (Vec<String>, Vec<Option<AnyNumeric>>, Vec<JsonB>) =
        rows.into_iter().map(|(m, v, l)| (m, v, JsonB(l))).fold(
            (vec![], vec![], vec![]),
            |(mut m, mut v, mut l), (a, b, c)| {
                m.push(a);
                v.push(b);
                l.push(c);
                (m, v, l)
            },
        );
    as_extension_owner(|| {
        // One sampler at a time: alerts are opened and resolved from a consistent streak.
        Spi::run("LOCK TABLE tenancy.health_streaks IN EXCLUSIVE MODE")
            .expect("lock health_streaks");
        Spi::connect_mut(|client| {
            client.update(
                "INSERT INTO tenancy.metrics (recorded_at, metric, value, labels)
                 SELECT pg_catalog.now(), m, v, l FROM unnest($1::text[], $2::numeric[], $3::jsonb[]) AS u(m, v, l)",
                None,
                &[metrics.into(), values.into(), labels.into()],
            )?;
            Ok::<_, pgrx::spi::SpiError>(())
        })
        .expect("writing tenancy.metrics failed");
        for check in &checks {
            update_alert(check);
        }
    });
    count
}

/// Advances the check's streak and opens, refreshes or resolves its alert.
fn update_alert(check: &CheckResult) {
    let args = || -> Vec<DatumWithOid<'static>> {
        vec![
            check.name.clone().into(),
            check.status.as_str().into(),
            check.value.clone().into(),
            check.detail.clone().into(),
        ]
    };
    Spi::connect_mut(|client| {
        let previous = client
            .select(
                "SELECT bad, streak, EXISTS (SELECT 1 FROM tenancy.alerts a WHERE a.check_name = $1 AND a.resolved_at IS NULL)
                   FROM (SELECT 1) one LEFT JOIN tenancy.health_streaks s ON s.check_name = $1",
                Some(1),
                &[check.name.clone().into()],
            )?
            .first();
        let streak = match (previous.get::<bool>(1)?, previous.get::<i32>(2)?) {
            (Some(bad), Some(length)) => Some(Streak { bad, length }),
            _ => None,
        };
        let alert_open = previous.get::<bool>(3)?.unwrap_or(false);
        let streak = Streak::next(streak, check.status);
        client.update(
            "INSERT INTO tenancy.health_streaks (check_name, status, bad, streak, sampled_at)
             VALUES ($1, $2, $3, $4, pg_catalog.now())
             ON CONFLICT (check_name) DO UPDATE
                SET status = excluded.status, bad = excluded.bad, streak = excluded.streak, sampled_at = excluded.sampled_at",
            None,
            &[
                check.name.clone().into(),
                check.status.as_str().into(),
                streak.bad.into(),
                streak.length.into(),
            ],
        )?;
        let sql = match alert_action(streak, alert_open, check.alert_after) {
            AlertAction::None => return Ok(()),
            AlertAction::Open => {
                "INSERT INTO tenancy.alerts (check_name, status, value, detail, opened_at, updated_at, peak_status)
                 VALUES ($1, $2, $3, $4, pg_catalog.now(), pg_catalog.now(), $2)"
            }
            AlertAction::Refresh => {
                "UPDATE tenancy.alerts
                    SET status = $2, value = $3, detail = $4, updated_at = pg_catalog.now(),
                        peak_status = CASE WHEN $2 = 'critical' THEN 'critical' ELSE peak_status END
                  WHERE check_name = $1 AND resolved_at IS NULL"
            }
            AlertAction::Resolve => {
                // Typed parameters may go unused: $2..$4 are ignored here.
                "UPDATE tenancy.alerts SET resolved_at = pg_catalog.now(), updated_at = pg_catalog.now()
                  WHERE check_name = $1 AND resolved_at IS NULL"
            }
        };
        client.update(sql, None, &args())?;
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|e| panic!("updating the alert of {} failed: {e}", check.name));
}
