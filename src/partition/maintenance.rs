//! Registering a set and running its maintenance: default partition, rows
//! rescued from it, premade children, retention.
//!
//! A run first decides, per set and without taking any lock that could wait,
//! whether there is anything to do (the common case is "no"). Each set with
//! work, and each step of it, then runs in its own subtransaction: a set that
//! fails (its parent altered by hand, a lock not free in time) is reported and
//! the others go on.

use super::bounds::{self, Range};
use super::catalog::{self, Child, ChildBound, PartitionSet, RetentionMode, SetRow};
use super::ddl::{self, Join};
use super::plan;
use crate::common::clock;
use crate::common::error::Result;
use crate::common::internal_writes::with_internal_writes;
use crate::common::locks::Lock;
use crate::common::privilege::as_table_owner;
use crate::common::settings::with_settings;
use crate::common::subxact::{self, Failure};
use pgrx::pg_sys::panic::ErrorReportable;
use pgrx::prelude::*;

/// One line of `run_maintenance`'s result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub parent: Option<pg_sys::Oid>,
    pub action: String,
    pub partition: Option<String>,
    pub detail: Option<String>,
}

impl Outcome {
    fn new(
        set: &PartitionSet,
        action: &str,
        partition: Option<String>,
        detail: Option<String>,
    ) -> Outcome {
        Outcome {
            parent: Some(set.parent),
            action: action.into(),
            partition,
            detail,
        }
    }

    fn failed(parent: pg_sys::Oid, failure: &Failure) -> Outcome {
        // A lock we could not get is routine: the set is retried next run.
        let action = if failure.sqlstate == "55P03" {
            "skipped"
        } else {
            "error"
        };
        Outcome {
            parent: Some(parent),
            action: action.into(),
            partition: None,
            detail: Some(failure.to_string()),
        }
    }
}

fn try_run_lock() -> bool {
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
                None,
                &[
                    Lock::Maintenance.key().0.into(),
                    Lock::Maintenance.key().1.into(),
                ],
            )?
            .first()
            .get::<bool>(1)
    })
    .expect("advisory lock query failed")
    .unwrap_or(false)
}

/// What one set needs now.
#[derive(Debug, Default)]
struct Work {
    create_default: bool,
    relocate: bool,
    premake: Vec<Range>,
    expire: Vec<Child>,
}

impl Work {
    fn is_empty(&self) -> bool {
        !self.create_default && !self.relocate && self.premake.is_empty() && self.expire.is_empty()
    }
}

/// Decides what `set` needs; reads only what it must (the default partition's
/// size, an integer set's highest value) and never waits for a lock.
fn assess(set: &PartitionSet, children: &[Child], now: i64, first: Option<i64>) -> Work {
    let default = default_child(children);
    let existing = existing_ranges(children);
    let reference = if set.kind.is_time() {
        now
    } else {
        owner_step(set, || ddl::highest_value(set, children))
            .or(set.start)
            .unwrap_or(0)
    };
    let first = first.or(if set.kind.is_time() { None } else { set.start });
    Work {
        create_default: set.default_partition && default.is_none(),
        relocate: default.is_some_and(ddl::may_have_rows),
        premake: plan::missing_ranges(set.step, set.kind, reference, first, set.premake, &existing),
        expire: match set.retention_cutoff {
            Some(cutoff) => children
                .iter()
                .filter(|c| {
                    c.range()
                        .is_some_and(|range| plan::is_expired(range, cutoff, now))
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        },
    }
}

/// Maintains every set (or `only`). A concurrent run returns at once with a
/// single `skipped` line instead of waiting.
pub fn run(only: Option<pg_sys::Oid>) -> Vec<Outcome> {
    if !try_run_lock() {
        return vec![Outcome {
            parent: only,
            action: "skipped".into(),
            partition: None,
            detail: Some("another run_maintenance is in progress".into()),
        }];
    }
    let now = clock::now_micros();
    let rows = catalog::load_sets(only, now);
    let parents: Vec<pg_sys::Oid> = rows.iter().map(|row| row.parent).collect();
    let children = catalog::load_children(&parents);
    let mut outcomes = Vec::new();
    for row in &rows {
        let raw = children.get(&row.parent).map(Vec::as_slice).unwrap_or(&[]);
        match subxact::attempt(|| maintain(row, raw, now)) {
            Ok(set_outcomes) => outcomes.extend(set_outcomes),
            Err(failure) => outcomes.push(Outcome::failed(row.parent, &failure)),
        }
    }
    outcomes
}

/// One set's maintenance. Errors reading the set raise (the caller's
/// subtransaction reports them); each step's errors are reported here.
fn maintain(row: &SetRow, raw: &[(pg_sys::Oid, String, String, String)], now: i64) -> Vec<Outcome> {
    let set = row
        .resolve()
        .map_err(|why| {
            crate::common::error::not_in_prerequisite_state(format!(
                "{}: {why}",
                row.qualified_parent()
            ))
        })
        .unwrap_or_report();
    let mut children = catalog::parse_children(set.kind, raw);
    let work = assess(&set, &children, now, None);
    if work.is_empty() {
        return Vec::new();
    }
    let mut outcomes = Vec::new();
    type Step = fn(&PartitionSet, &mut Vec<Child>, &Work) -> Result<Vec<Outcome>>;
    let steps: [Step; 4] = [
        |set, children, work| ensure_default(set, children, work, Join::Attach),
        |set, children, work| relocate(set, children, work),
        |set, children, work| premake(set, children, &work.premake, Join::Attach),
        |set, children, work| retire(set, children, &work.expire),
    ];
    for step in steps {
        let mut working = children.clone();
        // A step's own error (a lock not free in time) is raised inside the
        // subtransaction like any other, so all failures take one path.
        let attempt = subxact::attempt(|| {
            owner_step(&set, || step(&set, &mut working, &work)).unwrap_or_report()
        });
        match attempt {
            Ok(step_outcomes) => {
                children = working;
                outcomes.extend(step_outcomes);
            }
            Err(failure) => {
                let lock_busy = failure.sqlstate == "55P03";
                outcomes.push(Outcome::failed(set.parent, &failure));
                // A lock not free in time means someone is working on the set:
                // the later steps would only wait out their own timeouts too.
                // The whole set is retried next run.
                if lock_busy {
                    break;
                }
            }
        }
    }
    outcomes
}

/// Brings a freshly registered set to its full shape; errors propagate (the
/// registering call must fail loudly, not half-succeed). Returns the number
/// of tables created.
pub fn initialize(row: &SetRow, first: Option<i64>) -> Result<i32> {
    let now = clock::now_micros();
    let set = row
        .resolve()
        .map_err(crate::common::error::invalid_parameter)?;
    let raw = catalog::load_children(&[row.parent])
        .remove(&row.parent)
        .unwrap_or_default();
    let mut children = catalog::parse_children(set.kind, &raw);
    let work = assess(&set, &children, now, first);
    // A parent without partitions cannot be in use: if its lock is free right
    // now, create the children the cheaper way, with PARTITION OF.
    // SAFETY: a no-wait lock request.
    let join = if children.is_empty()
        && unsafe {
            pg_sys::ConditionalLockRelationOid(
                set.parent,
                pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
            )
        } {
        Join::PartitionOf
    } else {
        Join::Attach
    };
    let outcomes = owner_step(&set, || -> Result<Vec<Outcome>> {
        let mut outcomes = ensure_default(&set, &mut children, &work, join)?;
        outcomes.extend(relocate(&set, &mut children, &work)?);
        outcomes.extend(premake(&set, &mut children, &work.premake, join)?);
        Ok(outcomes)
    })?;
    Ok(outcomes
        .iter()
        .filter(|o| o.action == "created" || o.action == "relocated")
        .count() as i32)
}

/// Runs a step as the parent's owner, with every lock wait bounded.
fn owner_step<T>(set: &PartitionSet, work: impl FnOnce() -> T) -> T {
    let lock_timeout = ddl::lock_timeout_setting();
    as_table_owner(set.owner, || {
        with_settings(&[("lock_timeout", &lock_timeout)], work)
    })
}

fn default_child(children: &[Child]) -> Option<&Child> {
    children.iter().find(|c| c.bound == ChildBound::Default)
}

fn existing_ranges(children: &[Child]) -> Vec<Range> {
    children.iter().filter_map(Child::range).collect()
}

fn range_text(set: &PartitionSet, range: Range) -> String {
    format!(
        "{} to {}",
        bounds::bound_text(set.kind, range.from),
        bounds::bound_text(set.kind, range.to)
    )
}

fn ensure_default(
    set: &PartitionSet,
    children: &mut Vec<Child>,
    work: &Work,
    join: Join,
) -> Result<Vec<Outcome>> {
    if !work.create_default {
        return Ok(Vec::new());
    }
    ddl::lock(
        set.parent,
        pg_sys::ShareUpdateExclusiveLock,
        &set.qualified_parent(),
    )?;
    let child = ddl::create_child(set, None, join)?;
    let outcome = Outcome::new(
        set,
        "created",
        Some(child.qualified_name()),
        Some("default partition".into()),
    );
    children.push(child);
    Ok(vec![outcome])
}

/// Moves rows that landed in the default partition into children of their
/// own: every range's child is created and filled first, then all are
/// attached together (see `ddl::attach_filled`).
fn relocate(set: &PartitionSet, children: &mut Vec<Child>, work: &Work) -> Result<Vec<Outcome>> {
    let Some(default) = default_child(children).cloned().filter(|_| work.relocate) else {
        return Ok(Vec::new());
    };
    let mut outcomes = Vec::new();
    let mut wanted = Vec::new();
    for range in ddl::default_row_ranges(set, &default) {
        if existing_ranges(children).iter().any(|r| r.overlaps(&range)) {
            outcomes.push(Outcome::new(
                set,
                "error",
                Some(default.qualified_name()),
                Some(format!(
                    "rows from {} are in the default partition but overlap an existing child",
                    range_text(set, range)
                )),
            ));
        } else {
            wanted.push(range);
        }
    }
    if wanted.is_empty() {
        return Ok(outcomes);
    }
    let forced = ddl::begin_relocation(&default)?;
    // Moving rows is the extension's own write: tables whose guards refuse
    // other writers (the audit log) let it through.
    let filled: Vec<ddl::Filled> = with_internal_writes(|| {
        wanted
            .into_iter()
            .map(|range| ddl::fill(set, &default, range))
            .collect()
    });
    ddl::attach_filled(set, &default, &filled, forced)?;
    for f in filled {
        outcomes.push(Outcome::new(
            set,
            "relocated",
            Some(f.child.qualified_name()),
            Some(format!(
                "{} row{} moved from {}",
                f.moved,
                if f.moved == 1 { "" } else { "s" },
                default.qualified_name()
            )),
        ));
        children.push(f.child);
    }
    Ok(outcomes)
}

fn premake(
    set: &PartitionSet,
    children: &mut Vec<Child>,
    wanted: &[Range],
    join: Join,
) -> Result<Vec<Outcome>> {
    // Relocation may have created some of the wanted ranges already.
    let existing = existing_ranges(children);
    let wanted: Vec<Range> = wanted
        .iter()
        .copied()
        .filter(|r| !existing.iter().any(|e| e.overlaps(r)))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if join == Join::Attach {
        ddl::lock(
            set.parent,
            pg_sys::ShareUpdateExclusiveLock,
            &set.qualified_parent(),
        )?;
        if let Some(default) = default_child(children) {
            ddl::lock(
                default.oid,
                pg_sys::AccessExclusiveLock,
                &default.qualified_name(),
            )?;
        }
    }
    let mut outcomes = Vec::new();
    for range in wanted {
        let child = ddl::create_child(set, Some(range), join)?;
        outcomes.push(Outcome::new(
            set,
            "created",
            Some(child.qualified_name()),
            Some(range_text(set, range)),
        ));
        children.push(child);
    }
    Ok(outcomes)
}

fn retire(
    set: &PartitionSet,
    children: &mut Vec<Child>,
    expired: &[Child],
) -> Result<Vec<Outcome>> {
    // Only children still attached (a previous step may have changed the list).
    let expired: Vec<Child> = expired
        .iter()
        .filter(|c| children.contains(c))
        .cloned()
        .collect();
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let default = default_child(children).cloned();
    let action = match set.retention_mode {
        RetentionMode::Drop => {
            ddl::drop_children(set, default.as_ref(), &expired)?;
            "dropped"
        }
        RetentionMode::Detach => {
            ddl::detach_children(set, default.as_ref(), &expired)?;
            "detached"
        }
    };
    children.retain(|c| !expired.contains(c));
    let newest_end = expired
        .iter()
        .filter_map(|c| c.range().map(|r| r.to))
        .max()
        .expect("expired children have ranges");
    crate::common::hooks::children_retired(&crate::common::hooks::ChildrenRetired {
        parent: set.parent,
        children: &expired
            .iter()
            .map(Child::qualified_name)
            .collect::<Vec<_>>(),
        before: set
            .kind
            .is_time()
            .then(|| crate::common::clock::timestamptz(newest_end)),
        action,
    });
    Ok(expired
        .iter()
        .map(|child| {
            let range = child.range().expect("expired children have ranges");
            Outcome::new(
                set,
                action,
                Some(child.qualified_name()),
                Some(format!(
                    "{}, older than the retention",
                    range_text(set, range)
                )),
            )
        })
        .collect())
}

/// What the next maintenance run would retire, per set with a retention:
/// (parent, retention mode, expired children). Reads catalogs only.
pub fn expired_children() -> Vec<(pg_sys::Oid, String, Vec<Child>)> {
    let now = clock::now_micros();
    let rows = catalog::load_sets(None, now);
    let parents: Vec<pg_sys::Oid> = rows.iter().map(|row| row.parent).collect();
    let children = catalog::load_children(&parents);
    rows.iter()
        .filter(|row| row.retention)
        .filter_map(|row| {
            let set = row.resolve().ok()?;
            let raw = children.get(&row.parent).map(Vec::as_slice).unwrap_or(&[]);
            let parsed = catalog::parse_children(set.kind, raw);
            let work = assess(&set, &parsed, now, None);
            Some((row.parent, row.retention_mode.clone(), work.expire))
        })
        .collect()
}
