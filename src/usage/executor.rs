//! The executor and utility hooks of usage: each top-level query a tenant's
//! session runs takes its place under the tenant's running cap (`running`),
//! and each statement it sends is counted (`activity`). Installed only where
//! pg_tenancy is preloaded.
//!
//! The hooks are not #[pg_guard]ed (see `crate::common::executor`): they do
//! their work in guarded functions before and after the call down the chain,
//! and what an ERROR skips (the "after" half) the transaction and
//! subtransaction callbacks do instead.

use super::{activity, running};
use crate::common::executor;
use pgrx::prelude::*;

static mut PREVIOUS_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREVIOUS_END: pg_sys::ExecutorEnd_hook_type = None;
static mut PREVIOUS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Chains the hooks and registers the callbacks; called from `_PG_init`
/// while the server loads `shared_preload_libraries`.
pub fn init() {
    // SAFETY: hooks are chained while the library loads, before any query.
    unsafe {
        PREVIOUS_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREVIOUS_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        PREVIOUS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn before_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    // A parallel worker runs part of its leader's statement, which holds the
    // place and is counted.
    // SAFETY: reads backend-global state.
    if unsafe { pg_sys::ParallelWorkerNumber >= 0 } {
        return;
    }
    let Some(tenant) = crate::tenant::context::tenant_set() else {
        activity::without_tenant();
        return;
    };
    // Counted first: a statement the cap refuses counts as an error.
    activity::before_start(query, tenant);
    running::before_start(query, tenant);
}

#[pg_guard]
unsafe extern "C-unwind" fn before_utility(
    statement: *mut pg_sys::PlannedStmt,
    context: pg_sys::ProcessUtilityContext::Type,
) {
    if context != pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL {
        return;
    }
    // SAFETY: reads backend-global state.
    if unsafe { pg_sys::ParallelWorkerNumber >= 0 } {
        return;
    }
    match crate::tenant::context::tenant_set() {
        Some(tenant) => activity::before_utility(statement, tenant),
        None => activity::without_tenant(),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn after_utility(
    statement: *mut pg_sys::PlannedStmt,
    completion: *mut pg_sys::QueryCompletion,
) {
    activity::after_utility(statement, completion);
}

#[pg_guard]
unsafe extern "C-unwind" fn after_start(query: *mut pg_sys::QueryDesc) {
    activity::after_start(query);
}

#[pg_guard]
unsafe extern "C-unwind" fn before_run(query: *mut pg_sys::QueryDesc) {
    activity::before_run(query);
}

#[pg_guard]
unsafe extern "C-unwind" fn after_run(query: *mut pg_sys::QueryDesc) {
    activity::after_run(query);
}

#[pg_guard]
unsafe extern "C-unwind" fn before_end(query: *mut pg_sys::QueryDesc) {
    activity::before_end(query);
}

#[pg_guard]
unsafe extern "C-unwind" fn after_end(query: *mut pg_sys::QueryDesc) {
    running::after_end(query);
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: guarded functions around the chained hook or the standard
    // executor, called with the arguments we were given.
    unsafe {
        before_start(query, eflags);
        executor::next_executor_start(PREVIOUS_START, query, eflags);
        after_start(query);
    }
}

executor::executor_run_hook!(executor_run, counted_run);

/// Runs the statement between [`before_run`] and [`after_run`].
///
/// # Safety
/// PostgreSQL's ExecutorRun arguments.
unsafe fn counted_run(run: executor::RunArgs) {
    // SAFETY: as in executor_start.
    unsafe {
        before_run(run.query);
        run.run_next(PREVIOUS_RUN);
        after_run(run.query);
    }
}

unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    // SAFETY: as in executor_start.
    unsafe {
        before_run(query);
        match PREVIOUS_FINISH {
            Some(previous) => previous(query),
            None => executor::standard_executor_finish(query),
        }
        after_run(query);
    }
}

unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    // SAFETY: as in executor_start; the rows are read before the executor
    // state is freed, the place given back once the statement has ended.
    unsafe {
        before_end(query);
        match PREVIOUS_END {
            Some(previous) => previous(query),
            None => executor::standard_executor_end(query),
        }
        after_end(query);
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
    // SAFETY: as in executor_start.
    unsafe {
        before_utility(statement, context);
        executor::next_process_utility(
            PREVIOUS_UTILITY,
            statement,
            query,
            read_only_tree,
            context,
            params,
            environment,
            destination,
            completion,
        );
        after_utility(statement, completion);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            activity::committed();
            running::transaction_ended();
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT => {
            activity::failed(None);
            running::transaction_ended();
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    mine: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        activity::failed(Some(mine));
        running::subtransaction_aborted(mine);
    }
}
