//! In-backend tests of the tenant context and isolation. pgrx runs each one in
//! a rolled-back transaction of a test database; they live in SQL schema `tests`.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn current_tenant_is_null_until_set() {
        assert_eq!(
            Spi::get_one::<pgrx::Uuid>("SELECT tenancy.current_tenant()").unwrap(),
            None
        );
    }

    #[pg_test]
    fn policy_predicate_quotes_the_column_and_pins_the_operator() {
        use crate::tenant::isolation::policy_predicate;
        assert_eq!(
            policy_predicate("tenant_id"),
            "tenant_id OPERATOR(pg_catalog.=) (SELECT tenancy.current_tenant())"
        );
        assert_eq!(
            policy_predicate("Tenant \"Key\""),
            "\"Tenant \"\"Key\"\"\" OPERATOR(pg_catalog.=) (SELECT tenancy.current_tenant())"
        );
    }

    #[pg_test]
    fn policy_covers_all_commands_both_ways() {
        let sql = crate::tenant::isolation::create_policy_sql("public.orders", "tenant_id");
        assert!(sql.starts_with("CREATE POLICY tenancy_isolation ON public.orders"));
        assert!(sql.contains("FOR ALL TO PUBLIC"));
        assert!(sql.contains("USING (tenant_id OPERATOR"));
        assert!(sql.contains("WITH CHECK (tenant_id OPERATOR"));
    }

    #[pg_test]
    fn set_tenant_then_current_tenant() {
        let id = Spi::get_one::<pgrx::Uuid>("SELECT tenancy.create_tenant('unit-a', 'Unit A')")
            .unwrap()
            .unwrap();
        Spi::run_with_args("SELECT tenancy.set_tenant($1)", &[id.into()]).unwrap();
        assert_eq!(
            Spi::get_one::<pgrx::Uuid>("SELECT tenancy.current_tenant()").unwrap(),
            Some(id)
        );
        assert_eq!(
            crate::tenant::context::current_tenant(),
            Some(*id.as_bytes())
        );
        Spi::run("SELECT tenancy.clear_tenant()").unwrap();
        assert_eq!(crate::tenant::context::current_tenant(), None);
    }

    #[pg_test(error = "tenant 00000000-0000-0000-0000-000000000001 does not exist")]
    fn set_tenant_refuses_unknown_tenant() {
        Spi::run("SELECT tenancy.set_tenant('00000000-0000-0000-0000-000000000001')").unwrap();
    }

    #[pg_test]
    fn actor_round_trips_and_empty_clears() {
        Spi::run("SELECT tenancy.set_actor('user:7')").unwrap();
        assert_eq!(
            crate::tenant::context::current_actor().as_deref(),
            Some("user:7")
        );
        Spi::run("SELECT tenancy.set_actor('')").unwrap();
        assert_eq!(crate::tenant::context::current_actor(), None);
    }

    #[pg_test]
    fn enable_isolation_installs_one_forced_policy() {
        Spi::run("CREATE TABLE unit_iso (tenant_id uuid, v int)").unwrap();
        Spi::run("SELECT tenancy.enable_isolation('unit_iso')").unwrap();
        let (forced, policies) = Spi::get_two::<bool, i64>(
            "SELECT c.relforcerowsecurity, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
               FROM pg_class c WHERE c.oid = 'unit_iso'::regclass",
        )
        .unwrap();
        assert_eq!(forced, Some(true));
        assert_eq!(policies, Some(1));
        assert_eq!(
            Spi::get_one::<bool>(
                "SELECT isolated FROM tenancy.tenant_tables WHERE tbl = 'unit_iso'::regclass"
            )
            .unwrap(),
            Some(true)
        );
    }
}
