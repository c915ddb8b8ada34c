//! Carrying the session's tenant to the Citus workers.
//!
//! Row-level security on a distributed table is enforced by each shard's own
//! copy of the policy, on the worker that holds it, with that worker
//! connection's `tenancy.tenant_id`. Citus forwards a setting only as a
//! `SET LOCAL` inside a transaction block, so a tenant chosen with
//! `set_tenant` (for the session, or for the transaction) would never reach
//! the workers. Before each statement runs here, if the tenant the workers
//! must see differs from what this transaction last sent them, pg_tenancy
//! makes the transaction a coordinated one (its remote work runs in
//! transaction blocks) and hands Citus a `SET LOCAL tenancy.tenant_id TO ...`,
//! which Citus sends to every worker connection of the transaction, open or
//! yet to open. The workers check the value like any other `SET` (the tenant
//! exists there, is active, and the role may act for it), so nothing a
//! session sends gives it more than `set_tenant` would on one node. A local
//! setting ends with the remote transaction, so the next transaction on the
//! same connections starts without it.

use crate::common::citus::{citus, Citus};
use crate::common::executor;
use crate::tenant::context::{tenant_to_carry, ACTOR_SETTING, TENANT_SETTING};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// What this transaction last sent the workers (None: nothing yet).
    static SENT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The actor this transaction last sent them (None: nothing yet).
    static SENT_ACTOR: RefCell<Option<String>> = const { RefCell::new(None) };
}

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hooks; called from `_PG_init`. They cost one pointer test per
/// statement where Citus is not loaded.
pub fn init() {
    // SAFETY: hooks are chained while the library loads, before any query.
    unsafe {
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
}

/// Sends the tenant (and the actor) the workers must see, if this statement
/// may reach them and they have not seen it in this transaction yet. `carried_in_plan`:
/// the statement's shard queries carry the session's tenant themselves
/// (`carried`), which is enough outside a transaction block.
fn carry_tenant(citus: Citus, carried_in_plan: Option<[u8; 16]>) {
    // SAFETY: reads backend-global transaction state.
    if !unsafe { pg_sys::IsTransactionState() } {
        return;
    }
    if !citus.in_this_database() || citus.is_internal_backend() {
        return;
    }
    // SAFETY: as above.
    let autocommit = !unsafe { pg_sys::IsTransactionBlock() };
    if autocommit
        && carried_in_plan.is_some()
        && carried_in_plan == crate::tenant::context::tenant_set()
        && SENT.with(|s| s.borrow().is_none())
    {
        return;
    }
    carry_tenant_setting(citus);
    carry_actor(citus);
}

/// Sends the tenant the workers must see, unless this transaction did.
fn carry_tenant_setting(citus: Citus) {
    let Some(wanted) = tenant_to_carry().or_else(|| {
        // Nothing of our own to carry, but a tenant sent earlier in this
        // transaction must be taken back.
        SENT.with(|s| {
            s.borrow()
                .as_ref()
                .filter(|v| !v.is_empty())
                .map(|_| String::new())
        })
    }) else {
        return;
    };
    if SENT.with(|s| s.borrow().as_deref() == Some(wanted.as_str())) {
        return;
    }
    citus.use_coordinated_transaction();
    citus.propagate_set_local(TENANT_SETTING, &wanted);
    SENT.with(|s| *s.borrow_mut() = Some(wanted));
}

/// Sends the actor (`set_actor`) to the workers, where the audit triggers of
/// distributed tables record it, unless this transaction did; an actor
/// cleared after one was sent is sent as empty.
fn carry_actor(citus: Citus) {
    let wanted = crate::tenant::context::current_actor().unwrap_or_default();
    let sent = SENT_ACTOR.with(|s| s.borrow().clone());
    if sent.as_deref() == Some(wanted.as_str()) || (sent.is_none() && wanted.is_empty()) {
        return;
    }
    citus.use_coordinated_transaction();
    citus.propagate_set_local(ACTOR_SETTING, &wanted);
    SENT_ACTOR.with(|s| *s.borrow_mut() = Some(wanted));
}

// The hooks below are not #[pg_guard]ed: see crate::common::executor.

/// [`carry_tenant`], for a statement about to run; a COPY only for a utility
/// statement (COPY into or out of a distributed table reaches the workers
/// without the executor).
#[pg_guard]
unsafe extern "C-unwind" fn before_statement(
    utility: *mut pg_sys::PlannedStmt,
    plan: *mut pg_sys::PlannedStmt,
) {
    // A parallel worker runs its part of the leader's statement, whose
    // tenant the leader has sent; a setting cannot change there anyway.
    // SAFETY: reads backend-global state.
    if unsafe { pg_sys::ParallelWorkerNumber >= 0 || pg_sys::IsInParallelMode() } {
        return;
    }
    let Some(citus) = citus() else {
        return;
    };
    // SAFETY: the plan PostgreSQL is about to run (or null).
    let carried_in_plan = crate::tenant::context::tenant_set()
        .filter(|tenant| unsafe { super::carried::plan_carries(plan, tenant) });
    if !utility.is_null() {
        // SAFETY: a planned utility statement PostgreSQL handed the hook.
        let is_copy = unsafe {
            !(*utility).utilityStmt.is_null()
                && (*(*utility).utilityStmt).type_ == pg_sys::NodeTag::T_CopyStmt
        };
        if !is_copy {
            return;
        }
    }
    carry_tenant(citus, carried_in_plan);
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: a guarded function; then the chained hook (Citus's, when it is
    // loaded) or the standard executor, with the arguments we were given.
    unsafe {
        before_statement(std::ptr::null_mut(), (*query).plannedstmt);
        executor::next_executor_start(PREVIOUS_EXECUTOR_START, query, eflags)
    }
}

#[allow(clippy::too_many_arguments)] // PostgreSQL's hook signature
unsafe extern "C-unwind" fn process_utility(
    statement: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    environment: *mut pg_sys::QueryEnvironment,
    destination: *mut pg_sys::DestReceiver,
    completion: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: as in executor_start; `statement` is never null here.
    unsafe {
        if !statement.is_null() {
            before_statement(statement, std::ptr::null_mut());
        }
        executor::next_process_utility(
            PREVIOUS_PROCESS_UTILITY,
            statement,
            query,
            read_only_tree,
            context,
            params,
            environment,
            destination,
            completion,
        )
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PREPARE
    ) {
        forget_sent();
    }
}

/// What was sent is gone with the remote transaction (or its savepoint).
fn forget_sent() {
    SENT.with(|s| *s.borrow_mut() = None);
    SENT_ACTOR.with(|s| *s.borrow_mut() = None);
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    _mine: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // A rolled-back savepoint takes back, on the workers too, what was sent
    // inside it: send again at the next statement (once more is harmless).
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget_sent();
    }
}
