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
use crate::common::relation::Relation;
use crate::common::settings::with_settings;
use crate::common::sql::literal;
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

/// Selects the oldest due rows, grouped per partition (a plain table is its
/// own only group): `(leaf, ctids as an array literal, oldest and newest time
/// as literals, newest time, count)`. Printed with DateStyle ISO.
pub fn candidates_sql(table: &str, time: &str, batch_size: i64) -> String {
    format!(
        "SELECT s.leaf::pg_catalog.regclass::text, pg_catalog.array_agg(s.ctid)::text,
                min(s.t)::text, max(s.t)::text, max(s.t)::timestamptz, count(*)
           FROM (SELECT tableoid AS leaf, ctid, {time} AS t FROM {table}
                  WHERE {time} < $1 AND {time} >= $2
                  ORDER BY {time} LIMIT {batch_size}) s
          GROUP BY s.leaf"
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

/// Rewrites the next due rows after the stored position, ties included, and
/// reports how many and the newest time reached.
pub fn anonymize_sql(table: &str, time: &str, set: &str, batch_size: i64) -> String {
    format!(
        "WITH bound AS (SELECT max(s.t) AS tenancy_bound
                          FROM (SELECT {time} AS t FROM {table}
                                 WHERE {time} > $1 AND {time} < $2
                                 ORDER BY {time} LIMIT {batch_size}) s),
              done AS (UPDATE {table} SET {set} FROM bound
                        WHERE {time} > $1 AND {time} <= bound.tenancy_bound AND {time} < $2
                        RETURNING 1)
         SELECT (SELECT count(*) FROM done), (SELECT tenancy_bound::timestamptz FROM bound)"
    )
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
            // Literals of times must read back the same: ISO dates, whatever the session's style.
            with_settings(&[("DateStyle", "ISO, YMD")], || {
                Spi::connect_mut(|client| {
                    let groups: Vec<(String, Chosen, Option<TimestampWithTimeZone>, i64)> = client
                        .select(
                            &candidates_sql(&name, &time, policy.batch_size),
                            None,
                            &[cutoff.into(), after.into()],
                        )?
                        .map(|row| {
                            Ok((
                                row.get::<String>(1)?.unwrap_or_default(),
                                Chosen {
                                    ctids: row.get::<String>(2)?.unwrap_or_default(),
                                    oldest: row.get::<String>(3)?.unwrap_or_default(),
                                    newest: row.get::<String>(4)?.unwrap_or_default(),
                                },
                                row.get::<TimestampWithTimeZone>(5)?,
                                row.get::<i64>(6)?.unwrap_or(0),
                            ))
                        })
                        .collect::<std::result::Result<_, pgrx::spi::Error>>()?;
                    let mut progress = Progress {
                        handled: 0,
                        found: 0,
                        reached: None,
                    };
                    for (leaf, chosen, newest, count) in groups {
                        let sql = match &archive {
                            Some(archive) => archive_sql(&leaf, &time, &chosen, archive, &columns),
                            None => delete_sql(&leaf, &time, &chosen),
                        };
                        progress.handled +=
                            client.update(&sql, None, &[cutoff.into()])?.len() as i64;
                        progress.found += count;
                        progress.reached = match (progress.reached, newest) {
                            (Some(a), Some(b)) if a.into_inner() >= b.into_inner() => Some(a),
                            (a, b) => b.or(a),
                        };
                    }
                    Ok::<_, pgrx::spi::Error>(progress)
                })
            })
            .map_err(|e| {
                error::not_in_prerequisite_state(format!("retention batch on {name} failed: {e}"))
            })
        }
    }
}

fn anonymize(
    policy: &Policy,
    table: &Relation,
    time: &str,
    cutoff: TimestampWithTimeZone,
) -> Result<Progress> {
    let name = table.qualified_name();
    let set = crate::mask::anonymize_set_clause(table).ok_or_else(|| {
        error::not_in_prerequisite_state(format!(
            "table {name} has no masking rules to anonymize with"
        ))
    })?;
    Spi::connect_mut(|client| {
        let position: Option<TimestampWithTimeZone> = client
            .select(
                "SELECT anonymized_through FROM tenancy.retention_policies WHERE tbl = $1",
                Some(1),
                &[policy.table.into()],
            )?
            .first()
            .get(1)?;
        let position = position.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
        let row = client
            .update(
                &anonymize_sql(&name, time, &set, policy.batch_size),
                Some(1),
                &[position.into(), cutoff.into()],
            )?
            .first();
        let handled = row.get::<i64>(1)?.unwrap_or(0);
        let reached = row.get::<TimestampWithTimeZone>(2)?;
        if reached.is_some() {
            client.update(
                "UPDATE tenancy.retention_policies SET anonymized_through = $2 WHERE tbl = $1",
                None,
                &[policy.table.into(), reached.into()],
            )?;
        }
        Ok::<_, pgrx::spi::Error>(Progress {
            handled,
            found: handled,
            reached,
        })
    })
    .map_err(|e| error::not_in_prerequisite_state(format!("retention batch on {name} failed: {e}")))
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
        let sql = candidates_sql("public.events", "\"at\"", 500);
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
        let sql = anonymize_sql("t", "at", "email = x(email)", 10);
        assert!(sql.contains("at > $1 AND at <= bound.tenancy_bound AND at < $2"));
    }
}
