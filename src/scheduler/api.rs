//! SQL API of the job runner: the internal steps behind the procedures
//! `run_jobs` and `run_retention` (which need COMMIT between steps, so they
//! are PL/pgSQL in sql/scheduler_api.sql and sql/retention_api.sql).

use super::jobs;
use pgrx::prelude::*;

/// Internal: queues a run of every job (or of retention alone); false when
/// another session is running jobs.
#[pg_extern(volatile, parallel_unsafe)]
fn _jobs_begin(retention_only: bool) -> bool {
    jobs::begin(retention_only)
}

/// Internal: runs the next queued step; false when the run is over.
#[pg_extern(volatile, parallel_unsafe)]
fn _jobs_step() -> bool {
    jobs::step()
}

/// Internal: abandons this session's run and releases its locks.
#[pg_extern(volatile, parallel_unsafe)]
fn _jobs_end() {
    jobs::end()
}
