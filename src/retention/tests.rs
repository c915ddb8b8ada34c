//! In-backend tests of retention batches (the procedures, which COMMIT, are
//! exercised by the pg_regress suite `retention` and tests/multi).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

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
