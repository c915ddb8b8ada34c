//! The session's tenant and actor, held in two GUCs.
//!
//! `tenancy.tenant_id` is a superuser-only (PGC_SUSET) setting: an application
//! role cannot `SET` it directly, only through `tenancy.set_tenant`, which checks
//! that the tenant exists and is active first. Because it is a GUC, PostgreSQL
//! gives us the semantics users expect for free: `is_local` scoping, rollback of
//! a change made in an aborted transaction, `RESET ALL` / `DISCARD ALL` from a
//! connection pooler clearing it, and propagation to parallel workers.
//!
//! `current_tenant()` runs in every RLS policy, so the assign hook parses the
//! setting once into [`CURRENT_TENANT`] and the function only copies 16 bytes.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};

pub const TENANT_SETTING: &CStr = c"tenancy.tenant_id";
pub const ACTOR_SETTING: &CStr = c"tenancy.actor";

static TENANT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The parsed value of `tenancy.tenant_id`; a backend is single-threaded.
struct TenantCell(Cell<Option<[u8; 16]>>);
// SAFETY: PostgreSQL backends run extension code on one thread only.
unsafe impl Sync for TenantCell {}
static CURRENT_TENANT: TenantCell = TenantCell(Cell::new(None));

pub fn init() {
    // SAFETY: both hooks are #[pg_guard]ed and never panic on valid input.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            TENANT_SETTING,
            c"Tenant whose rows this session may see and write (set with tenancy.set_tenant).",
            c"Empty means no tenant: isolated tables show no rows and accept no writes. \
              Only superusers may SET it directly; other roles call tenancy.set_tenant(), \
              which checks that the tenant exists and is active.",
            &TENANT_ID,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_tenant_id),
            Some(assign_tenant_id),
            None,
        );
    }
    GucRegistry::define_string_guc(
        ACTOR_SETTING,
        c"Application-level user acting in this session, recorded by audit triggers.",
        c"Set with tenancy.set_actor(); empty means unset.",
        &ACTOR,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// Parses a `tenancy.tenant_id` value: empty is "no tenant", otherwise a UUID.
pub fn parse_tenant_setting(value: &str) -> std::result::Result<Option<[u8; 16]>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::parse_str(value)
        .map(|id| Some(*id.as_bytes()))
        .map_err(|_| format!("\"{value}\" is not a UUID"))
}

/// Canonical text for a tenant id, as stored in the setting.
pub fn format_tenant(id: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*id).hyphenated().to_string()
}

#[pg_guard]
unsafe extern "C-unwind" fn check_tenant_id(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL passes a valid pointer to a (possibly NULL) C string.
    let text = unsafe {
        let value = *newval;
        if value.is_null() {
            return true;
        }
        CStr::from_ptr(value).to_string_lossy().into_owned()
    };
    match parse_tenant_setting(&text) {
        Ok(_) => true,
        Err(_) => {
            // SAFETY: the GUC machinery reads these after the hook returns false.
            unsafe {
                pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as i32);
            }
            false
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_tenant_id(newval: *const c_char, _extra: *mut c_void) {
    let parsed = if newval.is_null() {
        None
    } else {
        // SAFETY: the check hook accepted this string; assign hooks must not fail,
        // and a value the check hook accepted always parses.
        let text = unsafe { CStr::from_ptr(newval) }.to_string_lossy();
        parse_tenant_setting(&text).unwrap_or(None)
    };
    CURRENT_TENANT.0.set(parsed);
}

/// The tenant set for this session or transaction, if any.
pub fn current_tenant() -> Option<[u8; 16]> {
    CURRENT_TENANT.0.get()
}

/// The actor set for this session or transaction, if any.
pub fn current_actor() -> Option<String> {
    with_current_actor(|actor| actor.map(|bytes| String::from_utf8_lossy(bytes).into_owned()))
}

/// Calls `f` with the actor's bytes as PostgreSQL holds them (None when
/// unset or empty), without copying them: the audit trigger reads the actor
/// once per statement. `f` must not change settings.
pub fn with_current_actor<R>(f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    // SAFETY: the GUC's value is NULL or a C string PostgreSQL keeps until the
    // setting changes, which `f` does not do.
    let value = unsafe { *ACTOR.as_ptr() };
    let bytes = (!value.is_null())
        .then(|| unsafe { CStr::from_ptr(value) }.to_bytes())
        .filter(|bytes| !bytes.is_empty());
    f(bytes)
}

/// Writes one of our settings with the privileges of `context`.
///
/// `is_local` maps to `SET LOCAL`: the value lasts until the end of the
/// current transaction. The tenant setting is written with PGC_SUSET context,
/// which is what lets `set_tenant` (after its checks) change a setting that
/// the calling role could not `SET` itself.
pub fn write_setting(
    setting: &CStr,
    value: &str,
    is_local: bool,
    context: pg_sys::GucContext::Type,
) {
    let value = CString::new(value).expect("setting values never contain NUL");
    let action = if is_local {
        pg_sys::GucAction::GUC_ACTION_LOCAL
    } else {
        pg_sys::GucAction::GUC_ACTION_SET
    };
    // SAFETY: both strings outlive the call; errors are raised as ERROR.
    unsafe {
        pg_sys::set_config_option(
            setting.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// Runs `work` with `tenant` as the current tenant, restored afterwards (or
/// by the abort path), the way a function's `SET` clause works. For the
/// extension's own maintenance (retention, purge) running as a table owner
/// whom the isolation policy filters: it sets the tenant without
/// `set_tenant`'s checks, so a suspended tenant's rows can still be erased.
pub fn with_tenant<R>(tenant: &[u8; 16], work: impl FnOnce() -> R) -> R {
    let name = TENANT_SETTING.to_str().expect("an ASCII name");
    crate::common::settings::with_settings_as(
        pg_sys::GucContext::PGC_SUSET,
        &[(name, &format_tenant(tenant))],
        work,
    )
}

/// True inside BEGIN ... COMMIT, where a local setting outlives the statement.
pub fn in_transaction_block() -> bool {
    // SAFETY: reads backend-global transaction state.
    unsafe { pg_sys::IsTransactionBlock() }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn empty_setting_is_no_tenant() {
        assert_eq!(parse_tenant_setting(""), Ok(None));
        assert_eq!(parse_tenant_setting("  "), Ok(None));
    }

    #[test]
    fn uuid_setting_round_trips() {
        let text = "6f1c2e1e-8f1a-4a51-9a53-5d0f4f3b2a10";
        let parsed = parse_tenant_setting(text).unwrap().unwrap();
        assert_eq!(format_tenant(&parsed), text);
        // PostgreSQL's uuid input also takes upper case and no hyphens.
        let upper = parse_tenant_setting("6F1C2E1E8F1A4A519A535D0F4F3B2A10")
            .unwrap()
            .unwrap();
        assert_eq!(parsed, upper);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_tenant_setting("acme").is_err());
        assert!(parse_tenant_setting("6f1c2e1e-8f1a-4a51-9a53").is_err());
    }
}
