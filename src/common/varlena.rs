//! Reading varlena values (text, numeric, jsonb...) in place on hot paths:
//! the header checks PostgreSQL does with inline C macros, done inline here
//! too, so the common case of an inline value costs no guarded FFI call.

use pgrx::pg_sys;

/// MemoryContextSwitchTo, without a guarded FFI call: it is one assignment
/// (an inline function in C), and the audit loop does it twice per row.
pub fn switch_memory(context: pg_sys::MemoryContext) -> pg_sys::MemoryContext {
    // SAFETY: backends are single-threaded; this is exactly what the C inline does.
    unsafe {
        let old = pg_sys::CurrentMemoryContext;
        pg_sys::CurrentMemoryContext = context;
        old
    }
}

/// The first byte of a varlena's header says how it is stored (postgres.h,
/// little-endian layout): `xxxxxx00` 4-byte header, uncompressed; `xxxxxx10`
/// 4-byte header, compressed; `00000001` TOAST pointer; `xxxxxxx1` 1-byte header.
#[cfg(target_endian = "little")]
#[inline]
pub unsafe fn varlena_first_byte(value: *const pg_sys::varlena) -> u8 {
    // SAFETY: `value` points at a varlena (the caller's contract); its first byte is its header.
    unsafe { *(value as *const u8) }
}

/// The value with its data readable in place (1-byte header allowed):
/// detoasts only what is compressed or out of line, without an FFI call for
/// the common inline case.
#[inline]
pub unsafe fn detoast_packed(value: *mut pg_sys::varlena) -> *mut pg_sys::varlena {
    // SAFETY: `value` points at a varlena; only compressed or external
    // values go through pg_detoast_datum.
    unsafe {
        let first = varlena_first_byte(value);
        let external = first == 0x01;
        let compressed = first & 0x03 == 0x02;
        if external || compressed {
            pg_sys::pg_detoast_datum_packed(value)
        } else {
            value
        }
    }
}

/// The value with a plain 4-byte header (what numeric and jsonb code expects).
pub unsafe fn detoast_full(value: *mut pg_sys::varlena) -> *mut pg_sys::varlena {
    // SAFETY: `value` points at a varlena; anything but a plain 4-byte
    // header is detoasted into a new copy.
    unsafe {
        if varlena_first_byte(value) & 0x03 == 0x00 {
            value
        } else {
            pg_sys::pg_detoast_datum(value)
        }
    }
}

/// VARSIZE of a 4-byte-header varlena (detoasted, not short).
pub unsafe fn varsize_any(value: *mut pg_sys::varlena) -> usize {
    // SAFETY: `value` points at a varlena with a readable header.
    unsafe { pgrx::varsize_any(value) }
}

/// Pointer and length of a varlena's data, short header or not.
#[inline]
pub unsafe fn vardata_any(value: *mut pg_sys::varlena) -> (*const u8, usize) {
    // SAFETY: `value` points at a varlena with a readable header.
    unsafe {
        (
            pgrx::vardata_any(value) as *const u8,
            pgrx::varsize_any_exhdr(value),
        )
    }
}
