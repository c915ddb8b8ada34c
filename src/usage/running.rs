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

/// Sets the table aside; called from `_PG_init` while the server loads
/// `shared_preload_libraries` (`executor` installs the hooks that use it).
#[allow(unexpected_cfgs)] // pg_shmem_init! tests features pg13 and pg14, which we do not declare
pub fn init() {
    pg_shmem_init!(RUNNING);
}

/// Takes a place for the statement about to start, if `tenant` has a cap and
/// no statement of this backend holds one (`executor` has checked that the
/// statement is run by the tenant's session, not a parallel worker).
pub fn before_start(query: *mut pg_sys::QueryDesc, tenant: [u8; 16]) {
    if HOLDER.get().is_some() {
        return;
    }
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

/// The statement has ended: its place (if it holds one) is given back.
pub fn after_end(query: *mut pg_sys::QueryDesc) {
    if HOLDER.get().is_some_and(|(holder, _)| holder == query) {
        release();
    }
}

/// The transaction has ended (committed, aborted or prepared).
pub fn transaction_ended() {
    release();
}

/// The subtransaction `mine` aborted: the statement holding the place failed
/// inside that savepoint (a statement's own exception blocks are later
/// subtransactions).
pub fn subtransaction_aborted(mine: pg_sys::SubTransactionId) {
    if HOLDER.get().is_some_and(|(_, subxact)| subxact == mine) {
        release();
    }
}

/// How many statements each tenant runs now, among those with a cap.
pub fn running_by_tenant() -> Vec<([u8; 16], i64)> {
    let mut counts: Vec<([u8; 16], i64)> = vec![];
    let table = RUNNING.share();
    for entry in table.entries.iter().filter(|e| e.pid != 0 && e.running) {
        match counts.iter_mut().find(|(t, _)| *t == entry.tenant) {
            Some((_, n)) => *n += 1,
            None => counts.push((entry.tenant, 1)),
        }
    }
    counts
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    if let Some(mine) = MINE.take() {
        HOLDER.set(None);
        RUNNING.exclusive().entries[mine] = Entry::default();
    }
}
