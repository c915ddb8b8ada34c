//! One relcache callback for the whole extension. A backend has ten relcache
//! callback slots (PostgreSQL's MAX_RELCACHE_CALLBACKS), shared by every
//! library it loads; Citus alone takes most of them, so when each capability
//! registered its own callback a backend loading both ran out
//! ("FATAL: out of relcache_callback_list slots") at connection. Capabilities
//! register plain functions here instead, from their `init()`; the one
//! callback calls each of them in registration order.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// Called with the invalidated relation, or InvalidOid when every cached
/// relation is to be forgotten (a cache reset).
pub type RelcacheHandler = fn(pg_sys::Oid);

thread_local! {
    static HANDLERS: RefCell<Vec<RelcacheHandler>> = const { RefCell::new(Vec::new()) };
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Adds `handler` to what runs on every relcache invalidation; called while
/// the library loads (`_PG_init`).
pub fn on_relcache(handler: RelcacheHandler) {
    HANDLERS.with(|h| h.borrow_mut().push(handler));
    if !REGISTERED.replace(true) {
        // SAFETY: registering a callback while the library loads, as the
        // docs prescribe; this is the only one the extension registers.
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(dispatch), pg_sys::Datum::from(0)) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn dispatch(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Handlers are only added at load time, never from a handler, so the list
    // is not borrowed mutably while they run; each is copied out first.
    let count = HANDLERS.with(|h| h.borrow().len());
    for index in 0..count {
        let handler = HANDLERS.with(|h| h.borrow()[index]);
        handler(relid);
    }
}
