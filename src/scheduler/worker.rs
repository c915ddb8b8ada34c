//! The scheduler's background worker process (see the module above).

use super::{DATABASE, INTERVAL_SECONDS};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::{Duration, Instant};

fn configured_database() -> String {
    DATABASE
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn interval() -> Duration {
    Duration::from_secs(INTERVAL_SECONDS.get().max(1) as u64)
}

/// SIGTERM ends the worker the way it ends any backend (FATAL at the next
/// interrupt check), so a long step stops promptly on shutdown.
unsafe extern "C-unwind" fn on_sigterm(signal: std::ffi::c_int) {
    // SAFETY: PostgreSQL's own SIGTERM handler for backends.
    unsafe { pg_sys::die(signal) }
}

/// Waits on the latch until `deadline`, reloading the configuration on
/// SIGHUP. Returns when the deadline passed or the settings changed.
fn wait_until(deadline: Instant) -> bool {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // SAFETY: the standard latch wait of a background worker.
        unsafe {
            let events = pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                (deadline - now).as_millis().min(i32::MAX as u128) as std::ffi::c_long,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
            let _ = events;
        }
        pg_sys::check_for_interrupts!();
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration file, as backends do on SIGHUP.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            return true;
        }
    }
}

/// One query in a transaction of its own; an error is logged, not raised.
fn in_transaction(sql: &str) -> Option<bool> {
    // SAFETY: the transaction protocol a background worker follows; on error
    // the transaction is aborted and the error state cleared before going on.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let activity = CString::new(sql).unwrap_or_default();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity.as_ptr());
    }
    let outcome =
        PgTryBuilder::new(
            || Ok(Spi::get_one::<bool>(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))),
        )
        .catch_others(Err)
        .execute();
    match outcome {
        Ok(value) => {
            // SAFETY: ends the transaction and snapshot started for this step.
            unsafe {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
                pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
            }
            value
        }
        Err(caught) => {
            let message = match &caught {
                CaughtError::PostgresError(report)
                | CaughtError::ErrorReport(report)
                | CaughtError::RustPanic {
                    ereport: report, ..
                } => report.message().to_string(),
            };
            // SAFETY: aborts the transaction started for this step (its error was caught).
            unsafe {
                pg_sys::AbortCurrentTransaction();
                pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
            }
            pgrx::warning!("pg_tenancy scheduler: {sql} failed: {message}");
            None
        }
    }
}

/// One scheduled run: every step in its own transaction.
fn run_jobs_once() {
    match in_transaction("SELECT tenancy._jobs_begin(false)") {
        Some(true) => {}
        Some(false) => {
            pgrx::log!(
                "pg_tenancy scheduler: run_jobs is already running in another session; skipped"
            );
            return;
        }
        None => return,
    }
    while in_transaction("SELECT tenancy._jobs_step()") == Some(true) {
        pg_sys::check_for_interrupts!();
    }
    // A step that failed outside its own error handling leaves the run queued.
    in_transaction("SELECT tenancy._jobs_end() IS NULL");
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_tenancy_scheduler_main(_argument: pg_sys::Datum) {
    #[cfg(not(feature = "pg18"))]
    // SAFETY: installing signal handlers before unblocking signals.
    unsafe {
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(on_sigterm))
    };
    // PostgreSQL 18 names the backend's version pqsignal_be (pqsignal is a macro).
    #[cfg(feature = "pg18")]
    // SAFETY: as above.
    unsafe {
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(on_sigterm))
    };
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP);

    // Off until a database is configured; a process can connect only once.
    let database = loop {
        let database = configured_database();
        if !database.is_empty() {
            break database;
        }
        wait_until(Instant::now() + Duration::from_secs(3600));
    };
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    pgrx::log!(
        "pg_tenancy scheduler: running tenancy.run_jobs() in database \"{database}\" every {} s",
        interval().as_secs()
    );
    let mut last_end: Option<Instant> = None;
    loop {
        // The first run starts at once; a new interval counts from the last run's end.
        let next = last_end.map_or_else(Instant::now, |end| end + interval());
        if wait_until(next) {
            if configured_database() != database {
                pgrx::log!("pg_tenancy scheduler: tenancy.scheduler_database changed; restarting");
                // SAFETY: exit code 1 makes the postmaster start the worker again.
                unsafe { pg_sys::proc_exit(1) };
            }
            continue;
        }
        run_jobs_once();
        last_end = Some(Instant::now());
    }
}
