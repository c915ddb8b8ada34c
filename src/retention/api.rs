//! SQL API for "Retention and jobs" (DESIGN.md): row retention policies,
//! what is due, and tenant purge.

use super::policy::{self, Action, Request};
use super::purge;
use crate::common::error::{self, notice, required, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sqltypes::{RegClass, SqlName};
use pgrx::datum::Interval;
use pgrx::prelude::*;

/// Keeps `tbl`'s rows for `keep` (judged by `time_column`), then deletes,
/// anonymizes (with the table's masking rules) or archives them (moves them
/// to `archive_table`) in committed batches of `batch_size` rows whenever
/// `run_retention` or `run_jobs` runs. Setting the same policy again is a
/// NOTICE; different settings replace it.
///
/// ```sql
/// SELECT tenancy.set_retention('events', '90 days');
/// SELECT tenancy.set_retention('orders', '7 years', 'archive', 'placed_at', archive_table => 'orders_archive');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn set_retention(
    tbl: Option<RegClass>,
    keep: Option<Interval>,
    action: default!(Option<&str>, "'delete'"),
    time_column: default!(Option<SqlName>, "'created_at'"),
    batch_size: default!(Option<i32>, "10000"),
    archive_table: default!(Option<RegClass>, "NULL"),
) -> Result<()> {
    let table = Relation::lookup_table(required(tbl, "tbl")?)?;
    let keep = required(keep, "keep")?;
    let action_text = required(action, "action")?;
    let action = Action::parse(action_text).ok_or_else(|| {
        error::invalid_parameter(format!("unknown retention action \"{action_text}\""))
            .set_hint("Use delete, anonymize or archive.")
    })?;
    let request = Request {
        table,
        keep,
        action,
        time_column: required(time_column, "time_column")?.0,
        batch_size: required(batch_size, "batch_size")?,
        archive_table,
    };
    policy::validate(&request)?;
    let unchanged = as_extension_owner(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenancy.retention_policies
                             WHERE tbl = $1 AND keep = $2 AND action = $3 AND time_column = $4::text::name
                               AND batch_size = $5 AND archive_table IS NOT DISTINCT FROM $6)",
            &[
                RegClass(request.table.oid).into(),
                keep.into(),
                action.as_str().into(),
                request.time_column.clone().into(),
                request.batch_size.into(),
                archive_table.into(),
            ],
        )
    })
    .expect("policy lookup failed")
    .unwrap_or(false);
    if unchanged {
        notice(format!(
            "table {} already has this retention policy",
            request.table.qualified_name()
        ));
        return Ok(());
    }
    if !time_column_indexed(&request) {
        error::notice_with_hint(
            format!(
                "no index on {} starts with column \"{}\": every retention batch will scan the table",
                request.table.qualified_name(),
                request.time_column
            ),
            format!(
                "CREATE INDEX ON {} ({});",
                request.table.qualified_name(),
                pgrx::spi::quote_identifier(&request.time_column)
            ),
        );
    }
    policy::store(&request);
    Ok(())
}

/// Whether some index of the table (or of every partition) leads with the time column.
fn time_column_indexed(request: &Request) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                         WHERE i.indrelid = $1 AND a.attname = $2::text::name)",
        &[RegClass(request.table.oid).into(), request.time_column.clone().into()],
    )
    .expect("index lookup failed")
    .unwrap_or(false)
}

/// Removes `tbl`'s retention policy (a NOTICE if it has none).
#[pg_extern(volatile, parallel_unsafe)]
fn clear_retention(tbl: Option<RegClass>) -> Result<()> {
    let table = Relation::owned_table(required(tbl, "tbl")?)?;
    let removed = as_extension_owner(|| {
        Spi::get_one_with_args::<bool>(
            "WITH gone AS (DELETE FROM tenancy.retention_policies WHERE tbl = $1 RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM gone)",
            &[RegClass(table.oid).into()],
        )
    })
    .expect("removing the policy failed")
    .unwrap_or(false);
    if !removed {
        notice(format!(
            "table {} has no retention policy",
            table.qualified_name()
        ));
    }
    Ok(())
}

/// Erases (`delete`) or anonymizes one tenant's rows in every registered
/// table, resets its quota usage, and replaces its audit trail with one
/// audited PURGE record; returns the rows purged. One transaction.
#[pg_extern(volatile, parallel_unsafe)]
fn purge_tenant(
    tenant: Option<pgrx::Uuid>,
    mode: default!(Option<&str>, "'delete'"),
) -> Result<i64> {
    let tenant = required(tenant, "tenant")?;
    let mode_text = required(mode, "mode")?;
    let mode = purge::Mode::parse(mode_text).ok_or_else(|| {
        error::invalid_parameter(format!("unknown purge mode \"{mode_text}\""))
            .set_hint("Use delete or anonymize.")
    })?;
    crate::common::citus::ensure_replicated("tenancy.purge_tenant()")?;
    purge::purge(tenant, mode)
}

/// What `run_retention` would do now: per row policy the rows due (and not
/// yet anonymized), per partition set with a retention the partitions its
/// next maintenance retires and their estimated rows. Changes nothing.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn retention_preview() -> TableIterator<
    'static,
    (
        name!(tbl, RegClass),
        name!(action, String),
        name!(rows_due, Option<i64>),
        name!(partitions_due, i32),
    ),
> {
    let mut rows = Vec::new();
    // The extension's clock (tenancy.now_override when set), as run_retention uses.
    let now = crate::common::clock::timestamptz(crate::common::clock::now_micros());
    for policy in policy::load_all() {
        let due = match Relation::lookup_table(policy.table) {
            Ok(table) => {
                let mut filter = format!(
                    "{time} < $3::timestamptz - $1::interval",
                    time = pgrx::spi::quote_identifier(&policy.time_column)
                );
                if policy.action == Action::Anonymize {
                    filter.push_str(&format!(
                        " AND {} > coalesce((SELECT anonymized_through FROM tenancy.retention_policies WHERE tbl = $2), '-infinity')",
                        pgrx::spi::quote_identifier(&policy.time_column)
                    ));
                }
                let sql = format!(
                    "SELECT count(*) FROM {} WHERE {filter}",
                    table.qualified_name()
                );
                // As the extension owner, like the run itself: isolation must not hide rows.
                as_extension_owner(|| {
                    crate::common::subxact::attempt(|| {
                        Spi::get_one_with_args::<i64>(
                            &sql,
                            &[policy.keep.into(), policy.table.into(), now.into()],
                        )
                        .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    })
                })
                .ok()
                .flatten()
            }
            Err(_) => None,
        };
        rows.push((policy.table, policy.action.as_str().to_string(), due, 0));
    }
    for (parent, mode, oids) in crate::partition::expired_children() {
        let expired = oids.len();
        let estimate = Spi::get_one_with_args::<i64>(
            "SELECT coalesce(sum(GREATEST(reltuples, 0)), 0)::bigint FROM pg_catalog.pg_class WHERE oid = ANY ($1)",
            &[oids.into()],
        )
        .expect("estimating rows failed");
        let action = if mode == "detach" {
            "detach partitions"
        } else {
            "drop partitions"
        };
        rows.push((
            RegClass(parent),
            action.to_string(),
            estimate,
            expired as i32,
        ));
    }
    TableIterator::new(rows)
}
