//! In-backend tests of usage. `cargo pgrx test` does not preload pg_tenancy,
//! so these see the throttle without shared memory; the regress and multi
//! suites, which preload it, test the buckets.

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
}
