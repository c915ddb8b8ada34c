//! Writing audit rows: straight into the right partition of
//! `tenancy.audit_log`, many at a time, the way COPY does (heap multi-insert
//! plus index maintenance), without going through SQL. This is what keeps the
//! audit cost near the cost of storing the rows at all; it also means only
//! the extension can write the log: no role holds INSERT on it.

use super::catalog_oids;
use crate::common::calendar::Range;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;

/// Rows handed to the heap in one multi-insert (COPY uses the same).
const BATCH: usize = 1000;

/// The audit log's column values for one row, in any order; matched to the
/// partition's columns by name once per statement. [`col`] names the indexes.
pub const COLUMNS: [&str; 14] = [
    "id",
    "logged_at",
    "tenant_id",
    "table_name",
    "op",
    "record_key",
    "old_row",
    "new_row",
    "changed_cols",
    "actor",
    "application_name",
    "client_addr",
    "txid",
    "old_record_key",
];

/// Indexes into [`COLUMNS`] (and into a row of values for [`Writer::add`]).
pub mod col {
    pub const ID: usize = 0;
    pub const LOGGED_AT: usize = 1;
    pub const TENANT_ID: usize = 2;
    pub const TABLE_NAME: usize = 3;
    pub const OP: usize = 4;
    pub const RECORD_KEY: usize = 5;
    pub const OLD_ROW: usize = 6;
    pub const NEW_ROW: usize = 7;
    pub const CHANGED_COLS: usize = 8;
    pub const ACTOR: usize = 9;
    pub const APPLICATION_NAME: usize = 10;
    pub const CLIENT_ADDR: usize = 11;
    pub const TXID: usize = 12;
    pub const OLD_RECORD_KEY: usize = 13;
}

/// A log's children by range (the audit log's, or on a Citus node a shard of
/// the cluster log's), cached until its relcache entry is invalidated (a
/// child attached, detached or dropped).
#[derive(Default)]
struct Partitions {
    ranges: Vec<(Range, pg_sys::Oid)>,
    default: Option<pg_sys::Oid>,
}

thread_local! {
    static CURRENT: RefCell<std::collections::HashMap<pg_sys::Oid, std::rc::Rc<Partitions>>> =
        RefCell::new(std::collections::HashMap::new());
    /// Per partition: the attribute index of each entry of [`COLUMNS`].
    static POSITIONS: RefCell<std::collections::HashMap<pg_sys::Oid, [usize; COLUMNS.len()]>> =
        RefCell::new(std::collections::HashMap::new());
    /// Set by the relcache callback, which may run in the middle of anything
    /// (even while the map is being loaded): it only raises this flag, and the
    /// map is dropped the next time it is used.
    static STALE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Relcache callback: mark the partition maps stale when a log or one of its
/// partitions changes (never waits for a borrow: it may interrupt a borrower).
pub fn forget(relid: pg_sys::Oid) {
    let ours = relid == pg_sys::InvalidOid
        || relid == catalog_oids::cached_audit_log()
        || CURRENT.with(|c| {
            c.try_borrow()
                .map(|c| c.contains_key(&relid))
                .unwrap_or(true)
        })
        || POSITIONS.with(|p| {
            p.try_borrow()
                .map(|p| p.contains_key(&relid))
                .unwrap_or(true)
        });
    if ours {
        STALE.with(|s| s.set(true));
    }
}

/// The map, rebuilt if stale or not loaded yet. Loading runs queries, during
/// which invalidations may arrive; a map loaded while one did is used once
/// and not kept.
fn partitions(log: pg_sys::Oid) -> std::rc::Rc<Partitions> {
    if STALE.with(|s| s.replace(false)) {
        CURRENT.with(|c| c.borrow_mut().clear());
        POSITIONS.with(|p| p.borrow_mut().clear());
    }
    if let Some(current) = CURRENT.with(|c| c.borrow().get(&log).cloned()) {
        return current;
    }
    let children = crate::partition::time_children(log);
    let loaded = Partitions {
        ranges: children.ranges,
        default: children.default,
    };
    let loaded = std::rc::Rc::new(loaded);
    if !STALE.with(|s| s.get()) {
        CURRENT.with(|c| c.borrow_mut().insert(log, loaded.clone()));
    }
    loaded
}

fn partition_for(log: pg_sys::Oid, logged_at_unix_micros: i64) -> Option<pg_sys::Oid> {
    let p = partitions(log);
    let found = p
        .ranges
        .binary_search_by(|(range, _)| {
            if range.to <= logged_at_unix_micros {
                std::cmp::Ordering::Less
            } else if range.from > logged_at_unix_micros {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .ok()
        .map(|i| p.ranges[i].1);
    found.or(p.default)
}

/// Where each audit column sits in `partition` (looked up once per partition).
unsafe fn column_positions(
    partition: pg_sys::Oid,
    relation: pg_sys::Relation,
) -> [usize; COLUMNS.len()] {
    if let Some(found) = POSITIONS.with(|p| p.borrow().get(&partition).copied()) {
        return found;
    }
    let mut positions = [usize::MAX; COLUMNS.len()];
    // SAFETY: `relation` is the open audit log partition the caller holds;
    // its tuple descriptor has `natts` attributes.
    unsafe {
        let tupdesc = (*relation).rd_att;
        for (i, attribute) in crate::common::tupdesc::attributes(tupdesc)
            .into_iter()
            .enumerate()
        {
            if attribute.attisdropped {
                continue;
            }
            let name = CStr::from_ptr(attribute.attname.data.as_ptr())
                .to_str()
                .unwrap_or("");
            if let Some(k) = COLUMNS.iter().position(|c| *c == name) {
                positions[k] = i;
            }
        }
    }
    if positions.contains(&usize::MAX) {
        pgrx::error!("tenancy.audit_log partition {partition:?} lacks audit columns");
    }
    POSITIONS.with(|p| p.borrow_mut().insert(partition, positions));
    positions
}

/// An open audit log partition taking rows for one statement.
pub struct Writer {
    parent: pg_sys::Relation,
    relation: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    result_relation: *mut pg_sys::ResultRelInfo,
    slots: Vec<*mut pg_sys::TupleTableSlot>,
    pending: usize,
    /// Partition attribute index of each entry of [`COLUMNS`].
    positions: [usize; COLUMNS.len()],
    natts: usize,
    command_id: pg_sys::CommandId,
    bulk: pg_sys::BulkInsertState,
    /// Short-lived memory for one batch's values; reset after each flush.
    pub batch_memory: pg_sys::MemoryContext,
    /// Bump allocator over `batch_memory` for the rows' values.
    pub chunks: super::chunks::Chunks,
    owns_batch_memory: bool,
}

impl Writer {
    /// Opens the partition of `log` (the audit log, or a cluster log shard)
    /// holding `logged_at` (PostgreSQL timestamp). `expected_rows` sizes the
    /// batch and picks a bulk-insert buffer strategy for big statements only.
    pub fn open(log: pg_sys::Oid, logged_at: pg_sys::TimestampTz, expected_rows: usize) -> Writer {
        let unix = logged_at + crate::common::clock::POSTGRES_EPOCH_OFFSET_MICROS;
        let lock = pg_sys::RowExclusiveLock as pg_sys::LOCKMODE;
        // The parent is locked first: taking the lock processes pending
        // invalidations, so the partition map read next already knows of a
        // partition detached or dropped before the lock was granted (a plain
        // DETACH or a DROP waits for this transaction from then on).
        // SAFETY: opening a relation inside a transaction.
        let parent = unsafe { pg_sys::table_open(log, lock) };
        let Some(partition) = partition_for(log, unix) else {
            let name = crate::common::relation::qualified_name_of(log).unwrap_or_default();
            pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("{name} has no partition for the current time"),
                "pg_tenancy",
            )
            .set_hint(
                "Run tenancy.run_maintenance(): it premakes the audit log's monthly partitions.",
            )
            .report(PgLogLevel::ERROR);
            unreachable!()
        };
        // SAFETY: standard executor setup, as COPY FROM does it, torn down in `finish`.
        unsafe {
            let relation = pg_sys::table_open(partition, lock);
            let estate = pg_sys::CreateExecutorState();
            let result_relation = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>())
                as *mut pg_sys::ResultRelInfo;
            (*result_relation).type_ = pg_sys::NodeTag::T_ResultRelInfo;
            pg_sys::InitResultRelInfo(result_relation, relation, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(result_relation, false);
            let natts = (*(*relation).rd_att).natts as usize;
            let positions = column_positions(partition, relation);
            // A statement that fits one batch writes its values in the trigger's
            // own memory, which PostgreSQL resets after the trigger returns.
            let batch_memory = if expected_rows > BATCH {
                pg_sys::AllocSetContextCreateInternal(
                    pg_sys::CurrentMemoryContext,
                    c"pg_tenancy audit batch".as_ptr(),
                    0,
                    8 * 1024,
                    8 * 1024 * 1024,
                )
            } else {
                pg_sys::CurrentMemoryContext
            };
            let owns_batch_memory = expected_rows > BATCH;
            let bulk = if expected_rows > BATCH {
                pg_sys::GetBulkInsertState()
            } else {
                std::ptr::null_mut()
            };
            Writer {
                parent,
                relation,
                estate,
                result_relation,
                slots: Vec::with_capacity(expected_rows.clamp(1, BATCH)),
                pending: 0,
                positions,
                natts,
                command_id: pg_sys::GetCurrentCommandId(true),
                bulk,
                batch_memory,
                chunks: super::chunks::Chunks::default(),
                owns_batch_memory,
            }
        }
    }

    /// Queues one audit row; `values[k]` is the value of `COLUMNS[k]`
    /// (None: NULL), allocated in `batch_memory` or longer-lived memory.
    pub fn add(&mut self, values: &[Option<pg_sys::Datum>; COLUMNS.len()]) {
        // SAFETY: slots belong to this writer's relation; values outlive the flush.
        unsafe {
            if self.pending == self.slots.len() {
                self.slots.push(pg_sys::table_slot_create(
                    self.relation,
                    std::ptr::null_mut(),
                ));
            }
            let slot = self.slots[self.pending];
            pg_sys::ExecClearTuple(slot);
            let slot_values = std::slice::from_raw_parts_mut((*slot).tts_values, self.natts);
            let slot_nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, self.natts);
            slot_nulls.fill(true);
            for (k, value) in values.iter().enumerate() {
                if let Some(datum) = value {
                    slot_values[self.positions[k]] = *datum;
                    slot_nulls[self.positions[k]] = false;
                }
            }
            pg_sys::ExecStoreVirtualTuple(slot);
            self.pending += 1;
            if self.pending == BATCH {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        // SAFETY: COPY's multi-insert sequence: heap multi-insert, then each
        // tuple's index entries (the slots now carry their TIDs).
        unsafe {
            pg_sys::heap_multi_insert(
                self.relation,
                self.slots.as_mut_ptr(),
                self.pending as i32,
                self.command_id,
                // The log is append-only: new rows go at the end, no free-space search.
                pg_sys::HEAP_INSERT_SKIP_FSM as i32,
                self.bulk,
            );
            if (*self.result_relation).ri_NumIndices > 0 {
                for &slot in &self.slots[..self.pending] {
                    #[cfg(feature = "pg15")]
                    let recheck = pg_sys::ExecInsertIndexTuples(
                        self.result_relation,
                        slot,
                        self.estate,
                        false,
                        false,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                    // PostgreSQL 16 added `onlySummarizing` (false: a new row
                    // goes into every index, not only the summarizing ones).
                    #[cfg(not(feature = "pg15"))]
                    let recheck = pg_sys::ExecInsertIndexTuples(
                        self.result_relation,
                        slot,
                        self.estate,
                        false,
                        false,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        false,
                    );
                    pg_sys::list_free(recheck);
                }
                let econtext = (*self.estate).es_per_tuple_exprcontext;
                if !econtext.is_null() {
                    pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
                }
            }
            for &slot in &self.slots[..self.pending] {
                pg_sys::ExecClearTuple(slot);
            }
            if self.owns_batch_memory {
                pg_sys::MemoryContextReset(self.batch_memory);
                self.chunks.reset();
            }
        }
        self.pending = 0;
    }

    /// Writes what is queued and releases everything.
    pub fn finish(mut self) {
        self.flush();
        // SAFETY: tears down what `open` set up, in reverse.
        unsafe {
            for &slot in &self.slots {
                pg_sys::ExecDropSingleTupleTableSlot(slot);
            }
            if !self.bulk.is_null() {
                pg_sys::FreeBulkInsertState(self.bulk);
            }
            pg_sys::ExecCloseIndices(self.result_relation);
            pg_sys::FreeExecutorState(self.estate);
            if self.owns_batch_memory {
                pg_sys::MemoryContextDelete(self.batch_memory);
            }
            let lock = pg_sys::NoLock as pg_sys::LOCKMODE;
            pg_sys::table_close(self.relation, lock);
            pg_sys::table_close(self.parent, lock);
        }
    }
}
