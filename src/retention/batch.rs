//! One batch of a retention policy: at most `batch_size` of the oldest due
//! rows, deleted, moved to the archive or anonymized in one statement per
//! partition, in the caller's transaction (the run commits after each).
//!
//! Rows are taken oldest first, by the time column. Delete and archive
//! remember the newest time they reached and start the next batch there, so
//! no batch walks over the index entries of rows already gone; an
//! interrupted run simply leaves the newer due rows for the next one.
//! Anonymize leaves rows in place, so its position (`anonymized_through`)
//! is stored with the policy and moved in the same transaction as the batch:
//! a row is rewritten exactly once, whatever is killed when.

use super::policy::{copied_columns, Action, Policy};
use crate::common::error::{self, Result};
use crate::common::privilege::{as_extension_owner, as_table_owner, relation_owner};
use crate::common::relation::{qualified_name_of, Relation};
use crate::common::selection::{RowFilter, Value};
use crate::common::settings::with_settings;
use crate::common::sql::literal;
use crate::tenant::context::with_tenant;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Rows deleted, archived or anonymized.
    pub handled: i64,
    /// Due rows the batch found (0: nothing is left to do).
    pub found: i64,
    /// The newest time the batch reached: where the next one starts.
    pub reached: Option<TimestampWithTimeZone>,
}

impl Progress {
    /// A batch that found nothing due.
    const NOTHING: Progress = Progress {
        handled: 0,
        found: 0,
        reached: None,
    };
}

/// Selects the oldest due rows, grouped per partition (a plain table is its
/// own only group) and, for a registered table, per tenant: `(leaf OID, ctids as
/// an array literal, oldest and newest time as literals, newest time, count,
/// tenant)`. Printed with DateStyle ISO. Rows of a registered table without a
/// tenant are left alone: no tenant's context may touch them.
pub fn candidates_sql(table: &str, time: &str, batch_size: i64, tenant: Option<&str>) -> String {
    let (tenant_value, tenant_filter) = tenant_terms(tenant);
    format!(
        "SELECT s.leaf, pg_catalog.array_agg(s.ctid)::text,
                min(s.t)::text, max(s.t)::text, max(s.t)::timestamptz, count(*), s.tenant
           FROM (SELECT tableoid AS leaf, ctid, {time} AS t, {tenant_value} AS tenant FROM {table}
                  WHERE {time} < $1 AND {time} >= $2{tenant_filter}
                  ORDER BY {time} LIMIT {batch_size}) s
          GROUP BY s.leaf, s.tenant"
    )
}

/// The rows a batch chose in one partition, as constants the planner can
/// use: the time range they span (so it walks the time index, not the
/// table) and their ctids. The cut-off ($1) is checked again, so a row
/// updated meanwhile to a newer time stays.
pub struct Chosen {
    pub ctids: String,
    pub oldest: String,
    pub newest: String,
}

impl Chosen {
    fn condition(&self, time: &str) -> String {
        format!(
            "{time} >= {} AND {time} <= {} AND ctid = ANY ({}::tid[]) AND {time} < $1",
            literal(&self.oldest),
            literal(&self.newest),
            literal(&self.ctids)
        )
    }
}

/// Deletes the chosen rows of one partition.
pub fn delete_sql(leaf: &str, time: &str, chosen: &Chosen) -> String {
    format!("DELETE FROM ONLY {leaf} WHERE {}", chosen.condition(time))
}

/// Moves the chosen rows of one partition into the archive in one statement:
/// the delete and the insert commit or vanish together.
pub fn archive_sql(
    leaf: &str,
    time: &str,
    chosen: &Chosen,
    archive: &str,
    columns: &[String],
) -> String {
    let list = columns.join(", ");
    format!(
        "WITH moved AS (DELETE FROM ONLY {leaf} WHERE {} RETURNING {list})
         INSERT INTO {archive} ({list}) OVERRIDING SYSTEM VALUE SELECT {list} FROM moved",
        chosen.condition(time)
    )
}

/// The tenant of each row as a select-list term (NULL for a table that is
/// not registered) and the filter that leaves out rows without one.
fn tenant_terms(tenant: Option<&str>) -> (String, String) {
    match tenant {
        Some(column) => (column.to_string(), format!(" AND {column} IS NOT NULL")),
        None => ("NULL::pg_catalog.uuid".to_string(), String::new()),
    }
}

/// The newest time among the next `batch_size` due rows after the stored
/// position ($1, cut-off $2): the batch takes every row up to it, ties included.
pub fn anonymize_bound_sql(
    table: &str,
    time: &str,
    batch_size: i64,
    tenant: Option<&str>,
) -> String {
    let (_, tenant_filter) = tenant_terms(tenant);
    format!(
        "SELECT max(s.t)::timestamptz
           FROM (SELECT {time} AS t FROM {table}
                  WHERE {time} > $1 AND {time} < $2{tenant_filter}
                  ORDER BY {time} LIMIT {batch_size}) s"
    )
}

/// The batch's rows, from after the position ($1) up to the bound ($3),
/// counted per tenant (one group, tenant NULL, for a table not registered).
fn anonymize_groups_sql(table: &str, time: &str, tenant: Option<&str>) -> String {
    let (tenant_value, tenant_filter) = tenant_terms(tenant);
    format!(
        "SELECT {tenant_value}, count(*) FROM {table}
          WHERE {time} > $1 AND {time} <= $3 AND {time} < $2{tenant_filter}
          GROUP BY 1"
    )
}

/// Where a batch's statements run: as the table's owner, so its triggers,
/// defaults and index expressions never run with a superuser's (the
/// scheduler's) rights; and, for a registered table, in the context of the
/// tenant whose rows they touch, since isolation filters the owner too.
/// Choosing the rows only reads, as the extension owner, who sees them all.
struct Context {
    owner: pg_sys::Oid,
    /// The tenant column of a registered table, as named.
    tenant_name: Option<String>,
    /// The same, quoted.
    tenant_column: Option<String>,
}

impl Context {
    fn of(table: &Relation) -> Context {
        let column: Option<String> = as_extension_owner(|| {
            crate::common::sql::select_value(
                "SELECT tenant_column::text FROM tenancy.tenant_tables WHERE tbl OPERATOR(pg_catalog.=) $1",
                &[crate::common::sqltypes::RegClass(table.oid).into()],
            )
        });
        Context {
            owner: relation_owner(table.oid),
            tenant_column: column.as_deref().map(quote_identifier),
            tenant_name: column,
        }
    }

    fn tenant(&self) -> Option<&str> {
        self.tenant_column.as_deref()
    }

    /// Runs a write as the owner, in `tenant`'s context when there is one.
    fn write<R>(&self, tenant: Option<pgrx::Uuid>, work: impl FnOnce() -> R) -> R {
        as_table_owner(self.owner, || match tenant {
            Some(tenant) => with_tenant(tenant.as_bytes(), work),
            None => work(),
        })
    }
}

/// Runs one batch of `policy` for rows older than `cutoff`, starting at
/// `after` (delete and archive; anonymize keeps its own position).
pub fn run(
    policy: &Policy,
    cutoff: TimestampWithTimeZone,
    after: Option<TimestampWithTimeZone>,
) -> Result<Progress> {
    let table = Relation::lookup_table(policy.table)?;
    let name = table.qualified_name();
    let time = quote_identifier(&policy.time_column);
    match policy.action {
        Action::Anonymize => anonymize(policy, &table, &time, cutoff),
        Action::Delete | Action::Archive => {
            let archive = match policy.archive_table {
                Some(a) => Some(Relation::lookup_table(a)?.qualified_name()),
                None => None,
            };
            let columns: Vec<String> = copied_columns(table.oid)
                .into_iter()
                .map(|(c, _)| quote_identifier(&c))
                .collect();
            let after = after.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
            if crate::common::citus::table_kind(table.oid).is_some() {
                return run_windowed(
                    policy,
                    &table,
                    &time,
                    cutoff,
                    after,
                    archive.as_deref(),
                    &columns,
                );
            }
            let context = Context::of(&table);
            // Literals of times must read back the same: ISO dates, whatever the session's style.
            with_settings(&[("DateStyle", "ISO, YMD")], || {
                let groups: Vec<Group> = as_extension_owner(|| {
                    Spi::connect(|client| {
                        client
                            .select(
                                &candidates_sql(&name, &time, policy.batch_size, context.tenant()),
                                None,
                                &[cutoff.into(), after.into()],
                            )?
                            .map(|row| {
                                Ok(Group {
                                    leaf: row
                                        .get::<pg_sys::Oid>(1)?
                                        .and_then(qualified_name_of)
                                        .unwrap_or_default(),
                                    chosen: Chosen {
                                        ctids: row.get::<String>(2)?.unwrap_or_default(),
                                        oldest: row.get::<String>(3)?.unwrap_or_default(),
                                        newest: row.get::<String>(4)?.unwrap_or_default(),
                                    },
                                    newest: row.get::<TimestampWithTimeZone>(5)?,
                                    count: row.get::<i64>(6)?.unwrap_or(0),
                                    tenant: row.get::<pgrx::Uuid>(7)?,
                                })
                            })
                            .collect::<std::result::Result<_, pgrx::spi::Error>>()
                    })
                })?;
                let mut progress = Progress::NOTHING;
                for group in groups {
                    let sql = match &archive {
                        Some(archive) => {
                            archive_sql(&group.leaf, &time, &group.chosen, archive, &columns)
                        }
                        None => delete_sql(&group.leaf, &time, &group.chosen),
                    };
                    progress.handled += context.write(group.tenant, || {
                        Spi::connect_mut(|client| {
                            client
                                .update(&sql, None, &[cutoff.into()])
                                .map(|t| t.len() as i64)
                        })
                    })?;
                    progress.found += group.count;
                    progress.reached = match (progress.reached, group.newest) {
                        (Some(a), Some(b)) if a.into_inner() >= b.into_inner() => Some(a),
                        (a, b) => b.or(a),
                    };
                }
                Ok::<_, pgrx::spi::Error>(progress)
            })
            .map_err(|e| {
                error::not_in_prerequisite_state(format!("retention batch on {name} failed: {e}"))
            })
        }
    }
}

/// One partition's (and tenant's) share of a batch.
struct Group {
    leaf: String,
    chosen: Chosen,
    newest: Option<TimestampWithTimeZone>,
    count: i64,
    tenant: Option<pgrx::Uuid>,
}

/// The rows of one anonymize batch: after the position, up to the bound
/// (ties of the bound's time included), before the cut-off; of one tenant
/// (tenant column, tenant) when the table is registered.
pub(super) fn anonymize_filter(
    time_column: &str,
    position: TimestampWithTimeZone,
    bound: TimestampWithTimeZone,
    cutoff: TimestampWithTimeZone,
    tenant: Option<(&str, pgrx::Uuid)>,
) -> RowFilter {
    let filter = RowFilter::all()
        .after(time_column, Value::Time(position))
        .at_or_before(time_column, Value::Time(bound))
        .before(time_column, Value::Time(cutoff));
    match tenant {
        Some((column, tenant)) => filter.equal(column, Value::Uuid(tenant)),
        None => filter,
    }
}

fn anonymize(
    policy: &Policy,
    table: &Relation,
    time: &str,
    cutoff: TimestampWithTimeZone,
) -> Result<Progress> {
    let name = table.qualified_name();
    let anonymizer = crate::common::hooks::anonymizer()
        .filter(|a| (a.covers)(table))
        .ok_or_else(|| {
            error::not_in_prerequisite_state(format!(
                "table {name} has no masking rules to anonymize with"
            ))
        })?;
    let context = Context::of(table);
    let position: Option<TimestampWithTimeZone> = as_extension_owner(|| {
        crate::common::sql::select_value(
            "SELECT anonymized_through FROM tenancy.retention_policies WHERE tbl = $1",
            &[policy.table.into()],
        )
    });
    let position = position.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
    let Some((progress, bound)) =
        each_tenant_in_window(policy, &name, time, &context, position, cutoff, |filter| {
            (anonymizer.rewrite)(table, filter)
        })?
    else {
        return Ok(Progress::NOTHING);
    };
    // The position moves in the batch's own transaction: rows are rewritten once.
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE tenancy.retention_policies SET anonymized_through = $2 WHERE tbl = $1",
            &[policy.table.into(), bound.into()],
        )
    })
    .expect("moving the anonymize position failed");
    Ok(progress)
}

/// Runs `per_tenant` once for each tenant with rows in the next window
/// after `after` (`next_window`), as that tenant, with the filter of its
/// rows. The batch's progress and the window's bound; None when no row is
/// due.
fn each_tenant_in_window(
    policy: &Policy,
    name: &str,
    time: &str,
    context: &Context,
    after: TimestampWithTimeZone,
    cutoff: TimestampWithTimeZone,
    mut per_tenant: impl FnMut(&RowFilter) -> Result<i64>,
) -> Result<Option<(Progress, TimestampWithTimeZone)>> {
    let Some(Window { bound, groups }) = next_window(policy, name, time, context, after, cutoff)?
    else {
        return Ok(None);
    };
    let due: i64 = groups.iter().map(|(_, rows)| rows).sum();
    let mut handled = 0i64;
    for (tenant, _) in groups {
        let of_tenant = context.tenant_name.as_deref().zip(tenant);
        let filter = anonymize_filter(&policy.time_column, after, bound, cutoff, of_tenant);
        handled += context.write(tenant, || per_tenant(&filter))?;
    }
    let progress = Progress {
        handled,
        found: due.max(handled),
        reached: Some(bound),
    };
    Ok(Some((progress, bound)))
}

/// A batch chosen by time: every due row after a position up to `bound`
/// (the newest time among the next `batch_size` due rows, ties included),
/// and how many there are per tenant (one group, tenant NULL, for a table
/// that is not registered).
struct Window {
    bound: TimestampWithTimeZone,
    groups: Vec<(Option<pgrx::Uuid>, i64)>,
}

/// The next window after `position`, or None when no row is due. Read as the
/// extension owner, who sees every tenant's rows.
fn next_window(
    policy: &Policy,
    name: &str,
    time: &str,
    context: &Context,
    position: TimestampWithTimeZone,
    cutoff: TimestampWithTimeZone,
) -> Result<Option<Window>> {
    let tenant = context.tenant();
    let reads = || -> std::result::Result<_, pgrx::spi::Error> {
        Spi::connect(|client| {
            let bound = client
                .select(
                    &anonymize_bound_sql(name, time, policy.batch_size, tenant),
                    Some(1),
                    &[position.into(), cutoff.into()],
                )?
                .first()
                .get::<TimestampWithTimeZone>(1)?;
            let Some(bound) = bound else {
                return Ok(None);
            };
            let groups = client
                .select(
                    &anonymize_groups_sql(name, time, tenant),
                    None,
                    &[position.into(), cutoff.into(), bound.into()],
                )?
                .map(|row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<i64>(2)?.unwrap_or(0))))
                .collect::<std::result::Result<_, pgrx::spi::Error>>()?;
            Ok(Some(Window { bound, groups }))
        })
    };
    as_extension_owner(reads).map_err(|e| {
        error::not_in_prerequisite_state(format!("retention batch on {name} failed: {e}"))
    })
}

/// Delete and archive on a Citus table. Its rows have no address the
/// coordinator can name (ctid and tableoid are a shard's own), so a batch is
/// a window of time instead of a list of rows, deleted per tenant: every due
/// row after the position up to the window's bound (ties included, so a
/// batch may exceed `batch_size` by the rows sharing its last time). Each
/// tenant's statement runs on every shard at once, in one distributed
/// transaction.
fn run_windowed(
    policy: &Policy,
    table: &Relation,
    time: &str,
    cutoff: TimestampWithTimeZone,
    after: TimestampWithTimeZone,
    archive: Option<&str>,
    columns: &[String],
) -> Result<Progress> {
    let name = table.qualified_name();
    let context = Context::of(table);
    let windowed = each_tenant_in_window(policy, &name, time, &context, after, cutoff, |filter| {
        let condition = filter.sql(1);
        let sql = match archive {
            Some(archive) => {
                let list = columns.join(", ");
                format!(
                    "WITH moved AS (DELETE FROM {name} WHERE {condition} RETURNING {list})
                     INSERT INTO {archive} ({list}) OVERRIDING SYSTEM VALUE SELECT {list} FROM moved"
                )
            }
            None => format!("DELETE FROM {name} WHERE {condition}"),
        };
        Spi::connect_mut(|client| {
            client
                .update(&sql, None, &filter.values())
                .map(|t| t.len() as i64)
        })
        .map_err(|e| {
            error::not_in_prerequisite_state(format!("retention batch on {name} failed: {e}"))
        })
    })?;
    Ok(windowed.map_or(Progress::NOTHING, |(progress, _)| progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen() -> Chosen {
        Chosen {
            ctids: "{\"(0,1)\",\"(0,2)\"}".into(),
            oldest: "2025-01-01 00:00:00+00".into(),
            newest: "2025-01-02 00:00:00+00".into(),
        }
    }

    #[test]
    fn a_batch_deletes_only_the_rows_it_chose_and_only_if_still_due() {
        assert_eq!(
            delete_sql("public.\"Events\"", "created_at", &chosen()),
            "DELETE FROM ONLY public.\"Events\" WHERE created_at >= '2025-01-01 00:00:00+00' \
             AND created_at <= '2025-01-02 00:00:00+00' AND ctid = ANY ('{\"(0,1)\",\"(0,2)\"}'::tid[]) \
             AND created_at < $1"
        );
        let sql = candidates_sql("public.events", "\"at\"", 500, None);
        assert!(sql.contains("WHERE \"at\" < $1 AND \"at\" >= $2"));
        assert!(sql.contains("ORDER BY \"at\" LIMIT 500"));
    }

    #[test]
    fn archiving_moves_rows_in_one_statement() {
        let sql = archive_sql(
            "public.events",
            "at",
            &chosen(),
            "archive.events",
            &["id".into(), "at".into()],
        );
        assert!(sql.starts_with("WITH moved AS (DELETE FROM ONLY public.events WHERE at >= "));
        assert!(sql.contains("RETURNING id, at)"));
        assert!(sql.contains(
            "INSERT INTO archive.events (id, at) OVERRIDING SYSTEM VALUE SELECT id, at FROM moved"
        ));
    }

    #[test]
    fn anonymizing_takes_ties_of_the_last_time_along() {
        let bound = anonymize_bound_sql("t", "at", 10, Some("tenant_id"));
        assert!(bound.contains("at > $1 AND at < $2 AND tenant_id IS NOT NULL"));
        assert!(bound.contains("LIMIT 10"));
        let groups = anonymize_groups_sql("t", "at", Some("tenant_id"));
        assert!(groups.contains("at > $1 AND at <= $3 AND at < $2 AND tenant_id IS NOT NULL"));
    }
}
