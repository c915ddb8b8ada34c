//! The tenant as a constant in the policy of a Citus table.
//!
//! On one node the isolation policy reads `(SELECT tenancy.current_tenant())`:
//! an initplan, evaluated once per query. Citus refuses a subquery in a
//! policy it copies to the shards, so there the policy compares the tenant
//! column with `tenancy.current_tenant()` itself, which PostgreSQL calls once
//! for every row it filters (unless an index scan takes it as a key). On a
//! node of a Citus database, while a tenant is set, the planner hook
//! replaces that call in the policy quals of the query it plans by the
//! tenant as a constant, having called `current_tenant()` once itself, with
//! its checks (the session's roles may act for the tenant). The plan is then
//! only good while that holds, and it is made again whenever it may not:
//! when the tenant changes (the setting's assign hook resets the plan cache
//! on Citus), when the role does (plans under row-level security depend on
//! the role), and when tenants or role bindings change (the plan depends on
//! `tenancy.tenants` and `tenancy.role_bindings`, whose changes every
//! backend hears of as their invalidation, `tenant::bindings`).

use super::carried;
use pgrx::pg_sys;

/// Rewrites the policy quals of every table in `query` and the queries in
/// its FROM and WITH for the session's tenant. True when it replaced a call:
/// the plan must then depend on what [`depend_on_tenants`] adds.
///
/// # Safety
/// `query` is a valid, rewritten query tree about to be planned; new nodes
/// are made in the current memory context.
pub unsafe fn constant_tenant(query: *mut pg_sys::Query) -> bool {
    let Some(current) = carried::our_function(c"current_tenant", &[]) else {
        return false;
    };
    // Only a tenant set with the setting: one from a JWT claim can change
    // without the plan cache hearing of it.
    if crate::tenant::context::tenant_set().is_none() {
        return false;
    }
    // Only where a policy calls it: current_tenant() queries the catalogs
    // (whose own planning comes back here) the first time.
    let mut found = false;
    // SAFETY: as the caller promised; without a tenant nothing is replaced.
    unsafe { rewrite_query(query, None, current, &mut found) };
    if !found {
        return false;
    }
    // With its checks, as the policy's own call would make them.
    let Some(tenant) = crate::tenant::context::current_tenant() else {
        return false;
    };
    let mut replaced = false;
    // SAFETY: as the caller promised.
    unsafe { rewrite_query(query, Some(&tenant), current, &mut replaced) };
    replaced
}

/// Makes `plan` depend on the tables whose changes can change what
/// `current_tenant()` allows: it is made again when they change.
///
/// # Safety
/// `plan` is the valid plan just made, in the current memory context.
pub unsafe fn depend_on_tenants(plan: *mut pg_sys::PlannedStmt) {
    for table in [c"tenants", c"role_bindings"] {
        if let Some(relid) = crate::common::relation::catalog_relid(table) {
            // SAFETY: appending to the plan's list in its memory context.
            unsafe { (*plan).relationOids = pg_sys::lappend_oid((*plan).relationOids, relid) };
        }
    }
}

/// # Safety
/// As [`constant_tenant`].
unsafe fn rewrite_query(
    query: *mut pg_sys::Query,
    tenant: Option<&[u8; 16]>,
    current: pg_sys::Oid,
    replaced: &mut bool,
) {
    // SAFETY: walking a valid query tree; replacing list cells in place with
    // nodes of the same type class (expressions).
    unsafe {
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        for rte in rtable.iter_ptr() {
            match (*rte).rtekind {
                pg_sys::RTEKind::RTE_RELATION if !(*rte).securityQuals.is_null() => {
                    replace_in_list((*rte).securityQuals, tenant, current, replaced);
                }
                pg_sys::RTEKind::RTE_SUBQUERY if !(*rte).subquery.is_null() => {
                    rewrite_query((*rte).subquery, tenant, current, replaced);
                }
                _ => {}
            }
        }
        let ctes = pgrx::PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList);
        for cte in ctes.iter_ptr() {
            let inner = (*cte).ctequery as *mut pg_sys::Query;
            if !inner.is_null() && (*inner).type_ == pg_sys::NodeTag::T_Query {
                rewrite_query(inner, tenant, current, replaced);
            }
        }
    }
}

/// Replaces, in each cell of `list`, a call of `current_tenant()` by the
/// tenant's constant (with no tenant, only notes that there is one), looking
/// through ANDs, ORs, NOTs and operators (the
/// shapes a policy takes); anything else is left as it is.
///
/// # Safety
/// `list` is null or a valid list of expression nodes.
unsafe fn replace_in_list(
    list: *mut pg_sys::List,
    tenant: Option<&[u8; 16]>,
    current: pg_sys::Oid,
    replaced: &mut bool,
) {
    if list.is_null() {
        return;
    }
    // SAFETY: the list's cells hold node pointers; each is read and
    // possibly replaced by another expression node.
    unsafe {
        for index in 0..(*list).length as usize {
            let cell = (*list).elements.add(index);
            let node = (*cell).ptr_value as *mut pg_sys::Node;
            (*cell).ptr_value = replace(node, tenant, current, replaced).cast();
        }
    }
}

/// # Safety
/// `node` is null or a valid expression node.
unsafe fn replace(
    node: *mut pg_sys::Node,
    tenant: Option<&[u8; 16]>,
    current: pg_sys::Oid,
    replaced: &mut bool,
) -> *mut pg_sys::Node {
    if node.is_null() {
        return node;
    }
    // SAFETY: reading nodes by their tags; the lists inside are rewritten in
    // place by replace_in_list.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_FuncExpr => {
                let call = node as *mut pg_sys::FuncExpr;
                if (*call).funcid == current && (*call).args.is_null() {
                    *replaced = true;
                    if let Some(tenant) = tenant {
                        return super::prune::uuid_constant(tenant).cast();
                    }
                }
            }
            pg_sys::NodeTag::T_OpExpr => {
                replace_in_list(
                    (*(node as *mut pg_sys::OpExpr)).args,
                    tenant,
                    current,
                    replaced,
                );
            }
            pg_sys::NodeTag::T_BoolExpr => {
                replace_in_list(
                    (*(node as *mut pg_sys::BoolExpr)).args,
                    tenant,
                    current,
                    replaced,
                );
            }
            pg_sys::NodeTag::T_List => {
                replace_in_list(node as *mut pg_sys::List, tenant, current, replaced);
            }
            _ => {}
        }
        node
    }
}
