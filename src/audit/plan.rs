//! What the audit trigger needs to know about an audited table, worked out
//! once per table per backend and kept until the table's relcache entry is
//! invalidated (ALTER TABLE, enable_audit with new exclusions, registering the
//! table's tenant column all invalidate it).

use super::jsonb::{self, Value};
use crate::common::privilege::as_extension_owner;
use crate::common::varlena::{detoast_full, detoast_packed, vardata_any, varsize_any};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

/// How one column becomes a JSON value: the categories of `to_jsonb`, with
/// fast paths for the common types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Numeric,
    /// float4, float8: the shortest decimal that reads back the same (what
    /// float4out/float8out print), as a number unless NaN or infinite.
    Float4,
    Float8,
    /// text, varchar, bpchar: the stored characters.
    Text,
    Name,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Jsonb,
    /// json, arrays, composites, user types: PostgreSQL's to_jsonb.
    ToJsonb,
    /// Anything else: its output function's text, as to_jsonb does.
    Output,
}

#[derive(Debug)]
pub struct Column {
    /// 0-based index into the tuple's values.
    pub index: usize,
    pub name: Vec<u8>,
    pub kind: Kind,
    pub typlen: i16,
    pub typbyval: bool,
    pub collation: pg_sys::Oid,
    /// Output or to_jsonb function, for the kinds that need one.
    pub function: *mut pg_sys::FmgrInfo,
}

/// An audited table as the trigger sees it.
#[derive(Debug)]
pub struct TablePlan {
    /// `schema.table`, quoted as needed: the audit rows' table_name, as a
    /// text datum in the plan's memory.
    pub table_name_datum: pg_sys::Datum,
    /// Audited columns in jsonb key order (excluded columns left out).
    pub row: Vec<Column>,
    /// The same columns' positions in `row`, in table column order (for changed_cols).
    pub row_in_table_order: Vec<usize>,
    /// Record key columns (primary key, or replica identity index) in jsonb key order.
    pub key: Vec<Column>,
    /// The tenant column's index when the table is registered.
    pub tenant_index: Option<usize>,
    /// Memory holding the function infos; deleted with the plan.
    memory: pg_sys::MemoryContext,
}

impl Drop for TablePlan {
    fn drop(&mut self) {
        // SAFETY: the context was created for this plan alone.
        unsafe { pg_sys::MemoryContextDelete(self.memory) };
    }
}

thread_local! {
    static PLANS: RefCell<HashMap<pg_sys::Oid, Rc<TablePlan>>> = RefCell::new(HashMap::new());
}

/// Drops cached plans when PostgreSQL invalidates a relation (or everything).
#[pg_guard]
pub unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // The map is only ever borrowed briefly, with no PostgreSQL call inside
    // the borrow, so this callback cannot find it borrowed.
    PLANS.with(|plans| {
        let removed = {
            let mut plans = plans.borrow_mut();
            if relid == pg_sys::InvalidOid {
                std::mem::take(&mut *plans)
                    .into_values()
                    .collect::<Vec<_>>()
            } else {
                plans.remove(&relid).into_iter().collect()
            }
        };
        // Dropped outside the borrow: dropping a plan frees PostgreSQL memory.
        drop(removed);
    });
}

/// The plan of `relation`, built on first use.
pub fn plan_for(relation: pg_sys::Relation) -> Rc<TablePlan> {
    // SAFETY: the trigger manager hands us an open relation.
    let relid = unsafe { (*relation).rd_id };
    if let Some(plan) = PLANS.with(|plans| plans.borrow().get(&relid).cloned()) {
        return plan;
    }
    let plan = Rc::new(build(relation));
    PLANS.with(|plans| plans.borrow_mut().insert(relid, plan.clone()));
    plan
}

struct Settings {
    excluded: Vec<String>,
    tenant_column: Option<String>,
    key_columns: Vec<String>,
    qualified_name: String,
}

fn settings(relid: pg_sys::Oid) -> Settings {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    // A partition takes its settings from the nearest audited
                    // (or registered) ancestor, itself first: writes straight to a
                    // partition leave out the same columns as writes to the parent.
                    // (pg_partition_ancestors lists nothing for a plain table.)
                    "WITH chain AS (SELECT $1::pg_catalog.regclass AS rel, 0::bigint AS depth
                                    UNION ALL
                                    SELECT p.rel, p.depth
                                      FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY p(rel, depth))
                     SELECT (SELECT a.exclude_columns FROM chain
                               JOIN tenancy.audit_config a ON a.tbl OPERATOR(pg_catalog.=) chain.rel
                              ORDER BY chain.depth LIMIT 1),
                            (SELECT t.tenant_column::text FROM chain
                               JOIN tenancy.tenant_tables t ON t.tbl OPERATOR(pg_catalog.=) chain.rel
                              ORDER BY chain.depth LIMIT 1),
                            ARRAY(SELECT att.attname::text
                                    FROM pg_catalog.pg_index i
                                    JOIN pg_catalog.pg_attribute att
                                      ON att.attrelid = i.indrelid AND att.attnum = ANY (i.indkey)
                                   WHERE i.indexrelid = (
                                         -- The primary key, else the replica identity index.
                                         SELECT k.indexrelid FROM pg_catalog.pg_index k
                                          WHERE k.indrelid = $1 AND (k.indisprimary OR k.indisreplident)
                                          ORDER BY k.indisprimary DESC LIMIT 1)),
                            pg_catalog.format('%I.%I', n.nspname, c.relname)
                       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = $1",
                    None,
                    &[relid.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>(Settings {
                excluded: row.get::<Vec<String>>(1)?.unwrap_or_default(),
                tenant_column: row.get::<String>(2)?,
                key_columns: row.get::<Vec<String>>(3)?.unwrap_or_default(),
                qualified_name: row.get::<String>(4)?.unwrap_or_default(),
            })
        })
        .expect("reading the audit settings failed")
    })
}

fn kind_of(type_oid: pg_sys::Oid) -> Kind {
    // SAFETY: catalog lookups inside a transaction.
    let base = unsafe { pg_sys::getBaseType(type_oid) };
    match base {
        pg_sys::BOOLOID => Kind::Bool,
        pg_sys::INT2OID => Kind::Int2,
        pg_sys::INT4OID => Kind::Int4,
        pg_sys::INT8OID => Kind::Int8,
        pg_sys::NUMERICOID => Kind::Numeric,
        pg_sys::FLOAT4OID => Kind::Float4,
        pg_sys::FLOAT8OID => Kind::Float8,
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Text,
        pg_sys::NAMEOID => Kind::Name,
        pg_sys::UUIDOID => Kind::Uuid,
        pg_sys::DATEOID => Kind::Date,
        pg_sys::TIMESTAMPOID => Kind::Timestamp,
        pg_sys::TIMESTAMPTZOID => Kind::TimestampTz,
        pg_sys::JSONBOID => Kind::Jsonb,
        pg_sys::JSONOID => Kind::ToJsonb,
        _ => {
            // SAFETY: catalog lookups inside a transaction.
            let structured = unsafe {
                pg_sys::get_element_type(base) != pg_sys::InvalidOid
                    || pg_sys::type_is_rowtype(base)
            };
            // User types may define a cast to json; to_jsonb knows how to find it.
            if structured || u32::from(base) >= pg_sys::FirstNormalObjectId {
                Kind::ToJsonb
            } else {
                Kind::Output
            }
        }
    }
}

/// An FmgrInfo for `to_jsonb(anyelement)` that knows its argument's type
/// (to_jsonb reads it from the call expression, as for any polymorphic call).
unsafe fn to_jsonb_function(
    memory: pg_sys::MemoryContext,
    type_oid: pg_sys::Oid,
    typmod: i32,
    collation: pg_sys::Oid,
) -> *mut pg_sys::FmgrInfo {
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo(memory);
        let info =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(pg_sys::Oid::from(pg_sys::F_TO_JSONB), info, memory);
        let argument = pg_sys::makeNullConst(type_oid, typmod, collation);
        let args = pg_sys::lappend(std::ptr::null_mut(), argument.cast());
        let call = pg_sys::makeFuncExpr(
            pg_sys::Oid::from(pg_sys::F_TO_JSONB),
            pg_sys::JSONBOID,
            args,
            pg_sys::InvalidOid,
            collation,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        (*info).fn_expr = call.cast();
        pg_sys::MemoryContextSwitchTo(old);
        info
    }
}

unsafe fn output_function(
    memory: pg_sys::MemoryContext,
    type_oid: pg_sys::Oid,
) -> *mut pg_sys::FmgrInfo {
    unsafe {
        let mut function = pg_sys::InvalidOid;
        let mut is_varlena = false;
        pg_sys::getTypeOutputInfo(type_oid, &mut function, &mut is_varlena);
        let info = pg_sys::MemoryContextAllocZero(memory, std::mem::size_of::<pg_sys::FmgrInfo>())
            as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(function, info, memory);
        info
    }
}

fn build(relation: pg_sys::Relation) -> TablePlan {
    // SAFETY: reads the open relation's descriptor; allocations go to a
    // context owned by the plan.
    unsafe {
        let relid = (*relation).rd_id;
        let settings = settings(relid);
        let memory = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CacheMemoryContext,
            c"pg_tenancy audit plan".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        let tupdesc = (*relation).rd_att;
        let natts = (*tupdesc).natts as usize;
        let attrs = (*tupdesc).attrs.as_slice(natts);
        let mut row = Vec::new();
        let mut key = Vec::new();
        let mut tenant_index = None;
        for (index, attribute) in attrs.iter().enumerate() {
            if attribute.attisdropped {
                continue;
            }
            let name = CStr::from_ptr(attribute.attname.data.as_ptr())
                .to_bytes()
                .to_vec();
            let name_text = String::from_utf8_lossy(&name).into_owned();
            if settings.tenant_column.as_deref() == Some(name_text.as_str()) {
                tenant_index = Some(index);
            }
            let kind = kind_of(attribute.atttypid);
            let make_column = || Column {
                index,
                name: name.clone(),
                kind,
                typlen: attribute.attlen,
                typbyval: attribute.attbyval,
                collation: attribute.attcollation,
                function: match kind {
                    Kind::ToJsonb => to_jsonb_function(
                        memory,
                        attribute.atttypid,
                        attribute.atttypmod,
                        attribute.attcollation,
                    ),
                    Kind::Output | Kind::Float4 | Kind::Float8 => {
                        output_function(memory, attribute.atttypid)
                    }
                    _ => std::ptr::null_mut(),
                },
            };
            if settings.key_columns.contains(&name_text) {
                key.push(make_column());
            }
            if !settings.excluded.contains(&name_text) {
                row.push(make_column());
            }
        }
        let mut row_in_table_order: Vec<usize> = (0..row.len()).collect();
        row.sort_by(|a, b| jsonb::key_order(&a.name, &b.name));
        key.sort_by(|a, b| jsonb::key_order(&a.name, &b.name));
        row_in_table_order.sort_by_key(|&i| row[i].index);
        let name = std::ffi::CString::new(settings.qualified_name).expect("names have no NUL");
        let old = pg_sys::MemoryContextSwitchTo(memory);
        let table_name_datum = pg_sys::Datum::from(pg_sys::cstring_to_text(name.as_ptr()));
        pg_sys::MemoryContextSwitchTo(old);
        TablePlan {
            table_name_datum,
            row,
            row_in_table_order,
            key,
            tenant_index,
            memory,
        }
    }
}

/// Bump allocation of audit values in the current batch's memory: one palloc
/// per chunk instead of one per value. Chunks start small (a one-row
/// statement needs well under a kilobyte, and a large palloc is a malloc of
/// its own) and double up to 64 kB. Reset when the batch memory is.
#[derive(Default)]
pub struct Chunks {
    next: usize,
    left: usize,
    /// Size of the last chunk taken.
    size: usize,
}

impl Chunks {
    const FIRST: usize = 2 * 1024;
    const MAX: usize = 64 * 1024;

    /// `size` bytes, 8-byte aligned, valid until [`Chunks::reset`].
    ///
    /// # Safety
    /// The current memory context must be the batch memory.
    pub unsafe fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = (size + 7) & !7;
        if size > self.left {
            self.size = (self.size * 2).clamp(Self::FIRST, Self::MAX);
            let chunk = size.max(self.size);
            self.next = unsafe { pg_sys::palloc(chunk) } as usize;
            self.left = chunk;
        }
        let at = self.next;
        self.next += size;
        self.left -= size;
        at as *mut u8
    }

    /// Forgets the current chunk (its memory was freed with the batch).
    pub fn reset(&mut self) {
        self.left = 0;
    }
}

/// Scratch space for one JSON object: the bytes values are written into,
/// and where each value lies. Reused from row to row.
#[derive(Default)]
pub struct ObjectBuilder {
    arena: Vec<u8>,
    pieces: Vec<Piece>,
    selected: Vec<usize>,
    /// The session zone's fixed offset east of UTC in seconds, if it has one
    /// (UTC does): timestamptz values are then formatted without PostgreSQL.
    zone_offset: Option<i64>,
    pub out: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Piece {
    Null,
    Bool(bool),
    /// Bytes outside the arena (a datum's own memory), valid for this row.
    Borrowed(*const u8, usize, PieceKind),
    Arena(usize, usize, PieceKind),
}

#[derive(Clone, Copy)]
enum PieceKind {
    String,
    Numeric,
    Container,
}

fn scalar_piece(value: Value) -> Piece {
    match value {
        Value::Null => Piece::Null,
        Value::Bool(b) => Piece::Bool(b),
        Value::String(s) => Piece::Borrowed(s.as_ptr(), s.len(), PieceKind::String),
        Value::Numeric(s) => Piece::Borrowed(s.as_ptr(), s.len(), PieceKind::Numeric),
        Value::Container(s) => Piece::Borrowed(s.as_ptr(), s.len(), PieceKind::Container),
    }
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_UNIX_MICROS: i64 = crate::common::clock::POSTGRES_EPOCH_OFFSET_MICROS;

impl ObjectBuilder {
    /// Readies a (possibly reused) builder for a statement: the session's
    /// time zone is read once per statement, not per value.
    pub fn start_statement(&mut self) {
        let mut offset: std::ffi::c_long = 0;
        // SAFETY: reads the session's zone; true only for zones with one fixed offset.
        let fixed =
            unsafe { pg_sys::pg_get_timezone_offset(pg_sys::session_timezone, &mut offset) };
        self.zone_offset = fixed.then_some(offset as i64);
    }

    /// Builds the object of `columns` (in key order) from a row's values and
    /// returns it as a palloc'd jsonb datum in the current memory context.
    ///
    /// # Safety
    /// `values`/`nulls` are a deformed tuple of the plan's table.
    pub unsafe fn build(
        &mut self,
        chunks: &mut Chunks,
        columns: &[Column],
        values: &[pg_sys::Datum],
        nulls: &[bool],
    ) -> pg_sys::Datum {
        self.selected.clear();
        self.selected.extend(0..columns.len());
        unsafe { self.build_selected(chunks, columns, values, nulls) }
    }

    /// As [`build`](Self::build), for the columns at `positions` (ascending,
    /// so still in key order) only.
    ///
    /// # Safety
    /// As for `build`.
    pub unsafe fn build_some(
        &mut self,
        chunks: &mut Chunks,
        columns: &[Column],
        positions: &[usize],
        values: &[pg_sys::Datum],
        nulls: &[bool],
    ) -> pg_sys::Datum {
        self.selected.clear();
        self.selected.extend_from_slice(positions);
        unsafe { self.build_selected(chunks, columns, values, nulls) }
    }

    unsafe fn build_selected(
        &mut self,
        chunks: &mut Chunks,
        columns: &[Column],
        values: &[pg_sys::Datum],
        nulls: &[bool],
    ) -> pg_sys::Datum {
        self.arena.clear();
        self.pieces.clear();
        let selected = std::mem::take(&mut self.selected);
        for column in selected.iter().map(|&i| &columns[i]) {
            let piece = if nulls[column.index] {
                Piece::Null
            } else {
                unsafe { self.piece(column, values[column.index]) }
            };
            self.pieces.push(piece);
        }
        self.out.clear();
        let (arena, pieces) = (&self.arena, &self.pieces);
        jsonb::write_object(
            &mut self.out,
            selected.len(),
            |i| columns[selected[i]].name.as_slice(),
            |i| match pieces[i] {
                Piece::Null => Value::Null,
                Piece::Bool(b) => Value::Bool(b),
                // SAFETY: borrowed pieces point into this row's datums, alive until the next fetch.
                Piece::Borrowed(ptr, len, kind) => {
                    typed(kind, unsafe { std::slice::from_raw_parts(ptr, len) })
                }
                Piece::Arena(start, len, kind) => typed(kind, &arena[start..start + len]),
            },
        );
        self.selected = selected;
        unsafe {
            let datum = chunks.alloc(self.out.len());
            std::ptr::copy_nonoverlapping(self.out.as_ptr(), datum, self.out.len());
            pg_sys::Datum::from(datum)
        }
    }

    fn arena_piece(&mut self, kind: PieceKind, write: impl FnOnce(&mut Vec<u8>)) -> Piece {
        // Numerics are copied into the object at int-aligned offsets anyway;
        // keeping them aligned in the arena costs nothing.
        while !self.arena.len().is_multiple_of(4) {
            self.arena.push(0);
        }
        let start = self.arena.len();
        write(&mut self.arena);
        Piece::Arena(start, self.arena.len() - start, kind)
    }

    unsafe fn piece(&mut self, column: &Column, datum: pg_sys::Datum) -> Piece {
        unsafe {
            match column.kind {
                Kind::Bool => Piece::Bool(datum.value() != 0),
                Kind::Int2 => self.arena_piece(PieceKind::Numeric, |a| {
                    jsonb::numeric_from_i64(datum.value() as i16 as i64, a)
                }),
                Kind::Int4 => self.arena_piece(PieceKind::Numeric, |a| {
                    jsonb::numeric_from_i64(datum.value() as i32 as i64, a)
                }),
                Kind::Int8 => self.arena_piece(PieceKind::Numeric, |a| {
                    jsonb::numeric_from_i64(datum.value() as i64, a)
                }),
                Kind::Numeric => {
                    let numeric = detoast_full(datum.cast_mut_ptr()) as pg_sys::Numeric;
                    if pg_sys::numeric_is_nan(numeric) || pg_sys::numeric_is_inf(numeric) {
                        // jsonb has no NaN or Infinity: to_jsonb writes them as strings.
                        let text = pgrx::fcinfo::direct_function_call::<&CStr>(
                            pg_sys::numeric_out,
                            &[Some(pg_sys::Datum::from(numeric))],
                        )
                        .expect("numeric_out");
                        let bytes = text.to_bytes();
                        self.arena_piece(PieceKind::String, |a| a.extend_from_slice(bytes))
                    } else {
                        let size = varsize_any(numeric.cast());
                        Piece::Borrowed(numeric as *const u8, size, PieceKind::Numeric)
                    }
                }
                Kind::Float4 | Kind::Float8 => {
                    // to_jsonb prints floats with float4out/float8out: the shortest
                    // text that reads back the same (PostgreSQL's own Ryu code, called
                    // directly), or %g with extra_float_digits when that is <= 0.
                    let mut buffer = [0 as std::ffi::c_char; 32];
                    if pg_sys::extra_float_digits > 0 {
                        if column.kind == Kind::Float4 {
                            float_to_shortest_decimal_buf(
                                f32::from_bits(datum.value() as u32),
                                buffer.as_mut_ptr(),
                            );
                        } else {
                            double_to_shortest_decimal_buf(
                                f64::from_bits(datum.value() as u64),
                                buffer.as_mut_ptr(),
                            );
                        }
                    }
                    let text = if buffer[0] != 0 {
                        CStr::from_ptr(buffer.as_ptr())
                    } else {
                        CStr::from_ptr(pg_sys::OutputFunctionCall(column.function, datum))
                    };
                    let text = text.to_str().unwrap_or("NaN");
                    let start = self.arena.len();
                    let piece = self.arena_piece(PieceKind::Numeric, |a| {
                        jsonb::numeric_from_decimal(text, a);
                    });
                    match piece {
                        // NaN, Infinity and -Infinity are no JSON numbers: strings, as to_jsonb writes them.
                        Piece::Arena(_, 0, _) => {
                            self.arena.truncate(start);
                            self.arena_piece(PieceKind::String, |a| {
                                a.extend_from_slice(text.as_bytes())
                            })
                        }
                        other => other,
                    }
                }
                Kind::Text => {
                    let text = detoast_packed(datum.cast_mut_ptr());
                    let (ptr, len) = vardata_any(text);
                    Piece::Borrowed(ptr, len, PieceKind::String)
                }
                Kind::Name => {
                    let name = CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>());
                    Piece::Borrowed(
                        name.as_ptr().cast(),
                        name.to_bytes().len(),
                        PieceKind::String,
                    )
                }
                Kind::Uuid => {
                    let bytes = &*(datum.cast_mut_ptr::<[u8; 16]>());
                    self.arena_piece(PieceKind::String, |a| jsonb::uuid_text(bytes, a))
                }
                Kind::Date | Kind::Timestamp | Kind::TimestampTz => {
                    // Fast path: written here when the zone's offset is fixed.
                    // (infinity and far-away years overflow or fall outside 1..9999: PostgreSQL formats those)
                    let (micros, offset, with_time) = match column.kind {
                        Kind::Date => {
                            let days = datum.value() as i32 as i64;
                            (
                                days.checked_mul(86_400_000_000)
                                    .and_then(|m| m.checked_add(POSTGRES_EPOCH_UNIX_MICROS)),
                                None,
                                false,
                            )
                        }
                        Kind::Timestamp => (
                            (datum.value() as i64).checked_add(POSTGRES_EPOCH_UNIX_MICROS),
                            None,
                            true,
                        ),
                        _ => (
                            (datum.value() as i64).checked_add(POSTGRES_EPOCH_UNIX_MICROS),
                            self.zone_offset,
                            true,
                        ),
                    };
                    let fast_ok = column.kind != Kind::TimestampTz || offset.is_some();
                    let Some(micros) = micros else {
                        return self.postgres_datetime(column, datum);
                    };
                    let start = self.arena.len();
                    if fast_ok
                        && jsonb::datetime_text(micros, offset, with_time, &mut self.arena)
                            .is_some()
                    {
                        return Piece::Arena(start, self.arena.len() - start, PieceKind::String);
                    }
                    self.arena.truncate(start);
                    self.postgres_datetime(column, datum)
                }
                Kind::Jsonb => jsonb_piece(detoast_full(datum.cast_mut_ptr())),
                Kind::ToJsonb => {
                    let result =
                        pg_sys::FunctionCall1Coll(column.function, column.collation, datum);
                    jsonb_piece(detoast_full(result.cast_mut_ptr()))
                }
                Kind::Output => {
                    let text = CStr::from_ptr(pg_sys::OutputFunctionCall(column.function, datum));
                    Piece::Borrowed(
                        text.as_ptr().cast(),
                        text.to_bytes().len(),
                        PieceKind::String,
                    )
                }
            }
        }
    }
}

impl ObjectBuilder {
    /// A date or timestamp as PostgreSQL's to_jsonb formats it.
    unsafe fn postgres_datetime(&mut self, column: &Column, datum: pg_sys::Datum) -> Piece {
        let type_oid = match column.kind {
            Kind::Date => pg_sys::DATEOID,
            Kind::Timestamp => pg_sys::TIMESTAMPOID,
            _ => pg_sys::TIMESTAMPTZOID,
        };
        let mut buffer = [0 as std::ffi::c_char; 128];
        // SAFETY: JsonEncodeDateTime writes at most MAXDATELEN + 1 bytes into buffer.
        let text = unsafe {
            CStr::from_ptr(pg_sys::JsonEncodeDateTime(
                buffer.as_mut_ptr(),
                datum,
                type_oid,
                std::ptr::null(),
            ))
        };
        let bytes = text.to_bytes();
        self.arena_piece(PieceKind::String, |a| a.extend_from_slice(bytes))
    }
}

fn typed(kind: PieceKind, bytes: &[u8]) -> Value<'_> {
    match kind {
        PieceKind::String => Value::String(bytes),
        PieceKind::Numeric => Value::Numeric(bytes),
        PieceKind::Container => Value::Container(bytes),
    }
}

/// A jsonb value to embed: a scalar root becomes that scalar, anything else
/// its container.
unsafe fn jsonb_piece(jsonb: *mut pg_sys::varlena) -> Piece {
    unsafe {
        let size = varsize_any(jsonb);
        let container = std::slice::from_raw_parts((jsonb as *const u8).add(4), size - 4);
        match jsonb::root_scalar(container) {
            Some(value) => scalar_piece(value),
            None => Piece::Borrowed(container.as_ptr(), container.len(), PieceKind::Container),
        }
    }
}

// PostgreSQL's shortest-float printers (src/common/d2s.c, f2s.c): pure
// functions that never raise an error, exported by the server binary.
unsafe extern "C" {
    fn double_to_shortest_decimal_buf(value: f64, result: *mut std::ffi::c_char)
        -> std::ffi::c_int;
    fn float_to_shortest_decimal_buf(value: f32, result: *mut std::ffi::c_char) -> std::ffi::c_int;
}

/// Whether two values of a column are the same bytes (after detoasting),
/// PostgreSQL's datum_image_eq: what "changed" means for changed_cols.
pub unsafe fn same_image(column: &Column, a: pg_sys::Datum, b: pg_sys::Datum) -> bool {
    unsafe {
        if column.typbyval {
            return a.value() == b.value();
        }
        match column.typlen {
            -1 => {
                if a.value() == b.value() {
                    return true;
                }
                let (a, b) = (
                    detoast_packed(a.cast_mut_ptr()),
                    detoast_packed(b.cast_mut_ptr()),
                );
                let (a_ptr, a_len) = vardata_any(a);
                let (b_ptr, b_len) = vardata_any(b);
                a_len == b_len
                    && std::slice::from_raw_parts(a_ptr, a_len)
                        == std::slice::from_raw_parts(b_ptr, b_len)
            }
            -2 => CStr::from_ptr(a.cast_mut_ptr()) == CStr::from_ptr(b.cast_mut_ptr()),
            length => {
                let length = length as usize;
                std::slice::from_raw_parts(a.cast_mut_ptr::<u8>(), length)
                    == std::slice::from_raw_parts(b.cast_mut_ptr::<u8>(), length)
            }
        }
    }
}
