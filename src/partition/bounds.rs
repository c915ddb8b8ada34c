//! Partition bounds arithmetic, with no server in sight: steps, alignment,
//! child names, and the literals PostgreSQL prints and parses.
//!
//! Time values are microseconds since 1970-01-01 00:00:00 UTC (for `date`, the
//! day's midnight; for `timestamp without time zone`, the wall-clock value read
//! as if it were UTC). Every boundary is computed in UTC, so a daily set has
//! 24-hour children whatever the session's TimeZone and across DST changes.
//! The calendar itself is `common::calendar`.

pub use crate::common::calendar::Range;
use crate::common::calendar::{
    month_index, month_start, parse_iso_timestamp, split, MICROS_PER_DAY, MICROS_PER_SECOND,
};
/// 1970-01-05 was a Monday: weekly steps start their weeks there (ISO weeks).
const MONDAY_ANCHOR: i64 = 4 * MICROS_PER_DAY;
/// PostgreSQL's longest identifier, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The type of a set's control column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    TimestampTz,
    Timestamp,
    Date,
    /// smallint, integer or bigint: the inclusive value range of the type.
    Integer {
        min: i64,
        max: i64,
    },
}

impl ControlKind {
    pub fn is_time(self) -> bool {
        !matches!(self, ControlKind::Integer { .. })
    }
}

/// How far apart a set's boundaries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Whole calendar months (1 month, 3 months = quarters, 12 months = years).
    Months(i32),
    /// A fixed length of time (1 hour, 1 day, 7 days = ISO weeks).
    Micros(i64),
    /// An integer width.
    Width(i64),
}

/// The longest step of a time partition set: a century (longer ones would
/// carry bounds past what 64-bit microseconds hold after a few premakes).
const MAX_STEP_MONTHS: i32 = 1200;

/// The most children a set premakes ahead of the current one.
pub const MAX_PREMAKE: i32 = 1000;

/// The widest step of an integer partition set (2^53: bounds stay exact in a
/// double, and a thousand premade children fit in a bigint).
pub const MAX_WIDTH: i64 = 1 << 53;

impl Step {
    /// A time step from an interval's parts (as PostgreSQL stores an interval).
    pub fn from_interval(
        months: i32,
        days: i32,
        micros: i64,
        kind: ControlKind,
    ) -> Result<Step, String> {
        if months < 0 || days < 0 || micros < 0 {
            return Err("the interval must be positive".into());
        }
        let step = if months > 0 {
            if days != 0 || micros != 0 {
                return Err(
                    "mix of months and days/time: use whole months or a fixed length".into(),
                );
            }
            if months > MAX_STEP_MONTHS {
                return Err("the interval must be at most 100 years".into());
            }
            Step::Months(months)
        } else {
            let length = (days as i64) * MICROS_PER_DAY + micros;
            if length > MAX_STEP_MONTHS as i64 / 12 * 366 * MICROS_PER_DAY {
                return Err("the interval must be at most 100 years".into());
            }
            if length < MICROS_PER_SECOND {
                return Err("the interval must be at least 1 second".into());
            }
            if length % MICROS_PER_SECOND != 0 {
                return Err("the interval must be a whole number of seconds".into());
            }
            Step::Micros(length)
        };
        if kind == ControlKind::Date {
            if let Step::Micros(length) = step {
                if length % MICROS_PER_DAY != 0 {
                    return Err("a date column needs a whole number of days".into());
                }
            }
        }
        Ok(step)
    }

    /// An integer width from its text (`'100000'`).
    pub fn from_width(text: &str) -> Result<Step, String> {
        match text.trim().parse::<i64>() {
            Ok(width) if width > MAX_WIDTH => Err(format!("the width must be at most {MAX_WIDTH}")),
            Ok(width) if width > 0 => Ok(Step::Width(width)),
            Ok(_) => Err("the width must be a positive integer".into()),
            Err(_) => {
                Err("an integer control column needs an integer width such as '100000'".into())
            }
        }
    }

    fn anchor(self) -> i64 {
        match self {
            Step::Micros(length) if length % (7 * MICROS_PER_DAY) == 0 => MONDAY_ANCHOR,
            _ => 0,
        }
    }

    /// Number of the step-sized bucket holding `value`; buckets are aligned on
    /// calendar units (midnight UTC, the first of the month, Monday for weeks)
    /// or, for integers, on multiples of the width.
    pub fn bucket_of(self, value: i64) -> i64 {
        match self {
            Step::Micros(length) => (value - self.anchor()).div_euclid(length),
            Step::Width(width) => value.div_euclid(width),
            Step::Months(count) => month_index(value).div_euclid(count as i64),
        }
    }

    /// The range of bucket `bucket`. Ranges at the ends of the 64-bit range
    /// are cut at its ends (saturating), not wrapped: PostgreSQL refuses
    /// bounds beyond what its types hold with a clean error.
    pub fn bucket_range(self, bucket: i64) -> Range {
        match self {
            Step::Micros(length) => {
                let from = bucket.saturating_mul(length).saturating_add(self.anchor());
                Range {
                    from,
                    to: from.saturating_add(length),
                }
            }
            Step::Width(width) => Range {
                from: bucket.saturating_mul(width),
                to: bucket.saturating_add(1).saturating_mul(width),
            },
            Step::Months(count) => Range {
                from: month_start(bucket * count as i64),
                to: month_start((bucket + 1) * count as i64),
            },
        }
    }

    /// The aligned range holding `value`.
    pub fn range_of(self, value: i64) -> Range {
        self.bucket_range(self.bucket_of(value))
    }

    /// Whether the step is shorter than a day (children then carry a time in their name).
    fn is_sub_day(self) -> bool {
        matches!(self, Step::Micros(length) if length % MICROS_PER_DAY != 0)
    }

    /// SQL computing [`Step::bucket_of`] for the column expression `column`,
    /// so relocation can group a default partition's rows in one pass.
    pub fn bucket_sql(self, kind: ControlKind, column: &str) -> String {
        match self {
            Step::Width(width) => format!("floor({column}::numeric / {width})::bigint"),
            Step::Micros(length) => format!(
                "floor((extract(epoch from {value}) * 1000000 - {anchor}) / {length})::bigint",
                value = utc_wall_clock(kind, column),
                anchor = self.anchor()
            ),
            Step::Months(count) => {
                let value = utc_wall_clock(kind, column);
                format!(
                    "floor((extract(year from {value}) * 12 + extract(month from {value}) - 1) / {count})::bigint"
                )
            }
        }
    }
}

/// The column as a `timestamp` holding UTC wall-clock time.
fn utc_wall_clock(kind: ControlKind, column: &str) -> String {
    match kind {
        ControlKind::TimestampTz => format!("({column} AT TIME ZONE 'UTC')"),
        ControlKind::Timestamp => column.to_string(),
        ControlKind::Date => format!("{column}::timestamp"),
        ControlKind::Integer { .. } => column.to_string(),
    }
}

/// The SQL literal of a bound, typed by the control column's kind.
pub fn bound_literal(kind: ControlKind, value: i64) -> String {
    let ((year, month, day), seconds) = split(value);
    let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match kind {
        ControlKind::TimestampTz => {
            format!("'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}+00'")
        }
        ControlKind::Timestamp => {
            format!("'{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}'")
        }
        ControlKind::Date => format!("'{year:04}-{month:02}-{day:02}'"),
        ControlKind::Integer { .. } => value.to_string(),
    }
}

/// The human-readable form of a bound, as `show_partitions` prints it.
pub fn bound_text(kind: ControlKind, value: i64) -> String {
    bound_literal(kind, value).trim_matches('\'').to_string()
}

/// The suffix of a child's name: `p20261122`, `p20261122_1300`, `p100000`, `pm500`.
pub fn child_suffix(kind: ControlKind, step: Step, from: i64) -> String {
    if !kind.is_time() {
        return if from < 0 {
            format!("pm{}", from.unsigned_abs())
        } else {
            format!("p{from}")
        };
    }
    let ((year, month, day), seconds) = split(from);
    let date = format!("p{year:04}{month:02}{day:02}");
    if !step.is_sub_day() {
        return date;
    }
    let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match step {
        Step::Micros(length) if length % (60 * MICROS_PER_SECOND) != 0 => {
            format!("{date}_{hour:02}{minute:02}{second:02}")
        }
        _ => format!("{date}_{hour:02}{minute:02}"),
    }
}

/// `<parent>_<suffix>`, cutting the parent's name (at a character boundary)
/// so the whole fits in PostgreSQL's 63-byte identifiers.
pub fn child_name(parent: &str, suffix: &str) -> String {
    let room = MAX_IDENTIFIER_BYTES - suffix.len() - 1;
    let mut cut = parent.len().min(room);
    while !parent.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{suffix}", &parent[..cut])
}

/// Parses `pg_get_expr(relpartbound)` output (printed with TimeZone UTC and
/// DateStyle ISO). `Ok(None)` is the DEFAULT partition; an error means a
/// bound this set does not manage (MINVALUE, MAXVALUE, several columns, ...).
pub fn parse_partition_bound(kind: ControlKind, text: &str) -> Result<Option<Range>, String> {
    let text = text.trim();
    if text == "DEFAULT" {
        return Ok(None);
    }
    let rest = text
        .strip_prefix("FOR VALUES FROM (")
        .ok_or_else(|| format!("not a range bound: {text}"))?;
    let (from, rest) = rest
        .split_once(") TO (")
        .ok_or_else(|| format!("not a range bound: {text}"))?;
    let to = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("not a range bound: {text}"))?;
    Ok(Some(Range {
        from: parse_bound_value(kind, from)?,
        to: parse_bound_value(kind, to)?,
    }))
}

fn parse_bound_value(kind: ControlKind, text: &str) -> Result<i64, String> {
    if !kind.is_time() {
        // PostgreSQL prints some integer bounds quoted ('1000' for bigint).
        let bare = text.trim();
        let bare = bare
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .unwrap_or(bare);
        return bare
            .parse::<i64>()
            .map_err(|_| format!("unmanaged bound {text}"));
    }
    let quoted = text
        .trim()
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .ok_or_else(|| format!("unmanaged bound {text}"))?;
    parse_iso_timestamp(quoted).ok_or_else(|| format!("unmanaged bound {text}"))
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use crate::common::calendar::MICROS_PER_DAY;

    const TZ: ControlKind = ControlKind::TimestampTz;
    const INT: ControlKind = ControlKind::Integer {
        min: i32::MIN as i64,
        max: i32::MAX as i64,
    };

    fn at(text: &str) -> i64 {
        parse_iso_timestamp(text).unwrap()
    }

    #[test]
    fn steps_from_intervals() {
        assert_eq!(Step::from_interval(1, 0, 0, TZ), Ok(Step::Months(1)));
        assert_eq!(
            Step::from_interval(0, 1, 0, TZ),
            Ok(Step::Micros(MICROS_PER_DAY))
        );
        assert_eq!(
            Step::from_interval(0, 0, 3_600_000_000, TZ),
            Ok(Step::Micros(3_600_000_000))
        );
        assert_eq!(
            Step::from_interval(0, 0, 1_000_000, TZ),
            Ok(Step::Micros(1_000_000))
        );
        assert!(Step::from_interval(0, 0, 999_999, TZ).is_err());
        assert!(Step::from_interval(0, 0, 1_500_000, TZ).is_err());
        assert!(Step::from_interval(1, 2, 0, TZ).is_err());
        assert!(Step::from_interval(0, 0, 0, TZ).is_err());
        assert!(Step::from_interval(-1, 0, 0, TZ).is_err());
        assert!(Step::from_interval(0, 0, 3_600_000_000, ControlKind::Date).is_err());
        assert_eq!(
            Step::from_interval(0, 7, 0, ControlKind::Date),
            Ok(Step::Micros(7 * MICROS_PER_DAY))
        );
        assert_eq!(Step::from_width("100000"), Ok(Step::Width(100_000)));
        assert!(Step::from_width("0").is_err());
        assert!(Step::from_width("1 day").is_err());
    }

    #[test]
    fn daily_ranges_are_utc_midnights() {
        let day = Step::Micros(MICROS_PER_DAY);
        assert_eq!(
            day.range_of(at("2026-03-29 01:30:00")),
            Range {
                from: at("2026-03-29"),
                to: at("2026-03-30")
            }
        );
        // Before 1970 too.
        assert_eq!(
            day.range_of(at("1969-12-31 23:59:59")).from,
            at("1969-12-31")
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let week = Step::Micros(7 * MICROS_PER_DAY);
        // 2026-11-22 is a Sunday; its ISO week began Monday 2026-11-16.
        let range = week.range_of(at("2026-11-22 12:00:00"));
        assert_eq!(range.from, at("2026-11-16"));
        assert_eq!(range.to, at("2026-11-23"));
    }

    #[test]
    fn months_quarters_years() {
        let month = Step::Months(1);
        assert_eq!(
            month.range_of(at("2024-02-29 23:00:00")),
            Range {
                from: at("2024-02-01"),
                to: at("2024-03-01")
            }
        );
        assert_eq!(month.range_of(at("2026-12-31")).to, at("2027-01-01"));
        let quarter = Step::Months(3);
        assert_eq!(
            quarter.range_of(at("2026-11-22")),
            Range {
                from: at("2026-10-01"),
                to: at("2027-01-01")
            }
        );
        let year = Step::Months(12);
        assert_eq!(
            year.range_of(at("2026-06-15")),
            Range {
                from: at("2026-01-01"),
                to: at("2027-01-01")
            }
        );
        assert_eq!(month.range_of(at("1969-12-15")).from, at("1969-12-01"));
    }

    #[test]
    fn integer_ranges_are_multiples_of_the_width() {
        let width = Step::Width(1000);
        assert_eq!(width.range_of(0), Range { from: 0, to: 1000 });
        assert_eq!(
            width.range_of(1999),
            Range {
                from: 1000,
                to: 2000
            }
        );
        assert_eq!(width.range_of(-1), Range { from: -1000, to: 0 });
    }

    #[test]
    fn bucket_ranges_tile_without_gaps() {
        for step in [
            Step::Months(1),
            Step::Months(3),
            Step::Micros(MICROS_PER_DAY),
            Step::Micros(900_000_000),
        ] {
            let mut range = step.range_of(at("2025-12-30"));
            for _ in 0..500 {
                let next = step.range_of(range.to);
                assert_eq!(next.from, range.to, "{step:?}");
                assert!(next.to > next.from);
                range = next;
            }
        }
    }

    #[test]
    fn names() {
        let day = Step::Micros(MICROS_PER_DAY);
        assert_eq!(child_suffix(TZ, day, at("2026-11-22")), "p20261122");
        assert_eq!(
            child_suffix(TZ, Step::Micros(3_600_000_000), at("2026-11-22 13:00:00")),
            "p20261122_1300"
        );
        assert_eq!(
            child_suffix(TZ, Step::Micros(30_000_000), at("2026-11-22 13:00:30")),
            "p20261122_130030"
        );
        assert_eq!(
            child_suffix(TZ, Step::Months(1), at("2026-11-01")),
            "p20261101"
        );
        assert_eq!(child_suffix(INT, Step::Width(100), 100_000), "p100000");
        assert_eq!(child_suffix(INT, Step::Width(100), -500), "pm500");
        assert_eq!(child_name("events", "p20261122"), "events_p20261122");
        let long = "x".repeat(63);
        assert_eq!(child_name(&long, "p20261122").len(), 63);
        // Multi-byte characters are never cut in half.
        let accented = "é".repeat(40);
        let name = child_name(&accented, "p20261122");
        assert!(name.len() <= 63);
        assert!(name.ends_with("_p20261122"));
    }

    #[test]
    fn literals_and_parsing_round_trip() {
        let value = at("2026-03-29 01:00:00");
        assert_eq!(bound_literal(TZ, value), "'2026-03-29 01:00:00+00'");
        assert_eq!(
            bound_literal(ControlKind::Timestamp, value),
            "'2026-03-29 01:00:00'"
        );
        assert_eq!(
            bound_literal(ControlKind::Date, at("2026-03-29")),
            "'2026-03-29'"
        );
        assert_eq!(bound_literal(INT, -42), "-42");
        assert_eq!(
            parse_partition_bound(
                TZ,
                "FOR VALUES FROM ('2026-03-29 00:00:00+00') TO ('2026-03-30 00:00:00+00')"
            ),
            Ok(Some(Range {
                from: at("2026-03-29"),
                to: at("2026-03-30")
            }))
        );
        assert_eq!(
            parse_partition_bound(
                ControlKind::Date,
                "FOR VALUES FROM ('2026-03-29') TO ('2026-04-01')"
            ),
            Ok(Some(Range {
                from: at("2026-03-29"),
                to: at("2026-04-01")
            }))
        );
        assert_eq!(
            parse_partition_bound(INT, "FOR VALUES FROM ('-100') TO ('100')"),
            Ok(Some(Range {
                from: -100,
                to: 100
            }))
        );
        assert!(parse_partition_bound(INT, "FOR VALUES FROM (MINVALUE) TO (100)").is_err());
        assert_eq!(
            parse_partition_bound(INT, "FOR VALUES FROM (-100) TO (100)"),
            Ok(Some(Range {
                from: -100,
                to: 100
            }))
        );
        assert_eq!(parse_partition_bound(TZ, "DEFAULT"), Ok(None));
        assert!(parse_partition_bound(
            TZ,
            "FOR VALUES FROM (MINVALUE) TO ('2026-01-01 00:00:00+00')"
        )
        .is_err());
        assert!(parse_partition_bound(TZ, "FOR VALUES IN (1)").is_err());
        assert_eq!(
            parse_iso_timestamp("2026-03-29 01:00:00.5+00"),
            Some(at("2026-03-29 01:00:00") + 500_000)
        );
        assert_eq!(parse_iso_timestamp("2026-13-01"), None);
    }
}
