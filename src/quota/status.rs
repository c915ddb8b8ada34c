//! Reading usage back: `quota_status` rows and `check_quota`'s figure. Stored
//! counters are read without locks, then this transaction's own counters
//! (see `usage`) replace theirs, so a session sees its uncommitted use.

use super::ledger::Key;
use super::period::Period;
use super::usage;
use crate::common::calendar::Range;
use crate::common::privilege::as_extension_owner_qualified;
use pgrx::prelude::*;

/// One row of `quota_status`.
pub struct StatusRow {
    pub tenant: [u8; 16],
    pub resource: String,
    pub period: Period,
    pub unit: String,
    pub window: Option<Range>,
    pub used: i64,
    pub limit: Option<i64>,
    /// Percentage of the limit used, one decimal, as text for a numeric.
    pub pct_used: Option<String>,
}

/// Units used in the current period by a stored counter with this period start.
fn current(period: Period, now: i64, stored_start: Option<i64>, stored_used: Option<i64>) -> i64 {
    let start = period.stored_start(now);
    match (stored_start, stored_used) {
        (Some(s), Some(used)) if s == start => used,
        _ => 0,
    }
}

/// 12.5 for 125 of 1000; a zero limit counts as fully used.
pub fn percentage(used: i64, limit: i64) -> String {
    if limit == 0 {
        return "100.0".into();
    }
    let tenths = (used as i128 * 1000 + limit as i128 / 2) / limit as i128;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The committed figure of one counter in the current period (no lock).
pub fn stored_used(key: &Key, period: Period) -> i64 {
    if let Some(used) = super::cluster::usage(Some(key.tenant)).get(key) {
        return *used;
    }
    let now = crate::common::clock::now_micros();
    let stored = as_extension_owner_qualified(|| super::store::peek(key));
    current(period, now, stored.map(|s| s.0), stored.map(|s| s.1))
}

pub fn rows(only: Option<[u8; 16]>, now: i64) -> Vec<StatusRow> {
    // Rows of Citus tables are counted on the workers (`cluster`); their
    // counters replace this node's, which those rows never touch.
    let mut on_cluster = super::cluster::usage(only);
    let mut rows = local_rows(only, now);
    for row in &mut rows {
        if let Some(used) = on_cluster.remove(&Key {
            tenant: row.tenant,
            resource: row.resource.clone(),
        }) {
            row.used = used;
            row.pct_used = row.limit.map(|l| percentage(used, l));
        }
    }
    // Counted rows of a tenant without a limit (no local row to replace).
    for (key, used) in on_cluster {
        let Ok(terms) = super::terms::terms_of(&key) else {
            continue;
        };
        rows.push(StatusRow {
            unit: super::cluster::unit_of(&key.resource),
            tenant: key.tenant,
            resource: key.resource,
            period: terms.period,
            window: terms.period.window(now),
            used,
            limit: terms.limit,
            pct_used: terms.limit.map(|l| percentage(used, l)),
        });
    }
    rows
}

fn local_rows(only: Option<[u8; 16]>, now: i64) -> Vec<StatusRow> {
    as_extension_owner_qualified(|| {
        Spi::connect(|client| {
            client
                .select(
                    super::store::STATUS_SQL,
                    None,
                    &[only.map(pgrx::Uuid::from_bytes).into()],
                )?
                .map(|row| {
                    let period: String = row.get(3)?.unwrap_or_default();
                    let period = Period::parse(&period).expect("quota_resources.period is checked");
                    let key = Key {
                        tenant: *row.get::<pgrx::Uuid>(1)?.expect("tenant id").as_bytes(),
                        resource: row.get::<String>(2)?.unwrap_or_default(),
                    };
                    let limit = row.get::<i64>(5)?;
                    let start: Option<pgrx::datum::TimestampWithTimeZone> = row.get(6)?;
                    let stored = current(period, now, start.map(i64::from), row.get::<i64>(7)?);
                    // This transaction's own figure wins over the committed one.
                    let used = usage::pending(&key, period).unwrap_or(stored);
                    Ok(StatusRow {
                        tenant: key.tenant,
                        resource: key.resource,
                        period,
                        unit: row.get::<String>(4)?.unwrap_or_default(),
                        window: period.window(now),
                        used,
                        limit,
                        pct_used: limit.map(|l| percentage(used, l)),
                    })
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading quota status failed")
    })
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn percentages_round_to_one_decimal() {
        assert_eq!(percentage(125, 1000), "12.5");
        assert_eq!(percentage(1, 3), "33.3");
        assert_eq!(percentage(2, 3), "66.7");
        assert_eq!(percentage(1000, 1000), "100.0");
        assert_eq!(percentage(1500, 1000), "150.0");
        assert_eq!(percentage(0, 0), "100.0");
        assert_eq!(percentage(i64::MAX, i64::MAX), "100.0");
    }

    #[test]
    fn a_counter_from_an_earlier_period_counts_as_zero() {
        let now = 1_800_000_000_000_000; // 2027-01-15 08:00:00 UTC
        let start = Period::Day.stored_start(now);
        assert_eq!(current(Period::Day, now, Some(start), Some(7)), 7);
        assert_eq!(current(Period::Day, now, Some(start - 1), Some(7)), 0);
        assert_eq!(current(Period::None, now, Some(i64::MIN), Some(7)), 7);
        assert_eq!(current(Period::Day, now, None, None), 0);
    }
}
