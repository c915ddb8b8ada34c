//! Accounting: what each tenant's statements cost, kept in shared memory
//! (`ledger`) for the current and the previous period.
//!
//! A statement is the tenant's when the session has a tenant set as it
//! starts: a query the client sent (not one a function runs through SPI),
//! or a utility statement the client sent (DO, CALL, COPY, DDL, FETCH...;
//! not BEGIN, COMMIT and their kin, nor SET and SHOW). Statements started inside one of ours
//! (functions, triggers, a DO block's queries) are nested: their cost is
//! inside the outer statement's and they are not counted again; so are
//! queries run through SPI outside any statement (deferred triggers at
//! commit). The figures are those of pg_stat_statements, taken the same
//! way: executor time, shared blocks and WAL between the start and the end
//! of each ExecutorRun and ExecutorFinish (an open cursor idles without
//! cost) or of the utility statement, rows as the executor or the command
//! counts them. CPU time is the backend's (user and system) while it works
//! for the tenant: its statements with their parsing, planning and commits,
//! from the first statement counted after the session took the tenant until
//! it takes another or runs a statement without one. Reading that clock is
//! a system call (half a microsecond here), so it is read at most once a
//! millisecond while the tenant stays the same, and at every change: the CPU
//! of the last statements may show up to a millisecond late (with the next
//! statement, or when the session changes tenant). A statement that fails
//! or is cancelled after it started counts as an error, with what it cost
//! until then.

use super::ledger::{self, Entry, Figures, Line, Measure, TRACKED};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::lwlock::PgLwLock;
use pgrx::pg_shmem_init;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// The ledger as shared memory holds it.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Ledger {
    entries: [Entry; TRACKED],
    /// Every tenant folded out of `entries`, summed.
    other: Entry,
    /// When the figures were last reset (microseconds since 2000; 0: at start).
    reset_at: i64,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            entries: [Entry::default(); TRACKED],
            other: Entry::default(),
            reset_at: 0,
        }
    }
}

// SAFETY: plain data, the same in every process.
unsafe impl PGRXSharedMemory for Ledger {}

// SAFETY: the only lock of that name; pg_tenancy names its locks after itself.
static LEDGER: PgLwLock<Ledger> = unsafe { PgLwLock::new(c"pg_tenancy_activity") };

/// `tenancy.activity_rank_by`: which measure picks the top tenants.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RankBy {
    #[name = c"cpu_time"]
    CpuTime,
    #[name = c"exec_time"]
    ExecTime,
    #[name = c"calls"]
    Calls,
    #[name = c"rows"]
    Rows,
    #[name = c"blocks"]
    Blocks,
    #[name = c"wal_bytes"]
    WalBytes,
    #[name = c"errors"]
    Errors,
}

impl RankBy {
    fn measure(self) -> Measure {
        match self {
            RankBy::CpuTime => Measure::CpuTime,
            RankBy::ExecTime => Measure::ExecTime,
            RankBy::Calls => Measure::Calls,
            RankBy::Rows => Measure::Rows,
            RankBy::Blocks => Measure::Blocks,
            RankBy::WalBytes => Measure::WalBytes,
            RankBy::Errors => Measure::Errors,
        }
    }
}

static TRACK: GucSetting<bool> = GucSetting::<bool>::new(true);
static PERIOD_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(60);
static TOP: GucSetting<i32> = GucSetting::<i32>::new(100);
static RANK_BY: GucSetting<RankBy> = GucSetting::<RankBy>::new(RankBy::CpuTime);

/// The most tenants `tenancy.activity_top` may name (a third of the ledger,
/// so that the top rarely competes for room with newcomers).
const MAX_TOP: i32 = (TRACKED / 3) as i32;

/// Registers the settings (always) and sets the ledger aside (when preloaded;
/// `executor` installs the hooks that fill it).
#[allow(unexpected_cfgs)] // pg_shmem_init! tests features pg13 and pg14, which we do not declare
pub fn init() {
    GucRegistry::define_bool_guc(
        c"tenancy.track_activity",
        c"Counts each tenant's statements in shared memory (tenancy.tenant_activity()).",
        c"Needs shared_preload_libraries = 'pg_tenancy'. Only superusers may turn it off for a session.",
        &TRACK,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"tenancy.activity_period",
        c"Length of an accounting period: tenant_activity() shows the current one and the one before.",
        c"Periods start at multiples of this length since the epoch. Takes effect on reload.",
        &PERIOD_SECONDS,
        1,
        7 * 24 * 3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"tenancy.activity_top",
        c"Tenants tenant_activity() and metrics_prometheus() name; the rest are summed as one.",
        c"Takes effect on reload.",
        &TOP,
        1,
        MAX_TOP,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"tenancy.activity_rank_by",
        c"The measure that ranks tenants for tenancy.activity_top, over both periods.",
        c"cpu_time, exec_time, calls, rows, blocks (hit and read), wal_bytes or errors. Takes effect on reload.",
        &RANK_BY,
        GucContext::Sighup,
        GucFlags::default(),
    );
    if super::shared::available() {
        pg_shmem_init!(LEDGER);
    }
}

/// A statement being counted, in this backend.
struct Counted {
    /// The QueryDesc, or the PlannedStmt of a utility statement.
    key: *mut std::ffi::c_void,
    /// The subtransaction it started in: its abort fails the statement.
    subxact: pg_sys::SubTransactionId,
    tenant: [u8; 16],
    /// When the statement started (microseconds since 2000): its period.
    started_at: i64,
    /// In ExecutorStart (whose own queries, such as the running cap's
    /// lookup, are nested in it).
    starting: bool,
    /// Inside ExecutorRun or ExecutorFinish: where that call started.
    running: Option<Mark>,
    figures: Figures,
}

impl Counted {
    /// Whether a statement starting now runs inside this one.
    fn encloses_new_statements(&self) -> bool {
        self.starting || self.running.is_some()
    }
}

/// Where the counters stood when an ExecutorRun or ExecutorFinish started.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    blks_hit: i64,
    blks_read: i64,
    wal_bytes: i64,
}

impl Mark {
    fn now() -> Mark {
        // SAFETY: reads this backend's counters.
        let (buffers, wal) = unsafe { (pg_sys::pgBufferUsage, pg_sys::pgWalUsage) };
        Mark {
            at: Instant::now(),
            blks_hit: buffers.shared_blks_hit,
            blks_read: buffers.shared_blks_read,
            wal_bytes: wal.wal_bytes as i64,
        }
    }

    /// Adds what was spent since the mark.
    fn close(self, figures: &mut Figures) {
        let now = Mark::now();
        figures.exec_us += now.at.duration_since(self.at).as_micros() as i64;
        figures.blks_hit += now.blks_hit - self.blks_hit;
        figures.blks_read += now.blks_read - self.blks_read;
        figures.wal_bytes += now.wal_bytes - self.wal_bytes;
    }
}

/// Where the backend's CPU clock stood when last read, for whom.
#[derive(Clone, Copy)]
struct CpuMark {
    tenant: [u8; 16],
    cpu_micros: i64,
    at: Instant,
}

/// How long the CPU clock goes unread while the tenant stays the same.
const CPU_READ_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

thread_local! {
    /// Usually one; more while an open cursor's statement waits between fetches.
    static COUNTED: RefCell<Vec<Counted>> = const { RefCell::new(Vec::new()) };
    /// Since when the CPU the backend uses is the tenant's (None: nobody's).
    static CPU_MARK: Cell<Option<CpuMark>> = const { Cell::new(None) };
}

/// The CPU used for the mark's tenant since it was set, read now; the
/// mark moves to `next` (None: the CPU from now on is nobody's).
fn take_cpu(next: Option<[u8; 16]>) -> Option<([u8; 16], i64)> {
    let now = cpu_micros();
    let mark = CPU_MARK.replace(next.map(|tenant| CpuMark {
        tenant,
        cpu_micros: now,
        at: Instant::now(),
    }));
    mark.map(|m| (m.tenant, now - m.cpu_micros))
}

/// From now on the backend's CPU is `next`'s (None: nobody's): what was
/// used since the clock was last read goes to the tenant it was for, if
/// that was another. Nothing is read while the owner stays the same.
fn hand_cpu_to(next: Option<[u8; 16]>) {
    if CPU_MARK.get().map(|mark| mark.tenant) == next {
        return;
    }
    if let Some((previous, used)) = take_cpu(next) {
        record_cpu(previous, used);
    }
}

/// The CPU to add to a statement of `tenant` that ends now: what was used
/// since the clock was last read, if a millisecond has passed (or `force`).
fn cpu_ends_for(tenant: [u8; 16], force: bool) -> i64 {
    match CPU_MARK.get() {
        Some(mark)
            if mark.tenant == tenant && (force || mark.at.elapsed() >= CPU_READ_INTERVAL) =>
        {
            take_cpu(Some(tenant)).map_or(0, |(_, used)| used)
        }
        _ => 0,
    }
}

/// A statement starts without a tenant: the CPU used since the clock was
/// last read is the previous tenant's, and what follows is nobody's.
pub fn without_tenant() {
    hand_cpu_to(None);
}

fn record_cpu(tenant: [u8; 16], used: i64) {
    let figures = Figures {
        cpu_us: used,
        ..Figures::default()
    };
    // SAFETY: reads the current statement's start.
    record(&tenant, &figures, unsafe {
        pg_sys::GetCurrentStatementStartTimestamp()
    });
}

/// The backend's CPU time (user and system), microseconds.
fn cpu_micros() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into `now`; this clock exists on every platform we build for.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    now.tv_sec * 1_000_000 + now.tv_nsec / 1_000
}

/// Whether statements are being counted in this backend.
fn tracking() -> bool {
    TRACK.get() && super::shared::available()
}

/// Starts counting the query about to start for `tenant`, unless it is
/// nested in a statement already counted or run by a function.
pub fn before_start(query: *mut pg_sys::QueryDesc, tenant: [u8; 16]) {
    if !tracking() {
        return;
    }
    // SAFETY: the QueryDesc ExecutorStart was given, with its receiver.
    let receiver = unsafe { (*query).dest };
    let destination = if receiver.is_null() {
        None
    } else {
        // SAFETY: as above; the receiver is there.
        Some(unsafe { (*receiver).mydest })
    };
    if destination.is_none_or(|d| {
        d == pg_sys::CommandDest::DestSPI || d == pg_sys::CommandDest::DestSQLFunction
    }) {
        return;
    }
    open(query.cast(), tenant, None);
}

/// Starts counting the utility statement about to run for `tenant`, under
/// the same rule; `statement` is the client's (the top level).
pub fn before_utility(statement: *mut pg_sys::PlannedStmt, tenant: [u8; 16]) {
    if !tracking() {
        return;
    }
    // SAFETY: the statement ProcessUtility was given.
    let utility = unsafe { (*statement).utilityStmt };
    if utility.is_null() {
        return;
    }
    // Transaction control and settings are not work of the tenant's (and
    // `SET tenancy.tenant_id` starts or ends the tenant's statements).
    // SAFETY: a node; its tag says what it is.
    let tag = unsafe { (*utility).type_ };
    if matches!(
        tag,
        pg_sys::NodeTag::T_TransactionStmt
            | pg_sys::NodeTag::T_VariableSetStmt
            | pg_sys::NodeTag::T_VariableShowStmt
    ) {
        return;
    }
    open(statement.cast(), tenant, Some(Mark::now()));
}

/// Starts counting a statement (already running, for a utility one) unless
/// one already counted encloses it.
fn open(key: *mut std::ffi::c_void, tenant: [u8; 16], running: Option<Mark>) {
    let opened = COUNTED.with(|counted| {
        let mut counted = counted.borrow_mut();
        if counted.iter().any(Counted::encloses_new_statements) {
            return false;
        }
        // SAFETY: reads the current subtransaction and statement's start.
        let (subxact, started_at) = unsafe {
            (
                pg_sys::GetCurrentSubTransactionId(),
                pg_sys::GetCurrentStatementStartTimestamp(),
            )
        };
        counted.push(Counted {
            key,
            subxact,
            tenant,
            started_at,
            starting: running.is_none(),
            running,
            figures: Figures::default(),
        });
        true
    });
    if opened {
        hand_cpu_to(Some(tenant));
    }
}

/// Runs `change` on the statement counted for `query`, if it is one.
fn with_counted(query: *mut pg_sys::QueryDesc, change: impl FnOnce(&mut Counted)) {
    COUNTED.with(|counted| {
        if let Some(c) = counted
            .borrow_mut()
            .iter_mut()
            .find(|c| c.key == query.cast())
        {
            change(c);
        }
    });
}

/// ExecutorStart has set `query` up.
pub fn after_start(query: *mut pg_sys::QueryDesc) {
    with_counted(query, |c| c.starting = false);
}

/// ExecutorRun or ExecutorFinish is about to run `query`.
pub fn before_run(query: *mut pg_sys::QueryDesc) {
    with_counted(query, |c| {
        c.running.get_or_insert_with(Mark::now);
    });
}

/// ExecutorRun or ExecutorFinish has returned.
pub fn after_run(query: *mut pg_sys::QueryDesc) {
    with_counted(query, |c| {
        if let Some(mark) = c.running.take() {
            mark.close(&mut c.figures);
        }
    });
}

/// The statement counted under `key`, no longer counted (None: not one).
fn take(key: *mut std::ffi::c_void) -> Option<Counted> {
    COUNTED.with(|counted| {
        let mut counted = counted.borrow_mut();
        let i = counted.iter().position(|c| c.key == key)?;
        Some(counted.swap_remove(i))
    })
}

/// ExecutorEnd is about to end `query` (its executor state is still there).
pub fn before_end(query: *mut pg_sys::QueryDesc) {
    if let Some(mut done) = take(query.cast()) {
        // SAFETY: ExecutorEnd has not freed the executor state yet.
        let estate = unsafe { (*query).estate };
        if !estate.is_null() {
            // SAFETY: as above.
            done.figures.rows += unsafe { (*estate).es_processed } as i64;
        }
        done.figures.calls += 1;
        finish(done);
    }
}

/// The utility statement `statement` has run; `completion` counts its rows.
pub fn after_utility(
    statement: *mut pg_sys::PlannedStmt,
    completion: *mut pg_sys::QueryCompletion,
) {
    if let Some(mut done) = take(statement.cast()) {
        if let Some(mark) = done.running.take() {
            mark.close(&mut done.figures);
        }
        if !completion.is_null() {
            // SAFETY: the completion ProcessUtility filled in.
            done.figures.rows += unsafe { (*completion).nprocessed } as i64;
        }
        done.figures.calls += 1;
        finish(done);
    }
}

/// The statements that started in subtransaction `since` or a later one
/// (all, for None) failed: each counts as an error, with what it spent.
pub fn failed(since: Option<pg_sys::SubTransactionId>) {
    let failed: Vec<Counted> = COUNTED.with(|counted| {
        let mut counted = counted.borrow_mut();
        let (failed, kept) = counted
            .drain(..)
            .partition(|c| since.is_none_or(|s| c.subxact >= s));
        *counted = kept;
        failed
    });
    for mut statement in failed {
        if let Some(mark) = statement.running.take() {
            mark.close(&mut statement.figures);
        }
        statement.figures.errors += 1;
        statement.figures.cpu_us += cpu_ends_for(statement.tenant, true);
        finish(statement);
    }
}

/// The transaction committed: a statement still open (a cursor's portal
/// closed without ExecutorEnd) counts as completed; one still running (a
/// procedure that commits) goes on into the next transaction.
pub fn committed() {
    let left: Vec<Counted> = COUNTED.with(|counted| {
        let mut counted = counted.borrow_mut();
        let (running, left) = counted
            .drain(..)
            .partition(Counted::encloses_new_statements);
        *counted = running;
        left
    });
    for mut statement in left {
        statement.figures.calls += 1;
        finish(statement);
    }
}

/// Adds the statement's figures, and the CPU due, to its tenant's entry.
fn finish(mut statement: Counted) {
    statement.figures.cpu_us += cpu_ends_for(statement.tenant, false);
    record(&statement.tenant, &statement.figures, statement.started_at);
}

/// Adds `figures` to `tenant`'s entry, in the period of `at`.
fn record(tenant: &[u8; 16], figures: &Figures, at: i64) {
    let period = ledger::period_of(at, i64::from(PERIOD_SECONDS.get()));
    let measure = RANK_BY.get().measure();
    let mut ledger = LEDGER.exclusive();
    let Ledger { entries, other, .. } = &mut *ledger;
    ledger::record(entries, other, tenant, figures, period, measure);
}

/// What `tenant_activity()` reports: the top tenants and the rest, the
/// current period's start, the period length, and when the figures were
/// last reset (None: since the server started).
pub struct Report {
    pub lines: Vec<Line>,
    pub period_start: i64,
    pub period_seconds: i64,
    pub reset_at: Option<i64>,
}

/// The report, now; None when the ledger does not exist (not preloaded).
pub fn report() -> Option<Report> {
    if !super::shared::available() {
        return None;
    }
    let seconds = i64::from(PERIOD_SECONDS.get());
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let period = ledger::period_of(now, seconds);
    let (mut entries, other, reset_at) = {
        let ledger = LEDGER.share();
        (ledger.entries.to_vec(), ledger.other, ledger.reset_at)
    };
    let top = usize::try_from(TOP.get()).unwrap_or(1);
    Some(Report {
        lines: ledger::report(
            &mut entries[..],
            &other,
            period,
            top,
            RANK_BY.get().measure(),
        ),
        period_start: period * seconds * 1_000_000,
        period_seconds: seconds,
        reset_at: (reset_at != 0).then_some(reset_at),
    })
}

/// Forgets every figure; returns when (None when not preloaded).
pub fn reset() -> Option<i64> {
    if !super::shared::available() {
        return None;
    }
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let mut ledger = LEDGER.exclusive();
    ledger.entries.fill(Entry::default());
    ledger.other = Entry::default();
    ledger.reset_at = now;
    Some(now)
}
