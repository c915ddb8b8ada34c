//! Carrying the session's tenant to the Citus workers.
//!
//! Row-level security on a distributed table is enforced by each shard's own
//! copy of the policy, on the worker that holds it, with that worker
//! connection's `tenancy.tenant_id`. Citus forwards a setting only as a
//! `SET LOCAL` inside a transaction block, so a tenant chosen with
//! `set_tenant` (for the session, or for the transaction) would never reach
//! the workers. Before each statement runs here, if the tenant the workers
//! must see differs from what this transaction last sent them, pg_tenancy
//! has Citus send `SET LOCAL tenancy.tenant_id TO ...` to every worker
//! connection of the transaction, open or yet to open, in one of two ways:
//!
//! - Citus's SQL interface, everywhere: pg_tenancy runs the `SET LOCAL`
//!   inside its procedure `tenancy._carry_to_workers`, with
//!   `citus.propagate_set_commands = local` (Citus propagates a `SET LOCAL`
//!   run inside a procedure). Outside a transaction block Citus opens
//!   transaction blocks on the workers only in a coordinated transaction,
//!   which an empty `create_intermediate_result` makes this one.
//! - Where citus.so exports them (built for PostgreSQL 15) and
//!   `tenancy.citus_internals` is on: the two C functions Citus calls for
//!   such a `SET LOCAL` itself (`common::citus::Internals`), which cost no
//!   intermediate result.
//!
//! The workers check the value like any other `SET` (the tenant exists
//! there, is active, and the role may act for it), so nothing a session sends
//! gives it more than `set_tenant` would on one node. A local setting ends
//! with the remote transaction, so the next transaction on the same
//! connections starts without it.

use crate::common::citus::citus;
use crate::common::executor::{self, RunArgs};
use crate::common::settings::with_settings;
use crate::tenant::context::{tenant_to_carry, ACTOR_SETTING, TENANT_SETTING};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;

thread_local! {
    /// What this transaction last sent the workers (None: nothing yet).
    static SENT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The actor this transaction last sent them (None: nothing yet).
    static SENT_ACTOR: RefCell<Option<String>> = const { RefCell::new(None) };
    /// This transaction is a coordinated one (see [`coordinate`]).
    static COORDINATED: Cell<bool> = const { Cell::new(false) };
    /// pg_tenancy is calling `tenancy._carry_to_workers` (which refuses any
    /// other caller); its own statements carry nothing.
    static SENDING: Cell<bool> = const { Cell::new(false) };
    /// The settings the procedure is to run as `SET LOCAL`.
    static TO_SEND: RefCell<Vec<(&'static CStr, String)>> = const { RefCell::new(Vec::new()) };
    /// A write outside a transaction block whose run the procedure is to
    /// make (see [`run_inside_procedure`]), set between its ExecutorStart and
    /// its ExecutorRun.
    static RUN_INSIDE: Cell<*mut pg_sys::QueryDesc> = const { Cell::new(std::ptr::null_mut()) };
    /// The run the procedure makes after its `SET LOCAL`s.
    static PENDING_RUN: Cell<Option<RunArgs>> = const { Cell::new(None) };
}

static mut PREVIOUS_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREVIOUS_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREVIOUS_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hooks; called from `_PG_init`. They cost one test per
/// statement where Citus is not loaded.
pub fn init() {
    // SAFETY: hooks are chained while the library loads, before any query.
    unsafe {
        PREVIOUS_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREVIOUS_EXECUTOR_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(executor_run);
        PREVIOUS_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
}

/// What is about to run.
#[derive(Clone, Copy)]
enum Statement {
    /// A COPY (into or out of a distributed table it reaches the workers
    /// without the executor).
    Copy,
    /// A planned statement, with the tenant its shard queries carry
    /// themselves (`carried`), if any.
    Planned {
        query: *mut pg_sys::QueryDesc,
        carried_in_plan: Option<[u8; 16]>,
        /// EXPLAIN without ANALYZE: no run follows (Citus still asks the
        /// workers for their plans).
        explain_only: bool,
    },
}

/// Sends the tenant (and the actor) the workers must see, if this statement
/// may reach them and they have not seen it in this transaction yet. A
/// statement outside a transaction block whose shard queries carry the
/// session's tenant needs nothing more.
fn carry_tenant(statement: Statement) {
    // SAFETY: reads backend-global transaction state.
    if !unsafe { pg_sys::IsTransactionState() } || SENDING.get() {
        return;
    }
    let Some(citus) = citus() else {
        return;
    };
    if citus.is_internal_backend() || !citus.in_this_database() {
        return;
    }
    // SAFETY: as above.
    let autocommit = !unsafe { pg_sys::IsTransactionBlock() };
    if let Statement::Planned {
        query,
        carried_in_plan,
        ..
    } = statement
    {
        // SAFETY: the QueryDesc PostgreSQL is starting, with its plan.
        if !unsafe { reaches_workers((*query).plannedstmt) } {
            return;
        }
        if autocommit
            && carried_in_plan.is_some()
            && carried_in_plan == crate::tenant::context::tenant_set()
            && SENT.with(|s| s.borrow().is_none())
        {
            return;
        }
    }
    let settings = settings_to_send();
    if settings.is_empty() {
        return;
    }
    if let Some(internals) = crate::common::citus::internals() {
        for (setting, value) in &settings {
            internals.set_local_on_workers(setting, value);
        }
        record_sent(&settings);
        return;
    }
    TO_SEND.with(|t| *t.borrow_mut() = settings);
    match statement {
        Statement::Planned {
            query,
            explain_only: false,
            ..
        } if autocommit && is_write(query) => {
            // Sent by the procedure, at ExecutorRun.
            RUN_INSIDE.set(query);
        }
        _ => {
            if autocommit && !COORDINATED.get() {
                coordinate();
            }
            // SAFETY: inside a transaction, outside any ExecutorRun we hold.
            unsafe { send_through_procedure() };
        }
    }
}

/// The tenant and the actor the workers must be sent: those this
/// transaction has not sent them yet.
fn settings_to_send() -> Vec<(&'static CStr, String)> {
    let mut settings = Vec::new();
    if let Some(tenant) = tenant_to_send() {
        settings.push((TENANT_SETTING, tenant));
    }
    if let Some(actor) = actor_to_send() {
        settings.push((ACTOR_SETTING, actor));
    }
    settings
}

/// Remembers what the workers were sent in this transaction.
fn record_sent(settings: &[(&'static CStr, String)]) {
    for (setting, value) in settings {
        let sent = if *setting == TENANT_SETTING {
            &SENT
        } else {
            &SENT_ACTOR
        };
        sent.with(|s| *s.borrow_mut() = Some(value.clone()));
    }
}

/// The tenant the workers must be sent, unless this transaction sent it.
fn tenant_to_send() -> Option<String> {
    let wanted = tenant_to_carry().or_else(|| {
        // Nothing of our own to carry, but a tenant sent earlier in this
        // transaction must be taken back.
        SENT.with(|s| {
            s.borrow()
                .as_ref()
                .filter(|v| !v.is_empty())
                .map(|_| String::new())
        })
    })?;
    (SENT.with(|s| s.borrow().as_deref() != Some(wanted.as_str()))).then_some(wanted)
}

/// The actor (`set_actor`) the workers must be sent, where the audit
/// triggers of distributed tables record it, unless this transaction sent
/// it; an actor cleared after one was sent is sent as empty.
fn actor_to_send() -> Option<String> {
    let wanted = crate::tenant::context::current_actor().unwrap_or_default();
    let sent = SENT_ACTOR.with(|s| s.borrow().clone());
    if sent.as_deref() == Some(wanted.as_str()) || (sent.is_none() && wanted.is_empty()) {
        return None;
    }
    Some(wanted)
}

/// Whether `query` writes (INSERT, UPDATE, DELETE, MERGE, or a SELECT with a
/// writing CTE): Citus runs a write's shard queries in transaction blocks
/// inside a procedure, a read's only in a transaction block.
fn is_write(query: *mut pg_sys::QueryDesc) -> bool {
    // SAFETY: the QueryDesc PostgreSQL is starting.
    unsafe {
        (*query).operation != pg_sys::CmdType::CMD_SELECT
            || (!(*query).plannedstmt.is_null() && (*(*query).plannedstmt).hasModifyingCTE)
    }
}

/// Whether `plan` runs a Citus scan (its shard queries reach the workers),
/// anywhere in its tree or its subplans. A statement that does not may still
/// call one that does (a function, a trigger): that one's ExecutorStart
/// carries the tenant then.
///
/// # Safety
/// `plan` is null or a valid plan.
unsafe fn reaches_workers(plan: *mut pg_sys::PlannedStmt) -> bool {
    if plan.is_null() {
        return true;
    }
    // SAFETY: walking the valid plan we were given.
    unsafe {
        has_citus_scan((*plan).planTree)
            || pgrx::PgList::<pg_sys::Plan>::from_pg((*plan).subplans)
                .iter_ptr()
                .any(|subplan| has_citus_scan(subplan))
    }
}

/// # Safety
/// `plan` is null or a valid plan node.
unsafe fn has_citus_scan(plan: *mut pg_sys::Plan) -> bool {
    if plan.is_null() {
        return false;
    }
    let any = |list: *mut pg_sys::List| {
        // SAFETY: a list of plan nodes of a valid plan.
        pgrx::PgList::<pg_sys::Plan>::from_pg(list)
            .iter_ptr()
            .any(|child| unsafe { has_citus_scan(child) })
    };
    // SAFETY: reading plan nodes by their tags.
    unsafe {
        let children = match (*plan).type_ {
            pg_sys::NodeTag::T_CustomScan => {
                let scan = plan as *mut pg_sys::CustomScan;
                let methods = (*scan).methods;
                if !methods.is_null()
                    && !(*methods).CustomName.is_null()
                    && CStr::from_ptr((*methods).CustomName)
                        .to_bytes()
                        .starts_with(b"Citus")
                {
                    return true;
                }
                any((*scan).custom_plans)
            }
            pg_sys::NodeTag::T_Append => any((*(plan as *mut pg_sys::Append)).appendplans),
            pg_sys::NodeTag::T_MergeAppend => any((*(plan as *mut pg_sys::MergeAppend)).mergeplans),
            pg_sys::NodeTag::T_BitmapAnd => any((*(plan as *mut pg_sys::BitmapAnd)).bitmapplans),
            pg_sys::NodeTag::T_BitmapOr => any((*(plan as *mut pg_sys::BitmapOr)).bitmapplans),
            pg_sys::NodeTag::T_SubqueryScan => {
                has_citus_scan((*(plan as *mut pg_sys::SubqueryScan)).subplan)
            }
            _ => false,
        };
        children || has_citus_scan((*plan).lefttree) || has_citus_scan((*plan).righttree)
    }
}

/// Makes this transaction a coordinated one: Citus then runs its remote work
/// in transaction blocks, which carry the `SET LOCAL`s, even for a statement
/// outside a transaction block (which Citus would otherwise send bare). An
/// empty intermediate result is the one thing of Citus's SQL interface that
/// does that with no remote round trip: a file in this node's job cache,
/// which Citus removes at the end of the transaction. Called through fmgr,
/// as a SELECT of it would be, without parsing or planning one. Only for a
/// read outside a transaction block whose shard queries do not carry the
/// tenant (and COPY): a write runs inside the procedure instead.
fn coordinate() {
    let Some(create_intermediate_result) = super::carried::function(
        c"pg_catalog",
        c"create_intermediate_result",
        &[pg_sys::TEXTOID, pg_sys::TEXTOID],
    ) else {
        error!(
            "pg_catalog.create_intermediate_result(text, text) is missing: is Citus up to date?"
        );
    };
    // SAFETY: a call of a SQL-callable function by OID with two text
    // arguments, inside a transaction; an ERROR propagates as usual.
    unsafe {
        pg_sys::OidFunctionCall2Coll(
            create_intermediate_result,
            pg_sys::InvalidOid,
            "pg_tenancy_carry".into_datum().expect("text"),
            "SELECT".into_datum().expect("text"),
        );
    }
    COORDINATED.set(true);
}

/// `CALL tenancy._carry_to_workers()`, made without parsing one: a CallStmt
/// handed to the utility hooks below ours (Citus's among them, which counts
/// it as a procedure), as `PROCESS_UTILITY_QUERY`, so atomic. The procedure
/// runs the `SET LOCAL`s of [`TO_SEND`], then the run of [`PENDING_RUN`] if
/// there is one.
///
/// # Safety
/// Inside a transaction. Not guarded: an ERROR of the run it makes must
/// reach PostgreSQL as raised (see crate::common::executor).
unsafe fn call_carry_procedure() {
    // SAFETY: nodes made in the current memory context; the hooks get the
    // arguments PostgreSQL would give them for a nested CALL.
    unsafe {
        let statement = carry_call_statement();
        let mut completion: pg_sys::QueryCompletion = std::mem::zeroed();
        executor::next_process_utility(
            PREVIOUS_PROCESS_UTILITY,
            statement,
            c"CALL tenancy._carry_to_workers()".as_ptr(),
            false,
            pg_sys::ProcessUtilityContext::PROCESS_UTILITY_QUERY,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::None_Receiver,
            &mut completion,
        );
    }
}

/// The planned `CALL tenancy._carry_to_workers()`.
#[pg_guard]
unsafe extern "C-unwind" fn carry_call_statement() -> *mut pg_sys::PlannedStmt {
    let Some(procedure) = super::carried::our_procedure(c"_carry_to_workers") else {
        error!("tenancy._carry_to_workers() is missing: ALTER EXTENSION pg_tenancy UPDATE");
    };
    // SAFETY: nodes made in the current memory context.
    unsafe {
        let call =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::CallStmt>()) as *mut pg_sys::CallStmt;
        (*call).type_ = pg_sys::NodeTag::T_CallStmt;
        (*call).funcexpr = pg_sys::makeFuncExpr(
            procedure,
            pg_sys::VOIDOID,
            std::ptr::null_mut(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        let planned =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::PlannedStmt>()) as *mut pg_sys::PlannedStmt;
        (*planned).type_ = pg_sys::NodeTag::T_PlannedStmt;
        (*planned).commandType = pg_sys::CmdType::CMD_UTILITY;
        (*planned).utilityStmt = call.cast();
        (*planned).stmt_location = -1;
        planned
    }
}

/// `tenancy._carry_to_workers()`, a procedure, so that Citus propagates the
/// `SET LOCAL`s it runs to the workers (Citus does inside procedures and
/// transaction blocks) and runs a write's shard queries in transaction
/// blocks, which carry them. Only pg_tenancy's own call is accepted (42501
/// otherwise).
#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_tenancy_carry_to_workers() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Not guarded: the write it runs raises its ERRORs as they are.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn tenancy_carry_to_workers(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: a guarded function, then the held run (if any) with the
    // arguments PostgreSQL gave our ExecutorRun hook.
    unsafe {
        set_locals_for_workers();
        if let Some(run) = PENDING_RUN.take() {
            run.run_next(PREVIOUS_EXECUTOR_RUN);
        }
    }
    pg_sys::Datum::from(0)
}

/// Runs `SET LOCAL` for each setting of [`TO_SEND`], and records them as
/// sent. The tenant is not checked again here: it is the one the session
/// has (checked when it was set, or at first use for a login tenant), and
/// each worker checks it.
#[pg_guard]
unsafe extern "C-unwind" fn set_locals_for_workers() {
    if !SENDING.get() {
        crate::common::error::insufficient_privilege(
            "tenancy._carry_to_workers() is pg_tenancy's own: use tenancy.set_tenant()",
        )
        .report(PgLogLevel::ERROR);
    }
    let settings = TO_SEND.with(|t| std::mem::take(&mut *t.borrow_mut()));
    with_settings(&[("citus.propagate_set_commands", "local")], || {
        for (setting, value) in &settings {
            let _vouched = (*setting == TENANT_SETTING)
                .then(|| {
                    crate::tenant::context::parse_tenant_setting(value)
                        .ok()
                        .flatten()
                })
                .flatten()
                .map(|tenant| crate::tenant::context::vouch_for(&tenant));
            Spi::run(&crate::common::citus::set_local_statement(setting, value))
                .expect("SET LOCAL of a setting to carry failed");
        }
    });
    record_sent(&settings);
    // The run that follows is the client's statement: what it calls is not ours.
    SENDING.set(false);
}

/// Calls the procedure with SENDING set. The procedure resets it before it
/// makes a held run; an ERROR before that leaves it set until the end of the
/// (sub)transaction, which resets it ([`forget_pending`]).
///
/// # Safety
/// As [`call_carry_procedure`].
unsafe fn send_through_procedure() {
    SENDING.set(true);
    // SAFETY: as the caller promised.
    unsafe { call_carry_procedure() };
    SENDING.set(false);
}

/// Forgets a send or a run in progress: an ERROR ended it.
fn forget_pending() {
    SENDING.set(false);
    RUN_INSIDE.set(std::ptr::null_mut());
    PENDING_RUN.set(None);
    TO_SEND.with(|t| t.borrow_mut().clear());
}

// The hooks below are not #[pg_guard]ed: see crate::common::executor.

/// [`carry_tenant`], for a statement about to run; of utility statements
/// only COPY.
#[pg_guard]
unsafe extern "C-unwind" fn before_statement(
    utility: *mut pg_sys::PlannedStmt,
    query: *mut pg_sys::QueryDesc,
    eflags: i32,
) {
    // A parallel worker runs its part of the leader's statement, whose
    // tenant the leader has sent; a setting cannot change there anyway.
    // SAFETY: reads backend-global state.
    if unsafe { pg_sys::ParallelWorkerNumber >= 0 || pg_sys::IsInParallelMode() } {
        return;
    }
    if citus().is_none() {
        return;
    }
    if !utility.is_null() {
        // SAFETY: a planned utility statement PostgreSQL handed the hook.
        let is_copy = unsafe {
            !(*utility).utilityStmt.is_null()
                && (*(*utility).utilityStmt).type_ == pg_sys::NodeTag::T_CopyStmt
        };
        if is_copy {
            carry_tenant(Statement::Copy);
        }
        return;
    }
    // SAFETY: the QueryDesc PostgreSQL is starting, with its plan.
    let carried_in_plan = crate::tenant::context::tenant_set()
        .filter(|tenant| unsafe { super::carried::plan_carries((*query).plannedstmt, tenant) });
    carry_tenant(Statement::Planned {
        query,
        carried_in_plan,
        explain_only: eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0,
    });
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: a guarded function; then the chained hook (Citus's, when it is
    // loaded) or the standard executor, with the arguments we were given.
    unsafe {
        before_statement(std::ptr::null_mut(), query, eflags);
        executor::next_executor_start(PREVIOUS_EXECUTOR_START, query, eflags)
    }
}

/// A write outside a transaction block, on Citus's SQL interface alone
/// ([`carry_tenant`] marked it): its run is made inside
/// `tenancy._carry_to_workers`, after the `SET LOCAL`s. Citus counts
/// everything inside a procedure as one transaction, as it does a
/// procedure's own statements: the write's shard queries go in transaction
/// blocks, with the `SET LOCAL`s. Runs with a row limit (a cursor's) are
/// made directly, and carried as a read's.
///
/// # Safety
/// PostgreSQL's ExecutorRun arguments.
unsafe fn run_inside_procedure(run: RunArgs) {
    // SAFETY: the arguments we were given, handed on.
    unsafe {
        if RUN_INSIDE.get() != run.query {
            run.run_next(PREVIOUS_EXECUTOR_RUN);
            return;
        }
        RUN_INSIDE.set(std::ptr::null_mut());
        if run.count != 0 {
            before_limited_run();
            run.run_next(PREVIOUS_EXECUTOR_RUN);
            return;
        }
        PENDING_RUN.set(Some(run));
        send_through_procedure();
    }
}

/// A held write run with a row limit: carried as a read is.
#[pg_guard]
unsafe extern "C-unwind" fn before_limited_run() {
    if !COORDINATED.get() {
        coordinate();
    }
    // SAFETY: inside a transaction, outside any run we hold.
    unsafe { send_through_procedure() };
}

executor::executor_run_hook!(executor_run, run_inside_procedure);

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
            before_statement(statement, std::ptr::null_mut(), 0);
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
        forget_pending();
        COORDINATED.set(false);
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
    // A released one too, for the connections opened after it: Citus keeps
    // the SET LOCALs it gives them per subtransaction and drops those of a
    // subtransaction when it ends, released or not.
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget_sent();
        forget_pending();
    } else if event == pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB {
        forget_sent();
    }
}
