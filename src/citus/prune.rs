//! Shard pruning for a tenant's queries. Citus routes a query to the shards
//! its WHERE clause names by the distribution column, but it never reads the
//! row-level security quals PostgreSQL adds for a policy, so every query of
//! an isolated table went to every shard, where all but one found nothing.
//! Before Citus plans a query, for each isolated table distributed by its
//! tenant column, read by a role the policy applies to, this adds
//! `tenant_column = '<the session's tenant>'` to the query's own quals: the
//! policy already demands exactly that, so no result changes, and Citus
//! routes the query to the one shard that can hold those rows (where the
//! shard's policy still checks them).
//!
//! The constant makes a plan specific to the tenant, so every cached plan of
//! the backend is invalidated when the tenant changes (the assign hook of
//! `tenancy.tenant_id`, in `tenant::context`). Only a tenant
//! set with `tenancy.tenant_id` (or `set_tenant`) prunes: one taken from a
//! JWT claim can change without pg_tenancy seeing it, so those queries go to
//! every shard, as without pg_tenancy.

use crate::common::citus::active;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

static mut PREVIOUS_PLANNER: pg_sys::planner_hook_type = None;

thread_local! {
    /// Per table: the tenant column to prune by, or None when it is not an
    /// isolated table distributed by its tenant column with our policy alone.
    static PRUNABLE: RefCell<HashMap<pg_sys::Oid, Option<i16>>> = RefCell::new(HashMap::new());
    /// `=(uuid, uuid)`, looked up once.
    static UUID_EQUAL: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

/// Installs the planner hook; called from `_PG_init`.
pub fn init() {
    // SAFETY: hooks are chained while the library loads, before any query.
    unsafe {
        PREVIOUS_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(planner);
    }
    crate::common::invalidation::on_relcache(forget);
}

fn forget(relid: pg_sys::Oid) {
    PRUNABLE.with(|p| {
        let mut p = p.borrow_mut();
        if relid == pg_sys::InvalidOid {
            p.clear();
        } else {
            p.remove(&relid);
        }
    });
}

unsafe extern "C-unwind" {
    #[link_name = "standard_planner"]
    fn unguarded_standard_planner(
        parse: *mut pg_sys::Query,
        query_string: *const std::ffi::c_char,
        cursor_options: i32,
        bound_params: pg_sys::ParamListInfo,
    ) -> *mut pg_sys::PlannedStmt;
}

/// Not #[pg_guard]ed, like the hooks of `context`: errors of the planning
/// further down must reach PostgreSQL as raised.
unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: i32,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    // SAFETY: a guarded function, then the chained planner (Citus's when it is
    // loaded) or the standard one, with the arguments we were given.
    unsafe {
        add_tenant_quals(parse);
        match PREVIOUS_PLANNER {
            Some(previous) => previous(parse, query_string, cursor_options, bound_params),
            None => unguarded_standard_planner(parse, query_string, cursor_options, bound_params),
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn add_tenant_quals(parse: *mut pg_sys::Query) {
    let Some(citus) = active() else {
        return;
    };
    if citus.is_internal_backend() {
        return;
    }
    let Some(tenant) = crate::tenant::context::tenant_set() else {
        return;
    };
    // SAFETY: the query tree PostgreSQL is about to plan.
    unsafe { add_to_query(parse, &tenant) };
}

/// Adds the quals to `query` and to the queries inside it (subqueries in
/// FROM, CTEs).
///
/// # Safety
/// `query` is a valid, rewritten query tree.
unsafe fn add_to_query(query: *mut pg_sys::Query, tenant: &[u8; 16]) {
    // SAFETY: walking a valid query tree, adding nodes made in the current
    // memory context (the planner's).
    unsafe {
        let command = (*query).commandType;
        let filters_rows = matches!(
            command,
            pg_sys::CmdType::CMD_SELECT | pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_DELETE
        );
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        for (index, rte) in rtable.iter_ptr().enumerate() {
            match (*rte).rtekind {
                pg_sys::RTEKind::RTE_RELATION
                    if filters_rows
                        && !(*rte).securityQuals.is_null()
                        && !(*query).jointree.is_null() =>
                {
                    if let Some(column) = prunable_column((*rte).relid) {
                        let qual = tenant_equals(index as i32 + 1, column, tenant);
                        (*(*query).jointree).quals =
                            pg_sys::make_and_qual((*(*query).jointree).quals, qual.cast());
                    }
                }
                pg_sys::RTEKind::RTE_SUBQUERY if !(*rte).subquery.is_null() => {
                    add_to_query((*rte).subquery, tenant);
                }
                _ => {}
            }
        }
        let ctes = pgrx::PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList);
        for cte in ctes.iter_ptr() {
            let inner = (*cte).ctequery as *mut pg_sys::Query;
            if !inner.is_null() && (*inner).type_ == pg_sys::NodeTag::T_Query {
                add_to_query(inner, tenant);
            }
        }
    }
}

/// `Var(rtindex, column) = '<tenant>'::uuid`.
fn tenant_equals(rtindex: i32, column: i16, tenant: &[u8; 16]) -> *mut pg_sys::Expr {
    // SAFETY: node constructors in the current memory context; the constant's
    // 16 bytes are copied into palloc'd memory it points to.
    unsafe {
        let var = pg_sys::makeVar(rtindex, column, pg_sys::UUIDOID, -1, pg_sys::InvalidOid, 0);
        let bytes = pg_sys::palloc(16) as *mut u8;
        std::ptr::copy_nonoverlapping(tenant.as_ptr(), bytes, 16);
        let constant = pg_sys::makeConst(
            pg_sys::UUIDOID,
            -1,
            pg_sys::InvalidOid,
            16,
            pg_sys::Datum::from(bytes),
            false,
            false,
        );
        pg_sys::make_opclause(
            uuid_equal(),
            pg_sys::BOOLOID,
            false,
            var.cast(),
            constant.cast(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
        )
    }
}

fn uuid_equal() -> pg_sys::Oid {
    if UUID_EQUAL.get() == pg_sys::InvalidOid {
        let found = crate::common::sql::select_value::<pg_sys::Oid>(
            "SELECT 'pg_catalog.=(pg_catalog.uuid, pg_catalog.uuid)'::pg_catalog.regoperator::pg_catalog.oid",
            &[],
        )
        .expect("the uuid equality operator exists");
        UUID_EQUAL.set(found);
    }
    UUID_EQUAL.get()
}

/// The tenant column of `relid` when the table is isolated (our policy and
/// no other permissive one, which would widen it) and hash-distributed by
/// that column; looked up once per table until its relcache entry changes.
fn prunable_column(relid: pg_sys::Oid) -> Option<i16> {
    if let Some(known) = PRUNABLE.with(|p| p.borrow().get(&relid).copied()) {
        return known;
    }
    let column = crate::common::privilege::as_extension_owner(|| {
        crate::common::sql::select_value::<i16>(
            "SELECT a.attnum
               FROM tenancy.tenant_tables t
               JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) t.tbl
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.tbl
                                              AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
              WHERE t.tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass
                AND t.isolated
                AND p.partmethod OPERATOR(pg_catalog.=) 'h'
                AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)
                    OPERATOR(pg_catalog.=) t.tenant_column::pg_catalog.text
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy o
                                 WHERE o.polrelid OPERATOR(pg_catalog.=) t.tbl
                                   AND o.polpermissive
                                   AND o.polname OPERATOR(pg_catalog.<>) 'tenancy_isolation')",
            &[relid.into()],
        )
    });
    PRUNABLE.with(|p| p.borrow_mut().insert(relid, column));
    column
}
