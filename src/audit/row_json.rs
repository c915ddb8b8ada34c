//! A row's columns as one jsonb object (`old_row`, `new_row`, `record_key`),
//! built straight from the datums: fast paths for the common types, to_jsonb
//! or the output function for the rest, PostgreSQL's own float printers.

use super::chunks::Chunks;
use super::jsonb::{self, Value};
use super::plan::{Column, Kind};
use crate::common::varlena::{detoast_full, detoast_packed, vardata_any, varsize_any};
use pgrx::pg_sys;
use std::ffi::CStr;

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
        // SAFETY: `values` and `nulls` are the deformed row of `columns` (the
        // caller's contract), alive until the next fetch.
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
        // SAFETY: as for `build`: the row's datums are alive until the next fetch.
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
                // SAFETY: the column is not NULL, so its datum is a live value of its type.
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
                Piece::Borrowed(ptr, len, kind) => {
                    // SAFETY: borrowed pieces point into this row's datums, alive until the next fetch.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
                    typed(kind, bytes)
                }
                Piece::Arena(start, len, kind) => typed(kind, &arena[start..start + len]),
            },
        );
        self.selected = selected;
        // SAFETY: the chunk allocator hands out `out.len()` writable bytes.
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
        // SAFETY: `datum` is a non-NULL value of `column`'s type (the caller's contract).
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
    // SAFETY: `jsonb` is a detoasted jsonb with a 4-byte header.
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
