//! Running the health checks with the caller's privileges and evaluating them
//! against `tenancy.health_thresholds`.

use super::checks;
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

/// Every enabled check, measured now with the caller's privileges.
pub fn run() -> Vec<CheckResult> {
    let thresholds = load_thresholds();
    // Our SQL names pg_catalog objects unqualified in places (count, round):
    // nothing of the caller's may stand in for them.
    with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        checks::all()
            .iter()
            .filter_map(|check| {
                let row = thresholds.get(check.name);
                if row.is_some_and(|r| !r.enabled) || !available(check) {
                    return None;
                }
                let (value, mut detail) = measure(check);
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
                Some(CheckResult {
                    name: check.name.to_string(),
                    status,
                    value,
                    warn: row.and_then(|r| r.warn.clone()),
                    crit: row.and_then(|r| r.crit.clone()),
                    alert_after: limits.alert_after,
                    detail,
                })
            })
            .collect()
    })
}
