//! One-value SPI helpers for cold administrative paths (hot paths keep
//! prepared plans instead).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// Runs a read-only query returning at most one row; its first column.
pub fn select_value<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    Spi::connect(|client| {
        let table = client.select(sql, Some(1), args)?;
        if table.is_empty() {
            Ok(None)
        } else {
            table.first().get::<T>(1)
        }
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs a statement that writes; the first column of its first row.
pub fn write_returning<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    Spi::connect_mut(|client| {
        let table = client.update(sql, None, args)?;
        if table.is_empty() {
            Ok(None)
        } else {
            table.first().get::<T>(1)
        }
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
