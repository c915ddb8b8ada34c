//! Running a region of code with some settings changed, restored afterwards,
//! the way a function's `SET` clause works (a GUC nest level).

use pgrx::pg_sys;
use std::ffi::CString;

/// Runs `work` with each `(name, value)` setting applied; the previous values
/// come back when it returns, or when an error aborts the (sub)transaction.
pub fn with_settings<R>(settings: &[(&str, &str)], work: impl FnOnce() -> R) -> R {
    with_settings_as(pg_sys::GucContext::PGC_USERSET, settings, work)
}

/// As [`with_settings`], with the privileges of `context`: `PGC_SUSET` lets the
/// extension change a superuser-only setting of its own (the tenant) after its
/// own checks, as `set_tenant` does.
pub fn with_settings_as<R>(
    context: pg_sys::GucContext::Type,
    settings: &[(&str, &str)],
    work: impl FnOnce() -> R,
) -> R {
    // SAFETY: a new GUC nest level, popped below or by the abort path.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    for (name, value) in settings {
        let name = CString::new(*name).expect("setting names have no NUL");
        let value = CString::new(*value).expect("setting values have no NUL");
        // SAFETY: both strings outlive the call; a bad value raises an ERROR.
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                context,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                pg_sys::PGERROR as i32,
                false,
            );
        }
    }
    let result = work();
    // SAFETY: pops exactly the nest level opened above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}
