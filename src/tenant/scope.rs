//! Pooler-safe context: `tenancy.require_local_context`.
//!
//! Behind a transaction-pooling pooler, consecutive transactions of one server
//! connection belong to different clients. A tenant (or actor) set at session
//! level outlives its transaction and is what the next client sees. With the
//! setting on (per role or database), a session-level tenant or actor is an
//! error: `set_tenant(..., is_local => false)` and `set_actor` refuse at once,
//! and every other path (`SET`, `set_config(..., false)`, a function's own
//! `SET`) is refused when its transaction commits, which rolls it back.
//!
//! The commit-time check reads the settings' GUC stacks: at top-level commit
//! the stack entry of the transaction says whether a session-level value was
//! set in it (GUC_SET, or GUC_SET_LOCAL with the session value masked), and
//! which value would survive. A surviving value that is empty, or the role's
//! own default (what every session of the role starts with), leaks nothing.

use super::context::{ACTOR_SETTING, REQUIRE_LOCAL, TENANT_SETTING};
use crate::common::error;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;

/// Registers the commit-time check; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback while the library loads.
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut()) };
}

/// 55000 for a session-level tenant or actor while the setting is on.
pub fn session_level_refused(what: &str) -> pgrx::pg_sys::panic::ErrorReport {
    error::not_in_prerequisite_state(format!(
        "a session-level {what} is not allowed here: tenancy.require_local_context is on"
    ))
    .set_detail(
        "Behind a transaction-pooling pooler a session-level setting outlives the transaction \
         and reaches the next client of the same server connection.",
    )
    .set_hint(
        "Call it with is_local => true inside the transaction (SET LOCAL, set_config(..., true)).",
    )
}

/// 55000 when the setting is on and `is_local` is false.
pub fn require_local(is_local: bool, what: &str) -> crate::common::error::Result<()> {
    if !is_local && REQUIRE_LOCAL.get() {
        Err(session_level_refused(what))
    } else {
        Ok(())
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if !matches!(event, XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE) || !REQUIRE_LOCAL.get() {
        return;
    }
    for (index, setting, what) in [(0, TENANT_SETTING, "tenant"), (1, ACTOR_SETTING, "actor")] {
        // SAFETY: at pre-commit, on this backend's own GUC table.
        if unsafe { session_value_set_in_transaction(index, setting) } {
            session_level_refused(what)
                .set_detail(format!(
                    "{} was set at session level in this transaction (SET, set_config(..., false)); \
                     the transaction is rolled back.",
                    setting.to_string_lossy()
                ))
                .report(PgLogLevel::ERROR);
        }
    }
}

/// Whether this top-level transaction set `setting` at session level to a
/// value that would survive it and is neither empty nor the role's default.
///
/// # Safety
/// Call at pre-commit of a top-level transaction (no nested GUC levels open).
unsafe fn session_value_set_in_transaction(index: usize, setting: &CStr) -> bool {
    // SAFETY: backend-local GUC internals; an entry, once found, never moves.
    unsafe {
        let config = entry(index, setting);
        if config.is_null() {
            return false;
        }
        let stack = (*config).gen_.stack;
        if stack.is_null() {
            return false;
        }
        let surviving = match (*stack).state {
            pg_sys::GucStackState::GUC_SET => *(*config).variable,
            pg_sys::GucStackState::GUC_SET_LOCAL => (*stack).masked.val.stringval,
            _ => return false,
        };
        let text = |p: *const std::ffi::c_char| {
            if p.is_null() {
                &[][..]
            } else {
                CStr::from_ptr(p).to_bytes()
            }
        };
        let value = text(surviving);
        !value.is_empty() && value != text((*config).reset_val)
    }
}

/// The GUC table entry of the tenant (index 0) or actor (index 1) setting,
/// found once per backend (null if missing).
///
/// # Safety
/// Backend-local GUC internals, read inside a transaction.
unsafe fn entry(index: usize, setting: &CStr) -> *mut pg_sys::config_string {
    thread_local! {
        static ENTRIES: std::cell::Cell<[*mut pg_sys::config_string; 2]> =
            const { std::cell::Cell::new([std::ptr::null_mut(); 2]) };
    }
    let mut entries = ENTRIES.get();
    if entries[index].is_null() {
        // SAFETY: as this function's contract.
        entries[index] = unsafe { find_string_setting(setting) };
        ENTRIES.set(entries);
    }
    entries[index]
}

/// Whether the session starts with a tenant of its own: a role or database
/// setting, or a startup option, gives `tenancy.tenant_id` a value that
/// `RESET` returns to.
pub fn tenant_has_login_default() -> bool {
    // SAFETY: backend-local GUC internals; reset_val is NULL or a C string
    // the GUC machinery owns.
    unsafe {
        let config = entry(0, TENANT_SETTING);
        !config.is_null() && !(*config).reset_val.is_null() && *(*config).reset_val != 0
    }
}

/// Our string setting's entry in PostgreSQL's GUC table (null if missing).
///
/// # Safety
/// Backend-local GUC internals; the entry of a defined setting never moves.
unsafe fn find_string_setting(name: &CStr) -> *mut pg_sys::config_string {
    // SAFETY: backend-local GUC internals, read inside a transaction.
    unsafe {
        #[cfg(feature = "pg15")]
        let (variables, count) = (pg_sys::get_guc_variables(), pg_sys::GetNumConfigOptions());
        #[cfg(not(feature = "pg15"))]
        let (variables, count) = {
            let mut count = 0;
            (pg_sys::get_guc_variables(&mut count), count)
        };
        for index in 0..count.max(0) as usize {
            let config = *variables.add(index);
            if !config.is_null()
                && CStr::from_ptr((*config).name) == name
                && (*config).vartype == pg_sys::config_type::PGC_STRING
            {
                return config.cast();
            }
        }
        std::ptr::null_mut()
    }
}
