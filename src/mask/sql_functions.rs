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
use crate::common::clock::POSTGRES_EPOCH_OFFSET_MICROS;
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
    unsafe {
        let datum = (*fcinfo).args.as_slice(index + 1)[index].value;
        let (ptr, len) = vardata_any(detoast_packed(datum.cast_mut_ptr()));
        std::slice::from_raw_parts(ptr, len)
    }
}

/// Argument `index` as an int4.
unsafe fn int_argument(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> i32 {
    unsafe { (*fcinfo).args.as_slice(index + 1)[index].value.value() as i32 }
}

/// A text datum holding `bytes`, in the current memory context.
fn text_datum(bytes: &[u8]) -> pg_sys::Datum {
    let header = pg_sys::VARHDRSZ;
    // SAFETY: a fresh palloc'd varlena of exactly the size it declares.
    unsafe {
        let text = palloc_unguarded(header + bytes.len()).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), text.add(header), bytes.len());
        pgrx::set_varsize_4b(text.cast(), (header + bytes.len()) as i32);
        pg_sys::Datum::from(text)
    }
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
    if database_is_utf8() {
        // SAFETY: validated by PostgreSQL on input (see above).
        mask(unsafe { std::str::from_utf8_unchecked(input) }, out);
        return text_datum(out.as_bytes());
    }
    let text: String = input.iter().map(|b| char::from(*b)).collect();
    mask(&text, out);
    let bytes: Vec<u8> = out.chars().map(|c| c as u32 as u8).collect();
    text_datum(&bytes)
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
    unsafe {
        let keep_start = int_argument(fcinfo, 1);
        let keep_end = int_argument(fcinfo, 2);
        let fill = String::from_utf8_lossy(text_argument(fcinfo, 3)).into_owned();
        mask_text(text_argument(fcinfo, 0), |value, out| {
            functions::mask_partial(value, keep_start, keep_end, &fill, out)
        })
    }
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
    let truncated = functions::generalize(stored + POSTGRES_EPOCH_OFFSET_MICROS, precision)
        - POSTGRES_EPOCH_OFFSET_MICROS;
    Ok(pgrx::datum::TimestampWithTimeZone::try_from(truncated).expect("within range"))
}
