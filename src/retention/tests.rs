//! In-backend tests of retention batches (the procedures, which COMMIT, are
//! exercised by the pg_regress suite `retention` and tests/multi).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// A batch's rows reach masking as a typed filter: quoted columns,
    /// numbered parameters, of one tenant when the table is registered.
    #[pg_test]
    fn an_anonymize_batch_selects_its_rows_by_a_typed_filter() {
        use crate::common::selection::{RowFilter, Value};
        use crate::retention::batch::anonymize_filter;
        use pgrx::datum::TimestampWithTimeZone;
        let time = |micros| TimestampWithTimeZone::try_from(micros).unwrap();
        let tenant = pgrx::Uuid::from_bytes([1; 16]);
        let filter = anonymize_filter(
            "at",
            time(0),
            time(20),
            time(30),
            Some(("tenant_id", tenant)),
        );
        assert_eq!(
            filter.sql(1),
            "at OPERATOR(pg_catalog.>) $1 AND at OPERATOR(pg_catalog.<=) $2 \
             AND at OPERATOR(pg_catalog.<) $3 AND tenant_id OPERATOR(pg_catalog.=) $4"
        );
        assert_eq!(filter.values().len(), 4);
        let unregistered = anonymize_filter("at", time(0), time(20), time(30), None);
        assert!(!unregistered.sql(1).contains("tenant_id"));
        let quoted = RowFilter::all()
            .equal("Tenant \"Id\"", Value::Uuid(tenant))
            .after("at", Value::Uuid(tenant));
        assert_eq!(
            quoted.sql(3),
            "\"Tenant \"\"Id\"\"\" OPERATOR(pg_catalog.=) $3 AND at OPERATOR(pg_catalog.>) $4"
        );
        assert_eq!(RowFilter::all().sql(1), "true");
    }

    #[pg_test]
    fn a_step_run_deletes_only_rows_older_than_the_cutoff() {
        Spi::run(
            "CREATE TABLE ret_unit (id int PRIMARY KEY, created_at timestamptz NOT NULL);
             CREATE INDEX ON ret_unit (created_at);
             INSERT INTO ret_unit SELECT g, now() - g * interval '1 day' FROM generate_series(1, 100) g;
             SELECT tenancy.set_retention('ret_unit', '30 days', batch_size => 7);",
        )
        .unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT tenancy._jobs_begin(true)").unwrap(),
            Some(true)
        );
        let mut steps = 0;
        while Spi::get_one::<bool>("SELECT tenancy._jobs_step()").unwrap() == Some(true) {
            steps += 1;
            assert!(steps < 100, "the run ends");
        }
        let left = Spi::get_one::<i64>("SELECT count(*) FROM ret_unit").unwrap();
        // Days 1..29 are newer than the cut-off; day 30 is exactly at it (not older).
        assert_eq!(left, Some(30));
        let rows = Spi::get_one::<i64>(
            "SELECT rows FROM tenancy.job_runs WHERE job = 'retention:ret_unit'",
        )
        .unwrap();
        assert_eq!(rows, Some(70));
    }
}
