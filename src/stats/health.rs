//! Running the health checks with the caller's privileges and evaluating them
//! against `tenancy.health_thresholds`.

use super::checks;
use super::cluster;
use super::evaluate::{Status, Thresholds};
use crate::common::settings::with_settings;
use crate::common::subxact::attempt;
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use std::collections::HashMap;

/// One evaluated check: a row of `health_check()`.
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub value: Option<AnyNumeric>,
    pub warn: Option<AnyNumeric>,
    pub crit: Option<AnyNumeric>,
    pub alert_after: i32,
    pub detail: String,
}

struct ThresholdRow {
    enabled: bool,
    warn: Option<AnyNumeric>,
    crit: Option<AnyNumeric>,
    higher_is_worse: bool,
    alert_after: i32,
}

fn as_f64(value: &Option<AnyNumeric>) -> Option<f64> {
    value.clone().and_then(|v| f64::try_from(v).ok())
}

fn load_thresholds() -> HashMap<String, ThresholdRow> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT check_name, enabled, warn_threshold, crit_threshold, higher_is_worse, alert_after
                   FROM tenancy.health_thresholds",
                None,
                &[],
            )?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    ThresholdRow {
                        enabled: row.get::<bool>(2)?.unwrap_or(true),
                        warn: row.get(3)?,
                        crit: row.get(4)?,
                        higher_is_worse: row.get::<bool>(5)?.unwrap_or(true),
                        alert_after: row.get::<i32>(6)?.unwrap_or(2),
                    },
                ))
            })
            .collect::<Result<HashMap<_, _>, pgrx::spi::SpiError>>()
    })
    .expect("reading tenancy.health_thresholds failed")
}

/// Value and detail of one check, or why it could not run.
fn measure(check: &checks::Check) -> (Option<AnyNumeric>, String) {
    let outcome = attempt(|| {
        Spi::connect(|client| {
            // Every check's value is read as numeric, whatever type its query yields.
            let sql = format!(
                "SELECT c.v::numeric, c.d::text FROM ({}) AS c(v, d)",
                check.sql
            );
            let row = client.select(&sql, Some(1), &[])?.first();
            Ok::<_, pgrx::spi::SpiError>((
                row.get::<AnyNumeric>(1)?,
                row.get::<String>(2)?.unwrap_or_default(),
            ))
        })
        .unwrap_or_else(|e| panic!("health check {}: {e}", check.name))
    });
    match outcome {
        Ok(measured) => measured,
        Err(failure) => (None, format!("could not run: {failure}")),
    }
}

/// Whether the database's SQL has what the check calls (an older release's
/// SQL, before ALTER EXTENSION UPDATE, may not).
fn available(check: &checks::Check) -> bool {
    check.requires.is_none_or(|function| {
        crate::common::sql::select_value::<bool>(
            "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
            &[function.into()],
        )
        .unwrap_or(false)
    })
}

/// A measured figure judged against its thresholds row (`row`).
fn evaluate(
    name: String,
    row: Option<&ThresholdRow>,
    value: Option<AnyNumeric>,
    mut detail: String,
) -> CheckResult {
    let limits = row.map_or(Thresholds::default(), |r| Thresholds {
        warn: as_f64(&r.warn),
        crit: as_f64(&r.crit),
        higher_is_worse: r.higher_is_worse,
        alert_after: r.alert_after,
    });
    let mut status = limits.status(as_f64(&value));
    // A check that failed to run is not known to be fine.
    if detail.starts_with("could not run") {
        status = status.max(Status::Warning);
    } else if value.is_none() && !detail.is_empty() {
        detail = format!("does not apply: {detail}");
    }
    CheckResult {
        name,
        status,
        value,
        warn: row.and_then(|r| r.warn.clone()),
        crit: row.and_then(|r| r.crit.clone()),
        alert_after: limits.alert_after,
        detail,
    }
}

/// Every enabled check, measured now with the caller's privileges; on a
/// Citus coordinator the cluster's checks follow the single-node ones.
pub fn run() -> Vec<CheckResult> {
    let thresholds = load_thresholds();
    let enabled = |name: &str| thresholds.get(name).is_none_or(|r| r.enabled);
    // Our SQL names pg_catalog objects unqualified in places (count, round):
    // nothing of the caller's may stand in for them.
    with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        let mut results: Vec<CheckResult> = checks::all()
            .iter()
            .filter(|check| enabled(check.name) && available(check))
            .map(|check| {
                let (value, detail) = measure(check);
                evaluate(
                    check.name.to_string(),
                    thresholds.get(check.name),
                    value,
                    detail,
                )
            })
            .collect();
        if cluster::applies() {
            results.extend(
                cluster::figures()
                    .into_iter()
                    .filter(|figure| enabled(&figure.thresholds_of))
                    .map(|figure| {
                        let row = thresholds.get(&figure.thresholds_of);
                        evaluate(figure.name, row, figure.value, figure.detail)
                    }),
            );
        }
        results
    })
}

/// Each worker's figures of the per-node checks, judged against the same
/// thresholds as the coordinator's: `tenancy.cluster_health()`.
pub fn run_per_node() -> Vec<(cluster::NodeFigure, Status)> {
    if !cluster::applies() {
        return Vec::new();
    }
    let thresholds = load_thresholds();
    with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        cluster::node_figures()
            .into_iter()
            .map(|figure| {
                let name = figure.check.clone().unwrap_or_default();
                let judged = evaluate(
                    name.clone(),
                    thresholds.get(&name),
                    figure.value.clone(),
                    figure.detail.clone(),
                );
                let status = if figure.reachable {
                    judged.status
                } else {
                    Status::Critical
                };
                (figure, status)
            })
            .collect()
    })
}
