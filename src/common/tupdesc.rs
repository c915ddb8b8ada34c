//! Reading a tuple descriptor's attributes on every supported major:
//! PostgreSQL 18 keeps compact attributes in the descriptor and the full
//! `pg_attribute` rows behind them, reached through `TupleDescAttr`.

use pgrx::pg_sys;

/// The descriptor's attributes in column order, dropped ones included.
///
/// # Safety
/// `tupdesc` is a valid tuple descriptor that outlives the returned borrows.
pub unsafe fn attributes<'a>(tupdesc: pg_sys::TupleDesc) -> Vec<&'a pg_sys::FormData_pg_attribute> {
    // SAFETY: as the caller promised; `natts` attributes follow the header.
    unsafe {
        let natts = (*tupdesc).natts as usize;
        #[cfg(not(feature = "pg18"))]
        {
            (*tupdesc).attrs.as_slice(natts).iter().collect()
        }
        #[cfg(feature = "pg18")]
        {
            (0..natts)
                .map(|i| &*pg_sys::TupleDescAttr(tupdesc, i as i32))
                .collect()
        }
    }
}
