//! A table's columns as masking sees them, and its masking rules.

use super::rules::{ColumnKind, Rule};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;

/// A table's column as masking sees it.
#[derive(Debug, Clone)]
pub struct MaskColumn {
    pub name: String,
    /// format_type() of the column's type.
    pub type_sql: String,
    pub kind: ColumnKind,
}

/// Every column of the table, in order, with its kind (domains resolved).
pub fn columns(table: &Relation) -> Vec<MaskColumn> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
                        (SELECT t.typname::text FROM pg_catalog.pg_type t
                          WHERE t.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END)
                   FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_type d ON d.oid = a.atttypid
                  WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum",
                None,
                &[RegClass(table.oid).into()],
            )?
            .map(|row| {
                Ok(MaskColumn {
                    name: row.get::<String>(1)?.unwrap_or_default(),
                    type_sql: row.get::<String>(2)?.unwrap_or_default(),
                    kind: ColumnKind::of(&row.get::<String>(3)?.unwrap_or_default()),
                })
            })
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .expect("reading columns failed")
}

/// The table's masking rules, by column name.
pub fn rules_of(table: &Relation) -> Vec<(String, Rule)> {
    let stored = as_extension_owner(|| {
        crate::common::sql::select_text_pairs(
            "SELECT col::text, rule FROM tenancy.masking_rules WHERE tbl = $1 ORDER BY col",
            &[RegClass(table.oid).into()],
        )
    });
    stored
        .into_iter()
        .filter_map(|(column, rule)| Rule::parse(&rule).ok().map(|rule| (column, rule)))
        .collect()
}
