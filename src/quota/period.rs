//! Quota periods, with no server in sight: which calendar-aligned window (in
//! UTC) a moment falls in. A new period simply has a different start, so usage
//! "resets" by comparison, never by a job.

use crate::common::calendar::{fixed_window, months_window, Range, MICROS_PER_DAY};

/// How often a resource's usage starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Never: a running total (rows, storage).
    None,
    Minute,
    Hour,
    Day,
    /// Calendar months, starting on the 1st at 00:00 UTC.
    Month,
}

/// The stored `period_start` of a resource with period `none` (PostgreSQL's
/// `-infinity` as a timestamptz datum).
pub const NO_PERIOD_START: i64 = i64::MIN;

/// Every period name, as `define_resource` accepts it.
pub const NAMES: [&str; 5] = ["none", "minute", "hour", "day", "month"];

impl Period {
    pub fn parse(name: &str) -> Option<Period> {
        Some(match name {
            "none" => Period::None,
            "minute" => Period::Minute,
            "hour" => Period::Hour,
            "day" => Period::Day,
            "month" => Period::Month,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::None => "none",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The window holding `now` (microseconds since the Unix epoch), or None
    /// for a resource that never resets. Calendar-aligned in UTC.
    pub fn window(self, now: i64) -> Option<Range> {
        Some(match self {
            Period::None => return None,
            Period::Minute => fixed_window(60_000_000, 0, now),
            Period::Hour => fixed_window(3_600_000_000, 0, now),
            Period::Day => fixed_window(MICROS_PER_DAY, 0, now),
            Period::Month => months_window(1, now),
        })
    }

    /// The window's start as `quota_usage.period_start` stores it
    /// (PostgreSQL timestamptz microseconds; `-infinity` for `none`).
    pub fn stored_start(self, now: i64) -> i64 {
        match self.window(now) {
            Some(window) => window.from - crate::common::clock::POSTGRES_EPOCH_OFFSET_MICROS,
            None => NO_PERIOD_START,
        }
    }

    /// "this minute", "this month", "in total": how DETAIL messages name the window.
    pub fn phrase(self) -> &'static str {
        match self {
            Period::None => "in total",
            Period::Minute => "this minute",
            Period::Hour => "this hour",
            Period::Day => "today (UTC)",
            Period::Month => "this month (UTC)",
        }
    }
}

/// `2026-03-01 00:00:00 UTC`: how messages show a period boundary, the same
/// whatever the session's TimeZone.
pub use crate::common::calendar::utc_text;

#[cfg(test)]
mod unit_tests {
    use super::*;
    use crate::common::calendar::days_from_civil;

    fn at(year: i64, month: u32, day: u32, hour: i64, minute: i64, second: i64) -> i64 {
        days_from_civil(year, month, day) * MICROS_PER_DAY
            + ((hour * 60 + minute) * 60 + second) * 1_000_000
    }

    #[test]
    fn names_round_trip() {
        for name in NAMES {
            assert_eq!(Period::parse(name).unwrap().name(), name);
        }
        assert_eq!(Period::parse("week"), None);
        assert_eq!(Period::parse("Month"), None);
    }

    #[test]
    fn windows_are_calendar_aligned_in_utc() {
        let now = at(2026, 2, 28, 23, 59, 59) + 999_999;
        assert_eq!(
            Period::Minute.window(now).unwrap().from,
            at(2026, 2, 28, 23, 59, 0)
        );
        assert_eq!(
            Period::Minute.window(now).unwrap().to,
            at(2026, 3, 1, 0, 0, 0)
        );
        assert_eq!(
            Period::Hour.window(now).unwrap().from,
            at(2026, 2, 28, 23, 0, 0)
        );
        assert_eq!(
            Period::Day.window(now).unwrap().from,
            at(2026, 2, 28, 0, 0, 0)
        );
        let month = Period::Month.window(now).unwrap();
        assert_eq!(
            (month.from, month.to),
            (at(2026, 2, 1, 0, 0, 0), at(2026, 3, 1, 0, 0, 0))
        );
        // One microsecond later everything rolls over.
        let next = now + 1;
        assert_eq!(
            Period::Month.window(next).unwrap().from,
            at(2026, 3, 1, 0, 0, 0)
        );
        assert_eq!(Period::Minute.window(next).unwrap().from, next);
    }

    #[test]
    fn boundaries_print_in_utc() {
        assert_eq!(utc_text(at(2026, 3, 1, 0, 0, 0)), "2026-03-01 00:00:00 UTC");
        assert_eq!(
            utc_text(at(1969, 12, 31, 23, 59, 5)),
            "1969-12-31 23:59:05 UTC"
        );
    }

    #[test]
    fn none_never_rolls_over() {
        assert_eq!(Period::None.window(0), None);
        assert_eq!(Period::None.stored_start(0), NO_PERIOD_START);
        assert_eq!(
            Period::None.stored_start(at(2099, 1, 1, 0, 0, 0)),
            NO_PERIOD_START
        );
    }

    #[test]
    fn leap_years_and_times_before_1970() {
        assert_eq!(
            Period::Month.window(at(2028, 2, 29, 12, 0, 0)).unwrap().to,
            at(2028, 3, 1, 0, 0, 0)
        );
        assert_eq!(
            Period::Day.window(at(1969, 12, 31, 13, 0, 0)).unwrap().from,
            at(1969, 12, 31, 0, 0, 0)
        );
    }
}
