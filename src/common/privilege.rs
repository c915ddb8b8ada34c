//! Running a piece of work with the extension owner's privileges.
//!
//! The catalogs in schema `tenancy` belong to the role that ran
//! `CREATE EXTENSION`; ordinary roles get no direct write access to them.
//! API functions check what the *caller* may do (own the table, for example)
//! and then write the catalog rows through [`as_extension_owner`], the same
//! switch `SECURITY DEFINER` makes, but for a region of Rust code instead of a
//! whole function. A function-level `SECURITY DEFINER` with `SET search_path`
//! would undo `set_tenant(..., is_local => true)` at function exit, and it
//! would hide the caller's identity from the ownership checks.

use super::settings::with_settings;
use pgrx::pg_sys;

/// Schema whose owner is treated as the extension owner.
const EXTENSION_SCHEMA: &std::ffi::CStr = c"tenancy";

/// The search_path every privileged region runs with, so no object of the
/// caller's (an operator in a schema earlier in their path, a temp table) can be
/// picked up by our SQL while it runs as the extension owner.
const SAFE_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// The owner of schema `tenancy`, which `CREATE EXTENSION` creates for its
/// caller; looked up once per transaction (hot paths switch to it per call).
pub fn extension_owner() -> pg_sys::Oid {
    thread_local! {
        static CACHED: std::cell::Cell<(pg_sys::LocalTransactionId, pg_sys::Oid)> =
            const { std::cell::Cell::new((0, pg_sys::InvalidOid)) };
    }
    let transaction = local_transaction_id();
    let (cached_for, owner) = CACHED.get();
    if cached_for == transaction && owner != pg_sys::InvalidOid {
        return owner;
    }
    let owner = lookup_extension_owner();
    CACHED.set((transaction, owner));
    owner
}

/// This backend's current local transaction id (never reused within a session).
fn local_transaction_id() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is this backend's PGPROC, valid for the life of the backend.
    unsafe {
        #[cfg(any(feature = "pg15", feature = "pg16"))]
        {
            (*pg_sys::MyProc).lxid
        }
        #[cfg(not(any(feature = "pg15", feature = "pg16")))]
        {
            (*pg_sys::MyProc).vxid.lxid
        }
    }
}

fn lookup_extension_owner() -> pg_sys::Oid {
    // SAFETY: catalog lookups through the syscache inside a transaction; the tuple is
    // released before returning and only a by-value field is read from it.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(EXTENSION_SCHEMA.as_ptr(), false);
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            namespace.into(),
        );
        if tuple.is_null() {
            pgrx::error!("cache lookup failed for schema tenancy ({namespace:?})");
        }
        let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_namespace>(tuple);
        let owner = (*form).nspowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}

/// Runs `work` as the extension owner with a fixed, safe search_path.
///
/// On an error inside `work`, PostgreSQL's (sub)transaction abort restores the
/// user id and pops the GUC nest level, exactly as it does for SECURITY DEFINER.
pub fn as_extension_owner<R>(work: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), false, work)
}

/// Runs `work` as the extension owner but keeps the caller's search_path:
/// for hot paths running kept plans whose SQL resolves nothing through the
/// path (every relation, function, type and operator schema-qualified, as in
/// `OPERATOR(pg_catalog.=)`), so a caller's objects can never be picked up.
/// It saves the settings work `as_extension_owner` does per call.
pub fn as_extension_owner_qualified<R>(work: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context: i32 = 0;
    // SAFETY: as in `as_role`.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            extension_owner(),
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    let result = work();
    // SAFETY: restores the user and security context saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Runs `work` as a table's owner in a security-restricted operation, the way
/// PostgreSQL itself runs VACUUM, ANALYZE or REFRESH MATERIALIZED VIEW: the
/// owner's triggers, defaults and index expressions then run with the owner's
/// rights, never with the rights of whoever (a superuser, the scheduler)
/// started the maintenance.
pub fn as_table_owner<R>(owner: pg_sys::Oid, work: impl FnOnce() -> R) -> R {
    as_role(owner, true, work)
}

/// The owner of relation `oid` (from the syscache).
pub fn relation_owner(oid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: a syscache lookup inside a transaction; only a by-value field
    // is read before the tuple is released.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as i32, oid.into());
        if tuple.is_null() {
            pgrx::error!("cache lookup failed for relation {oid:?}");
        }
        let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple);
        let owner = (*form).relowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}

fn as_role<R>(role: pg_sys::Oid, restricted: bool, work: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context: i32 = 0;
    let mut context_flags = pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32;
    if restricted {
        context_flags |= pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    }
    // SAFETY: plain backend-global state accessors, as fmgr_security_definer uses them.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(role, saved_context | context_flags);
    }
    let result = with_settings(&[("search_path", SAFE_SEARCH_PATH)], work);
    // SAFETY: restores what was saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}
