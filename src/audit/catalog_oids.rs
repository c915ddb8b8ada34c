//! OIDs of the audit log's catalog objects, looked up once per backend and
//! forgotten when the audit log's relcache entry is invalidated (the
//! extension dropped and created again gives them new OIDs).

use pgrx::pg_sys;
use std::cell::Cell;

thread_local! {
    static AUDIT_LOG: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    static SEQUENCE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

fn lookup(name: &std::ffi::CStr) -> pg_sys::Oid {
    crate::common::relation::catalog_relid(name).unwrap_or_else(|| {
        pgrx::error!("relation tenancy.{} does not exist", name.to_string_lossy())
    })
}

fn cached(
    cell: &'static std::thread::LocalKey<Cell<pg_sys::Oid>>,
    name: &std::ffi::CStr,
) -> pg_sys::Oid {
    cell.with(|c| {
        if c.get() == pg_sys::InvalidOid {
            c.set(lookup(name));
        }
        c.get()
    })
}

/// `tenancy.audit_log`.
pub fn audit_log() -> pg_sys::Oid {
    cached(&AUDIT_LOG, c"audit_log")
}

/// `tenancy.audit_log_id_seq`.
pub fn sequence() -> pg_sys::Oid {
    cached(&SEQUENCE, c"audit_log_id_seq")
}

/// The cached audit log OID, or InvalidOid if not looked up yet.
pub fn cached_audit_log() -> pg_sys::Oid {
    AUDIT_LOG.with(Cell::get)
}

/// Relcache callback: forget both when the audit log (or everything) is invalidated.
pub fn forget(relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == cached_audit_log() {
        AUDIT_LOG.with(|c| c.set(pg_sys::InvalidOid));
        SEQUENCE.with(|c| c.set(pg_sys::InvalidOid));
    }
}
