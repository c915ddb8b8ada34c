//! Running a piece of work in a subtransaction and catching its error, the way
//! a PL/pgSQL `BEGIN ... EXCEPTION` block does: one partition set, one job step
//! or one batch can fail, be reported, and leave the rest of the run standing.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::PgTryBuilder;
use std::panic::AssertUnwindSafe;

/// What a failed attempt reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Five-character SQLSTATE, e.g. `55P03`.
    pub sqlstate: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.sqlstate)
    }
}

/// Runs `work` in a subtransaction. On success the subtransaction is released
/// (its changes and locks join the outer transaction); on an error it is rolled
/// back, undoing the work and releasing the locks it took, and the error is
/// returned instead of raised. Query cancellation is never swallowed.
pub fn attempt<T>(work: impl FnOnce() -> T) -> Result<T, Failure> {
    // SAFETY: the same sequence PL/pgSQL uses around an exception block; memory
    // context and resource owner are restored on both paths.
    let (memory_context, resource_owner) =
        unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    // SAFETY: starts the subtransaction the two paths below end.
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory_context);
    }
    // The work runs once; the builder wants a FnMut that is safe to unwind through,
    // and a failed attempt is rolled back, so nothing half-done is observed.
    let mut work = AssertUnwindSafe(Some(work));
    PgTryBuilder::new(move || {
        // Borrow the wrapper whole: capturing only its field would lose the assertion.
        let slot: &mut AssertUnwindSafe<Option<_>> = &mut work;
        let value = (slot.0.take().expect("attempted once"))();
        // SAFETY: ends the subtransaction begun above and restores the
        // context and resource owner saved before it.
        unsafe {
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(memory_context);
            pg_sys::CurrentResourceOwner = resource_owner;
        }
        Ok(value)
    })
    .catch_others(|caught| {
        // SAFETY: rolls back the subtransaction begun above, as PL/pgSQL
        // does, and restores the saved context and resource owner.
        unsafe {
            pg_sys::MemoryContextSwitchTo(memory_context);
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(memory_context);
            pg_sys::CurrentResourceOwner = resource_owner;
        }
        let failure = describe(&caught);
        // A cancel or termination request must still end the statement.
        if failure.sqlstate == "57014" || failure.sqlstate.starts_with("57P") {
            caught.rethrow();
        }
        Err(failure)
    })
    .execute()
}

fn describe(caught: &CaughtError) -> Failure {
    let report = match caught {
        CaughtError::PostgresError(report)
        | CaughtError::ErrorReport(report)
        | CaughtError::RustPanic {
            ereport: report, ..
        } => report,
    };
    Failure {
        sqlstate: sqlstate_text(report.sql_error_code() as i32),
        message: report.message().to_string(),
    }
}

/// Unpacks PostgreSQL's MAKE_SQLSTATE encoding (6 bits per character).
pub fn sqlstate_text(code: i32) -> String {
    (0..5)
        .map(|i| (((code >> (6 * i)) & 0x3F) as u8 + b'0') as char)
        .collect()
}

#[cfg(test)]
mod unit_tests {
    #[test]
    fn sqlstates_unpack() {
        // MAKE_SQLSTATE('5','5','P','0','3')
        let encode = |s: &str| -> i32 {
            s.bytes()
                .enumerate()
                .map(|(i, b)| ((b - b'0') as i32 & 0x3F) << (6 * i))
                .sum()
        };
        assert_eq!(super::sqlstate_text(encode("55P03")), "55P03");
        assert_eq!(super::sqlstate_text(encode("22023")), "22023");
    }
}
