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

use super::carried;
use crate::common::citus::active;
use crate::tenant::context::tenant_set;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// What the walk needs to know of a Citus table: the column to prune by (0
/// when it is not an isolated table distributed by its tenant column with
/// our policy alone).
#[derive(Clone, Copy)]
struct CitusTable {
    tenant_column: i16,
}

static mut PREVIOUS_PLANNER: pg_sys::planner_hook_type = None;

thread_local! {
    /// Per table: None when it is not a Citus table.
    static PRUNABLE: RefCell<HashMap<pg_sys::Oid, Option<CitusTable>>> = RefCell::new(HashMap::new());
    /// [`citus_table`] is querying the catalogs: the planning of its own
    /// query must not look up its tables again.
    static LOOKING_UP: Cell<bool> = const { Cell::new(false) };
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
        let done = add_tenant_quals(parse);
        let plan = match PREVIOUS_PLANNER {
            Some(previous) => previous(parse, query_string, cursor_options, bound_params),
            None => unguarded_standard_planner(parse, query_string, cursor_options, bound_params),
        };
        if done != 0 && !plan.is_null() {
            after_planning(plan, done);
        }
        plan
    }
}

/// What [`add_tenant_quals`] did that the plan must record.
const MARKED: u8 = 1;
const CONSTANT_POLICY: u8 = 2;

/// Adopts a tenant carried in the query (`carried`), puts the tenant in the
/// policy quals as a constant (`policy`), then adds the quals. Returns
/// [`MARKED`] when the query is a SELECT whose every Citus table under a
/// policy got the tenant's marker (its shard queries carry the tenant), and
/// [`CONSTANT_POLICY`] when a policy got the constant.
#[pg_guard]
unsafe extern "C-unwind" fn add_tenant_quals(parse: *mut pg_sys::Query) -> u8 {
    let Some(citus) = active() else {
        return 0;
    };
    // SAFETY: the query tree PostgreSQL is about to plan, in a transaction.
    unsafe { carried::adopt(parse) };
    // SAFETY: as above.
    let done = if unsafe { super::policy::constant_tenant(parse) } {
        CONSTANT_POLICY
    } else {
        0
    };
    if citus.is_internal_backend() {
        return done;
    }
    let Some(tenant) = tenant_set() else {
        return done;
    };
    let mut walk = Walk {
        tenant,
        marker: carried::marker_function(),
        marked: false,
        complete: true,
    };
    // SAFETY: the query tree PostgreSQL is about to plan.
    unsafe {
        walk.add_to_query(parse);
        let whole_select = (*parse).commandType == pg_sys::CmdType::CMD_SELECT
            && !(*parse).hasModifyingCTE
            && (*parse).rowMarks.is_null();
        if walk.marked && walk.complete && whole_select {
            done | MARKED
        } else {
            done
        }
    }
}

/// Records in the plan what [`add_tenant_quals`] did.
#[pg_guard]
unsafe extern "C-unwind" fn after_planning(plan: *mut pg_sys::PlannedStmt, done: u8) {
    // SAFETY: the valid plan just made, in the current memory context.
    unsafe {
        if done & MARKED != 0 {
            if let Some(tenant) = tenant_set() {
                carried::tag_plan(plan, &tenant);
            }
        }
        if done & CONSTANT_POLICY != 0 {
            super::policy::depend_on_tenants(plan);
        }
    }
}

/// One walk over a query tree adding the tenant's quals.
struct Walk {
    tenant: [u8; 16],
    /// `tenancy._tenant_carried`, when the extension's SQL has it.
    marker: Option<pg_sys::Oid>,
    /// Some Citus table got the marker.
    marked: bool,
    /// No part of the query can reach a Citus table the walk did not mark:
    /// sublinks and functions in FROM (which the planner may inline) are
    /// not walked, so a query with them is not complete.
    complete: bool,
}

/// Where a table's tenant qual can go without changing the query's result.
#[derive(Clone, Copy)]
enum QualPlace {
    /// The query's WHERE: the table is on no nullable side of an outer join.
    Where,
    /// The ON clause of this outer join, the nearest one the table is on the
    /// nullable side of: in WHERE the qual would drop the join's
    /// null-extended rows (a LEFT JOIN would become an inner one), while in
    /// ON it only drops other tenants' rows, as the policy does below.
    On(*mut pg_sys::JoinExpr),
    /// Under a FULL JOIN: a qual in its ON would keep other tenants' rows as
    /// unmatched ones, so the table gets none (and no pruning).
    Nowhere,
}

/// For each range-table index of `query`'s join tree, where its qual goes.
///
/// # Safety
/// `query` is a valid query tree.
unsafe fn qual_places(query: *mut pg_sys::Query) -> HashMap<i32, QualPlace> {
    let mut places = HashMap::new();
    // SAFETY: as the caller promised.
    unsafe { place_node((*query).jointree.cast(), QualPlace::Where, &mut places) };
    places
}

/// # Safety
/// `node` is null or a valid join-tree node.
unsafe fn place_node(
    node: *mut pg_sys::Node,
    place: QualPlace,
    places: &mut HashMap<i32, QualPlace>,
) {
    if node.is_null() {
        return;
    }
    // SAFETY: reading join-tree nodes by their tags.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_RangeTblRef => {
                places.insert((*(node as *mut pg_sys::RangeTblRef)).rtindex, place);
            }
            pg_sys::NodeTag::T_FromExpr => {
                let from = node as *mut pg_sys::FromExpr;
                let items = pgrx::PgList::<pg_sys::Node>::from_pg((*from).fromlist);
                for item in items.iter_ptr() {
                    place_node(item, place, places);
                }
            }
            pg_sys::NodeTag::T_JoinExpr => {
                let join = node as *mut pg_sys::JoinExpr;
                let nullable_here = QualPlace::On(join);
                let (left, right) = match (place, (*join).jointype) {
                    (QualPlace::Nowhere, _) | (_, pg_sys::JoinType::JOIN_FULL) => {
                        (QualPlace::Nowhere, QualPlace::Nowhere)
                    }
                    (_, pg_sys::JoinType::JOIN_LEFT) => (place, nullable_here),
                    (_, pg_sys::JoinType::JOIN_RIGHT) => (nullable_here, place),
                    _ => (place, place),
                };
                place_node((*join).larg, left, places);
                place_node((*join).rarg, right, places);
                // A join's own index names the join, not a table.
                places.insert((*join).rtindex, QualPlace::Nowhere);
            }
            _ => {}
        }
    }
}

impl Walk {
    /// Adds the quals to `query` and to the queries inside it (subqueries in
    /// FROM, CTEs).
    ///
    /// # Safety
    /// `query` is a valid, rewritten query tree.
    unsafe fn add_to_query(&mut self, query: *mut pg_sys::Query) {
        // SAFETY: walking a valid query tree, adding nodes made in the current
        // memory context (the planner's).
        unsafe {
            if (*query).hasSubLinks {
                self.complete = false;
            }
            let command = (*query).commandType;
            let filters_rows = matches!(
                command,
                pg_sys::CmdType::CMD_SELECT
                    | pg_sys::CmdType::CMD_UPDATE
                    | pg_sys::CmdType::CMD_DELETE
            );
            let places = if filters_rows && !(*query).jointree.is_null() {
                qual_places(query)
            } else {
                HashMap::new()
            };
            let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
            for (index, rte) in rtable.iter_ptr().enumerate() {
                let rtindex = index as i32 + 1;
                match (*rte).rtekind {
                    pg_sys::RTEKind::RTE_RELATION
                        if filters_rows && !(*query).jointree.is_null() =>
                    {
                        if (*rte).securityQuals.is_null() {
                            // Read by a role the policy does not apply to on
                            // this node (a view's owner): on the workers the
                            // shard is read by the session's role, which needs
                            // the tenant sent.
                            if row_security((*rte).relid) && citus_table((*rte).relid).is_some() {
                                self.complete = false;
                            }
                            continue;
                        }
                        let Some(table) = citus_table((*rte).relid) else {
                            continue;
                        };
                        let place = places.get(&rtindex).copied().unwrap_or(QualPlace::Nowhere);
                        if table.tenant_column > 0 {
                            let qual = tenant_equals(rtindex, table.tenant_column, &self.tenant);
                            match place {
                                QualPlace::Where => {
                                    let quals = (*(*query).jointree).quals;
                                    (*(*query).jointree).quals =
                                        pg_sys::make_and_qual(quals, qual.cast());
                                }
                                QualPlace::On(join) => {
                                    (*join).quals =
                                        pg_sys::make_and_qual((*join).quals, qual.cast());
                                }
                                QualPlace::Nowhere => {}
                            }
                        }
                        // The marker is a qual on no column: in WHERE it
                        // changes no row, wherever the table is.
                        match (self.marker, place) {
                            (Some(function), QualPlace::Where | QualPlace::On(_)) => {
                                let quals = (*(*query).jointree).quals;
                                let qual = carried::marker(function, &self.tenant);
                                (*(*query).jointree).quals =
                                    pg_sys::make_and_qual(quals, qual.cast());
                                self.marked = true;
                            }
                            _ => self.complete = false,
                        }
                    }
                    pg_sys::RTEKind::RTE_SUBQUERY if !(*rte).subquery.is_null() => {
                        self.add_to_query((*rte).subquery);
                    }
                    pg_sys::RTEKind::RTE_FUNCTION | pg_sys::RTEKind::RTE_TABLEFUNC => {
                        self.complete = false;
                    }
                    _ => {}
                }
            }
            let ctes = pgrx::PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList);
            for cte in ctes.iter_ptr() {
                let inner = (*cte).ctequery as *mut pg_sys::Query;
                if !inner.is_null() && (*inner).type_ == pg_sys::NodeTag::T_Query {
                    self.add_to_query(inner);
                }
            }
        }
    }
}

/// `'<tenant>'::uuid`, made in the current memory context.
pub fn uuid_constant(tenant: &[u8; 16]) -> *mut pg_sys::Const {
    // SAFETY: a node constructor in the current memory context; the
    // constant's 16 bytes are copied into palloc'd memory it points to.
    unsafe {
        let bytes = pg_sys::palloc(16) as *mut u8;
        std::ptr::copy_nonoverlapping(tenant.as_ptr(), bytes, 16);
        pg_sys::makeConst(
            pg_sys::UUIDOID,
            -1,
            pg_sys::InvalidOid,
            16,
            pg_sys::Datum::from(bytes),
            false,
            false,
        )
    }
}

/// `Var(rtindex, column) = '<tenant>'::uuid`.
fn tenant_equals(rtindex: i32, column: i16, tenant: &[u8; 16]) -> *mut pg_sys::Expr {
    // SAFETY: node constructors in the current memory context.
    unsafe {
        let var = pg_sys::makeVar(rtindex, column, pg_sys::UUIDOID, -1, pg_sys::InvalidOid, 0);
        let constant = uuid_constant(tenant);
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

/// Row-level security is enabled on the table (from its relcache entry: no
/// query).
fn row_security(relid: pg_sys::Oid) -> bool {
    // SAFETY: opens and closes the relcache entry of a table the query names
    // (and so has locked), inside a transaction.
    unsafe {
        let relation = pg_sys::RelationIdGetRelation(relid);
        if relation.is_null() {
            return false;
        }
        let enabled = (*(*relation).rd_rel).relrowsecurity;
        pg_sys::RelationClose(relation);
        enabled
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

/// For a Citus table, what the walk needs; None for any other table. Looked
/// up once per table until its relcache entry changes.
fn citus_table(relid: pg_sys::Oid) -> Option<CitusTable> {
    if let Some(known) = PRUNABLE.with(|p| p.borrow().get(&relid).copied()) {
        return known;
    }
    if LOOKING_UP.replace(true) {
        return None;
    }
    /// Clears [`LOOKING_UP`] however the lookup ends (an error unwinds).
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            LOOKING_UP.set(false);
        }
    }
    let _done = Done;
    let found = crate::common::privilege::as_extension_owner(|| {
        crate::common::sql::select_value::<i16>(
            "SELECT coalesce((
                 SELECT a.attnum
                   FROM tenancy.tenant_tables t
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.tbl
                                                  AND a.attname OPERATOR(pg_catalog.=) t.tenant_column
                  WHERE t.tbl OPERATOR(pg_catalog.=) p.logicalrelid
                    AND t.isolated
                    AND p.partmethod OPERATOR(pg_catalog.=) 'h'
                    AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)
                        OPERATOR(pg_catalog.=) t.tenant_column::pg_catalog.text
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy o
                                     WHERE o.polrelid OPERATOR(pg_catalog.=) t.tbl
                                       AND o.polpermissive
                                       AND o.polname OPERATOR(pg_catalog.<>) 'tenancy_isolation')), 0)::pg_catalog.int2
               FROM pg_catalog.pg_dist_partition p
              WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
            &[relid.into()],
        )
    })
    .map(|tenant_column| CitusTable { tenant_column });
    PRUNABLE.with(|p| p.borrow_mut().insert(relid, found));
    found
}
