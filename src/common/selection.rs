//! Which rows of a table an operation touches, as data rather than SQL text:
//! a conjunction of comparisons between a column (by name) and a value. One
//! module builds the filter (retention: "older than the cut-off, of this
//! tenant"), another runs the statement (masking rewrites the rows); only
//! [`RowFilter::sql`] turns it into SQL, quoting every column and passing
//! every value as a parameter.

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::spi::quote_identifier;

/// A value a filter compares with.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Uuid(pgrx::Uuid),
    Time(TimestampWithTimeZone),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equal,
    After,
    AtOrBefore,
    Before,
}

impl Comparison {
    fn operator(self) -> &'static str {
        match self {
            Comparison::Equal => "OPERATOR(pg_catalog.=)",
            Comparison::After => "OPERATOR(pg_catalog.>)",
            Comparison::AtOrBefore => "OPERATOR(pg_catalog.<=)",
            Comparison::Before => "OPERATOR(pg_catalog.<)",
        }
    }
}

/// Rows where every term holds; no term: every row.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    terms: Vec<(String, Comparison, Value)>,
}

impl RowFilter {
    pub fn all() -> RowFilter {
        RowFilter::default()
    }

    fn with(mut self, column: &str, comparison: Comparison, value: Value) -> RowFilter {
        self.terms.push((column.to_owned(), comparison, value));
        self
    }

    /// `column = value`.
    pub fn equal(self, column: &str, value: Value) -> RowFilter {
        self.with(column, Comparison::Equal, value)
    }

    /// `column > value`.
    pub fn after(self, column: &str, value: Value) -> RowFilter {
        self.with(column, Comparison::After, value)
    }

    /// `column <= value`.
    pub fn at_or_before(self, column: &str, value: Value) -> RowFilter {
        self.with(column, Comparison::AtOrBefore, value)
    }

    /// `column < value`.
    pub fn before(self, column: &str, value: Value) -> RowFilter {
        self.with(column, Comparison::Before, value)
    }

    /// The condition as SQL whose values are parameters `$first`, `$first+1`,
    /// ... (`true` for no term); [`RowFilter::values`] are those values in order.
    pub fn sql(&self, first: usize) -> String {
        if self.terms.is_empty() {
            return "true".to_owned();
        }
        self.terms
            .iter()
            .enumerate()
            .map(|(index, (column, comparison, _))| {
                format!(
                    "{} {} ${}",
                    quote_identifier(column),
                    comparison.operator(),
                    first + index
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The values of the parameters of [`RowFilter::sql`], in order.
    pub fn values(&self) -> Vec<DatumWithOid<'static>> {
        self.terms
            .iter()
            .map(|(_, _, value)| match value {
                Value::Uuid(uuid) => (*uuid).into(),
                Value::Time(time) => (*time).into(),
            })
            .collect()
    }
}
