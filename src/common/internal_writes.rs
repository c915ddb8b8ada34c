//! A scope in which the extension itself writes to tables that refuse every
//! other writer: the audit log and its hash chains are append-only for users
//! (issue 15), yet partition maintenance moves log rows out of the default
//! partition, `seal_audit` extends the chains and `purge_tenant` erases a
//! tenant's rows. Their guard triggers let a write through only inside this
//! scope, which only this library's Rust code can open: no setting, function
//! or grant reaches it from SQL.

use pgrx::pg_guard;
use pgrx::pg_sys;
use std::cell::Cell;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether the running code is inside [`with_internal_writes`].
pub fn allowed() -> bool {
    DEPTH.get() > 0
}

/// Closes the scope when `work` returns or unwinds (a PostgreSQL error raised
/// inside it reaches Rust as a panic that unwinds through here).
struct Scope;

impl Drop for Scope {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get().saturating_sub(1));
    }
}

/// Runs `work` with the extension's own writes to guarded tables allowed.
pub fn with_internal_writes<R>(work: impl FnOnce() -> R) -> R {
    DEPTH.set(DEPTH.get() + 1);
    let _scope = Scope;
    work()
}

/// Belt and braces: whatever happened, a transaction that ends closes the scope.
#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        DEPTH.set(0);
    }
}

/// Registers the transaction callback; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback while the library loads.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}
