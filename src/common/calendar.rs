//! Calendar arithmetic in UTC, with no server in sight: the proleptic
//! Gregorian calendar on day numbers, aligned windows (fixed lengths, whole
//! months), ISO timestamps. Partition bounds, quota periods, masking's
//! generalize rule and the audit log's JSON dates all build on it.
//!
//! Time values are microseconds since 1970-01-01 00:00:00 UTC unless a
//! function says otherwise.

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A half-open window of time (or of integers): `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

impl Range {
    pub fn overlaps(&self, other: &Range) -> bool {
        self.from < other.to && other.from < self.to
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i64;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// Splits micros into (date, seconds of day).
pub fn split(value: i64) -> ((i64, u32, u32), i64) {
    let days = value.div_euclid(MICROS_PER_DAY);
    let seconds = value.rem_euclid(MICROS_PER_DAY) / MICROS_PER_SECOND;
    (civil_from_days(days), seconds)
}

/// Micros of the first instant of month number `month_index` (year * 12 + month - 1).
pub fn month_start(month_index: i64) -> i64 {
    let year = month_index.div_euclid(12);
    let month = (month_index.rem_euclid(12) + 1) as u32;
    days_from_civil(year, month, 1) * MICROS_PER_DAY
}

/// The month number (year * 12 + month - 1) of the month holding `value`.
pub fn month_index(value: i64) -> i64 {
    let (year, month, _) = civil_from_days(value.div_euclid(MICROS_PER_DAY));
    year * 12 + (month as i64 - 1)
}

/// The window of `count` whole months, aligned on month numbers divisible by
/// `count` (so 3 months are calendar quarters), holding `value`.
pub fn months_window(count: i64, value: i64) -> Range {
    let bucket = month_index(value).div_euclid(count);
    Range {
        from: month_start(bucket * count),
        to: month_start((bucket + 1) * count),
    }
}

/// The window of `length` micros, aligned on `anchor` plus a multiple of the
/// length, holding `value`. Windows at the ends of 64 bits are cut there.
pub fn fixed_window(length: i64, anchor: i64, value: i64) -> Range {
    let bucket = (value - anchor).div_euclid(length);
    let from = bucket.saturating_mul(length).saturating_add(anchor);
    Range {
        from,
        to: from.saturating_add(length),
    }
}

/// `2026-03-01 00:00:00 UTC`: how messages show an instant, the same whatever
/// the session's TimeZone.
pub fn utc_text(unix_micros: i64) -> String {
    let ((year, month, day), seconds) = split(unix_micros);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Reads `YYYY-MM-DD[ HH:MM:SS[.ffffff]][+00[:00]]` (UTC only) into micros.
pub fn parse_iso_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text
        .strip_suffix("+00:00")
        .or_else(|| text.strip_suffix("+00"))
        .unwrap_or(text);
    let (date, time) = match text.split_once(' ') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * MICROS_PER_DAY;
    if let Some(time) = time {
        let (clock, fraction) = match time.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (time, None),
        };
        let mut fields = clock.splitn(3, ':');
        let hour: i64 = fields.next()?.parse().ok()?;
        let minute: i64 = fields.next()?.parse().ok()?;
        let second: i64 = fields.next()?.parse().ok()?;
        if hour > 24 || minute > 59 || second > 60 {
            return None;
        }
        micros += ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND;
        if let Some(fraction) = fraction {
            if fraction.is_empty()
                || fraction.len() > 6
                || !fraction.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            micros += fraction.parse::<i64>().ok()? * 10i64.pow(6 - fraction.len() as u32);
        }
    }
    Some(micros)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_iso_timestamp(text).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_000, 20_514, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn windows_align_on_the_calendar() {
        let quarter = months_window(3, at("2026-05-17 10:00:00"));
        assert_eq!(
            quarter,
            Range {
                from: at("2026-04-01"),
                to: at("2026-07-01")
            }
        );
        let month = months_window(1, at("2024-02-29 23:59:59"));
        assert_eq!(
            month,
            Range {
                from: at("2024-02-01"),
                to: at("2024-03-01")
            }
        );
        let minute = fixed_window(60 * MICROS_PER_SECOND, 0, at("2026-11-22 10:30:59"));
        assert_eq!(minute.from, at("2026-11-22 10:30:00"));
        assert_eq!(minute.to, at("2026-11-22 10:31:00"));
        let last = fixed_window(MICROS_PER_DAY, 0, i64::MAX);
        assert_eq!(last.to, i64::MAX);
    }

    #[test]
    fn utc_text_ignores_the_time_zone() {
        assert_eq!(
            utc_text(at("2026-03-01 00:00:00")),
            "2026-03-01 00:00:00 UTC"
        );
        assert_eq!(utc_text(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(at("1970-01-01"), 0);
        assert_eq!(at("1970-01-02 00:00:01.5+00"), MICROS_PER_DAY + 1_500_000);
        assert_eq!(parse_iso_timestamp("2026-13-01"), None);
        assert_eq!(parse_iso_timestamp("2026-01-01 10:00:00.1234567"), None);
    }
}
