//! In-backend tests of usage. `cargo pgrx test` does not preload pg_tenancy,
//! so these see the throttle and accounting without shared memory; the
//! regress and multi suites, which preload it, test the buckets and the
//! ledger.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn tenant() -> pgrx::Uuid {
        Spi::get_one("SELECT tenancy.create_tenant('throttled', 'Throttled')")
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn without_a_rate_every_call_goes_through() {
        let t = tenant();
        let admitted = Spi::get_one_with_args::<bool>(
            "SELECT bool_and(tenancy.throttle($1, 'api')) FROM generate_series(1, 1000)",
            &[t.into()],
        )
        .unwrap();
        assert_eq!(admitted, Some(true));
    }

    #[pg_test(error = "tenancy.throttle() needs pg_tenancy in shared_preload_libraries")]
    fn a_rate_needs_the_library_preloaded() {
        let t = tenant();
        Spi::run_with_args(
            "SELECT tenancy.set_throttle('api', 10, 5, tenant => $1)",
            &[t.into()],
        )
        .unwrap();
        Spi::get_one_with_args::<bool>("SELECT tenancy.throttle($1, 'api')", &[t.into()]).unwrap();
    }

    #[pg_test(error = "tenant 00000000-0000-0000-0000-0000000000ff does not exist")]
    fn an_unknown_tenant_is_refused() {
        Spi::get_one::<bool>(
            "SELECT tenancy.throttle('00000000-0000-0000-0000-0000000000ff', 'api')",
        )
        .unwrap();
    }

    #[pg_test(error = "tenancy.tenant_activity() needs pg_tenancy in shared_preload_libraries")]
    fn accounting_needs_the_library_preloaded() {
        Spi::get_one::<i64>("SELECT count(*) FROM tenancy.tenant_activity()").unwrap();
    }

    #[pg_test]
    fn without_accounting_the_statistics_still_work() {
        let t = tenant();
        let (cpu, running) = Spi::get_two_with_args::<f64, i32>(
            "SELECT cpu_ms_recent, running_statements FROM tenancy.tenant_stats() WHERE tenant_id = $1",
            &[t.into()],
        )
        .unwrap();
        assert_eq!((cpu, running), (None, None));
        let status = Spi::get_one::<String>(
            "SELECT status || ': ' || detail FROM tenancy.health_check() WHERE check_name = 'tenant_cpu_share'",
        )
        .unwrap();
        assert_eq!(
            status.as_deref(),
            Some("ok: does not apply: no tenant statement counted (tenancy.tenant_activity(), with pg_tenancy preloaded)")
        );
        let reset = Spi::get_one::<pgrx::datum::TimestampWithTimeZone>(
            "SELECT tenancy.reset_tenant_activity()",
        )
        .unwrap();
        assert!(reset.is_none());
    }
}
