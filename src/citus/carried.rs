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
use std::ffi::CStr;

thread_local! {
    /// OIDs of our functions by name, looked up once (cleared when pg_proc
    /// changes): InvalidOid while the extension's SQL lacks one.
    static FUNCTIONS: std::cell::RefCell<std::collections::HashMap<&'static CStr, pg_sys::Oid>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Registers the OID cache's invalidation; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback while the library loads.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(forget_functions),
            pg_sys::Datum::from(0),
        );
    }
}

unsafe extern "C-unwind" fn forget_functions(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    FUNCTIONS.with(|f| f.borrow_mut().clear());
}

/// `tenancy.<name>` taking `arguments`, or None while the extension's SQL
/// lacks it (an older release before ALTER EXTENSION UPDATE).
pub fn our_function(name: &'static CStr, arguments: &[pg_sys::Oid]) -> Option<pg_sys::Oid> {
    function(c"tenancy", name, arguments)
}

/// `<schema>.<name>` taking `arguments`, or None when there is none; names
/// are cached by `name` alone, so no two looked up may share one.
pub fn function(
    schema: &'static CStr,
    name: &'static CStr,
    arguments: &[pg_sys::Oid],
) -> Option<pg_sys::Oid> {
    cached(name, || {
        // SAFETY: a catalog lookup by name inside a transaction.
        unsafe {
            pg_sys::LookupFuncName(
                qualified_name(schema, name),
                arguments.len() as i32,
                arguments.as_ptr(),
                true,
            )
        }
    })
}

/// The procedure `tenancy.<name>()` (LookupFuncName finds functions only),
/// or None while the extension's SQL lacks it.
pub fn our_procedure(name: &'static CStr) -> Option<pg_sys::Oid> {
    cached(name, || {
        // SAFETY: a catalog lookup by name inside a transaction; the node is
        // made in the current memory context.
        unsafe {
            let routine = pg_sys::palloc0(std::mem::size_of::<pg_sys::ObjectWithArgs>())
                as *mut pg_sys::ObjectWithArgs;
            (*routine).type_ = pg_sys::NodeTag::T_ObjectWithArgs;
            (*routine).objname = qualified_name(c"tenancy", name);
            pg_sys::LookupFuncWithArgs(pg_sys::ObjectType::OBJECT_PROCEDURE, routine, true)
        }
    })
}

/// The OID cached for `name`, else `look_up`'s (InvalidOid: none), cached.
fn cached(name: &'static CStr, look_up: impl FnOnce() -> pg_sys::Oid) -> Option<pg_sys::Oid> {
    let known = FUNCTIONS.with(|f| f.borrow().get(name).copied());
    let oid = known.unwrap_or_else(|| {
        let found = look_up();
        FUNCTIONS.with(|f| f.borrow_mut().insert(name, found));
        found
    });
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// `schema.name` as a name list, in the current memory context.
///
/// # Safety
/// Inside a transaction (palloc).
unsafe fn qualified_name(schema: &CStr, name: &CStr) -> *mut pg_sys::List {
    let mut qualified = pgrx::PgList::<pg_sys::String>::new();
    // SAFETY: strings copied into the current memory context.
    unsafe {
        qualified.push(pg_sys::makeString(pg_sys::pstrdup(schema.as_ptr())));
        qualified.push(pg_sys::makeString(pg_sys::pstrdup(name.as_ptr())));
    }
    qualified.into_pg()
}

/// `tenancy._tenant_carried(uuid)`.
pub fn marker_function() -> Option<pg_sys::Oid> {
    our_function(c"_tenant_carried", &[pg_sys::UUIDOID])
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

/// The invalidation item that tags a plan whose every isolated Citus table
/// carries the marker: the decision travels inside the plan, so it holds for
/// the copies the plan cache hands out (prepared statements, PL/pgSQL) as
/// well. PostgreSQL records only function and type dependencies in
/// `invalItems`, and no invalidation ever names the access-method cache: the
/// item is never confused with one of PostgreSQL's and never invalidates.
const TAG_CACHE: i32 = pg_sys::SysCacheIdentifier::AMOID as i32;

/// The tenant, folded into the item's 32 bits (FNV-1a).
fn tag_hash(tenant: &[u8; 16]) -> u32 {
    tenant.iter().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// Tags `plan` as carrying `tenant` in every shard query that needs it.
///
/// # Safety
/// `plan` is the valid plan the planner just made, in the current memory
/// context.
pub unsafe fn tag_plan(plan: *mut pg_sys::PlannedStmt, tenant: &[u8; 16]) {
    // SAFETY: a node made in the current memory context, appended to the
    // plan's list there.
    unsafe {
        let item = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlanInvalItem>())
            as *mut pg_sys::PlanInvalItem;
        (*item).type_ = pg_sys::NodeTag::T_PlanInvalItem;
        (*item).cacheId = TAG_CACHE;
        (*item).hashValue = tag_hash(tenant);
        (*plan).invalItems = pg_sys::lappend((*plan).invalItems, item.cast());
    }
}

/// Whether `plan` was tagged as carrying `tenant` (`tag_plan`).
///
/// # Safety
/// `plan` is null or a valid plan.
pub unsafe fn plan_carries(plan: *mut pg_sys::PlannedStmt, tenant: &[u8; 16]) -> bool {
    if plan.is_null() {
        return false;
    }
    // SAFETY: reading the plan's list of invalidation items.
    unsafe {
        pgrx::PgList::<pg_sys::PlanInvalItem>::from_pg((*plan).invalItems)
            .iter_ptr()
            .any(|item| (*item).cacheId == TAG_CACHE && (*item).hashValue == tag_hash(tenant))
    }
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
    // For the transaction, as SET LOCAL: its check hook raises an ERROR when
    // the tenant is refused.
    crate::tenant::context::write_setting(TENANT_SETTING, &format_tenant(&tenant), true);
}

/// The tenant named by markers in the WHERE quals of `query` and of the
/// queries in its FROM and WITH, where the coordinator puts them; each
/// marker becomes `true`: once the tenant is the transaction's, it holds,
/// and a constant costs nothing where a marker would put a one-time filter
/// node above the scan, which every row passes through.
///
/// # Safety
/// `query` is a valid query tree.
unsafe fn collect(query: *mut pg_sys::Query, function: pg_sys::Oid, found: &mut Option<[u8; 16]>) {
    // SAFETY: reading a valid query tree.
    unsafe {
        if !(*query).jointree.is_null() {
            (*(*query).jointree).quals = collect_qual((*(*query).jointree).quals, function, found);
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

/// `qual` with the markers in it (alone or ANDed) replaced by `true`.
///
/// # Safety
/// `qual` is null or a valid expression node.
unsafe fn collect_qual(
    qual: *mut pg_sys::Node,
    function: pg_sys::Oid,
    found: &mut Option<[u8; 16]>,
) -> *mut pg_sys::Node {
    if qual.is_null() {
        return qual;
    }
    // SAFETY: reading a valid expression tree by its node tags; list cells
    // are replaced in place by other expression nodes.
    unsafe {
        let list = match (*qual).type_ {
            pg_sys::NodeTag::T_BoolExpr
                if (*(qual as *mut pg_sys::BoolExpr)).boolop == pg_sys::BoolExprType::AND_EXPR =>
            {
                (*(qual as *mut pg_sys::BoolExpr)).args
            }
            pg_sys::NodeTag::T_List => qual as *mut pg_sys::List,
            pg_sys::NodeTag::T_FuncExpr
                if (*(qual as *mut pg_sys::FuncExpr)).funcid == function =>
            {
                return match marker_tenant(qual as *mut pg_sys::FuncExpr) {
                    Some(tenant) => {
                        if let Some(other) = found.filter(|other| *other != tenant) {
                            ereport!(
                                ERROR,
                                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                                format!(
                                    "a query names two tenants to run for ({} and {})",
                                    format_tenant(&other),
                                    format_tenant(&tenant)
                                )
                            );
                        }
                        *found = Some(tenant);
                        pg_sys::makeBoolConst(true, false)
                    }
                    None => qual,
                };
            }
            _ => return qual,
        };
        if !list.is_null() {
            for index in 0..(*list).length as usize {
                let cell = (*list).elements.add(index);
                (*cell).ptr_value =
                    collect_qual((*cell).ptr_value as *mut pg_sys::Node, function, found).cast();
            }
        }
        qual
    }
}

/// The tenant a marker names: its argument when that is a constant.
///
/// # Safety
/// `call` is a valid call of the marker function.
unsafe fn marker_tenant(call: *mut pg_sys::FuncExpr) -> Option<[u8; 16]> {
    // SAFETY: reading the call's argument list and constant.
    unsafe {
        let arguments = pgrx::PgList::<pg_sys::Node>::from_pg((*call).args);
        let argument = arguments.get_ptr(0)?;
        if (*argument).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let constant = argument as *mut pg_sys::Const;
        if (*constant).constisnull {
            return None;
        }
        let mut tenant = [0u8; 16];
        std::ptr::copy_nonoverlapping(
            (*constant).constvalue.cast_mut_ptr::<u8>(),
            tenant.as_mut_ptr(),
            16,
        );
        Some(tenant)
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
