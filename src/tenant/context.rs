//! The session's tenant and actor, held in two GUCs, and the settings around them.
//!
//! `tenancy.tenant_id` is an ordinary (PGC_USERSET) setting whose check hook
//! does what `tenancy.set_tenant` does: the tenant must exist, be active and be
//! one the session may select (`bindings`). So `SET`, `SET LOCAL`,
//! `set_config`, a role or database setting, and a pooler replaying a tracked
//! parameter all get the same checks as `set_tenant`, and any role can use
//! them (a superuser-only setting could not be restored by PgBouncer 1.20+'s
//! `track_extra_parameters`, nor propagated by Citus). Because it is a GUC,
//! PostgreSQL gives us the semantics users expect for free: `is_local`
//! scoping, rollback of a change made in an aborted transaction, `RESET ALL` /
//! `DISCARD ALL` from a connection pooler clearing it, and propagation to
//! parallel workers. It is marked GUC_REPORT: every change reaches the client.
//!
//! `current_tenant()` runs in every RLS policy, so the assign hook parses the
//! setting once into [`CURRENT_TENANT`] and the function only copies 16 bytes
//! (and compares four values to confirm the binding check it already made).
//!
//! Two more settings: `tenancy.require_local_context` (superuser-only, set per
//! role or database) refuses session-level tenants and actors, for roles
//! behind a transaction-pooling pooler (`scope`); `tenancy.tenant_claim` names
//! a JWT claim the tenant comes from when none is set (`claims`).

use super::bindings;
use crate::common::error;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};

pub const TENANT_SETTING: &CStr = c"tenancy.tenant_id";
pub const ACTOR_SETTING: &CStr = c"tenancy.actor";

static TENANT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUIRE_LOCAL: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static TENANT_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The parsed value of `tenancy.tenant_id`; a backend is single-threaded.
struct TenantCell(Cell<Option<[u8; 16]>>);
// SAFETY: PostgreSQL backends run extension code on one thread only.
unsafe impl Sync for TenantCell {}
static CURRENT_TENANT: TenantCell = TenantCell(Cell::new(None));

thread_local! {
    /// A tenant the extension's own code has just checked (set_tenant) or
    /// trusts (retention and purge): the check hook lets exactly that value
    /// through once, without checking it again.
    static VOUCHED_FOR: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
    /// Inside `with_tenant`: the extension's maintenance acts for a tenant
    /// whatever the acting roles' bindings.
    static MAINTENANCE: Cell<u32> = const { Cell::new(0) };
    /// A tenant a role or database setting gave the session at login on a
    /// Citus node, where it could not be checked: checked at first use.
    static UNVERIFIED_LOGIN_TENANT: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
    /// While that tenant is being checked.
    static VERIFYING_LOGIN_TENANT: Cell<bool> = const { Cell::new(false) };
}

pub fn init() {
    // SAFETY: both hooks are #[pg_guard]ed and never panic on valid input.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            TENANT_SETTING,
            c"Tenant whose rows this session may see and write (tenancy.set_tenant sets it).",
            c"Empty means no tenant: isolated tables show no rows and accept no writes. \
              Any value must name an existing, active tenant the session may select \
              (tenancy.bind_role); SET, set_config and tenancy.set_tenant check the same.",
            &TENANT_ID,
            GucContext::Userset,
            GucFlags::REPORT,
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
    GucRegistry::define_bool_guc(
        c"tenancy.require_local_context",
        c"Refuses session-level tenants and actors: only is_local (SET LOCAL) ones.",
        c"For roles behind a transaction-pooling pooler, where a session-level setting \
          would outlive the transaction and reach the next client of the server connection. \
          Set it per role or database (ALTER ROLE ... SET).",
        &REQUIRE_LOCAL,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"tenancy.tenant_claim",
        c"JWT claim (in request.jwt.claims) that names the tenant when none is set.",
        c"A claim name or dotted path, e.g. tenant_id or app_metadata.tenant_id. \
          The tenant it names is checked like set_tenant's (exists, active, allowed \
          for the role). Empty (the default) turns this off.",
        &TENANT_CLAIM,
        GucContext::Suset,
        GucFlags::default(),
    );
    super::scope::init();
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
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL passes a valid pointer to a (possibly NULL) C string.
    let text = unsafe {
        let value = *newval;
        if value.is_null() {
            return true;
        }
        CStr::from_ptr(value).to_string_lossy().into_owned()
    };
    let tenant = match parse_tenant_setting(&text) {
        Ok(None) => return true,
        Ok(Some(tenant)) => tenant,
        Err(_) => {
            // SAFETY: the GUC machinery reads this after the hook returns false.
            unsafe {
                pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as i32);
            }
            return false;
        }
    };
    if VOUCHED_FOR.get() == Some(tenant) {
        VOUCHED_FOR.set(None);
        return true;
    }
    match checkable(source) {
        Checkable::Yes => {}
        Checkable::NoNeed => return true,
        Checkable::Impossible => {
            reject(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                &error::insufficient_privilege(
                    "tenancy.tenant_id can only be set inside a transaction, where it can be checked",
                ),
            );
            return false;
        }
    }
    // SAFETY: reads a backend-global flag.
    let starting = unsafe { pg_sys::Mode } == pg_sys::ProcessingMode::InitProcessing;
    if starting && crate::common::citus::citus().is_some() {
        // At login on a Citus node no query can run yet (Citus's planner
        // crashes the backend there): the tenant is checked, as strictly,
        // the first time the session uses it (`current_tenant`).
        UNVERIFIED_LOGIN_TENANT.set(Some(tenant));
        return true;
    }
    match refusal(&tenant) {
        None => true,
        Some((code, report)) => {
            reject(code, &report);
            false
        }
    }
}

/// Why the session may not take `tenant` (unknown, not active, not one the
/// session may select), or None when it may.
fn refusal(tenant: &[u8; 16]) -> Option<(PgSqlErrorCode, pgrx::pg_sys::panic::ErrorReport)> {
    use super::registry;
    // At login (a role's or database's setting, a startup option, with the
    // library preloaded) there is a transaction but no snapshot yet to read with.
    // SAFETY: pushed here and popped below; an error aborts the transaction,
    // whose cleanup resets the snapshot stack.
    let pushed = unsafe {
        let needed = !pg_sys::ActiveSnapshotSet();
        if needed {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        needed
    };
    let refusal = match registry::tenant_status(tenant) {
        None => Some((
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            registry::unknown_tenant(tenant),
        )),
        Some(status) if status != registry::TenantStatus::Active.as_str() => Some((
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            registry::not_active(tenant, &status),
        )),
        Some(_) if !bindings::session_access().allows(tenant) => Some((
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            bindings::refused(tenant),
        )),
        Some(_) => None,
    };
    if pushed {
        // SAFETY: pops the snapshot pushed above.
        unsafe { pg_sys::PopActiveSnapshot() };
    }
    refusal
}

/// Checks a tenant taken at login without a check (on Citus, see
/// `check_tenant_id`) the first time it is used: every use raises the
/// refusal until the session sets another tenant.
fn verify_login_tenant(tenant: &[u8; 16]) {
    if UNVERIFIED_LOGIN_TENANT.get() != Some(*tenant) || VERIFYING_LOGIN_TENANT.get() {
        return;
    }
    /// Clears the flag however the check ends (an error unwinds through it).
    struct Verifying;
    impl Drop for Verifying {
        fn drop(&mut self) {
            VERIFYING_LOGIN_TENANT.set(false);
        }
    }
    // The check's own catalog queries reach this again (they carry the tenant).
    VERIFYING_LOGIN_TENANT.set(true);
    let _verifying = Verifying;
    if let Some((_, report)) = refusal(tenant) {
        report.report(PgLogLevel::ERROR);
    }
    UNVERIFIED_LOGIN_TENANT.set(None);
}

enum Checkable {
    Yes,
    /// Nothing to check: a parallel worker restores what its leader checked;
    /// a superuser session may set any tenant (the administrator's path; a
    /// bound role it switches to is still checked when the tenant is used);
    /// a database without pg_tenancy has no tenants.
    NoNeed,
    /// Outside a transaction no catalog can be read: a value there (a library
    /// loaded by session_preload_libraries replaying a setting) is refused,
    /// except from the configuration file, which only a superuser writes.
    Impossible,
}

fn checkable(source: pg_sys::GucSource::Type) -> Checkable {
    // SAFETY: reads backend-global state; the syscache lookups happen only
    // inside a transaction.
    unsafe {
        if pg_sys::ParallelWorkerNumber >= 0 || pg_sys::InitializingParallelWorker {
            return Checkable::NoNeed;
        }
        if !pg_sys::IsTransactionState() || pg_sys::MyDatabaseId == pg_sys::InvalidOid {
            return if source <= pg_sys::GucSource::PGC_S_FILE {
                Checkable::NoNeed
            } else {
                Checkable::Impossible
            };
        }
        if pg_sys::superuser_arg(pg_sys::GetSessionUserId())
            || crate::common::relation::catalog_relid(c"tenants").is_none()
        {
            return Checkable::NoNeed;
        }
    }
    Checkable::Yes
}

/// Hands an error report to the GUC machinery, which raises it (at the level
/// the caller of set_config_option chose) after the check hook returns false.
fn reject(code: PgSqlErrorCode, report: &pgrx::pg_sys::panic::ErrorReport) {
    let copy = |text: &str| {
        let text = CString::new(text.replace('\0', "")).expect("no NUL");
        // SAFETY: pstrdup copies into the current memory context, where the GUC
        // machinery expects these strings.
        unsafe { pg_sys::pstrdup(text.as_ptr()) }
    };
    // SAFETY: the GUC machinery reads these after the hook returns false.
    unsafe {
        pg_sys::GUC_check_errcode(code as i32);
        pg_sys::GUC_check_errmsg_string = copy(report.message());
        if let Some(detail) = report.detail() {
            pg_sys::GUC_check_errdetail_string = copy(detail);
        }
        if let Some(hint) = report.hint() {
            pg_sys::GUC_check_errhint_string = copy(hint);
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
    if CURRENT_TENANT.0.replace(parsed) != parsed && crate::common::citus::citus().is_some() {
        // On Citus, plans name the tenant to prune shards (crate::citus's
        // prune): every cached plan of this backend must be made again.
        // SAFETY: marks cached plans invalid, without catalog access: safe
        // wherever a setting is assigned, at transaction end included.
        unsafe { pg_sys::ResetPlanCache() };
    }
}

/// The tenant of this session or transaction, if any: the one set (by
/// `set_tenant` or the setting), else the one the JWT claim names (when
/// `tenancy.tenant_claim` is set). Either way the session must be allowed to
/// select it: checked here because a tenant can be set first and the role
/// switched after (`SET ROLE`), or set by a superuser for a bound role.
pub fn current_tenant() -> Option<[u8; 16]> {
    let tenant = CURRENT_TENANT
        .0
        .get()
        .or_else(super::claims::tenant_from_claims)?;
    verify_login_tenant(&tenant);
    if MAINTENANCE.get() == 0 {
        bindings::check_in_use(&tenant);
    }
    Some(tenant)
}

/// The tenant set with `tenancy.tenant_id` (or `set_tenant`), unchecked; not
/// one from a JWT claim.
pub fn tenant_set() -> Option<[u8; 16]> {
    CURRENT_TENANT.0.get()
}

/// The tenant another node must take as this session's when a statement
/// reaches it (Citus workers, `crate::citus`): the tenant in effect, as set
/// or from the JWT claim, unchecked (the other node checks it as strictly);
/// `Some("")` for none when the session starts with a tenant of its own that
/// it has since cleared; None when there is nothing to carry (the other
/// node's defaults, the same roles' and database's settings, agree).
pub fn tenant_to_carry() -> Option<String> {
    match CURRENT_TENANT
        .0
        .get()
        .or_else(super::claims::tenant_from_claims)
    {
        // A login tenant not yet checked here is checked by the worker it
        // reaches; checking it here would refuse every statement, set_tenant's too.
        Some(tenant) => Some(format_tenant(&tenant)),
        None if super::scope::tenant_has_login_default() => Some(String::new()),
        None => None,
    }
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
        // SAFETY: `value` was checked non-null: a C string the GUC owns.
        .then(|| unsafe { CStr::from_ptr(value) }.to_bytes())
        .filter(|bytes| !bytes.is_empty());
    f(bytes)
}

/// Writes one of our settings.
///
/// `is_local` maps to `SET LOCAL`: the value lasts until the end of the
/// current transaction.
pub fn write_setting(setting: &CStr, value: &str, is_local: bool) {
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
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// Sets the tenant `set_tenant` has already checked, so the check hook does
/// not check it a second time.
pub fn write_checked_tenant(tenant: &[u8; 16], is_local: bool) {
    let _vouched = vouch_for(tenant);
    write_setting(TENANT_SETTING, &format_tenant(tenant), is_local);
}

/// Lets `tenant` through the check hook once, until the guard drops (also
/// when an error unwinds past it).
pub fn vouch_for(tenant: &[u8; 16]) -> impl Drop {
    struct Vouched;
    impl Drop for Vouched {
        fn drop(&mut self) {
            VOUCHED_FOR.set(None);
        }
    }
    VOUCHED_FOR.set(Some(*tenant));
    Vouched
}

/// Runs `work` with `tenant` as the current tenant, restored afterwards (or
/// by the abort path), the way a function's `SET` clause works. For the
/// extension's own maintenance (retention, purge) running as a table owner
/// whom the isolation policy filters: it sets the tenant without
/// `set_tenant`'s checks, so a suspended tenant's rows can still be erased,
/// whatever the roles involved are bound to.
pub fn with_tenant<R>(tenant: &[u8; 16], work: impl FnOnce() -> R) -> R {
    struct Maintenance;
    impl Drop for Maintenance {
        fn drop(&mut self) {
            MAINTENANCE.set(MAINTENANCE.get().saturating_sub(1));
        }
    }
    let name = TENANT_SETTING.to_str().expect("an ASCII name");
    MAINTENANCE.set(MAINTENANCE.get() + 1);
    let _maintenance = Maintenance;
    let vouched = vouch_for(tenant);
    crate::common::settings::with_settings(&[(name, &format_tenant(tenant))], || {
        drop(vouched);
        work()
    })
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
