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

/// About 98,000 years from 1970 in microseconds: the farthest `now_override` goes.
const LATEST_OVERRIDE_MICROS: i64 = 98_000 * 365 * 86_400 * 1_000_000;

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

/// Microseconds since the Unix epoch of a timestamptz. The last ~30 years
/// PostgreSQL can represent (past 292277 AD) do not fit: they saturate, as
/// do the infinities.
pub fn micros_of(value: pgrx::datum::TimestampWithTimeZone) -> i64 {
    let postgres_micros: i64 = value.into();
    postgres_micros.saturating_add(POSTGRES_EPOCH_OFFSET_MICROS)
}

/// The current time in microseconds since the Unix epoch, UTC.
pub fn now_micros() -> i64 {
    match NOW_OVERRIDE
        .get()
        .filter(|value| !value.as_bytes().is_empty())
    {
        Some(text) => {
            // SAFETY: timestamptz_in gets a C string and the usual typmod
            // arguments; it raises a clean ERROR for text it cannot read.
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
            let micros = micros_of(value);
            // Periods, partition bounds and cut-offs are computed from "now"
            // with room to spare; an override near the ends of time (or
            // infinity) would leave none.
            if !(-LATEST_OVERRIDE_MICROS..LATEST_OVERRIDE_MICROS).contains(&micros) {
                crate::common::error::datetime_out_of_range(format!(
                    "tenancy.now_override \"{}\" is too far from today for pg_tenancy's clock",
                    text.to_string_lossy()
                ))
                .set_hint("Use a time between 100000 BC and 100000 AD (tests and rehearsals need no more).")
                .report(PgLogLevel::ERROR);
            }
            micros
        }
        None => {
            // SAFETY: reads the current transaction's start timestamp.
            let postgres_micros = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
            postgres_micros + POSTGRES_EPOCH_OFFSET_MICROS
        }
    }
}
