//! The tenant inside a shard query: `tenancy._tenant_carried('<tenant>')`.
//!
//! Carrying the tenant as a `SET LOCAL` (`context`) needs a transaction
//! block on every worker connection. For a SELECT outside a transaction
//! block, routed to one shard, that is two round trips (the BEGIN with the
//! SET, and the COMMIT) on top of the query's own one: a third of the time of
//! a 3 ms query. So for such a SELECT, when the planner has marked every
//! isolated Citus table in it (`prune`), the tenant travels in the query
//! instead. Citus copies a SELECT's quals into each shard query as they are,
//! and the planner hook of the node that receives one (`adopt`) finds the
//! marker and sets `tenancy.tenant_id` for that transaction, as `SET LOCAL`
//! would, through the same check (the tenant exists, is active, and the
//! session's roles may act for it). A client that writes the marker itself
//! gets what `SET LOCAL` would give it, nothing more. Citus evaluates the
//! functions of a modification on the coordinator, so writes keep the
//! `SET LOCAL` path.

use crate::tenant::context::{format_tenant, TENANT_SETTING};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    /// The marker function's OID, looked up once (cleared when pg_proc changes).
    static MARKER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
    /// The statement just planned with every isolated Citus table marked,
    /// and its tenant: `context` skips the `SET LOCAL` for exactly that plan.
    static MARKED_PLAN: Cell<Option<(usize, [u8; 16])>> = const { Cell::new(None) };
}

/// Registers the OID cache's invalidation; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback while the library loads.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(forget_marker),
            pg_sys::Datum::from(0),
        );
    }
}

unsafe extern "C-unwind" fn forget_marker(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    MARKER.set(None);
}

/// `tenancy._tenant_carried(uuid)`, or None while the extension's SQL lacks
/// it (an older release before ALTER EXTENSION UPDATE).
pub fn marker_function() -> Option<pg_sys::Oid> {
    if let Some(known) = MARKER.get() {
        return (known != pg_sys::InvalidOid).then_some(known);
    }
    // SAFETY: a catalog lookup by name inside a transaction; the name list
    // and its strings are palloc'd in the current context.
    let found = unsafe {
        let mut name = pgrx::PgList::<pg_sys::String>::new();
        name.push(pg_sys::makeString(pg_sys::pstrdup(c"tenancy".as_ptr())));
        name.push(pg_sys::makeString(pg_sys::pstrdup(
            c"_tenant_carried".as_ptr(),
        )));
        let argument = pg_sys::UUIDOID;
        pg_sys::LookupFuncName(name.into_pg(), 1, &argument, true)
    };
    MARKER.set(Some(found));
    (found != pg_sys::InvalidOid).then_some(found)
}

/// `tenancy._tenant_carried('<tenant>'::uuid)`, a boolean qual.
///
/// # Safety
/// Called while planning, inside a transaction; the nodes are made in the
/// current memory context.
pub unsafe fn marker(function: pg_sys::Oid, tenant: &[u8; 16]) -> *mut pg_sys::Expr {
    // SAFETY: node constructors in the current memory context.
    unsafe {
        let mut arguments = pgrx::PgList::<pg_sys::Const>::new();
        arguments.push(super::prune::uuid_constant(tenant));
        pg_sys::makeFuncExpr(
            function,
            pg_sys::BOOLOID,
            arguments.into_pg(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        )
        .cast()
    }
}

/// Remembers `plan` as planned with every isolated Citus table marked for
/// `tenant` (None: the plan just made is not).
pub fn remember_plan(plan: *mut pg_sys::PlannedStmt, tenant: Option<[u8; 16]>) {
    MARKED_PLAN.set(tenant.map(|t| (plan as usize, t)));
}

/// The tenant `plan` carries when it is the statement last planned with
/// every isolated Citus table marked. Asked once per statement, before it
/// runs: the answer is forgotten, so a later plan made at the same address
/// is not taken for it.
pub fn take_marked(plan: *mut pg_sys::PlannedStmt) -> Option<[u8; 16]> {
    MARKED_PLAN
        .take()
        .filter(|(marked, _)| !plan.is_null() && *marked == plan as usize)
        .map(|(_, tenant)| tenant)
}

/// On the node that runs a query: sets `tenancy.tenant_id` for the
/// transaction to the tenant the query's markers name, checked as any `SET
/// LOCAL` is. Markers naming different tenants are an error.
///
/// # Safety
/// `query` is a valid query tree about to be planned, inside a transaction.
pub unsafe fn adopt(query: *mut pg_sys::Query) {
    let Some(function) = marker_function() else {
        return;
    };
    let mut found: Option<[u8; 16]> = None;
    // SAFETY: walking the valid query tree we were given.
    unsafe { collect(query, function, &mut found) };
    let Some(tenant) = found else {
        return;
    };
    let value = std::ffi::CString::new(format_tenant(&tenant)).expect("a UUID has no NUL");
    // SAFETY: a user-settable setting set for the transaction, as SET LOCAL
    // does; its check hook raises an ERROR when the tenant is refused.
    unsafe {
        pg_sys::set_config_option(
            TENANT_SETTING.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// The tenants named by markers in the WHERE quals of `query` and of the
/// queries in its FROM and WITH, where the coordinator puts them.
///
/// # Safety
/// `query` is a valid query tree.
unsafe fn collect(query: *mut pg_sys::Query, function: pg_sys::Oid, found: &mut Option<[u8; 16]>) {
    // SAFETY: reading a valid query tree.
    unsafe {
        if !(*query).jointree.is_null() {
            collect_qual((*(*query).jointree).quals, function, found);
        }
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        for rte in rtable.iter_ptr() {
            if (*rte).rtekind == pg_sys::RTEKind::RTE_SUBQUERY && !(*rte).subquery.is_null() {
                collect((*rte).subquery, function, found);
            }
        }
        let ctes = pgrx::PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList);
        for cte in ctes.iter_ptr() {
            let inner = (*cte).ctequery as *mut pg_sys::Query;
            if !inner.is_null() && (*inner).type_ == pg_sys::NodeTag::T_Query {
                collect(inner, function, found);
            }
        }
    }
}

/// # Safety
/// `qual` is null or a valid expression node.
unsafe fn collect_qual(
    qual: *mut pg_sys::Node,
    function: pg_sys::Oid,
    found: &mut Option<[u8; 16]>,
) {
    if qual.is_null() {
        return;
    }
    // SAFETY: reading a valid expression tree by its node tags.
    unsafe {
        match (*qual).type_ {
            pg_sys::NodeTag::T_BoolExpr
                if (*(qual as *mut pg_sys::BoolExpr)).boolop == pg_sys::BoolExprType::AND_EXPR =>
            {
                let arguments =
                    pgrx::PgList::<pg_sys::Node>::from_pg((*(qual as *mut pg_sys::BoolExpr)).args);
                for argument in arguments.iter_ptr() {
                    collect_qual(argument, function, found);
                }
            }
            pg_sys::NodeTag::T_List => {
                let items = pgrx::PgList::<pg_sys::Node>::from_pg(qual as *mut pg_sys::List);
                for item in items.iter_ptr() {
                    collect_qual(item, function, found);
                }
            }
            pg_sys::NodeTag::T_FuncExpr
                if (*(qual as *mut pg_sys::FuncExpr)).funcid == function =>
            {
                let arguments =
                    pgrx::PgList::<pg_sys::Node>::from_pg((*(qual as *mut pg_sys::FuncExpr)).args);
                let Some(argument) = arguments.get_ptr(0) else {
                    return;
                };
                if (*argument).type_ != pg_sys::NodeTag::T_Const {
                    return;
                }
                let constant = argument as *mut pg_sys::Const;
                if (*constant).constisnull {
                    return;
                }
                let bytes = (*constant).constvalue.cast_mut_ptr::<u8>();
                let mut tenant = [0u8; 16];
                std::ptr::copy_nonoverlapping(bytes, tenant.as_mut_ptr(), 16);
                match found {
                    Some(other) if *other != tenant => {
                        ereport!(
                            ERROR,
                            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                            format!(
                                "a query names two tenants to run for ({} and {})",
                                format_tenant(other),
                                format_tenant(&tenant)
                            )
                        );
                    }
                    _ => *found = Some(tenant),
                }
            }
            _ => {}
        }
    }
}

/// `tenancy._tenant_carried(tenant)`: true when `tenant` is the session's
/// tenant. The marker of a shard query: the planner hook of the node that
/// runs the query has already made it the transaction's tenant; evaluated,
/// it also keeps out rows of any other tenant.
#[pg_extern(stable, parallel_safe, strict)]
fn _tenant_carried(tenant: pgrx::Uuid) -> bool {
    crate::tenant::context::current_tenant().is_some_and(|current| &current == tenant.as_bytes())
}
