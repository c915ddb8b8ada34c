//! Tenants bound to roles (issue 15). `tenancy.bind_role(role, tenants)`
//! restricts a role, and every role that is a member of it, to those tenants:
//! `set_tenant`, `SET tenancy.tenant_id`, `set_config`, a role or database
//! setting, a JWT claim and `find_tenant` all check it, and so does
//! `current_tenant()` itself, so a tenant chosen before `SET ROLE` (or by a
//! superuser for a bound role) is refused when it is used.
//!
//! Who is checked: the session user and the current user, both. A binding that
//! applies to either restricts the session (an unbound role reached by
//! `SET ROLE` does not lift its session user's binding, and a SECURITY DEFINER
//! function does not lift its caller's). Superusers are never bound: they
//! bypass row-level security anyway. A role that several bindings apply to
//! (through memberships) may act for any tenant of any of them, as it could by
//! `SET ROLE` to each.
//!
//! The bindings live in `tenancy.role_bindings`; each backend keeps them in
//! memory and reloads them when that table changes (bind_role and unbind_role
//! send a relcache invalidation to every backend), when role memberships or
//! attributes change (syscache callbacks), or when the tenants table changes
//! (a suspended tenant must stop being valid for cached JWT claims).

use crate::common::error;
use crate::common::privilege::as_extension_owner_qualified;
use crate::common::relation::catalog_relid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// What a session may select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Any tenant (no binding applies, or a superuser).
    Any,
    /// Only these tenants (sorted, no duplicates; may be empty).
    Only(Vec<[u8; 16]>),
}

impl Access {
    pub fn allows(&self, tenant: &[u8; 16]) -> bool {
        match self {
            Access::Any => true,
            Access::Only(tenants) => tenants.binary_search(tenant).is_ok(),
        }
    }

    /// Both restrictions at once (the session user's and the current user's).
    pub fn intersect(self, other: Access) -> Access {
        match (self, other) {
            (Access::Any, other) | (other, Access::Any) => other,
            (Access::Only(a), Access::Only(b)) => Access::Only(
                a.into_iter()
                    .filter(|t| b.binary_search(t).is_ok())
                    .collect(),
            ),
        }
    }

    /// The union of the tenant lists of every binding in `lists`; Any when none.
    pub fn union_of<'a>(lists: impl IntoIterator<Item = &'a [[u8; 16]]>) -> Access {
        let mut found = false;
        let mut tenants = Vec::new();
        for list in lists {
            found = true;
            tenants.extend_from_slice(list);
        }
        if !found {
            return Access::Any;
        }
        tenants.sort_unstable();
        tenants.dedup();
        Access::Only(tenants)
    }
}

/// One row of `tenancy.role_bindings`.
struct Binding {
    role: pg_sys::Oid,
    tenants: Vec<[u8; 16]>,
}

/// (generation, session user, current user, tenant): a combination checked once.
type AllowedKey = (u64, pg_sys::Oid, pg_sys::Oid, [u8; 16]);

struct Loaded {
    generation: u64,
    /// The table's OID, to recognise its relcache invalidations.
    relid: pg_sys::Oid,
    bindings: Rc<Vec<Binding>>,
    per_role: HashMap<pg_sys::Oid, Access>,
}

thread_local! {
    /// Bumped by every invalidation that can change what a session may select.
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    /// The relations whose invalidation bumps the generation.
    static WATCHED: Cell<[pg_sys::Oid; 2]> = const { Cell::new([pg_sys::InvalidOid; 2]) };
    /// The last (generation, session user, current user, tenant) found allowed.
    static LAST_ALLOWED: Cell<Option<AllowedKey>> = const { Cell::new(None) };
}

/// The current generation: anything cached under an older one is stale.
pub fn generation() -> u64 {
    GENERATION.get()
}

fn invalidate() {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

fn on_relcache(relid: pg_sys::Oid) {
    // InvalidOid means "every relation" (a cache reset).
    if relid == pg_sys::InvalidOid || WATCHED.get().contains(&relid) {
        invalidate();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_syscache(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    invalidate();
    // A plan with the tenant as a constant (`citus::policy`) holds only while
    // the roles may act for it; PostgreSQL replans on a change of role, not
    // on a change of what a role is a member of. Role changes are rare, and
    // marking every plan stale reads no catalog, as a callback must not.
    // SAFETY: flags the backend's cached plans; allowed in an invalidation callback.
    unsafe { pg_sys::ResetPlanCache() };
}

/// Registers the invalidation callbacks; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(on_relcache);
    // SAFETY: registering callbacks while the library loads, as the docs prescribe.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE as i32,
            Some(on_syscache),
            pg_sys::Datum::from(0),
        );
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            Some(on_syscache),
            pg_sys::Datum::from(0),
        );
    }
}

/// Makes every backend (this one included, at the next command) reload the
/// bindings: called after writing `tenancy.role_bindings` or `tenancy.tenants`.
pub fn broadcast_change(table: &std::ffi::CStr) {
    if let Some(relid) = catalog_relid(table) {
        // SAFETY: queues an invalidation message, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    }
}

fn load() -> Vec<Binding> {
    // A Citus worker knows bindings from its copy of the coordinator's, which
    // names roles (their OIDs differ from node to node).
    let sql = if crate::common::citus::on_worker() {
        format!(
            "SELECT r.oid, b.tenants FROM {} b
               JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) b.role_name",
            crate::common::citus::local_copy(c"cluster_role_bindings")
        )
    } else {
        "SELECT b.role::pg_catalog.oid, b.tenants FROM tenancy.role_bindings b
          WHERE EXISTS (SELECT FROM pg_catalog.pg_authid a WHERE a.oid OPERATOR(pg_catalog.=) b.role)"
            .to_owned()
    };
    let rows: Vec<(pg_sys::Oid, Vec<pgrx::Uuid>)> = as_extension_owner_qualified(|| {
        Spi::connect(|client| {
            client
                .select(&sql, None, &[])?
                .map(|row| {
                    Ok((
                        row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                        row.get::<Vec<pgrx::Uuid>>(2)?.unwrap_or_default(),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading tenancy.role_bindings failed")
    });
    rows.into_iter()
        .map(|(role, tenants)| Binding {
            role,
            tenants: tenants.iter().map(|t| *t.as_bytes()).collect(),
        })
        .collect()
}

/// What `role` may select by itself (before intersecting with the other user).
pub fn access_of(role: pg_sys::Oid) -> Access {
    // SAFETY: a syscache lookup inside a transaction.
    if unsafe { pg_sys::superuser_arg(role) } {
        return Access::Any;
    }
    // Without the table (SQL older than 0.2.0), nothing can be bound. Its
    // absence is not cached: the update that creates it must be seen at once.
    let Some(relid) = catalog_relid(c"role_bindings") else {
        return Access::Any;
    };
    let generation = generation();
    let fresh = LOADED.with(|l| {
        l.borrow()
            .as_ref()
            .is_some_and(|loaded| loaded.generation == generation && loaded.relid == relid)
    });
    if !fresh {
        WATCHED.set([
            relid,
            catalog_relid(c"tenants").unwrap_or(pg_sys::InvalidOid),
        ]);
        let bindings = Rc::new(load());
        LOADED.with(|l| {
            *l.borrow_mut() = Some(Loaded {
                generation,
                relid,
                bindings,
                per_role: HashMap::new(),
            })
        });
    }
    if let Some(access) = LOADED.with(|l| {
        l.borrow()
            .as_ref()
            .and_then(|x| x.per_role.get(&role).cloned())
    }) {
        return access;
    }
    let bindings = LOADED
        .with(|l| l.borrow().as_ref().map(|x| x.bindings.clone()))
        .unwrap_or_default();
    // SAFETY: role membership lookups (cached by PostgreSQL) inside a transaction.
    let access = Access::union_of(
        bindings
            .iter()
            .filter(|b| unsafe { pg_sys::is_member_of_role(role, b.role) })
            .map(|b| b.tenants.as_slice()),
    );
    LOADED.with(|l| {
        if let Some(loaded) = l.borrow_mut().as_mut() {
            loaded.per_role.insert(role, access.clone());
        }
    });
    access
}

/// The session user and the current user.
pub fn acting_roles() -> (pg_sys::Oid, pg_sys::Oid) {
    // SAFETY: reads backend-global user ids.
    unsafe { (pg_sys::GetSessionUserId(), pg_sys::GetUserId()) }
}

/// What this session may select right now.
pub fn session_access() -> Access {
    let (session_user, current_user) = acting_roles();
    let access = access_of(session_user);
    if current_user == session_user {
        access
    } else {
        access.intersect(access_of(current_user))
    }
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: a syscache lookup; NULL for a dropped role.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        format!("{role:?}")
    } else {
        // SAFETY: a palloc'd C string.
        unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }
}

/// 42501 naming the role whose binding excludes `tenant`.
pub fn refused(tenant: &[u8; 16]) -> pgrx::pg_sys::panic::ErrorReport {
    let (session_user, current_user) = acting_roles();
    let bound = if !access_of(current_user).allows(tenant) {
        current_user
    } else {
        session_user
    };
    error::insufficient_privilege(format!(
        "role \"{}\" may not act for tenant {}",
        role_name(bound),
        super::context::format_tenant(tenant)
    ))
    .set_detail(format!(
        "Role \"{}\" is bound to other tenants (tenancy.bind_role); neither set_tenant, SET nor SET ROLE changes that.",
        role_name(bound)
    ))
}

/// 42501 unless this session may select `tenant`.
pub fn require_allowed(tenant: &[u8; 16]) -> error::Result<()> {
    if session_access().allows(tenant) {
        Ok(())
    } else {
        Err(refused(tenant))
    }
}

/// 42501 unless this session may act for `tenant`: a role bound to tenants
/// (`tenancy.bind_role`) acts for those only, and a session acting for one
/// tenant (set or from a JWT claim) for that one, but a superuser's. What
/// spends a tenant's units (quotas, rate limits) checks it; `hint` says
/// what the caller's user should do instead.
pub fn require_acting_for(tenant: &[u8; 16], hint: &str) -> error::Result<()> {
    require_allowed(tenant)?;
    if let Some(session) = super::context::current_tenant() {
        // SAFETY: reads the current user's superuser flag.
        if session != *tenant && !unsafe { pg_sys::superuser() } {
            return Err(error::insufficient_privilege(format!(
                "this session acts for tenant {}, not for tenant {}",
                super::context::format_tenant(&session),
                super::context::format_tenant(tenant)
            ))
            .set_hint(hint));
        }
    }
    Ok(())
}

/// The check `current_tenant()` makes on every call: a tenant set before
/// `SET ROLE`, or by someone else's code, is refused when it is used. The
/// answer for the same users, tenant and generation is remembered, so the
/// hot path compares four values.
pub fn check_in_use(tenant: &[u8; 16]) {
    let (session_user, current_user) = acting_roles();
    let key = (generation(), session_user, current_user, *tenant);
    if LAST_ALLOWED.get() == Some(key) {
        return;
    }
    if !session_access().allows(tenant) {
        refused(tenant).report(PgLogLevel::ERROR);
    }
    LAST_ALLOWED.set(Some(key));
}

/// `tenancy.bind_role`: replaces `role`'s tenant list.
pub fn bind(role: pg_sys::Oid, mut tenants: Vec<[u8; 16]>) -> error::Result<()> {
    let name = existing_role_name(role)?;
    // SAFETY: a syscache lookup inside a transaction.
    if unsafe { pg_sys::superuser_arg(role) } {
        return Err(error::invalid_parameter(format!(
            "role \"{name}\" is a superuser: superusers bypass row-level security and cannot be bound"
        )));
    }
    if tenants.is_empty() {
        return Err(error::invalid_parameter(format!(
            "bind role \"{name}\" to at least one tenant"
        ))
        .set_hint("tenancy.unbind_role() removes a binding."));
    }
    for tenant in &tenants {
        super::registry::require_exists(tenant)?;
    }
    tenants.sort_unstable();
    tenants.dedup();
    let wanted: Vec<pgrx::Uuid> = tenants.iter().map(|t| pgrx::Uuid::from_bytes(*t)).collect();
    let changed: Option<bool> = crate::common::privilege::as_extension_owner(|| {
        crate::common::sql::write_returning(
            "INSERT INTO tenancy.role_bindings (role, tenants) VALUES ($1, $2)
             ON CONFLICT (role) DO UPDATE SET tenants = EXCLUDED.tenants, bound_at = pg_catalog.now()
              WHERE role_bindings.tenants IS DISTINCT FROM EXCLUDED.tenants
             RETURNING true",
            &[crate::common::sqltypes::RegRole(role).into(), wanted.into()],
        )
    });
    if changed.is_none() {
        error::notice(format!(
            "role \"{name}\" is already bound to {} tenant{}",
            tenants.len(),
            if tenants.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

/// `tenancy.unbind_role`.
pub fn unbind(role: pg_sys::Oid) -> error::Result<()> {
    let removed: Option<bool> = crate::common::privilege::as_extension_owner(|| {
        crate::common::sql::write_returning(
            "DELETE FROM tenancy.role_bindings WHERE role = $1 RETURNING true",
            &[crate::common::sqltypes::RegRole(role).into()],
        )
    });
    if removed.is_none() {
        error::notice(format!(
            "role \"{}\" is not bound to any tenant",
            role_name(role)
        ));
    }
    Ok(())
}

fn existing_role_name(role: pg_sys::Oid) -> error::Result<String> {
    // SAFETY: a syscache lookup; NULL for an OID that is no role.
    let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if name.is_null() {
        return Err(error::invalid_parameter(format!(
            "role with OID {} does not exist",
            role.to_u32()
        )));
    }
    // SAFETY: a palloc'd C string.
    Ok(unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned())
}

/// The statement trigger on `tenancy.cluster_tenants` and
/// `tenancy.cluster_role_bindings`, and on their copies on every node of a
/// Citus cluster: this node's backends reload what they cached.
#[pg_trigger]
fn _cluster_copy_changed<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    broadcast_change(c"role_bindings");
    broadcast_change(c"tenants");
    Ok(None)
}

/// The statement trigger on `tenancy.role_bindings`: however the table
/// changed (bind_role, unbind_role, a superuser's own DML, pg_restore), every
/// backend reloads the bindings when this transaction commits.
#[pg_trigger]
fn _role_bindings_changed<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    broadcast_change(c"role_bindings");
    Ok(None)
}

#[cfg(test)]
mod unit_tests {
    use super::Access;

    fn t(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn any_is_the_identity_of_intersection() {
        let only = Access::Only(vec![t(1), t(2)]);
        assert_eq!(Access::Any.intersect(only.clone()), only);
        assert_eq!(only.clone().intersect(Access::Any), only);
        assert_eq!(Access::Any.intersect(Access::Any), Access::Any);
    }

    #[test]
    fn intersection_keeps_common_tenants() {
        let a = Access::Only(vec![t(1), t(2), t(3)]);
        let b = Access::Only(vec![t(2), t(3), t(4)]);
        assert_eq!(a.intersect(b), Access::Only(vec![t(2), t(3)]));
        let disjoint = Access::Only(vec![t(1)]).intersect(Access::Only(vec![t(2)]));
        assert_eq!(disjoint, Access::Only(vec![]));
        assert!(!disjoint.allows(&t(1)) && !disjoint.allows(&t(2)));
    }

    #[test]
    fn union_of_no_binding_is_any() {
        assert_eq!(Access::union_of(std::iter::empty()), Access::Any);
        let lists = [vec![t(3), t(1)], vec![t(1), t(2)]];
        let union = Access::union_of(lists.iter().map(|l| l.as_slice()));
        assert_eq!(union, Access::Only(vec![t(1), t(2), t(3)]));
        assert!(union.allows(&t(2)) && !union.allows(&t(4)));
    }
}
