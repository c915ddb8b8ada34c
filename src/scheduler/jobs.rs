//! `run_jobs` and `run_retention` as a queue of small steps, each meant to run
//! in a transaction of its own: the procedures (and the scheduler) call
//! `_jobs_step()` and commit between calls, so a retention batch is committed
//! before the next starts and a killed run loses at most one batch.
//!
//! The queue lives in this backend, which is the one that runs every step.
//! Every step's outcome is a row in `tenancy.job_runs`; a step that fails is
//! rolled back alone (subtransaction), recorded as `failed`, and the queue
//! goes on. Concurrent runs are kept apart by session-level advisory locks
//! (they must outlive the commits between steps).

use crate::common::error::notice;
use crate::common::locks::Lock;
use crate::common::privilege::as_extension_owner;
use crate::common::subxact::{attempt, Failure};
use crate::retention::batch;
use crate::retention::policy::{self, Policy};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    AuditSeal,
    RecordMetrics,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::AuditSeal => "audit_seal",
            Job::RecordMetrics => "record_metrics",
        }
    }
}

/// `job_runs.job` of the partition maintenance step.
const MAINTENANCE_JOB: &str = "partition_maintenance";

struct PolicyRun {
    policy: Policy,
    cutoff: TimestampWithTimeZone,
    after: Option<TimestampWithTimeZone>,
    run_id: Option<i64>,
    rows: i64,
}

enum Work {
    Job(Job),
    /// Partition maintenance runs one set per step (its own transaction), as
    /// `run_maintenance_proc` does, so no set's locks outlive its own work.
    MaintenanceStart,
    MaintenanceSet(pg_sys::Oid),
    MaintenanceEnd {
        run_id: i64,
    },
    RetentionStart,
    Policy(Box<PolicyRun>),
    RetentionEnd {
        run_id: i64,
    },
}

#[derive(Default)]
struct State {
    queue: VecDeque<Work>,
    /// Session advisory locks this backend holds for the run.
    held: Vec<Lock>,
    /// Totals of the current retention pass: rows, failed tables.
    retention: (i64, i64),
    /// Actions of the current maintenance pass and how often each occurred,
    /// and the sets that reported an error.
    maintenance: std::collections::BTreeMap<String, i64>,
    failed_sets: Vec<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn try_lock(lock: Lock) -> bool {
    let (class, key) = lock.key();
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
        &[class.into(), key.into()],
    )
    .expect("advisory lock failed")
    .unwrap_or(false)
}

fn unlock(lock: Lock) {
    let (class, key) = lock.key();
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_advisory_unlock($1, $2)",
        &[class.into(), key.into()],
    )
    .expect("advisory unlock failed");
}

/// Releases whatever an earlier run of this session left behind (one that
/// was cancelled between steps) and forgets its queue.
pub fn end() {
    let held = STATE.with(|s| std::mem::take(&mut *s.borrow_mut()).held);
    for lock in held {
        unlock(lock);
    }
}

/// Prepares a run: every job (`retention_only` false) or the retention pass
/// alone. False, with nothing queued, when another session is running jobs.
pub fn begin(retention_only: bool) -> bool {
    end();
    let queue: VecDeque<Work> = if retention_only {
        VecDeque::from([Work::RetentionStart])
    } else {
        if !try_lock(Lock::Jobs) {
            return false;
        }
        STATE.with(|s| s.borrow_mut().held.push(Lock::Jobs));
        VecDeque::from([
            Work::MaintenanceStart,
            Work::RetentionStart,
            Work::Job(Job::AuditSeal),
            Work::Job(Job::RecordMetrics),
        ])
    };
    STATE.with(|s| s.borrow_mut().queue = queue);
    true
}

/// Runs the next step; false when the run is over (its locks released).
pub fn step() -> bool {
    let next = STATE.with(|s| s.borrow_mut().queue.pop_front());
    let Some(work) = next else {
        end();
        return false;
    };
    match work {
        Work::Job(job) => run_job(job),
        Work::MaintenanceStart => start_maintenance(),
        Work::MaintenanceSet(parent) => maintain_set(parent),
        Work::MaintenanceEnd { run_id } => finish_maintenance(run_id),
        Work::RetentionStart => start_retention(),
        Work::Policy(run) => run_policy(*run),
        Work::RetentionEnd { run_id } => finish_retention(run_id),
    }
    let more = STATE.with(|s| !s.borrow().queue.is_empty());
    if !more {
        end();
    }
    more
}

fn push_front(work: Work) {
    STATE.with(|s| s.borrow_mut().queue.push_front(work));
}

fn clock() -> TimestampWithTimeZone {
    Spi::get_one::<TimestampWithTimeZone>("SELECT pg_catalog.clock_timestamp()")
        .expect("clock_timestamp")
        .expect("a time")
}

/// Records a step that started at `started` and has just ended.
fn record(
    job: &str,
    started: TimestampWithTimeZone,
    status: &str,
    rows: Option<i64>,
    detail: serde_json::Value,
) -> i64 {
    as_extension_owner(|| {
        Spi::get_one_with_args::<i64>(
            "INSERT INTO tenancy.job_runs (job, started_at, finished_at, status, rows, detail)
             VALUES ($1, $2, CASE WHEN $3 = 'running' THEN NULL ELSE pg_catalog.clock_timestamp() END, $3, $4, $5)
             RETURNING id",
            &[job.into(), started.into(), status.into(), rows.into(), JsonB(detail).into()],
        )
    })
    .expect("recording a job run failed")
    .expect("an id")
}

fn finish(run_id: i64, status: &str, rows: i64, detail: serde_json::Value) {
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE tenancy.job_runs SET finished_at = pg_catalog.clock_timestamp(), status = $2, rows = $3,
                    detail = detail || $4
              WHERE id = $1",
            &[run_id.into(), status.into(), rows.into(), JsonB(detail).into()],
        )
    })
    .expect("finishing a job run failed");
}

fn failure_detail(failure: &Failure) -> serde_json::Value {
    serde_json::json!({ "error": failure.message, "sqlstate": failure.sqlstate })
}

fn run_job(job: Job) {
    let started = clock();
    let outcome = attempt(|| match job {
        Job::AuditSeal => {
            let sealed =
                Spi::get_one::<i64>("SELECT tenancy.seal_audit()").expect("seal_audit failed");
            ("ok", sealed.unwrap_or(0), serde_json::json!({}))
        }
        Job::RecordMetrics => {
            let rows = Spi::get_one::<i64>("SELECT tenancy.record_metrics()")
                .expect("record_metrics failed");
            ("ok", rows.unwrap_or(0), serde_json::json!({}))
        }
    });
    match outcome {
        Ok((status, rows, detail)) => record(job.name(), started, status, Some(rows), detail),
        Err(failure) => record(
            job.name(),
            started,
            "failed",
            None,
            failure_detail(&failure),
        ),
    };
}

/// Records the maintenance pass as running and queues one step per set.
fn start_maintenance() {
    let parents: Vec<pg_sys::Oid> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT parent::pg_catalog.oid FROM tenancy.partition_sets ORDER BY parent::pg_catalog.text",
                    None,
                    &[],
                )?
                .map(|row| row.get::<pg_sys::Oid>(1).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
    })
    .expect("listing partition sets failed");
    let run_id = record(
        MAINTENANCE_JOB,
        clock(),
        "running",
        Some(0),
        serde_json::json!({ "sets": parents.len() }),
    );
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.maintenance.clear();
        s.failed_sets.clear();
    });
    push_front(Work::MaintenanceEnd { run_id });
    for parent in parents.into_iter().rev() {
        push_front(Work::MaintenanceSet(parent));
    }
}

/// Maintains one set and counts its actions. `run_maintenance` reports a
/// failing set as an `error` line rather than raising, so this step fails
/// only if the call itself does; that is counted as an error too.
fn maintain_set(parent: pg_sys::Oid) {
    let counts = attempt(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT action, count(*) FROM tenancy.run_maintenance($1) GROUP BY action",
                    None,
                    &[parent.into()],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<i64>(2)?.unwrap_or(0),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("partition maintenance failed")
    })
    .unwrap_or_else(|_| vec![("error".to_string(), 1)]);
    let failed = counts.iter().any(|(action, _)| action == "error");
    let name = failed.then(|| oid_text(parent));
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.failed_sets.extend(name);
        for (action, n) in counts {
            *s.maintenance.entry(action).or_default() += n;
        }
    });
}

/// Closes the maintenance pass: `failed` when any set reported an error (a
/// set skipped for a lock not free in time is routine and retried next run).
fn finish_maintenance(run_id: i64) {
    let (counts, failed_sets) = STATE.with(|s| {
        let mut s = s.borrow_mut();
        (
            std::mem::take(&mut s.maintenance),
            std::mem::take(&mut s.failed_sets),
        )
    });
    let changed: i64 = counts
        .iter()
        .filter(|(action, _)| {
            matches!(
                action.as_str(),
                "created" | "relocated" | "dropped" | "detached"
            )
        })
        .map(|(_, n)| n)
        .sum();
    let status = if failed_sets.is_empty() {
        "ok"
    } else {
        "failed"
    };
    let mut detail: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(a, n)| (a, n.into())).collect();
    if !failed_sets.is_empty() {
        detail.insert("failed_sets".into(), failed_sets.into());
    }
    finish(run_id, status, changed, serde_json::Value::Object(detail));
}

fn start_retention() {
    let started = clock();
    if !try_lock(Lock::Retention) {
        notice("tenancy.run_retention() is already running in another session: skipped");
        record(
            "retention",
            started,
            "skipped",
            Some(0),
            serde_json::json!({ "reason": "another session is running retention" }),
        );
        return;
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.held.push(Lock::Retention);
        s.retention = (0, 0);
    });
    let policies = policy::load_all();
    let run_id = record(
        "retention",
        started,
        "running",
        Some(0),
        serde_json::json!({ "tables": policies.len() }),
    );
    // The extension's clock: tenancy.now_override when set, like every other
    // time-based decision (partitions, quota periods).
    let now = crate::common::clock::timestamptz(crate::common::clock::now_micros());
    push_front(Work::RetentionEnd { run_id });
    for policy in policies.into_iter().rev() {
        // The cut-off is fixed once per run: no batch goes past it, however long the run takes.
        let cutoff = Spi::get_one_with_args::<TimestampWithTimeZone>(
            "SELECT $1::timestamptz - $2::interval",
            &[now.into(), policy.keep.into()],
        )
        .expect("cut-off")
        .expect("a time");
        push_front(Work::Policy(Box::new(PolicyRun {
            policy,
            cutoff,
            after: None,
            run_id: None,
            rows: 0,
        })));
    }
}

fn run_policy(mut run: PolicyRun) {
    let job = format!("retention:{}", table_text(&run.policy));
    let Some(run_id) = run.run_id else {
        // The first step only records the start, so a long table shows as running.
        let id = record(
            &job,
            clock(),
            "running",
            Some(0),
            serde_json::json!({ "action": run.policy.action.as_str(), "cutoff": cutoff_text(run.cutoff) }),
        );
        run.run_id = Some(id);
        push_front(Work::Policy(Box::new(run)));
        return;
    };
    match attempt(|| batch::run(&run.policy, run.cutoff, run.after)) {
        Ok(Ok(progress)) => {
            run.rows += progress.handled;
            if progress.found == 0 {
                finish(run_id, "ok", run.rows, serde_json::json!({}));
                STATE.with(|s| s.borrow_mut().retention.0 += run.rows);
            } else {
                as_extension_owner(|| {
                    Spi::run_with_args(
                        "UPDATE tenancy.job_runs SET rows = $2 WHERE id = $1",
                        &[run_id.into(), run.rows.into()],
                    )
                })
                .expect("updating a job run failed");
                run.after = progress.reached;
                push_front(Work::Policy(Box::new(run)));
            }
        }
        Ok(Err(report)) => fail_policy(
            run_id,
            &run,
            &Failure {
                sqlstate: "55000".into(),
                message: report.message().to_string(),
            },
        ),
        Err(failure) => fail_policy(run_id, &run, &failure),
    }
}

fn fail_policy(run_id: i64, run: &PolicyRun, failure: &Failure) {
    finish(run_id, "failed", run.rows, failure_detail(failure));
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.retention.0 += run.rows;
        s.retention.1 += 1;
    });
}

fn finish_retention(run_id: i64) {
    let (rows, failed) = STATE.with(|s| s.borrow().retention);
    finish(
        run_id,
        if failed > 0 { "failed" } else { "ok" },
        rows,
        serde_json::json!({ "failed_tables": failed }),
    );
    unlock(Lock::Retention);
    STATE.with(|s| s.borrow_mut().held.retain(|k| *k != Lock::Retention));
}

fn table_text(policy: &Policy) -> String {
    oid_text(policy.table.oid())
}

/// A table as a job's label in `tenancy.job_runs` (`retention:events`): the
/// way psql prints a regclass, schema left out when it is on the search_path.
/// Only ever displayed, never put back into SQL (that takes
/// `common::relation::qualified_name_of`).
fn oid_text(table: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regclass::text", &[table.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("{table:?}"))
}

fn cutoff_text(cutoff: TimestampWithTimeZone) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::timestamptz::text", &[cutoff.into()])
        .ok()
        .flatten()
        .unwrap_or_default()
}
