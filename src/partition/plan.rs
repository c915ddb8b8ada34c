//! Deciding what a set needs, from its settings, its children and the clock:
//! pure functions, tested without a server.

use super::bounds::{ControlKind, Range, Step};

/// The ranges to create so that the set covers `first` (or the reference
/// point's range) through `premake` ranges beyond the reference point's range,
/// skipping any that would overlap an existing child. `reference` is now()
/// for time sets and the highest value for integer sets; `first`, at
/// registration, is where the caller asked the set to start.
pub fn missing_ranges(
    step: Step,
    kind: ControlKind,
    reference: i64,
    first: Option<i64>,
    premake: i32,
    existing: &[Range],
) -> Vec<Range> {
    let current = step.range_of(reference);
    let mut range = match first {
        Some(start) if start < current.from => step.range_of(start),
        _ => current,
    };
    let mut wanted = Vec::new();
    let mut ahead = 0;
    loop {
        if let ControlKind::Integer { min, max } = kind {
            // A child must be expressible in the column's type.
            if range.from < min || range.to.saturating_sub(1) > max {
                if range.from > max {
                    break;
                }
                range = step.range_of(range.to);
                continue;
            }
        }
        if !existing.iter().any(|child| child.overlaps(&range)) {
            wanted.push(range);
        }
        if range.from >= current.from {
            if ahead == premake {
                break;
            }
            ahead += 1;
        }
        range = step.range_of(range.to);
    }
    wanted
}

/// Whether a child's whole range is older than the retention cutoff. The child
/// holding `now`, and any after it, never are.
pub fn is_expired(range: Range, cutoff: i64, now: i64) -> bool {
    range.to <= cutoff && range.to <= now
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use crate::common::calendar::{parse_iso_timestamp, MICROS_PER_DAY};

    const TZ: ControlKind = ControlKind::TimestampTz;
    const DAY: Step = Step::Micros(MICROS_PER_DAY);

    fn at(text: &str) -> i64 {
        parse_iso_timestamp(text).unwrap()
    }

    #[test]
    fn premake_from_now() {
        let ranges = missing_ranges(DAY, TZ, at("2026-11-22 15:00:00"), None, 4, &[]);
        assert_eq!(ranges.len(), 5);
        assert_eq!(ranges[0].from, at("2026-11-22"));
        assert_eq!(ranges[4].to, at("2026-11-27"));
    }

    #[test]
    fn premake_from_a_start_in_the_past() {
        let ranges = missing_ranges(
            DAY,
            TZ,
            at("2026-11-22 15:00:00"),
            Some(at("2026-11-20 08:00:00")),
            2,
            &[],
        );
        let starts: Vec<i64> = ranges.iter().map(|r| r.from).collect();
        assert_eq!(
            starts,
            vec![
                at("2026-11-20"),
                at("2026-11-21"),
                at("2026-11-22"),
                at("2026-11-23"),
                at("2026-11-24")
            ]
        );
    }

    #[test]
    fn existing_children_are_not_recreated() {
        let existing = vec![
            Range {
                from: at("2026-11-22"),
                to: at("2026-11-23"),
            },
            Range {
                from: at("2026-11-23"),
                to: at("2026-11-24"),
            },
        ];
        let ranges = missing_ranges(DAY, TZ, at("2026-11-22 15:00:00"), None, 3, &existing);
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].from, at("2026-11-24"));
        // A second run finds nothing to do.
        let mut all = existing.clone();
        all.extend(ranges);
        assert!(missing_ranges(DAY, TZ, at("2026-11-22 15:00:00"), None, 3, &all).is_empty());
    }

    #[test]
    fn a_hand_made_child_overlapping_a_range_blocks_only_that_range() {
        let odd = vec![Range {
            from: at("2026-11-23 12:00:00"),
            to: at("2026-11-24 12:00:00"),
        }];
        let ranges = missing_ranges(DAY, TZ, at("2026-11-22 15:00:00"), None, 3, &odd);
        let starts: Vec<i64> = ranges.iter().map(|r| r.from).collect();
        assert_eq!(starts, vec![at("2026-11-22"), at("2026-11-25")]);
    }

    #[test]
    fn integer_sets_stop_at_the_type_limit() {
        let smallint = ControlKind::Integer {
            min: i16::MIN as i64,
            max: i16::MAX as i64,
        };
        let ranges = missing_ranges(Step::Width(10_000), smallint, 25_000, None, 4, &[]);
        let starts: Vec<i64> = ranges.iter().map(|r| r.from).collect();
        // 30000..40000 would hold values past 32767: not expressible.
        assert_eq!(starts, vec![20_000]);
    }

    #[test]
    fn expiry_never_touches_the_current_child() {
        let now = at("2026-11-22 15:00:00");
        let yesterday = Range {
            from: at("2026-11-21"),
            to: at("2026-11-22"),
        };
        let today = Range {
            from: at("2026-11-22"),
            to: at("2026-11-23"),
        };
        assert!(is_expired(yesterday, now - MICROS_PER_DAY / 2, now));
        assert!(!is_expired(yesterday, now - 2 * MICROS_PER_DAY, now));
        // Even with a cutoff in the future (a negative retention), today stays.
        assert!(!is_expired(today, now + 10 * MICROS_PER_DAY, now));
    }
}
