//! In-backend tests of the statistics functions (shapes and privileges are in
//! the pg_regress suite `health`, conditions made by other sessions in
//! tests/multi/tests/health.rs).

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Every child of tenancy.metrics gets the index for the latest sample of
    /// a metric from the statistics partition hook.
    #[pg_test]
    fn metrics_partitions_get_their_index() {
        Spi::run("SELECT tenancy.record_metrics()").unwrap();
        let (children, lacking) = Spi::get_two::<i64, i64>(
            "SELECT count(*),
                    count(*) FILTER (WHERE NOT EXISTS (
                        SELECT FROM pg_indexes x
                         WHERE x.schemaname = n.nspname AND x.tablename = c.relname
                           AND x.indexdef LIKE '%(metric, recorded_at)'))
               FROM pg_partition_tree('tenancy.metrics') t
               JOIN pg_class c ON c.oid = t.relid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r'",
        )
        .unwrap();
        assert!(
            children.unwrap() > 1,
            "record_metrics made the daily children"
        );
        assert_eq!(lacking, Some(0));
    }

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
            // The cluster's checks report on a Citus coordinator only (tests/citus).
            Spi::get_one::<i64>(
                "SELECT count(*) FROM tenancy.health_thresholds
                  WHERE enabled AND check_name NOT LIKE 'cluster\\_%'",
            )
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
