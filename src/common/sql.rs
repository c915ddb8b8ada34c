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

/// Runs a read-only query; the first two columns of every row, as text.
pub fn select_text_pairs(sql: &str, args: &[DatumWithOid]) -> Vec<(String, String)> {
    Spi::connect(|client| {
        client
            .select(sql, None, args)?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `text` as an SQL string literal, the way PostgreSQL's `quote_literal`
/// writes it (quotes doubled; with backslashes, an E'' literal with them
/// doubled), without calling into the server: pure code may use it.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    if text.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Runs each statement on its own, in order. Never several in one text: Citus
/// forwards a utility statement's query text to the workers, and a text
/// holding several statements fails there (42601).
pub fn run_each<S: AsRef<str>>(statements: &[S]) {
    for statement in statements {
        let statement = statement.as_ref();
        Spi::run(statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn literals_quote_like_postgres() {
        assert_eq!(super::literal("it's"), "'it''s'");
        assert_eq!(super::literal("a\\b"), "E'a\\\\b'");
        assert_eq!(super::literal("{\"(0,1)\"}"), "'{\"(0,1)\"}'");
    }
}
