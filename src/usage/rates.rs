//! The rate and burst that apply to a tenant's resource (its own, else its
//! plan's, from `tenancy.throttle_rates`), remembered per backend: the
//! throttle's hot path reads no table. Forgotten when the rates or the
//! tenants change (their triggers invalidate `tenancy.throttle_rates`).

use super::bucket::Rate;
use crate::common::privilege::as_extension_owner;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// What a tenant's resource is limited to: None when the tenant does not
/// exist, `Some(None)` when nothing limits the resource.
type Known = Option<Option<Rate>>;

thread_local! {
    static RATES: RefCell<HashMap<[u8; 16], HashMap<String, Known>>> = RefCell::new(HashMap::new());
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    /// Set by an invalidation; a lookup made while one arrived is used once.
    static STALE: Cell<bool> = const { Cell::new(false) };
}

/// Registers the cache's invalidation; called from `_PG_init`. The callback
/// only raises a flag (it may interrupt a lookup): the map is dropped the
/// next time it is used.
pub fn init() {
    crate::common::invalidation::on_relcache(|relid| {
        if relid == pg_sys::InvalidOid || relid == TABLE.get() {
            STALE.set(true);
        }
    });
}

/// The limit of `tenant`'s `resource` (see [`Known`]).
pub fn rate(tenant: &[u8; 16], resource: &str) -> Known {
    if STALE.replace(false) {
        RATES.with(|r| r.borrow_mut().clear());
    }
    if let Some(known) = RATES.with(|r| {
        r.borrow()
            .get(tenant)
            .and_then(|m| m.get(resource))
            .copied()
    }) {
        return known;
    }
    let known = load(tenant, resource);
    if !STALE.get() {
        RATES.with(|r| {
            r.borrow_mut()
                .entry(*tenant)
                .or_default()
                .insert(resource.to_owned(), known)
        });
    }
    known
}

fn load(tenant: &[u8; 16], resource: &str) -> Known {
    if TABLE.get() == pg_sys::InvalidOid {
        TABLE.set(crate::common::relation::catalog_relid(c"throttle_rates").unwrap_or_default());
    }
    as_extension_owner(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT EXISTS (SELECT FROM tenancy.tenants t WHERE t.id = $1),
                            r.rate_per_second, r.burst
                       FROM (SELECT 1) one
                       LEFT JOIN LATERAL (
                            SELECT r.rate_per_second, r.burst FROM tenancy.throttle_rates r
                             WHERE r.resource = $2
                               AND (r.tenant_id = $1
                                    OR r.plan = (SELECT t.plan FROM tenancy.tenants t WHERE t.id = $1))
                             ORDER BY r.tenant_id IS NULL
                             LIMIT 1) r ON true",
                    Some(1),
                    &[pgrx::Uuid::from_bytes(*tenant).into(), resource.into()],
                )?
                .first();
            let exists = row.get::<bool>(1)?.unwrap_or(false);
            let rate = match (row.get::<f64>(2)?, row.get::<f64>(3)?) {
                (Some(per_second), Some(burst)) => Some(Rate { per_second, burst }),
                _ => None,
            };
            Ok::<_, pgrx::spi::Error>(exists.then_some(rate))
        })
        .expect("reading the throttle rates failed")
    })
}
