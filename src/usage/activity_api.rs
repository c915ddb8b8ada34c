//! SQL API for accounting (docs/usage.md): `tenant_activity`, its reset, and
//! the running statements per tenant, all read from shared memory.

use super::activity::{self, Report};
use super::ledger::Figures;
use crate::common::error;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

type ActivityRow = (
    name!(tenant_id, Option<pgrx::Uuid>),
    name!(period_start, Option<TimestampWithTimeZone>),
    name!(calls, i64),
    name!(rows, i64),
    name!(exec_ms, f64),
    name!(cpu_ms, f64),
    name!(blks_hit, i64),
    name!(blks_read, i64),
    name!(wal_bytes, i64),
    name!(errors, i64),
    name!(period, &'static str),
    name!(tenant_rank, Option<i32>),
    name!(reset_at, Option<TimestampWithTimeZone>),
);

fn timestamp(micros: i64) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(micros).ok()
}

/// Two rows per line of the report (current and previous period).
fn rows(report: Report) -> Vec<ActivityRow> {
    let period_micros = report.period_seconds * 1_000_000;
    let reset_at = report.reset_at.and_then(timestamp);
    let mut rows = Vec::with_capacity(report.lines.len() * 2);
    for (rank, line) in report.lines.iter().enumerate() {
        let tenant = line.tenant.map(pgrx::Uuid::from_bytes);
        let rank = line.tenant.map(|_| rank as i32 + 1);
        for (period, start, f) in [
            ("current", report.period_start, &line.current),
            (
                "previous",
                report.period_start - period_micros,
                &line.previous,
            ),
        ] {
            let Figures {
                calls,
                errors,
                rows: changed,
                exec_us,
                cpu_us,
                blks_hit,
                blks_read,
                wal_bytes,
            } = *f;
            rows.push((
                tenant,
                timestamp(start),
                calls,
                changed,
                exec_us as f64 / 1000.0,
                cpu_us as f64 / 1000.0,
                blks_hit,
                blks_read,
                wal_bytes,
                errors,
                period,
                rank,
                reset_at,
            ));
        }
    }
    rows
}

/// What each tenant's statements cost, in the current and the previous
/// period: the top `tenancy.activity_top` tenants by
/// `tenancy.activity_rank_by`, then one row (tenant_id NULL) for all the
/// others. Where pg_tenancy is not preloaded: 55000 when `required` (as
/// `tenancy.tenant_activity()` asks), else no rows (for tenant_stats() and
/// the health checks, which work without it).
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_safe)]
fn _tenant_activity(
    required: bool,
) -> error::Result<
    TableIterator<
        'static,
        (
            name!(tenant_id, Option<pgrx::Uuid>),
            name!(period_start, Option<TimestampWithTimeZone>),
            name!(calls, i64),
            name!(rows, i64),
            name!(exec_ms, f64),
            name!(cpu_ms, f64),
            name!(blks_hit, i64),
            name!(blks_read, i64),
            name!(wal_bytes, i64),
            name!(errors, i64),
            name!(period, &'static str),
            name!(tenant_rank, Option<i32>),
            name!(reset_at, Option<TimestampWithTimeZone>),
        ),
    >,
> {
    match activity::report() {
        Some(report) => Ok(TableIterator::new(rows(report))),
        None if !required => Ok(TableIterator::new(vec![])),
        None => Err(error::not_in_prerequisite_state(
            "tenancy.tenant_activity() needs pg_tenancy in shared_preload_libraries",
        )
        .set_hint(
            "Add pg_tenancy to shared_preload_libraries and restart the server (docs/usage.md).",
        )),
    }
}

/// Forgets every tenant's figures; returns when (NULL where pg_tenancy is
/// not preloaded and there is nothing to forget).
#[pg_extern(volatile, parallel_unsafe)]
fn reset_tenant_activity() -> Option<TimestampWithTimeZone> {
    activity::reset().and_then(timestamp)
}

/// How many statements each tenant with a running cap runs now, and the cap.
#[pg_extern(volatile, parallel_unsafe)]
fn _running_statements() -> TableIterator<
    'static,
    (
        name!(tenant_id, pgrx::Uuid),
        name!(running, i32),
        name!(running_cap, Option<i64>),
    ),
> {
    let counts = if super::shared::available() {
        super::running::running_by_tenant()
    } else {
        vec![]
    };
    TableIterator::new(counts.into_iter().map(|(tenant, n)| {
        (
            pgrx::Uuid::from_bytes(tenant),
            n as i32,
            super::governance::running_cap(&tenant),
        )
    }))
}
