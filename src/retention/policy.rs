//! Retention policies: validating `set_retention`'s arguments against the
//! table, and reading a policy back for a run.

use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Delete,
    Anonymize,
    Archive,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "delete" => Some(Action::Delete),
            "anonymize" => Some(Action::Anonymize),
            "archive" => Some(Action::Archive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Anonymize => "anonymize",
            Action::Archive => "archive",
        }
    }
}

/// A stored policy, as a run uses it.
#[derive(Debug, Clone)]
pub struct Policy {
    pub table: RegClass,
    pub action: Action,
    pub time_column: String,
    pub batch_size: i64,
    pub archive_table: Option<RegClass>,
    /// Rows are due when `time_column < now() - keep`.
    pub keep: pgrx::datum::Interval,
}

/// Time types a retention cut-off can be compared with.
const TIME_TYPES: [pg_sys::Oid; 3] = [
    pg_sys::TIMESTAMPTZOID,
    pg_sys::TIMESTAMPOID,
    pg_sys::DATEOID,
];

/// The columns of `table` a row copy must carry (not dropped, not generated),
/// with their types as `format_type` prints them, in column order.
pub fn copied_columns(table: pg_sys::Oid) -> Vec<(String, String)> {
    crate::common::sql::select_text_pairs(
        "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
           FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          ORDER BY a.attnum",
        &[RegClass(table).into()],
    )
}

/// The differences that keep `archive` from taking `source`'s rows: a
/// missing column, or one of another type.
pub fn shape_mismatches(source: &[(String, String)], archive: &[(String, String)]) -> Vec<String> {
    source
        .iter()
        .filter_map(|(name, ty)| match archive.iter().find(|(n, _)| n == name) {
            None => Some(format!("column \"{name}\" ({ty}) is missing")),
            Some((_, other)) if other != ty => {
                Some(format!("column \"{name}\" is {other}, not {ty}"))
            }
            Some(_) => None,
        })
        .collect()
}

pub struct Request {
    pub table: Relation,
    pub keep: pgrx::datum::Interval,
    pub action: Action,
    pub time_column: String,
    pub batch_size: i32,
    pub archive_table: Option<RegClass>,
}

/// Checks a `set_retention` call; every error names the object at fault.
pub fn validate(request: &Request) -> Result<()> {
    let table = &request.table;
    table.require_owner()?;
    if crate::partition::has_own_retention(table.oid) {
        return Err(error::not_in_prerequisite_state(format!(
            "table {} is a partition set with its own retention",
            table.qualified_name()
        ))
        .set_hint("Partition sets retire whole partitions: change tenancy.partition_sets.retention instead."));
    }
    let keep = request.keep;
    if keep.months() < 0
        || keep.days() < 0
        || keep.micros() < 0
        || (keep.months() == 0 && keep.days() == 0 && keep.micros() == 0)
    {
        return Err(error::invalid_parameter(
            "keep must be a positive interval (every part of it zero or more, not all zero)",
        ));
    }
    if request.batch_size <= 0 {
        return Err(error::invalid_parameter(format!(
            "batch_size must be positive (got {})",
            request.batch_size
        )));
    }
    let column = table.column(&request.time_column)?;
    if !TIME_TYPES.contains(&column.type_oid) {
        return Err(error::datatype_mismatch(format!(
            "column \"{}\" of {} is {}, not a timestamptz, timestamp or date",
            request.time_column,
            table.qualified_name(),
            column.type_name
        )));
    }
    match (request.action, request.archive_table) {
        (Action::Archive, None) => Err(error::invalid_parameter(
            "action archive needs an archive_table",
        )
        .set_hint("Create a table with the same columns, e.g. CREATE TABLE t_archive (LIKE t).")),
        (Action::Archive, Some(archive)) => validate_archive(table, archive),
        (_, Some(_)) => Err(error::invalid_parameter(format!(
            "archive_table is only used by action archive (got {})",
            request.action.as_str()
        ))),
        (Action::Anonymize, None) => {
            let covered = crate::common::hooks::anonymizer().is_some_and(|a| (a.covers)(table));
            if !covered {
                return Err(error::not_in_prerequisite_state(format!(
                    "table {} has no masking rules to anonymize with",
                    table.qualified_name()
                ))
                .set_hint("Set them with tenancy.set_masking_rule() first."));
            }
            Ok(())
        }
        (Action::Delete, None) => Ok(()),
    }
}

fn validate_archive(table: &Relation, archive: RegClass) -> Result<()> {
    let target = Relation::lookup_table(archive)?;
    if target.oid == table.oid {
        return Err(error::invalid_parameter(
            "archive_table must not be the table itself",
        ));
    }
    // The caller must own the target too, or a policy could move rows into
    // anyone's table. (Batches write it as the source table's owner.)
    target.require_owner()?;
    let mismatches = shape_mismatches(&copied_columns(table.oid), &copied_columns(target.oid));
    if !mismatches.is_empty() {
        return Err(error::datatype_mismatch(format!(
            "archive table {} does not have the columns of {}",
            target.qualified_name(),
            table.qualified_name()
        ))
        .set_detail(mismatches.join("; "))
        .set_hint(format!(
            "CREATE TABLE ... (LIKE {}) makes a table of the right shape.",
            table.qualified_name()
        )));
    }
    Ok(())
}

/// Stores the policy (replacing the table's previous one).
pub fn store(request: &Request) {
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.retention_policies (tbl, keep, action, time_column, batch_size, archive_table)
             VALUES ($1, $2, $3, $4::text::name, $5, $6)
             ON CONFLICT (tbl) DO UPDATE
                SET keep = excluded.keep, action = excluded.action, time_column = excluded.time_column,
                    batch_size = excluded.batch_size, archive_table = excluded.archive_table,
                    anonymized_through = CASE WHEN excluded.action = 'anonymize'
                                               AND tenancy.retention_policies.action = 'anonymize'
                                               AND excluded.time_column = tenancy.retention_policies.time_column
                                              THEN tenancy.retention_policies.anonymized_through END",
            &[
                RegClass(request.table.oid).into(),
                request.keep.into(),
                request.action.as_str().into(),
                request.time_column.clone().into(),
                request.batch_size.into(),
                request.archive_table.into(),
            ],
        )
    })
    .expect("storing the retention policy failed");
}

/// Every stored policy, in table OID order (a stable order for runs).
pub fn load_all() -> Vec<Policy> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT tbl, action, time_column::text, batch_size, archive_table, keep
                       FROM tenancy.retention_policies ORDER BY tbl::oid",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok(Policy {
                        table: row.get::<RegClass>(1)?.expect("tbl"),
                        action: Action::parse(&row.get::<String>(2)?.unwrap_or_default())
                            .expect("retention_policies.action is checked"),
                        time_column: row.get::<String>(3)?.unwrap_or_default(),
                        batch_size: row.get::<i32>(4)?.unwrap_or(10_000) as i64,
                        archive_table: row.get::<RegClass>(5)?,
                        keep: row.get::<pgrx::datum::Interval>(6)?.expect("keep"),
                    })
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading retention policies failed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn an_archive_needs_every_column_with_its_type() {
        let source = cols(&[
            ("id", "bigint"),
            ("at", "timestamp with time zone"),
            ("body", "text"),
        ]);
        assert!(shape_mismatches(&source, &source).is_empty());
        let extra = cols(&[
            ("id", "bigint"),
            ("at", "timestamp with time zone"),
            ("body", "text"),
            ("archived_at", "timestamp with time zone"),
        ]);
        assert!(
            shape_mismatches(&source, &extra).is_empty(),
            "extra archive columns are fine"
        );
        let wrong = cols(&[("id", "integer"), ("at", "timestamp with time zone")]);
        assert_eq!(
            shape_mismatches(&source, &wrong),
            [
                "column \"id\" is integer, not bigint",
                "column \"body\" (text) is missing"
            ]
        );
    }

    #[test]
    fn actions_are_a_closed_list() {
        for a in ["delete", "anonymize", "archive"] {
            assert_eq!(Action::parse(a).unwrap().as_str(), a);
        }
        assert_eq!(Action::parse("truncate"), None);
        assert_eq!(Action::parse("DELETE"), None);
    }
}
