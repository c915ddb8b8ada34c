//! "Now" for every time-based decision the extension makes (which partition is
//! current, which period a quota is in, what has expired).
//!
//! It is the transaction's start time, like `now()`, unless the superuser-only
//! setting `tenancy.now_override` holds a timestamp: tests and rehearsals use
//! it to put the clock where they need it (a month end, a DST change) instead
//! of sleeping or depending on the day they run.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

/// Microseconds between 1970-01-01 (Unix epoch) and 2000-01-01 (PostgreSQL's).
pub const POSTGRES_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

static NOW_OVERRIDE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init() {
    GucRegistry::define_string_guc(
        c"tenancy.now_override",
        c"Timestamp pg_tenancy uses as \"now\" instead of the transaction start (testing only).",
        c"Empty (the default) means the real transaction start time. Partition premaking and \
          retention, quota periods and retention jobs all read this clock.",
        &NOW_OVERRIDE,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// A timestamptz datum for microseconds since the Unix epoch.
pub fn timestamptz(micros: i64) -> pgrx::datum::TimestampWithTimeZone {
    pgrx::datum::TimestampWithTimeZone::try_from(micros - POSTGRES_EPOCH_OFFSET_MICROS)
        .expect("timestamp within PostgreSQL's range")
}

/// Microseconds since the Unix epoch of a timestamptz.
pub fn micros_of(value: pgrx::datum::TimestampWithTimeZone) -> i64 {
    let postgres_micros: i64 = value.into();
    postgres_micros + POSTGRES_EPOCH_OFFSET_MICROS
}

/// The current time in microseconds since the Unix epoch, UTC.
pub fn now_micros() -> i64 {
    match NOW_OVERRIDE
        .get()
        .filter(|value| !value.as_bytes().is_empty())
    {
        Some(text) => {
            // timestamptz_in raises a clean ERROR for text it cannot read.
            let value: pgrx::datum::TimestampWithTimeZone = unsafe {
                pgrx::fcinfo::direct_function_call(
                    pg_sys::timestamptz_in,
                    &[
                        text.as_c_str().into_datum(),
                        pg_sys::InvalidOid.into_datum(),
                        (-1i32).into_datum(),
                    ],
                )
            }
            .expect("timestamptz_in returned NULL");
            micros_of(value)
        }
        None => {
            // SAFETY: reads the current transaction's start timestamp.
            let postgres_micros = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
            postgres_micros + POSTGRES_EPOCH_OFFSET_MICROS
        }
    }
}
