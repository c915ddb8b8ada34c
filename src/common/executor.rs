//! PostgreSQL's standard executor and utility functions, declared for the
//! hooks that chain to them, without pgrx's guard.
//!
//! A hook in the executor chain must not be #[pg_guard]ed: an ERROR raised
//! further down the chain (by the statement itself) must reach PostgreSQL as
//! it was raised, with its CONTEXT lines and error fields, not caught and
//! raised again by pgrx, which keeps only the message, detail and hint. So
//! our hooks hold nothing that needs dropping when they call down the chain
//! (an ERROR's longjmp may cross them), call these declarations when no other
//! hook follows, and do their own work in guarded functions around the call.

use pgrx::pg_sys;

unsafe extern "C-unwind" {
    #[link_name = "standard_ExecutorStart"]
    fn standard_executor_start(query: *mut pg_sys::QueryDesc, eflags: i32);
    #[cfg(not(feature = "pg18"))]
    #[link_name = "standard_ExecutorRun"]
    pub fn standard_executor_run(
        query: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
        execute_once: bool,
    );
    #[cfg(feature = "pg18")]
    #[link_name = "standard_ExecutorRun"]
    pub fn standard_executor_run(
        query: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
    );
    #[link_name = "standard_ExecutorFinish"]
    pub fn standard_executor_finish(query: *mut pg_sys::QueryDesc);
    #[link_name = "standard_ExecutorEnd"]
    pub fn standard_executor_end(query: *mut pg_sys::QueryDesc);
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        statement: *mut pg_sys::PlannedStmt,
        query: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        environment: *mut pg_sys::QueryEnvironment,
        destination: *mut pg_sys::DestReceiver,
        completion: *mut pg_sys::QueryCompletion,
    );
}

/// Calls the next ExecutorStart in the chain: `previous`, the hook that was
/// installed before ours, or the standard executor.
///
/// # Safety
/// Called from an ExecutorStart hook with the arguments it was given.
pub unsafe fn next_executor_start(
    previous: pg_sys::ExecutorStart_hook_type,
    query: *mut pg_sys::QueryDesc,
    eflags: i32,
) {
    // SAFETY: the caller's arguments, handed on.
    unsafe {
        match previous {
            Some(previous) => previous(query, eflags),
            None => standard_executor_start(query, eflags),
        }
    }
}

/// Calls the next ProcessUtility in the chain, as [`next_executor_start`].
///
/// # Safety
/// Called from a ProcessUtility hook with the arguments it was given.
#[allow(clippy::too_many_arguments)] // PostgreSQL's hook signature
pub unsafe fn next_process_utility(
    previous: pg_sys::ProcessUtility_hook_type,
    statement: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    environment: *mut pg_sys::QueryEnvironment,
    destination: *mut pg_sys::DestReceiver,
    completion: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: the caller's arguments, handed on.
    unsafe {
        match previous {
            Some(previous) => previous(
                statement,
                query,
                read_only_tree,
                context,
                params,
                environment,
                destination,
                completion,
            ),
            None => standard_process_utility(
                statement,
                query,
                read_only_tree,
                context,
                params,
                environment,
                destination,
                completion,
            ),
        }
    }
}

/// ExecutorRun's arguments, whatever the major (PostgreSQL 18 dropped
/// `execute_once`).
#[derive(Clone, Copy)]
pub struct RunArgs {
    pub query: *mut pg_sys::QueryDesc,
    pub direction: pg_sys::ScanDirection::Type,
    pub count: u64,
    #[cfg(not(feature = "pg18"))]
    pub execute_once: bool,
}

impl RunArgs {
    /// Calls the next ExecutorRun in the chain with these arguments, as
    /// [`next_executor_start`].
    ///
    /// # Safety
    /// The arguments PostgreSQL gave an ExecutorRun hook.
    pub unsafe fn run_next(self, previous: pg_sys::ExecutorRun_hook_type) {
        // SAFETY: the caller's arguments, handed on.
        unsafe {
            #[cfg(not(feature = "pg18"))]
            match previous {
                Some(previous) => {
                    previous(self.query, self.direction, self.count, self.execute_once)
                }
                None => {
                    standard_executor_run(self.query, self.direction, self.count, self.execute_once)
                }
            }
            #[cfg(feature = "pg18")]
            match previous {
                Some(previous) => previous(self.query, self.direction, self.count),
                None => standard_executor_run(self.query, self.direction, self.count),
            }
        }
    }
}

/// Defines `$hook`, an ExecutorRun hook with the signature of the major
/// being built, that hands its arguments to `$body(RunArgs)`. Not guarded,
/// as the module says.
macro_rules! executor_run_hook {
    ($hook:ident, $body:path) => {
        #[cfg(not(feature = "pg18"))]
        unsafe extern "C-unwind" fn $hook(
            query: *mut pgrx::pg_sys::QueryDesc,
            direction: pgrx::pg_sys::ScanDirection::Type,
            count: u64,
            execute_once: bool,
        ) {
            // SAFETY: PostgreSQL's arguments, handed on.
            unsafe {
                $body($crate::common::executor::RunArgs {
                    query,
                    direction,
                    count,
                    execute_once,
                })
            }
        }

        #[cfg(feature = "pg18")]
        unsafe extern "C-unwind" fn $hook(
            query: *mut pgrx::pg_sys::QueryDesc,
            direction: pgrx::pg_sys::ScanDirection::Type,
            count: u64,
        ) {
            // SAFETY: PostgreSQL's arguments, handed on.
            unsafe {
                $body($crate::common::executor::RunArgs {
                    query,
                    direction,
                    count,
                })
            }
        }
    };
}
pub(crate) use executor_run_hook;
