//! In-backend tests of partition bounds against PostgreSQL's own arithmetic.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::common::calendar::MICROS_PER_DAY;
    use crate::partition::bounds::{ControlKind, Step};
    use pgrx::prelude::*;

    /// The SQL bucket expression (used to group the default partition's rows)
    /// must agree with the Rust arithmetic on every kind of step.
    #[pg_test]
    fn partition_bucket_sql_agrees_with_rust() {
        let samples = [
            "1969-12-31 23:59:59.5+00",
            "2024-02-29 23:59:59+00",
            "2026-03-29 01:30:00+00",
            "2026-11-22 00:00:00+00",
            "2026-12-31 23:00:00+00",
        ];
        let steps = [
            Step::Micros(3_600_000_000),
            Step::Micros(MICROS_PER_DAY),
            Step::Micros(7 * MICROS_PER_DAY),
            Step::Months(1),
            Step::Months(3),
            Step::Months(12),
        ];
        for step in steps {
            for sample in samples {
                let sql = format!(
                    "SELECT {}, (extract(epoch from v) * 1000000)::bigint FROM (SELECT '{sample}'::timestamptz AS v) s",
                    step.bucket_sql(ControlKind::TimestampTz, "v")
                );
                let (bucket, micros) = Spi::get_two::<i64, i64>(&sql).unwrap();
                assert_eq!(
                    bucket.unwrap(),
                    step.bucket_of(micros.unwrap()),
                    "{step:?} at {sample}"
                );
            }
        }
        let width = Step::Width(1000);
        for value in [-1001i64, -1, 0, 999, 1000, 123_456] {
            let bucket = Spi::get_one::<i64>(&format!(
                "SELECT {}",
                width.bucket_sql(
                    ControlKind::Integer {
                        min: i64::MIN,
                        max: i64::MAX
                    },
                    &value.to_string()
                )
            ))
            .unwrap()
            .unwrap();
            assert_eq!(bucket, width.bucket_of(value), "width at {value}");
        }
    }

    /// The clock follows tenancy.now_override when it is set.
    #[pg_test]
    fn clock_follows_the_override() {
        Spi::run("SET tenancy.now_override = '2026-03-29 01:30:00+00'").unwrap();
        assert_eq!(
            crate::common::clock::now_micros(),
            crate::common::calendar::parse_iso_timestamp("2026-03-29 01:30:00").unwrap()
        );
        Spi::run("RESET tenancy.now_override").unwrap();
        let real = Spi::get_one::<i64>("SELECT (extract(epoch from now()) * 1000000)::bigint")
            .unwrap()
            .unwrap();
        assert_eq!(crate::common::clock::now_micros(), real);
    }
}
