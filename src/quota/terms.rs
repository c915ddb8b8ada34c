//! The period and limit that apply to a tenant's use of a resource, cached
//! per backend across transactions: a counter's first touch in a
//! transaction is then a single one-row UPDATE.
//!
//! Every change to the tables terms come from (resources, tenant quotas,
//! plans, tenants) fires a statement trigger that invalidates the relcache
//! entry of `tenancy.quota_resources` in every backend when its transaction
//! commits; that invalidation empties the cache. So a session applies a new
//! limit from its next transaction (and this session from its next command).

use super::ledger::Key;
use super::store::{self, Terms, TermsLookup};
use crate::common::error;
use crate::common::privilege::as_extension_owner_qualified;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The cache is emptied when it reaches this many entries, then refills.
const CACHE_LIMIT: usize = 100_000;

thread_local! {
    static CACHE: RefCell<HashMap<Key, Terms>> = RefCell::new(HashMap::new());
    /// The OID of `tenancy.quota_resources`, once looked up.
    static RESOURCES_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

pub fn unknown_resource(resource: &str) -> pg_sys::panic::ErrorReport {
    error::invalid_parameter(format!("quota resource \"{resource}\" does not exist")).set_hint(
        "Resources are listed in tenancy.quota_resources; tenancy.define_resource() adds one.",
    )
}

/// The terms for a tenant and resource, 22023 when either does not exist.
pub fn terms_of(key: &Key) -> error::Result<Terms> {
    if let Some(terms) = CACHE.with(|c| c.borrow().get(key).copied()) {
        return Ok(terms);
    }
    remember_resources_oid();
    match as_extension_owner_qualified(|| store::terms(key)) {
        TermsLookup::Found(terms) => {
            CACHE.with(|c| {
                let mut cache = c.borrow_mut();
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(key.clone(), terms)
            });
            Ok(terms)
        }
        TermsLookup::UnknownTenant => Err(crate::tenant::registry::unknown_tenant(&key.tenant)),
        TermsLookup::UnknownResource => Err(unknown_resource(&key.resource)),
    }
}

/// Forgets every cached term (a limit or resource was just changed here).
pub fn forget() {
    CACHE.with(|c| c.borrow_mut().clear());
}

fn remember_resources_oid() {
    if RESOURCES_OID.get() == pg_sys::InvalidOid {
        let oid = crate::common::relation::catalog_relid(c"quota_resources");
        RESOURCES_OID.set(oid.unwrap_or(pg_sys::InvalidOid));
    }
}

/// Relcache invalidation: terms may have changed (or the extension was
/// dropped and created again, with new OIDs).
fn on_relcache(relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == RESOURCES_OID.get() {
        forget();
        RESOURCES_OID.set(pg_sys::InvalidOid);
    }
}

/// Trigger on the tables terms come from: every backend forgets its terms
/// when this transaction commits.
#[pg_trigger]
fn _quota_terms_changed<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    remember_resources_oid();
    // SAFETY: queues a relcache invalidation, sent at commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(RESOURCES_OID.get()) };
    Ok(None)
}

/// Registers the relcache handler; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(on_relcache);
}
