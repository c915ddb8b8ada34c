//! Where the lower layers tell the capabilities what happened, without
//! knowing them: partition maintenance (a child created or attached, children
//! retired), tenant purge (a tenant's rows erased, a table's rows to
//! anonymize) and the session's choice of tenant. Each capability registers its hooks in its own `init()`,
//! called from `_PG_init`; the lower layer calls every registered hook with
//! typed facts (OIDs, quoted names, ranges), never SQL text.
//!
//! A backend registers the hooks once, when the library loads, and runs them
//! in registration order (`_PG_init`'s order: audit, quota, mask, stats).

use super::error::Result;
use super::relation::Relation;
use super::selection::RowFilter;
use pgrx::pg_sys;
use std::cell::RefCell;

/// A child the partition manager has just created or attached to `parent`,
/// with its parent's shape, grants and policies already given.
pub struct ChildAttached<'a> {
    pub parent: pg_sys::Oid,
    /// The child, schema-qualified and quoted.
    pub child: &'a str,
}

/// Children partition retention has just dropped or detached from `parent`.
pub struct ChildrenRetired<'a> {
    pub parent: pg_sys::Oid,
    /// Quoted, schema-qualified names of the retired children.
    pub children: &'a [String],
    /// For a time-partitioned parent, the end of the newest retired child's
    /// range: every row before it is gone. None for integer keys.
    pub before: Option<pgrx::datum::TimestampWithTimeZone>,
    /// `dropped` or `detached`.
    pub action: &'a str,
}

/// A tenant whose rows `purge_tenant` has just erased or anonymized from every
/// registered table, in this transaction.
pub struct TenantPurged<'a> {
    pub tenant: [u8; 16],
    /// `delete` or `anonymize`.
    pub mode: &'a str,
    /// Rows handled, in all.
    pub rows: i64,
    /// Rows handled per table (quoted, schema-qualified name).
    pub per_table: &'a serde_json::Map<String, serde_json::Value>,
}

/// What the purge hooks report, gathered for the purge's own record: each
/// hook adds facts (`"quota_counters_reset": 2`); a recording hook, which runs
/// after all the others, writes the record with all of them.
#[derive(Default)]
pub struct PurgeReport {
    pub facts: serde_json::Map<String, serde_json::Value>,
}

/// The tenant `set_tenant` (Some) or `clear_tenant` (None) has just set, for
/// the session or (`is_local`) the transaction.
pub struct TenantChosen {
    pub tenant: Option<[u8; 16]>,
    pub is_local: bool,
}

type ChildHook = fn(&ChildAttached);
type RetiredHook = fn(&ChildrenRetired);
type PurgeHook = fn(&TenantPurged, &mut PurgeReport) -> Result<()>;
type ChosenHook = fn(&TenantChosen) -> Result<()>;

/// Rewrites rows with a table's masking rules: `covers` says whether the
/// table has rules that change anything; `rewrite` rewrites the rows the
/// filter selects in one statement, `run` in primary-key batches of the given
/// size; both return how many rows they rewrote.
#[derive(Clone, Copy)]
pub struct Anonymizer {
    pub covers: fn(&Relation) -> bool,
    pub rewrite: fn(&Relation, &RowFilter) -> Result<i64>,
    pub run: fn(&Relation, &RowFilter, i64) -> Result<i64>,
}

#[derive(Default)]
struct Registry {
    child_attached: Vec<ChildHook>,
    children_retired: Vec<RetiredHook>,
    tenant_purged: Vec<PurgeHook>,
    purge_recorded: Vec<PurgeHook>,
    tenant_chosen: Vec<ChosenHook>,
    anonymizer: Option<Anonymizer>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Registers what to do when the partition manager makes a child.
pub fn on_child_attached(hook: ChildHook) {
    REGISTRY.with(|r| r.borrow_mut().child_attached.push(hook));
}

/// Registers what to do when partition retention retires children.
pub fn on_children_retired(hook: RetiredHook) {
    REGISTRY.with(|r| r.borrow_mut().children_retired.push(hook));
}

/// Registers what to do when a tenant is purged (its counters, say).
pub fn on_tenant_purged(hook: PurgeHook) {
    REGISTRY.with(|r| r.borrow_mut().tenant_purged.push(hook));
}

/// Registers the hook that records a purge, after every `on_tenant_purged` one.
pub fn on_purge_recorded(hook: PurgeHook) {
    REGISTRY.with(|r| r.borrow_mut().purge_recorded.push(hook));
}

/// Registers what to do when `set_tenant` or `clear_tenant` chose a tenant
/// (usage applies the tenant's governed settings).
pub fn on_tenant_chosen(hook: ChosenHook) {
    REGISTRY.with(|r| r.borrow_mut().tenant_chosen.push(hook));
}

/// Registers the anonymizer (masking does).
pub fn provide_anonymizer(anonymizer: Anonymizer) {
    REGISTRY.with(|r| r.borrow_mut().anonymizer = Some(anonymizer));
}

// The hooks are copied out before they run: a hook may call back into code
// that reads the registry.

pub fn child_attached(event: &ChildAttached) {
    for hook in REGISTRY.with(|r| r.borrow().child_attached.clone()) {
        hook(event);
    }
}

pub fn children_retired(event: &ChildrenRetired) {
    for hook in REGISTRY.with(|r| r.borrow().children_retired.clone()) {
        hook(event);
    }
}

pub fn tenant_purged(event: &TenantPurged) -> Result<PurgeReport> {
    let (hooks, recorders) = REGISTRY.with(|r| {
        let r = r.borrow();
        (r.tenant_purged.clone(), r.purge_recorded.clone())
    });
    let mut report = PurgeReport::default();
    for hook in hooks.into_iter().chain(recorders) {
        hook(event, &mut report)?;
    }
    Ok(report)
}

pub fn tenant_chosen(event: &TenantChosen) -> Result<()> {
    for hook in REGISTRY.with(|r| r.borrow().tenant_chosen.clone()) {
        hook(event)?;
    }
    Ok(())
}

/// The registered anonymizer, if masking is there to provide one.
pub fn anonymizer() -> Option<Anonymizer> {
    REGISTRY.with(|r| r.borrow().anonymizer)
}
