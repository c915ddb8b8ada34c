//! Static anonymization: rows rewritten in place with the table's masking
//! rules, in primary-key order and in batches, so each batch is one bounded
//! UPDATE (retention jobs commit between batches; `anonymize_table` runs
//! them in one transaction).

use super::columns::{columns, rules_of};
use super::rules::Rule;
use crate::common::error::{self, Result};
use crate::common::relation::Relation;
use crate::common::selection::RowFilter;
use crate::common::sql::literal;
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

/// `col = masked(col), ...` for the table's rules (None when it has none
/// that change anything).
pub fn set_clause(table: &Relation) -> Option<String> {
    let rules = rules_of(table);
    let assignments: Vec<String> = columns(table)
        .iter()
        .filter_map(|column| {
            let (_, rule) = rules.iter().find(|(c, _)| *c == column.name)?;
            if *rule == Rule::None {
                return None;
            }
            let quoted = quote_identifier(&column.name);
            Some(format!(
                "{quoted} = {}",
                rule.expression(&quoted, &column.type_sql)
            ))
        })
        .collect();
    (!assignments.is_empty()).then(|| assignments.join(", "))
}

/// The primary key's columns and types, in key order.
fn primary_key(table: &Relation) -> Vec<(String, String)> {
    crate::common::sql::select_text_pairs(
        "SELECT pg_catalog.quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod)
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1 AND i.indisprimary
          ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)",
        &[RegClass(table.oid).into()],
    )
}

/// A key as a row literal: `(value::type, ...)`.
fn key_literal(key: &[(String, String)], values: &[String]) -> String {
    let parts: Vec<String> = key
        .iter()
        .zip(values)
        .map(|((_, ty), value)| format!("{}::{ty}", literal(value)))
        .collect();
    format!("ROW({})", parts.join(", "))
}

/// Whether the table has masking rules that change anything (anonymizing it
/// would rewrite something).
pub fn covers(table: &Relation) -> bool {
    set_clause(table).is_some()
}

fn require_set_clause(table: &Relation) -> Result<String> {
    set_clause(table).ok_or_else(|| {
        error::not_in_prerequisite_state(format!(
            "table {} has no masking rules to apply",
            table.qualified_name()
        ))
        .set_hint("Set them with tenancy.set_masking_rule().")
    })
}

/// Rewrites the rows `filter` selects with one UPDATE (the caller has bounded
/// them: a retention batch); returns how many.
pub fn rewrite(table: &Relation, filter: &RowFilter) -> Result<i64> {
    let set = require_set_clause(table)?;
    let sql = format!(
        "UPDATE {} SET {set} WHERE {}",
        table.qualified_name(),
        filter.sql(1)
    );
    Spi::connect_mut(|client| {
        client
            .update(&sql, None, &filter.values())
            .map(|t| t.len() as i64)
    })
    .map_err(|e| {
        error::not_in_prerequisite_state(format!(
            "anonymizing rows of {} failed: {e}",
            table.qualified_name()
        ))
    })
}

/// Anonymizes the rows `filter` selects, in primary-key batches of
/// `batch_size`; returns how many were rewritten.
pub fn run(table: &Relation, filter: &RowFilter, batch_size: i64) -> Result<i64> {
    let set = require_set_clause(table)?;
    let name = table.qualified_name();
    let values = filter.values();
    let filter = filter.sql(1);
    let key = primary_key(table);
    if key.is_empty() {
        // Without a key there is no order to resume from: one UPDATE.
        let sql = format!("UPDATE {name} SET {set} WHERE {filter}");
        return Ok(Spi::connect_mut(|client| {
            client.update(&sql, None, &values).map(|t| t.len() as i64)
        })
        .expect("anonymizing failed"));
    }
    let key_row = format!(
        "ROW({})",
        key.iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let key_text: Vec<String> = key.iter().map(|(c, _)| format!("{c}::text")).collect();
    let mut after: Option<Vec<String>> = None;
    let mut rewritten = 0i64;
    loop {
        let lower = after
            .as_ref()
            .map(|values| format!(" AND {key_row} > {}", key_literal(&key, values)))
            .unwrap_or_default();
        // The batch's last key: its upper bound, or none for the last batch.
        let upper: Option<Vec<String>> = Spi::connect(|client| {
            let rows = client.select(
                &format!(
                    "SELECT ARRAY[{}] FROM {name} WHERE ({filter}){lower} ORDER BY {} OFFSET {} LIMIT 1",
                    key_text.join(", "),
                    key.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", "),
                    batch_size - 1
                ),
                None,
                &values,
            )?;
            if rows.is_empty() {
                Ok::<_, pgrx::spi::Error>(None)
            } else {
                rows.first().get::<Vec<String>>(1)
            }
        })
        .expect("finding the next batch failed");
        let bound = upper
            .as_ref()
            .map(|values| format!(" AND {key_row} <= {}", key_literal(&key, values)))
            .unwrap_or_default();
        let sql = format!("UPDATE {name} SET {set} WHERE ({filter}){lower}{bound}");
        rewritten +=
            Spi::connect_mut(|client| client.update(&sql, None, &values).map(|t| t.len() as i64))
                .expect("anonymizing a batch failed");
        match upper {
            Some(values) => after = Some(values),
            None => return Ok(rewritten),
        }
    }
}
