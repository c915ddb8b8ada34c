//! In-backend tests of the statistics functions (shapes and privileges are in
//! the pg_regress suite `health`, conditions made by other sessions in
//! tests/multi/tests/health.rs).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn every_check_reports_one_row_with_a_known_status() {
        let bad = Spi::get_one::<i64>(
            "SELECT count(*) FROM tenancy.health_check() WHERE status NOT IN ('ok', 'warning', 'critical')",
        )
        .unwrap();
        assert_eq!(bad, Some(0));
        let checks =
            Spi::get_one::<i64>("SELECT count(DISTINCT check_name) FROM tenancy.health_check()")
                .unwrap();
        let enabled =
            Spi::get_one::<i64>("SELECT count(*) FROM tenancy.health_thresholds WHERE enabled")
                .unwrap();
        assert_eq!(checks, enabled);
    }

    #[pg_test]
    fn a_disabled_check_is_not_run() {
        Spi::run("UPDATE tenancy.health_thresholds SET enabled = false WHERE check_name = 'database_size'").unwrap();
        let found = Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM tenancy.health_check() WHERE check_name = 'database_size')",
        )
        .unwrap();
        assert_eq!(found, Some(false));
    }
}
