//! The cap on a tenant's running statements (`max_running_statements` in
//! `tenancy.governance`): while the session's tenant has one, each top-level
//! statement takes a place in a table in shared memory when the executor
//! starts it, and gives it back when the executor ends it, when its
//! transaction (or the savepoint it ran in) aborts, and when the backend
//! exits, `pg_terminate_backend` included. A statement that would pass the
//! cap fails at once with 53400: no queue, no wait. Statements the
//! executor runs inside a statement (functions, triggers) share its place.
//! A crash resets shared memory, and with it every place.

use crate::common::error;
use pgrx::lwlock::PgLwLock;
use pgrx::pg_shmem_init;
use pgrx::prelude::*;
use std::cell::Cell;

/// Backends the table can follow at once (a backend beyond them runs uncapped).
const ENTRIES: usize = 1024;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Entry {
    /// The backend that owns the entry (0: free).
    pid: i32,
    running: bool,
    tenant: [u8; 16],
}

type Running = super::shared::Table<Entry, ENTRIES>;

// SAFETY: the only lock of that name; pg_tenancy names its locks after itself.
static RUNNING: PgLwLock<Running> = unsafe { PgLwLock::new(c"pg_tenancy_running") };

thread_local! {
    /// This backend's entry, once it has one.
    static MINE: Cell<Option<usize>> = const { Cell::new(None) };
    /// The statement holding the place, and the subtransaction it started in.
    static HOLDER: Cell<Option<(*mut pg_sys::QueryDesc, pg_sys::SubTransactionId)>> = const { Cell::new(None) };
    /// The tenant's rules are being read: the queries that read them start
    /// the executor too, and must not look them up again.
    static LOOKING_UP: Cell<bool> = const { Cell::new(false) };
}

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;

/// Sets the table aside (while the server loads `shared_preload_libraries`)
/// and installs the executor hooks; called from `_PG_init`.
#[allow(unexpected_cfgs)] // pg_shmem_init! tests features pg13 and pg14, which we do not declare
pub fn init() {
    // SAFETY: reads a flag the postmaster sets while it loads libraries;
    // hooks are chained while the library loads, before any query.
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        pg_shmem_init!(RUNNING);
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
}

/// Takes a place for the statement about to start, if the session's tenant
/// has a cap and no statement of this backend holds one.
#[pg_guard]
unsafe extern "C-unwind" fn before_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    if HOLDER.get().is_some() || eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    // A parallel worker runs part of its leader's statement, which holds the place.
    // SAFETY: reads backend-global state.
    if unsafe { pg_sys::ParallelWorkerNumber >= 0 } {
        return;
    }
    let Some(tenant) = crate::tenant::context::tenant_set() else {
        return;
    };
    if LOOKING_UP.replace(true) {
        return;
    }
    /// Clears [`LOOKING_UP`] however the lookup ends (an error unwinds).
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            LOOKING_UP.set(false);
        }
    }
    let done = Done;
    let cap = super::governance::running_cap(&tenant);
    drop(done);
    let Some(cap) = cap else {
        return;
    };
    let Some(mine) = my_entry() else {
        return;
    };
    let running = {
        let mut table = RUNNING.exclusive();
        let running = table
            .entries
            .iter()
            .filter(|e| e.pid != 0 && e.running && e.tenant == tenant)
            .count() as i64;
        if running < cap {
            table.entries[mine].running = true;
            table.entries[mine].tenant = tenant;
        }
        running
    };
    if running >= cap {
        error::quota_exceeded(format!(
            "tenant {} already runs {running} statements, its cap",
            crate::tenant::context::format_tenant(&tenant)
        ))
        .set_detail(format!(
            "max_running_statements is {cap} (tenancy.governance)."
        ))
        .set_hint("Retry when one of its statements has finished.")
        .report(PgLogLevel::ERROR);
    }
    // SAFETY: reads the current subtransaction's id.
    HOLDER.set(Some((query, unsafe {
        pg_sys::GetCurrentSubTransactionId()
    })));
}

/// This backend's entry, claimed on first use (None when the table is full).
fn my_entry() -> Option<usize> {
    if let Some(mine) = MINE.get() {
        return Some(mine);
    }
    // SAFETY: reads this backend's pid.
    let pid = unsafe { pg_sys::MyProcPid };
    let claimed = {
        let mut table = RUNNING.exclusive();
        let free = table
            .entries
            .iter()
            .position(|e| e.pid == 0 || e.pid == pid)?;
        table.entries[free] = Entry {
            pid,
            running: false,
            tenant: [0; 16],
        };
        free
    };
    MINE.set(Some(claimed));
    // SAFETY: registers a callback of this backend's exit.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0)) };
    Some(claimed)
}

/// Gives the place back (if held).
fn release() {
    if HOLDER.take().is_none() {
        return;
    }
    if let Some(mine) = MINE.get() {
        RUNNING.exclusive().entries[mine].running = false;
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn after_end(query: *mut pg_sys::QueryDesc) {
    if HOLDER.get().is_some_and(|(holder, _)| holder == query) {
        release();
    }
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: a guarded function; then the chained hook or the standard
    // executor, with the arguments we were given (see citus::context for
    // why the hook itself is not guarded).
    unsafe {
        before_start(query, eflags);
        match PREVIOUS_EXECUTOR_START {
            Some(previous) => previous(query, eflags),
            None => pg_sys::standard_ExecutorStart(query, eflags),
        }
    }
}

unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    // SAFETY: as above; the place is given back once the statement has ended.
    unsafe {
        match PREVIOUS_EXECUTOR_END {
            Some(previous) => previous(query),
            None => pg_sys::standard_ExecutorEnd(query),
        }
        after_end(query);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PREPARE
    ) {
        release();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    mine: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // The statement holding the place failed inside a savepoint (a
    // statement's own exception blocks are later subtransactions).
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB
        && HOLDER.get().is_some_and(|(_, subxact)| subxact == mine)
    {
        release();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    if let Some(mine) = MINE.take() {
        HOLDER.set(None);
        RUNNING.exclusive().entries[mine] = Entry::default();
    }
}
