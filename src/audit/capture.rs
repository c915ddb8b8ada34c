//! The audit trigger: one statement-level trigger per operation, reading the
//! statement's transition tables (every changed row, old and new) and writing
//! one audit row per changed row in batches. No SQL runs per row.

use super::catalog_oids;
use super::chunks::Chunks;
use super::cluster::{self, Target};
use super::plan::{self, TablePlan};
use super::row_json::ObjectBuilder;
use super::store::{self, col, Writer, COLUMNS};
use crate::common::transition::TransitionReader;
use crate::common::varlena::switch_memory;
use crate::tenant::context;
use pgrx::pg_sys;
use pgrx::prelude::*;

/// Values shared by every audit row of one statement.
struct Statement {
    logged_at: pg_sys::Datum,
    table_name: pg_sys::Datum,
    op: pg_sys::Datum,
    actor: pg_sys::Datum,
    application_name: Option<pg_sys::Datum>,
    client_addr: Option<pg_sys::Datum>,
    txid: pg_sys::Datum,
    /// `current_tenant()`, for tables without a tenant column (and TRUNCATE).
    session_tenant: Option<pg_sys::Datum>,
}

/// Values that stay the same for the whole session, computed once: the
/// client's address and the session user's name (the actor when none is set).
struct SessionValues {
    client_addr: Option<pg_sys::Datum>,
    session_user: pg_sys::Oid,
    session_user_name: pg_sys::Datum,
}

thread_local! {
    static SESSION: std::cell::RefCell<Option<SessionValues>> = const { std::cell::RefCell::new(None) };
}

/// Copies a varlena datum into TopMemoryContext so it lives for the session.
unsafe fn keep_for_session(datum: pg_sys::Datum) -> pg_sys::Datum {
    // SAFETY: `datum` is a live varlena (the caller's contract); the copy is
    // allocated in TopMemoryContext with its full size before the bytes are copied.
    unsafe {
        let size = pgrx::varsize_any(datum.cast_mut_ptr());
        let copy = pg_sys::MemoryContextAlloc(pg_sys::TopMemoryContext, size) as *mut u8;
        std::ptr::copy_nonoverlapping(datum.cast_mut_ptr::<u8>(), copy, size);
        pg_sys::Datum::from(copy)
    }
}

unsafe fn session_values() -> (Option<pg_sys::Datum>, pg_sys::Datum) {
    // SAFETY: called inside a transaction (a trigger); the syscache and
    // memory context calls below need nothing more.
    unsafe {
        let user = pg_sys::GetSessionUserId();
        SESSION.with(|cell| {
            let mut cell = cell.borrow_mut();
            let stale = cell.as_ref().is_none_or(|s| s.session_user != user);
            if stale {
                let client_addr =
                    pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_client_addr, &[])
                        .map(|d| keep_for_session(d));
                let name = std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(user, false));
                let name = keep_for_session(text_datum(name.to_bytes()));
                *cell = Some(SessionValues {
                    client_addr,
                    session_user: user,
                    session_user_name: name,
                });
            }
            let values = cell.as_ref().expect("just set");
            (values.client_addr, values.session_user_name)
        })
    }
}

/// Per-statement working space, kept from one statement to the next so a
/// stream of one-row statements allocates nothing for it. Taken out of the
/// cell while a statement uses it: a trigger fired from inside ours (a
/// user-defined cast to json writing an audited table) gets a fresh one.
#[derive(Default)]
struct Scratch {
    key: ObjectBuilder,
    old: ObjectBuilder,
    new: ObjectBuilder,
    /// UPDATE: positions (in `TablePlan::row`) of the changed columns, in
    /// table order (for changed_cols) and in key order (for old_row).
    changed_in_table_order: Vec<usize>,
    changed_in_key_order: Vec<usize>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the statement's scratch space, ready for a new statement.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut scratch = SCRATCH.take().unwrap_or_default();
    for builder in [&mut scratch.key, &mut scratch.old, &mut scratch.new] {
        builder.start_statement();
    }
    let result = f(&mut scratch);
    SCRATCH.set(Some(scratch));
    result
}

/// Audit row ids: one `nextval` per block of [`IDS_PER_VALUE`] rows, the id
/// being `value * IDS_PER_VALUE + n` (the column default uses the same rule),
/// so a 100k-row statement costs 100 sequence calls instead of 100,000.
const IDS_PER_VALUE: i64 = 1000;

/// The backend's current block of ids, kept across statements so a stream
/// of one-row statements also calls nextval once per thousand rows (ids of a
/// rolled-back statement are skipped, as sequence values always are).
/// `base` is added to each: 0 in `tenancy.audit_log`, the node group's
/// offset in the cluster log (audit::cluster).
struct Ids {
    base: i64,
}

thread_local! {
    static ID_BLOCK: std::cell::Cell<(i64, i64)> = const { std::cell::Cell::new((0, 0)) };
}

impl Ids {
    fn next(&mut self) -> pg_sys::Datum {
        let (mut next, mut end) = ID_BLOCK.with(|b| b.get());
        if next == end {
            let value = next_sequence_value();
            next = value * IDS_PER_VALUE;
            end = next + IDS_PER_VALUE;
        }
        ID_BLOCK.with(|b| b.set((next + 1, end)));
        pg_sys::Datum::from(self.base + next)
    }
}

/// A text datum of `bytes` (already in the database encoding) in the current
/// memory context.
unsafe fn text_datum(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: `bytes` is a valid slice (at most a text value's size) that
    // cstring_to_text_with_len copies into a new palloc'd text.
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            bytes.as_ptr().cast(),
            bytes.len() as i32,
        ))
    }
}

unsafe fn uuid_datum(bytes: &[u8; 16]) -> pg_sys::Datum {
    // SAFETY: a 16-byte palloc'd block receives exactly 16 bytes.
    unsafe {
        let memory = pg_sys::palloc(16) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), memory, 16);
        pg_sys::Datum::from(memory)
    }
}

unsafe fn uuid_datum_in(chunks: &mut Chunks, bytes: &[u8; 16]) -> pg_sys::Datum {
    // SAFETY: the chunk allocator hands out at least 16 writable bytes.
    unsafe {
        let memory = chunks.alloc(16);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), memory, 16);
        pg_sys::Datum::from(memory)
    }
}

impl Statement {
    unsafe fn new(plan: &TablePlan, op: &str, logged_at: pg_sys::TimestampTz) -> Statement {
        // SAFETY: runs in a trigger, inside a transaction: the session values,
        // actor and text datums are built in the current memory context.
        unsafe {
            let (client_addr, session_user_name) = session_values();
            let actor = context::with_current_actor(|actor| match actor {
                Some(bytes) => text_datum(bytes),
                None => session_user_name,
            });
            let application_name =
                if pg_sys::application_name.is_null() || *pg_sys::application_name == 0 {
                    None
                } else {
                    Some(pg_sys::Datum::from(pg_sys::cstring_to_text(
                        pg_sys::application_name,
                    )))
                };
            Statement {
                logged_at: pg_sys::Datum::from(logged_at),
                table_name: plan.table_name_datum,
                op: text_datum(op.as_bytes()),
                actor,
                application_name,
                client_addr,
                txid: pg_sys::Datum::from(pg_sys::GetTopFullTransactionId().value as i64),
                session_tenant: context::current_tenant().map(|t| uuid_datum(&t)),
            }
        }
    }

    /// A row with the statement's values filled in.
    fn row(&self) -> [Option<pg_sys::Datum>; COLUMNS.len()] {
        let mut row = [None; COLUMNS.len()];
        row[col::LOGGED_AT] = Some(self.logged_at);
        row[col::TENANT_ID] = self.session_tenant;
        row[col::TABLE_NAME] = Some(self.table_name);
        row[col::OP] = Some(self.op);
        row[col::ACTOR] = Some(self.actor);
        row[col::APPLICATION_NAME] = self.application_name;
        row[col::CLIENT_ADDR] = self.client_addr;
        row[col::TXID] = Some(self.txid);
        row
    }
}

fn next_sequence_value() -> i64 {
    // SAFETY: nextval on the audit sequence (USAGE is granted to everyone).
    unsafe {
        pgrx::fcinfo::direct_function_call::<i64>(
            pg_sys::nextval_oid,
            &[catalog_oids::sequence().into_datum()],
        )
        .expect("nextval returned NULL")
    }
}

/// The tenant of a row: its tenant column when the table is registered.
unsafe fn row_tenant(
    chunks: &mut Chunks,
    plan: &TablePlan,
    statement: &Statement,
    values: &[pg_sys::Datum],
    nulls: &[bool],
) -> Option<pg_sys::Datum> {
    match plan.tenant_index {
        Some(index) if !nulls[index] => {
            // The tuple is gone after the next fetch: keep a copy.
            // SAFETY: a non-NULL uuid datum points at its 16 bytes, alive until the next fetch.
            let bytes = unsafe { &*(values[index].cast_mut_ptr::<[u8; 16]>()) };
            // SAFETY: the copy goes to the statement's chunks, alive until the insert.
            Some(unsafe { uuid_datum_in(chunks, bytes) })
        }
        Some(_) => None,
        None => statement.session_tenant,
    }
}

/// The statement trigger behind every `tenancy_audit_*` trigger.
#[pg_trigger]
fn _audit_statement<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let data = trigger.trigger_data();
    let event = data.tg_event;
    // SAFETY: a statement-level AFTER trigger's data: an open relation and,
    // for INSERT/UPDATE/DELETE, transition tables declared by enable_audit.
    unsafe {
        let relation = data.tg_relation;
        let log = match cluster::target_of((*relation).rd_id) {
            Target::Local => Log {
                relid: catalog_oids::audit_log(),
                id_base: 0,
            },
            Target::Shard(shard) => Log {
                relid: shard.log,
                id_base: shard.id_base,
            },
            Target::Elsewhere => return Ok(None),
        };
        let plan = plan::plan_for(relation, || trigger.extra_args().unwrap_or_default());
        let tupdesc = (*relation).rd_att;
        let logged_at = pg_sys::GetCurrentTimestamp();
        if pgrx::trigger_support::trigger_fired_by_truncate(event) {
            // A shard's TRUNCATE is its table's, which the coordinator logs.
            if log.id_base != 0 {
                return Ok(None);
            }
            let statement = Statement::new(&plan, "TRUNCATE", logged_at);
            let mut writer = Writer::open(log.relid, logged_at, 1);
            let mut ids = Ids { base: 0 };
            let mut row = statement.row();
            row[col::ID] = Some(ids.next());
            // On a table with a tenant column, TRUNCATE removes every tenant's
            // rows: it is no single tenant's change, and no tenant reads it.
            if plan.tenant_index.is_some() {
                row[col::TENANT_ID] = None;
            }
            writer.add(&row);
            writer.finish();
        } else if pgrx::trigger_support::trigger_fired_by_insert(event) {
            capture_one_side(
                &log,
                &plan,
                "INSERT",
                data.tg_newtable,
                tupdesc,
                logged_at,
                col::NEW_ROW,
            );
        } else if pgrx::trigger_support::trigger_fired_by_delete(event) {
            capture_one_side(
                &log,
                &plan,
                "DELETE",
                data.tg_oldtable,
                tupdesc,
                logged_at,
                col::OLD_ROW,
            );
        } else if pgrx::trigger_support::trigger_fired_by_update(event) {
            capture_updates(
                &log,
                &plan,
                data.tg_oldtable,
                data.tg_newtable,
                tupdesc,
                logged_at,
            );
        }
    }
    Ok(None)
}

/// The log a statement's audit rows go to.
struct Log {
    relid: pg_sys::Oid,
    id_base: i64,
}

/// INSERT (new rows into `new_row`) or DELETE (old rows into `old_row`).
unsafe fn capture_one_side(
    log: &Log,
    plan: &TablePlan,
    op: &str,
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    logged_at: pg_sys::TimestampTz,
    row_column: usize,
) {
    if store.is_null() {
        pgrx::error!(
            "audit trigger fired without its transition table; re-run tenancy.enable_audit()"
        );
    }
    // SAFETY: `store` was checked non-null and is the trigger's transition
    // table shaped like `tupdesc`; every datum built here lives in this trigger's context.
    unsafe {
        let statement = Statement::new(plan, op, logged_at);
        let mut reader = TransitionReader::new(store, tupdesc);
        let mut writer = Writer::open(log.relid, logged_at, reader.count());
        let mut ids = Ids { base: log.id_base };
        with_scratch(|scratch| {
            // Tuples are fetched in the statement's memory: a transition table
            // spilled to disk hands out tuples palloc'd there, which its slot
            // frees itself; only the audit row's values go to batch memory.
            while let Some((values, nulls)) = reader.next() {
                let old_context = switch_memory(writer.batch_memory);
                let chunks = &mut writer.chunks;
                let mut row = statement.row();
                row[col::ID] = Some(ids.next());
                row[col::TENANT_ID] = row_tenant(chunks, plan, &statement, values, nulls);
                row[col::RECORD_KEY] = Some(scratch.key.build(chunks, &plan.key, values, nulls));
                row[row_column] = Some(scratch.new.build(chunks, &plan.row, values, nulls));
                switch_memory(old_context);
                writer.add(&row);
            }
        });
        writer.finish();
    }
}

/// UPDATE: the old and new transition tables hold each updated row at the
/// same position. A row whose audited columns are all unchanged is skipped.
unsafe fn capture_updates(
    log: &Log,
    plan: &TablePlan,
    old_store: *mut pg_sys::Tuplestorestate,
    new_store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    logged_at: pg_sys::TimestampTz,
) {
    if old_store.is_null() || new_store.is_null() {
        pgrx::error!(
            "audit trigger fired without its transition tables; re-run tenancy.enable_audit()"
        );
    }
    // SAFETY: both stores were checked non-null and are the trigger's
    // transition tables shaped like `tupdesc`.
    unsafe {
        let statement = Statement::new(plan, "UPDATE", logged_at);
        let mut old_reader = TransitionReader::new(old_store, tupdesc);
        let mut new_reader = TransitionReader::new(new_store, tupdesc);
        let mut writer = Writer::open(log.relid, logged_at, new_reader.count());
        let mut ids = Ids { base: log.id_base };
        with_scratch(|scratch| {
            // Fetched in the statement's memory (see capture_one_side).
            while let (Some((old_values, old_nulls)), Some((new_values, new_nulls))) =
                (old_reader.next(), new_reader.next())
            {
                // Batch memory from here: comparing detoasts what is stored
                // compressed or out of line, and a big statement must not
                // keep those copies until it ends.
                let old_context = switch_memory(writer.batch_memory);
                let same = |column: &plan::Column| {
                    let i = column.index;
                    match (old_nulls[i], new_nulls[i]) {
                        (true, true) => true,
                        (false, false) => plan::same_image(column, old_values[i], new_values[i]),
                        _ => false,
                    }
                };
                let changed = &mut scratch.changed_in_table_order;
                changed.clear();
                for &position in &plan.row_in_table_order {
                    if !same(&plan.row[position]) {
                        changed.push(position);
                    }
                }
                if changed.is_empty() {
                    switch_memory(old_context);
                    continue;
                }
                let in_key_order = &mut scratch.changed_in_key_order;
                in_key_order.clear();
                in_key_order.extend_from_slice(changed);
                in_key_order.sort_unstable();
                let chunks = &mut writer.chunks;
                let mut row = statement.row();
                row[col::ID] = Some(ids.next());
                row[col::TENANT_ID] = row_tenant(chunks, plan, &statement, new_values, new_nulls);
                row[col::RECORD_KEY] =
                    Some(scratch.key.build(chunks, &plan.key, new_values, new_nulls));
                // A changed key: the old one too, so the record's history under
                // its old key ends with this change (row_history matches both).
                if !plan.key.iter().all(same) {
                    row[col::OLD_RECORD_KEY] =
                        Some(scratch.key.build(chunks, &plan.key, old_values, old_nulls));
                }
                // old_row: what the changed columns held before; new_row: the whole new row.
                row[col::OLD_ROW] = Some(scratch.old.build_some(
                    chunks,
                    &plan.row,
                    in_key_order,
                    old_values,
                    old_nulls,
                ));
                row[col::NEW_ROW] =
                    Some(scratch.new.build(chunks, &plan.row, new_values, new_nulls));
                let names = changed.iter().map(|&p| plan.row[p].name.as_slice());
                row[col::CHANGED_COLS] = Some(text_array(chunks, names));
                switch_memory(old_context);
                writer.add(&row);
            }
        });
        writer.finish();
    }
}

/// The `text[]` of `names`, laid out byte for byte as `construct_array` lays
/// it out (one dimension, lower bound 1, no nulls, each element a
/// 4-byte-header text at an int-aligned offset), written into the batch's
/// chunks without a call into PostgreSQL.
pub(super) unsafe fn text_array<'a>(
    chunks: &mut Chunks,
    names: impl Iterator<Item = &'a [u8]> + Clone,
) -> pg_sys::Datum {
    // ARR_OVERHEAD_NONULLS(1): the header (size, ndim, dataoffset, elemtype)
    // and one dimension and lower bound, 24 bytes, already MAXALIGNed.
    const HEADER: usize = 24;
    let element = |name: &[u8]| (4 + name.len() + 3) & !3;
    let size = HEADER + names.clone().map(element).sum::<usize>();
    let put = |bytes: &mut [u8], at: usize, word: u32| {
        bytes[at..at + 4].copy_from_slice(&word.to_ne_bytes())
    };
    // SAFETY: `size` covers the header and every element, rounded as
    // construct_array does; the memory is zeroed before it is written.
    unsafe {
        let memory = chunks.alloc(size);
        let bytes = std::slice::from_raw_parts_mut(memory, size);
        bytes.fill(0);
        put(bytes, 0, super::jsonb::varsize_header(size as u32));
        put(bytes, 4, 1); // ndim
        put(bytes, 8, 0); // dataoffset: no null bitmap
        put(bytes, 12, u32::from(pg_sys::TEXTOID));
        put(bytes, 16, names.clone().count() as u32); // dims[0]
        put(bytes, 20, 1); // lbound[0]
        let mut at = HEADER;
        for name in names {
            put(
                bytes,
                at,
                super::jsonb::varsize_header((4 + name.len()) as u32),
            );
            bytes[at + 4..at + 4 + name.len()].copy_from_slice(name);
            at += element(name);
        }
        pg_sys::Datum::from(memory)
    }
}

/// Relcache invalidation: drop what we cached about `relid`.
pub fn forget(relid: pg_sys::Oid) {
    plan::forget(relid);
    store::forget(relid);
    catalog_oids::forget(relid);
}
