//! The statements that change a set: creating, attaching, filling, detaching
//! and dropping children, and taking their locks without queueing.
//!
//! Everything here runs as the parent's owner (see `maintenance`), so new
//! children belong to the owner and the owner's own code (triggers, defaults,
//! index expressions) never runs with anyone else's rights.

use super::bounds::{self, Range};
use super::catalog::{Child, PartitionSet};
use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_qualified_identifier};
use std::time::{Duration, Instant};

static LOCK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn init() {
    GucRegistry::define_int_guc(
        c"tenancy.maintenance_lock_timeout",
        c"How long partition maintenance tries to take a lock before it skips the set.",
        c"Maintenance never waits in the lock queue (where it would stall the readers behind it): \
          it retries a no-wait lock until this much time has passed, then skips the set and \
          reports it; the next run tries again.",
        &LOCK_TIMEOUT_MS,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
}

/// The maintenance lock timeout as the `lock_timeout` setting text.
pub fn lock_timeout_setting() -> String {
    format!("{}ms", LOCK_TIMEOUT_MS.get().max(1))
}

/// Takes `mode` on `relation` without entering the lock queue: a no-wait
/// attempt, retried every 10 ms until the maintenance lock timeout. Readers
/// and writers arriving meanwhile are never stuck behind us. 55P03 on timeout.
pub fn lock(relation: pg_sys::Oid, mode: u32, what: &str) -> Result<()> {
    let timeout = Duration::from_millis(LOCK_TIMEOUT_MS.get().max(0) as u64);
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: a conditional lock request inside a transaction.
        if unsafe { pg_sys::ConditionalLockRelationOid(relation, mode as pg_sys::LOCKMODE) } {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(error::lock_not_available(format!(
                "could not lock {what} within {} ms; another transaction holds a conflicting lock",
                timeout.as_millis()
            )));
        }
        // SAFETY: sleeping and servicing interrupts (cancel, terminate) is always allowed here.
        unsafe { pg_sys::pg_usleep(10_000) };
        pgrx::check_for_interrupts!();
    }
}

fn run(sql: &str) {
    Spi::run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The `LIKE` clause that copies everything a partition must share with its
/// parent except identity (a partition inherits the parent's) and the
/// partitioning itself.
fn like_parent(set: &PartitionSet) -> String {
    format!(
        "LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING INDEXES \
         INCLUDING STORAGE INCLUDING COMMENTS INCLUDING STATISTICS INCLUDING COMPRESSION",
        set.qualified_parent()
    )
}

/// The predicate selecting `range` of the control column.
fn range_predicate(set: &PartitionSet, range: Range) -> String {
    format!(
        "{column} >= {from} AND {column} < {to}",
        column = quote_identifier(&set.column),
        from = bounds::bound_literal(set.kind, range.from),
        to = bounds::bound_literal(set.kind, range.to)
    )
}

fn for_values(set: &PartitionSet, range: Range) -> String {
    format!(
        "FOR VALUES FROM ({}) TO ({})",
        bounds::bound_literal(set.kind, range.from),
        bounds::bound_literal(set.kind, range.to)
    )
}

/// The OID of a relation we just created, from the syscache (no query).
fn oid_of(set: &PartitionSet, name: &str) -> pg_sys::Oid {
    let name = std::ffi::CString::new(name).expect("names have no NUL");
    // SAFETY: a syscache lookup inside a transaction.
    unsafe { pg_sys::get_relname_relid(name.as_ptr(), set.namespace) }
}

fn tablespace_clause(set: &PartitionSet) -> String {
    set.tablespace
        .as_ref()
        .map(|t| format!(" TABLESPACE {}", quote_identifier(t)))
        .unwrap_or_default()
}

/// How a new child joins its parent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `CREATE TABLE (LIKE parent ...)` then `ATTACH PARTITION`: needs only
    /// SHARE UPDATE EXCLUSIVE on the parent, so readers and writers go on.
    Attach,
    /// `CREATE TABLE ... PARTITION OF parent`: one statement, but ACCESS
    /// EXCLUSIVE on the parent. Used only when registering a parent that has
    /// no partitions yet (nobody can be using it) and whose lock was free.
    PartitionOf,
}

/// Creates a child for `range` (None: the DEFAULT partition) and joins it to
/// the parent, with the parent's grants and, when the parent is isolated, the
/// tenant isolation policy (so reading the child directly is isolated too).
/// For `Join::Attach` the caller holds SHARE UPDATE EXCLUSIVE on the parent
/// and ACCESS EXCLUSIVE on the default partition if there is one.
pub fn create_child(set: &PartitionSet, range: Option<Range>, join: Join) -> Result<Child> {
    let suffix = match range {
        Some(range) => bounds::child_suffix(set.kind, set.step, range.from),
        None => "default".to_string(),
    };
    let name = bounds::child_name(&set.name, &suffix);
    let qualified = quote_qualified_identifier(&set.schema, &name);
    let bound = match range {
        Some(range) => for_values(set, range),
        None => "DEFAULT".to_string(),
    };
    let statements = match join {
        Join::PartitionOf => vec![format!(
            "CREATE TABLE {qualified} PARTITION OF {} {bound}{}",
            set.qualified_parent(),
            tablespace_clause(set)
        )],
        Join::Attach => vec![
            format!(
                "CREATE TABLE {qualified} ({}){}",
                like_parent(set),
                tablespace_clause(set)
            ),
            format!(
                "ALTER TABLE {} ATTACH PARTITION {qualified} {bound}",
                set.qualified_parent()
            ),
        ],
    };
    give_child_extras(set, &qualified, statements);
    Ok(Child {
        oid: oid_of(set, &name),
        schema: set.schema.clone(),
        name,
        bound: match range {
            Some(range) => super::catalog::ChildBound::Range(range),
            None => super::catalog::ChildBound::Default,
        },
    })
}

/// What a new child must get from its parent beyond its shape: grants,
/// row-level security and policies, and the set's own child_ddl, run as the
/// table owner; then whatever the capabilities add to a child of theirs
/// (`common::hooks::on_child_attached`: audit and row-quota triggers, the
/// indexes of the extension's own logs).
fn give_child_extras(set: &PartitionSet, qualified: &str, mut statements: Vec<String>) {
    statements.extend(child_extras(set, qualified));
    while_creating_child(|| {
        crate::common::sql::run_each(&statements);
        crate::common::hooks::child_attached(&crate::common::hooks::ChildAttached {
            parent: set.parent,
            child: qualified,
        });
    });
}

/// Runs `work` (DDL that creates or attaches a child and gives it its
/// parent's extras) with [`creating_child`] true.
fn while_creating_child<R>(work: impl FnOnce() -> R) -> R {
    CREATING_CHILD.set(CREATING_CHILD.get() + 1);
    let _creating = CreatingChild;
    work()
}

thread_local! {
    static CREATING_CHILD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Ends the region in which [`creating_child`] is true, also on an error.
struct CreatingChild;

impl Drop for CreatingChild {
    fn drop(&mut self) {
        CREATING_CHILD.set(CREATING_CHILD.get().saturating_sub(1));
    }
}

/// Whether the partition manager is creating a child right now: it gives the
/// child its parent's policies itself, so the event trigger that covers
/// partitions made by hand (tenancy_cover_new_partitions) has nothing to add.
pub fn creating_child() -> bool {
    CREATING_CHILD.get() > 0
}

fn child_extras(set: &PartitionSet, qualified: &str) -> Vec<String> {
    let mut statements: Vec<String> = set.grants.iter().map(|g| g.on(qualified)).collect();
    let (enabled, forced) = set.row_security;
    if enabled {
        statements.push(format!("ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY"));
    }
    if forced {
        statements.push(format!("ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY"));
    }
    statements.extend(set.policies.iter().map(|p| p.on(qualified)));
    statements.extend(
        set.child_ddl
            .iter()
            .map(|ddl| ddl.replace("{child}", qualified)),
    );
    statements
}

fn attach(set: &PartitionSet, child: &Child, range: Range) {
    run(&format!(
        "ALTER TABLE {} ATTACH PARTITION {} {}",
        set.qualified_parent(),
        child.qualified_name(),
        for_values(set, range)
    ));
}

/// Columns a row copy must carry: every stored, non-generated column.
fn copy_columns(set: &PartitionSet) -> String {
    let columns: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                  ORDER BY a.attnum",
                None,
                &[set.parent.into()],
            )?
            .map(|row| row.get::<String>(1).map(|c| c.unwrap_or_default()))
            .collect::<std::result::Result<Vec<_>, _>>()
    })
    .expect("reading the parent's columns failed");
    columns
        .iter()
        .map(quote_identifier)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves the rows of `range` from the default partition into `child`, in one
/// statement (nothing is lost or duplicated: delete and insert commit together).
fn move_rows(
    set: &PartitionSet,
    default: &Child,
    child: &Child,
    range: Range,
    columns: &str,
) -> i64 {
    let sql = format!(
        "WITH moved AS (DELETE FROM ONLY {default} WHERE {predicate} RETURNING {columns})
         INSERT INTO {child} ({columns}) SELECT {columns} FROM moved",
        default = default.qualified_name(),
        predicate = range_predicate(set, range),
        child = child.qualified_name(),
    );
    Spi::connect_mut(|client| {
        client
            .update(sql.as_str(), None, &[])
            .map(|t| t.len() as i64)
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The step-aligned ranges that rows in the default partition belong to.
///
/// This and the other whole-table reads below run as the extension owner: the
/// table's owner may be subject to its own isolation policy (FORCE ROW LEVEL
/// SECURITY) and would see nothing. They read only the control column with
/// our own expressions, so no code of the table's owner runs with those rights.
pub fn default_row_ranges(set: &PartitionSet, default: &Child) -> Vec<Range> {
    let sql = format!(
        "SELECT DISTINCT {bucket} FROM ONLY {default} WHERE {column} IS NOT NULL ORDER BY 1",
        bucket = set
            .step
            .bucket_sql(set.kind, &quote_identifier(&set.column)),
        default = default.qualified_name(),
        column = quote_identifier(&set.column),
    );
    let buckets: Vec<i64> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(sql.as_str(), None, &[])?
                .map(|row| row.get::<i64>(1).map(|b| b.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    buckets
        .into_iter()
        .map(|bucket| set.step.bucket_range(bucket))
        .collect()
}

/// Whether the default partition may hold rows. A default partition that has
/// never had a row has no pages, which is known without a query (the common
/// case, checked on every run of every set); otherwise, and always for a
/// Citus table, a one-tuple probe.
/// A partition someone holds exclusively right now counts as "may have rows",
/// so the relocation step tries (and reports) rather than this check waiting.
pub fn may_have_rows(child: &Child) -> bool {
    // A Citus table's rows are in its shards, on the workers: its own file
    // here is always empty.
    if crate::common::citus::table_kind(child.oid).is_some() {
        return has_rows(child);
    }
    // SAFETY: a no-wait lock, a relation opened under it and closed again; the
    // lock is released at once because nothing is planned against it.
    let pages = unsafe {
        if !pg_sys::ConditionalLockRelationOid(
            child.oid,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        ) {
            return true;
        }
        let relation = pg_sys::relation_open(child.oid, pg_sys::NoLock as pg_sys::LOCKMODE);
        let pages =
            pg_sys::RelationGetNumberOfBlocksInFork(relation, pg_sys::ForkNumber::MAIN_FORKNUM);
        pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::UnlockRelationOid(child.oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        pages
    };
    pages > 0 && has_rows(child)
}

/// Whether a partition holds any row at all (cheap: one tuple).
fn has_rows(child: &Child) -> bool {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM ONLY {})",
        child.qualified_name()
    );
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(sql.as_str(), None, &[])?
                .first()
                .get::<bool>(1)
        })
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .unwrap_or(false)
}

/// Whether the owner reading the default partition would be filtered by
/// row-level security (FORCE on a table the owner cannot bypass policies on).
fn owner_is_filtered(default: &Child) -> bool {
    Spi::connect(|client| {
        client
            .select(
                "SELECT c.relrowsecurity AND c.relforcerowsecurity
                        AND NOT (r.rolsuper OR r.rolbypassrls)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
                  WHERE c.oid = $1",
                None,
                &[default.oid.into()],
            )?
            .first()
            .get::<bool>(1)
    })
    .expect("row security lookup failed")
    .unwrap_or(false)
}

/// A child created and filled with the default partition's rows of its
/// range, not yet attached.
pub struct Filled {
    pub child: Child,
    pub range: Range,
    pub moved: i64,
    check_name: String,
}

/// Starts moving rows out of the default partition: locks it EXCLUSIVE, which
/// lets every reader through and blocks only writes of rows that have no child
/// yet. Returns whether FORCE ROW LEVEL SECURITY was lifted (then the lock is
/// ACCESS EXCLUSIVE) and must be restored by [`attach_filled`].
pub fn begin_relocation(default: &Child) -> Result<bool> {
    let forced = owner_is_filtered(default);
    lock(
        default.oid,
        if forced {
            pg_sys::AccessExclusiveLock
        } else {
            pg_sys::ExclusiveLock
        },
        &default.qualified_name(),
    )?;
    if forced {
        // The owner is subject to its own isolation policy (FORCE ROW LEVEL
        // SECURITY) and would see no rows; lift FORCE for this transaction only,
        // under an ACCESS EXCLUSIVE lock, so no one else ever sees it lifted.
        run(&format!(
            "ALTER TABLE {} NO FORCE ROW LEVEL SECURITY",
            default.qualified_name()
        ));
    }
    Ok(forced)
}

/// Creates the child for `range` and moves the default partition's rows of
/// that range into it; the caller holds the lock of [`begin_relocation`].
pub fn fill(set: &PartitionSet, default: &Child, range: Range) -> Filled {
    let name = bounds::child_name(
        &set.name,
        &bounds::child_suffix(set.kind, set.step, range.from),
    );
    let qualified = quote_qualified_identifier(&set.schema, &name);
    let check_name = quote_identifier(bounds::child_name(&name, "bounds"));
    // The CHECK constraint proves the moved rows fit, so ATTACH need not scan them.
    run(&format!(
        "CREATE TABLE {qualified} ({}, CONSTRAINT {check_name} CHECK ({} IS NOT NULL AND {})){}",
        like_parent(set),
        quote_identifier(&set.column),
        range_predicate(set, range),
        tablespace_clause(set)
    ));
    let child = Child {
        oid: oid_of(set, &name),
        schema: set.schema.clone(),
        name,
        bound: super::catalog::ChildBound::Range(range),
    };
    let columns = copy_columns(set);
    let moved = move_rows(set, default, &child, range, &columns);
    Filled {
        child,
        range,
        moved,
        check_name,
    }
}

/// Attaches every filled child at once. ATTACH needs ACCESS EXCLUSIVE on the
/// default partition, which then stays held until the transaction ends and
/// holds up readers of the parent: taking it once, after all rows have been
/// moved, keeps that window to the attaches themselves.
pub fn attach_filled(
    set: &PartitionSet,
    default: &Child,
    filled: &[Filled],
    forced: bool,
) -> Result<()> {
    lock(
        set.parent,
        pg_sys::ShareUpdateExclusiveLock,
        &set.qualified_parent(),
    )?;
    lock(
        default.oid,
        pg_sys::AccessExclusiveLock,
        &default.qualified_name(),
    )?;
    for f in filled {
        let qualified = f.child.qualified_name();
        while_creating_child(|| {
            attach(set, &f.child, f.range);
            give_child_extras(
                set,
                &qualified,
                vec![format!(
                    "ALTER TABLE {qualified} DROP CONSTRAINT {}",
                    f.check_name
                )],
            )
        });
    }
    if forced {
        run(&format!(
            "ALTER TABLE {} FORCE ROW LEVEL SECURITY",
            default.qualified_name()
        ));
    }
    Ok(())
}

/// Drops expired children in one statement. DROP of a partition needs ACCESS
/// EXCLUSIVE on the parent (and the default partition): taken without queueing.
pub fn drop_children(
    set: &PartitionSet,
    default: Option<&Child>,
    children: &[Child],
) -> Result<()> {
    lock_for_retirement(set, default, children)?;
    let names: Vec<String> = children.iter().map(Child::qualified_name).collect();
    run(&format!("DROP TABLE {}", names.join(", ")));
    Ok(())
}

/// Detaches expired children, keeping them as ordinary tables.
pub fn detach_children(
    set: &PartitionSet,
    default: Option<&Child>,
    children: &[Child],
) -> Result<()> {
    lock_for_retirement(set, default, children)?;
    for child in children {
        run(&format!(
            "ALTER TABLE {} DETACH PARTITION {}",
            set.qualified_parent(),
            child.qualified_name()
        ));
    }
    Ok(())
}

fn lock_for_retirement(
    set: &PartitionSet,
    default: Option<&Child>,
    children: &[Child],
) -> Result<()> {
    lock(
        set.parent,
        pg_sys::AccessExclusiveLock,
        &set.qualified_parent(),
    )?;
    if let Some(default) = default {
        lock(
            default.oid,
            pg_sys::AccessExclusiveLock,
            &default.qualified_name(),
        )?;
    }
    for child in children {
        lock(
            child.oid,
            pg_sys::AccessExclusiveLock,
            &child.qualified_name(),
        )?;
    }
    Ok(())
}

/// The highest control value in the set's children, newest child first, so
/// a set whose newest children are empty or small answers in a few probes.
pub fn highest_value(set: &PartitionSet, children: &[Child]) -> Option<i64> {
    let mut ranged: Vec<&Child> = children.iter().filter(|c| c.range().is_some()).collect();
    ranged.sort_by_key(|c| std::cmp::Reverse(c.range().map(|r| r.from)));
    let default = children
        .iter()
        .find(|c| c.bound == super::catalog::ChildBound::Default);
    let column = quote_identifier(&set.column);
    let mut best: Option<i64> = None;
    for child in default.into_iter().chain(ranged) {
        let sql = format!(
            "SELECT max({column})::bigint FROM ONLY {}",
            child.qualified_name()
        );
        let value = as_extension_owner(|| {
            Spi::connect(|client| {
                client
                    .select(sql.as_str(), None, &[])?
                    .first()
                    .get::<i64>(1)
            })
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        best = best.max(value);
        if value.is_some() && child.bound != super::catalog::ChildBound::Default {
            break;
        }
    }
    best
}
