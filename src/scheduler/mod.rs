//! The scheduler: the job runner behind `run_jobs` and `run_retention`
//! (`jobs`), and, with `shared_preload_libraries = 'pg_tenancy'`, one
//! background worker that runs `run_jobs` in `tenancy.scheduler_database`
//! every `tenancy.scheduler_interval`.
//!
//! It runs the same steps the procedure does, each in a transaction of its
//! own (`_jobs_begin`, then `_jobs_step` until it says the run is over), so
//! a retention batch commits before the next, exactly as with `CALL`. An error
//! that escapes a step is logged and the worker carries on; SIGHUP reloads
//! the settings (a new interval applies at once; a new database restarts the
//! worker, since a process connects to one database only); SIGTERM stops it
//! between or inside statements like any backend.

pub mod api;
mod jobs;

pgrx::extension_sql_file!(
    "../../sql/scheduler_catalog.sql",
    name = "scheduler_catalog",
    requires = ["tenant_catalog"]
);
pgrx::extension_sql_file!(
    "../../sql/scheduler_api.sql",
    name = "scheduler_api",
    requires = [
        "scheduler_catalog",
        api::_jobs_begin,
        api::_jobs_step,
        api::_jobs_end
    ]
);

use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::Duration;

// Not in the `cargo test` binary: its exported entry point is never dropped by
// the linker, and it calls into a server that binary does not link with.
#[cfg(not(test))]
mod worker;

static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static INTERVAL_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(60);

/// Registers the settings (always) and the worker (when preloaded).
pub fn init() {
    GucRegistry::define_string_guc(
        c"tenancy.scheduler_database",
        c"Database in which the pg_tenancy scheduler runs tenancy.run_jobs(); empty: the scheduler is off.",
        c"Needs shared_preload_libraries = 'pg_tenancy'. Changing it takes effect on reload.",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"tenancy.scheduler_interval",
        c"Time between the end of one scheduled run_jobs() and the start of the next.",
        c"Takes effect on reload.",
        &INTERVAL_SECONDS,
        1,
        7 * 24 * 3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    // SAFETY: reading a flag the postmaster sets while loading preloaded libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        BackgroundWorkerBuilder::new("pg_tenancy scheduler")
            .set_type("pg_tenancy scheduler")
            .set_library("pg_tenancy")
            .set_function("pg_tenancy_scheduler_main")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(5)))
            .load();
    }
}
