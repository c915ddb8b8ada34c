//! In-backend tests of the usage ledger: one row version per counter per
//! transaction, terms that follow limit changes, periods that agree with
//! PostgreSQL's own calendar arithmetic.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::quota::period::{Period, NAMES};
    use pgrx::prelude::*;

    fn setup() -> String {
        Spi::run(
            "SELECT tenancy.define_resource('unit_calls', 'day');
             SELECT tenancy.create_tenant('unit-quota', 'Unit quota', id => 'eeeeeeee-0000-0000-0000-00000000000e');
             SELECT tenancy.set_quota('eeeeeeee-0000-0000-0000-00000000000e', 'unit_calls', 1000000)",
        )
        .unwrap();
        "'eeeeeeee-0000-0000-0000-00000000000e'".into()
    }

    /// Many calls in one transaction touch the counter row once (the first
    /// call's UPDATE); the rest is counted in memory until commit. Updating
    /// the row per call would make a transaction's calls quadratic.
    #[pg_test]
    fn quota_many_calls_in_one_transaction_update_the_row_once() {
        let tenant = setup();
        let granted = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FILTER (WHERE tenancy.consume({tenant}, 'unit_calls')) FROM generate_series(1, 5000)"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(granted, 5000);
        let updates = Spi::get_one::<i64>(
            "SELECT pg_stat_get_xact_tuples_updated('tenancy.quota_usage'::regclass)",
        )
        .unwrap()
        .unwrap();
        assert!(updates <= 1, "{updates} row updates for 5000 calls");
        let used = Spi::get_one::<i64>(&format!(
            "SELECT used FROM tenancy.quota_status({tenant}) WHERE resource = 'unit_calls'"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(used, 5000);
    }

    /// A limit changed in this transaction applies to the next call, even
    /// though terms are cached across calls.
    #[pg_test]
    fn quota_terms_follow_limit_changes() {
        let tenant = setup();
        let consume = |amount: i64| {
            Spi::get_one::<bool>(&format!(
                "SELECT tenancy.consume({tenant}, 'unit_calls', {amount})"
            ))
            .unwrap()
            .unwrap()
        };
        assert!(consume(10));
        Spi::run(&format!(
            "SELECT tenancy.set_quota({tenant}, 'unit_calls', 15)"
        ))
        .unwrap();
        assert!(!consume(10));
        assert!(consume(5));
        Spi::run(&format!(
            "SELECT tenancy.clear_quota({tenant}, 'unit_calls')"
        ))
        .unwrap();
        assert!(consume(1_000_000), "no limit left: unlimited");
    }

    /// Period windows computed in Rust agree with date_trunc in UTC.
    #[pg_test]
    fn quota_periods_agree_with_date_trunc() {
        let samples = [
            "1969-12-31 23:59:59.5+00",
            "2024-02-29 23:59:59.999999+00",
            "2026-03-29 01:30:00+02",
            "2026-12-31 23:00:00-05",
        ];
        for name in NAMES.iter().filter(|n| **n != "none") {
            let period = Period::parse(name).unwrap();
            for sample in samples {
                let (truncated, now) = Spi::get_two::<i64, i64>(&format!(
                    "SELECT (extract(epoch from date_trunc('{name}', v, 'UTC')) * 1000000)::bigint,
                            (extract(epoch from v) * 1000000)::bigint
                       FROM (SELECT '{sample}'::timestamptz AS v) s"
                ))
                .unwrap();
                assert_eq!(
                    period.window(now.unwrap()).unwrap().from,
                    truncated.unwrap(),
                    "{name} at {sample}"
                );
            }
        }
    }
}
