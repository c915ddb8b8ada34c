//! The masking functions as SQL sees them: IMMUTABLE (pseudonymize: STABLE),
//! STRICT (NULL in, NULL out), PARALLEL SAFE, and LEAKPROOF where they cannot
//! fail on any value (sql/mask_api.sql).
//!
//! The text functions are plain version-1 C functions (declared in
//! sql/mask_api.sql): a masked view calls them once per row and column, and
//! reading the argument in place and writing the result straight into its
//! varlena, through one reused buffer, costs a fraction of a general
//! argument and return conversion.

use super::functions::{self, REDACTED};
use super::key;
use super::rules::Precision;
use crate::common::error::{self, Result};
use crate::common::varlena::{detoast_packed, vardata_any};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};

/// The result being built, reused by every call (no allocation per row).
/// A plain static, not a thread-local behind a RefCell: a backend is one
/// thread, and an ERROR raised by palloc while it is in use must leave no
/// borrow flag behind.
static mut OUT: String = String::new();

/// OUT keeps its capacity between calls, but not beyond this: one huge value
/// must not pin its size in the backend's heap for the rest of the session.
const OUT_KEPT_CAPACITY: usize = 64 * 1024;

/// The most bytes a text value can hold: PostgreSQL's MaxAllocSize
/// (0x3fffffff, the same in every supported major) less the varlena header.
pub const MAX_TEXT_BYTES: usize = 0x3fff_ffff - pg_sys::VARHDRSZ;

// PostgreSQL's allocator, called without pgrx's guard: each guarded call
// saves the signal mask (a sigsetjmp) per row. palloc raises an ERROR only
// when memory runs out; that longjmp skips these frames, which hold nothing
// that needs dropping (OUT is a plain static).
unsafe extern "C-unwind" {
    #[link_name = "palloc"]
    fn palloc_unguarded(size: usize) -> *mut std::ffi::c_void;
}

/// Whether text in this database is UTF-8 (1), something else (2), not known yet (0).
static UTF8_DATABASE: AtomicU8 = AtomicU8::new(0);

#[inline]
fn database_is_utf8() -> bool {
    match UTF8_DATABASE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // SAFETY: reads the database encoding, fixed for the backend's life.
            let utf8 = unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
            UTF8_DATABASE.store(if utf8 { 1 } else { 2 }, Ordering::Relaxed);
            utf8
        }
    }
}

/// Argument `index` of a V1 call, as bytes read in place.
///
/// # Safety
/// The argument must be a non-NULL text datum (the functions are STRICT).
#[inline]
unsafe fn text_argument<'a>(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> &'a [u8] {
    // SAFETY: argument `index` exists and is a non-NULL text (the
    // function is STRICT and declared with it).
    unsafe {
        let datum = (*fcinfo).args.as_slice(index + 1)[index].value;
        let (ptr, len) = vardata_any(detoast_packed(datum.cast_mut_ptr()));
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Argument `index` as an int4.
unsafe fn int_argument(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> i32 {
    // SAFETY: argument `index` exists and is a non-NULL int4.
    unsafe { (*fcinfo).args.as_slice(index + 1)[index].value.value() as i32 }
}

/// A new text varlena of `size` data bytes in the current memory context,
/// and its data area to fill. `size` must be at most [`MAX_TEXT_BYTES`], so
/// palloc can fail only when memory runs out.
fn new_text(size: usize) -> (pg_sys::Datum, &'static mut [u8]) {
    debug_assert!(size <= MAX_TEXT_BYTES);
    let header = pg_sys::VARHDRSZ;
    // SAFETY: a fresh palloc'd varlena of exactly the size it declares; the
    // data slice covers its payload and lives as long as the memory context.
    unsafe {
        let text = palloc_unguarded(header + size).cast::<u8>();
        pgrx::set_varsize_4b(text.cast(), (header + size) as i32);
        let data = std::slice::from_raw_parts_mut(text.add(header), size);
        (pg_sys::Datum::from(text), data)
    }
}

/// A text datum holding `bytes`, in the current memory context.
fn text_datum(bytes: &[u8]) -> pg_sys::Datum {
    if bytes.len() > MAX_TEXT_BYTES {
        too_long(bytes.len());
    }
    let (datum, data) = new_text(bytes.len());
    data.copy_from_slice(bytes);
    datum
}

/// 54000, as PostgreSQL's own repeat() raises for a result it cannot hold.
fn too_long(size: usize) -> ! {
    error::program_limit_exceeded(format!(
        "the masked value would be {size} bytes, more than a text value can hold ({MAX_TEXT_BYTES})"
    ))
    .set_hint("Use a shorter fill.")
    .report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Runs a masking function on text bytes. PostgreSQL guarantees text in a
/// UTF8 database is valid UTF-8; other encodings (SQL_ASCII, LATIN1) are
/// masked one byte per character, which never splits a character of a
/// single-byte encoding.
fn mask_text(input: &[u8], mask: impl Fn(&str, &mut String)) -> pg_sys::Datum {
    // SAFETY: the only reference to OUT while this call runs (no masking
    // function calls another).
    // (A reference to a static mut is only made through a raw pointer.)
    #[allow(clippy::deref_addrof)]
    let out = unsafe { &mut *(&raw mut OUT) };
    out.clear();
    let datum = if database_is_utf8() {
        // SAFETY: validated by PostgreSQL on input (see above).
        mask(unsafe { std::str::from_utf8_unchecked(input) }, out);
        text_datum(out.as_bytes())
    } else {
        let text: String = input.iter().map(|b| char::from(*b)).collect();
        mask(&text, out);
        let bytes: Vec<u8> = out.chars().map(|c| c as u32 as u8).collect();
        text_datum(&bytes)
    };
    if out.capacity() > OUT_KEPT_CAPACITY {
        *out = String::new();
    }
    datum
}

/// Defines a V1 C function `name` taking one text argument; the SQL
/// declaration is in sql/mask_api.sql.
macro_rules! text_function {
    ($name:ident, $finfo:ident, $mask:expr) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[pg_guard]
        pub unsafe extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            // SAFETY: called by the function manager with one non-NULL text
            // argument (STRICT, declared in SQL).
            mask_text(unsafe { text_argument(fcinfo, 0) }, $mask)
        }
    };
}

text_function!(
    tenancy_mask_email,
    pg_finfo_tenancy_mask_email,
    functions::mask_email
);
text_function!(
    tenancy_mask_phone,
    pg_finfo_tenancy_mask_phone,
    functions::mask_digits
);
text_function!(
    tenancy_mask_card,
    pg_finfo_tenancy_mask_card,
    functions::mask_digits
);
text_function!(
    tenancy_mask_name,
    pg_finfo_tenancy_mask_name,
    functions::mask_name
);
text_function!(
    tenancy_pseudonymize,
    pg_finfo_tenancy_pseudonymize,
    |value: &str, out: &mut String| {
        key::with_hmac(|hmac| key::token(hmac, value.as_bytes(), out))
    }
);

/// `mask_partial(value, keep_start, keep_end, fill)`.
#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_tenancy_mask_partial() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn tenancy_mask_partial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: four non-NULL arguments (text, int4, int4, text), STRICT.
    let (value, keep_start, keep_end, fill) = unsafe {
        (
            text_argument(fcinfo, 0),
            int_argument(fcinfo, 1),
            int_argument(fcinfo, 2),
            text_argument(fcinfo, 3),
        )
    };
    mask_partial_datum(value, keep_start, keep_end, fill, database_is_utf8())
}

/// `mask_partial` written straight into its result: the size is known before
/// anything is allocated, so a fill that would make the result larger than a
/// text value can be (value length times fill length) is a clean 54000, and
/// no copy of a large result ever sits in the Rust heap. Characters are UTF-8
/// sequences in a UTF-8 database and bytes in a single-byte encoding; `fill`
/// is copied as it is, already in the database encoding.
fn mask_partial_datum(
    value: &[u8],
    keep_start: i32,
    keep_end: i32,
    fill: &[u8],
    utf8: bool,
) -> pg_sys::Datum {
    // Byte offset of every character start (only the two cut points matter).
    let char_offset = |nth: usize| -> usize {
        if utf8 {
            // SAFETY: text in a UTF-8 database is valid UTF-8 (PostgreSQL checks input).
            let text = unsafe { std::str::from_utf8_unchecked(value) };
            text.char_indices()
                .nth(nth)
                .map_or(value.len(), |(offset, _)| offset)
        } else {
            nth
        }
    };
    let units = if utf8 {
        // SAFETY: as above.
        unsafe { std::str::from_utf8_unchecked(value) }
            .chars()
            .count()
    } else {
        value.len()
    };
    let kept = functions::kept_counts(units, keep_start, keep_end);
    let head = char_offset(kept.0);
    let tail_start = char_offset(units - kept.1);
    let tail = value.len() - tail_start;
    let (repeats, size) = functions::partial_size(units, kept, head, tail, fill.len())
        .filter(|(_, size)| *size <= MAX_TEXT_BYTES)
        .unwrap_or_else(|| {
            let repeats = units - kept.0 - kept.1;
            too_long(
                repeats
                    .saturating_mul(fill.len())
                    .saturating_add(head + tail),
            )
        });
    let (datum, data) = new_text(size);
    data[..head].copy_from_slice(&value[..head]);
    let mut at = head;
    for _ in 0..repeats {
        data[at..at + fill.len()].copy_from_slice(fill);
        at += fill.len();
    }
    data[at..].copy_from_slice(&value[tail_start..]);
    datum
}

/// The address's network: IPv4 keeps /24, IPv6 keeps /48, host bits zero.
#[pg_extern(immutable, strict, parallel_safe)]
fn mask_ip(value: pgrx::Inet) -> Option<pgrx::Inet> {
    functions::mask_ip(&value).map(pgrx::Inet)
}

/// `'[REDACTED]'`, whatever the value.
#[pg_extern(immutable, strict, parallel_safe)]
fn redact(value: &str) -> &'static str {
    let _ = value;
    REDACTED
}

/// The earliest timestamp PostgreSQL represents, 4714-11-24 00:00 BC UTC, in
/// its microseconds since 2000-01-01 (MIN_TIMESTAMP in datatype/timestamp.h).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;

/// The time truncated to its `day`, `month` or `year`, in UTC (so the result
/// does not depend on the session's TimeZone).
#[pg_extern(immutable, strict, parallel_safe)]
fn generalize_date(
    value: pgrx::datum::TimestampWithTimeZone,
    precision: &str,
) -> Result<pgrx::datum::TimestampWithTimeZone> {
    let precision = Precision::parse(precision).ok_or_else(|| {
        error::invalid_parameter(format!("unknown precision \"{precision}\""))
            .set_hint("Use day, month or year.")
    })?;
    let stored: i64 = value.into();
    if stored == i64::MIN || stored == i64::MAX {
        return Ok(value);
    }
    // The start of a year or month in 4714 BC can lie before the first instant
    // PostgreSQL represents (4714-11-24 BC): the result is then that instant,
    // still in the same year, rather than an error in the middle of a scan.
    let truncated = functions::generalize_postgres(stored, precision).max(MIN_TIMESTAMP);
    Ok(pgrx::datum::TimestampWithTimeZone::try_from(truncated).expect("within range"))
}
