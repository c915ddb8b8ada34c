//! Isolation overhead: what row-level isolation costs a query.
//!
//! Issue #2's scenario: `SELECT count(*)` over a 1M-row isolated table as an
//! application role (the policy supplies the tenant filter) against the same
//! query with a literal `WHERE tenant_id = '…'` as the table owner with no
//! policy in the way. Target: ratio <= 1.10. Measured twice: a tenant owning
//! 1 of 20 equal shares (index path) and a tenant owning every row (full scan,
//! where a per-row policy function call would show).

use crate::report::{median_times_interleaved, Report};
use crate::Bench;
use postgres::Client;

const ROWS: i64 = 1_000_000;

pub fn isolation_overhead(bench: &Bench, report: &mut Report) {
    for (label, tenants) in [("1 of 20 tenants", 20), ("1 tenant owns all", 1)] {
        let mut admin = bench.fresh_database("bench_isolation");
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS bench_app;
                 CREATE ROLE bench_app LOGIN;
                 SELECT tenancy.create_tenant('t' || i, 'Tenant ' || i) FROM generate_series(1, {tenants}) i;
                 CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount numeric NOT NULL, note text);
                 INSERT INTO orders
                 SELECT i, t.ids[1 + i % {tenants}], i % 1000, 'order ' || i
                   FROM generate_series(1, {ROWS}) i,
                        (SELECT array_agg(id ORDER BY slug) AS ids FROM tenancy.tenants) t;
                 CREATE INDEX ON orders (tenant_id);
                 SELECT tenancy.enable_isolation('orders');
                 GRANT SELECT ON orders TO bench_app;"
            ))
            .unwrap();
        admin.batch_execute("VACUUM ANALYZE orders").unwrap();
        let tenant: uuid::Uuid = admin
            .query_one("SELECT id FROM tenancy.tenants ORDER BY slug LIMIT 1", &[])
            .unwrap()
            .get(0);
        // The owner's baseline: isolation switched off for this session only.
        let mut owner = bench.connect("bench_isolation");
        owner.batch_execute("SET row_security = off").unwrap();
        let literal = format!("SELECT count(*) FROM orders WHERE tenant_id = '{tenant}'");
        let mut app = bench.connect_as("bench_isolation", "bench_app");
        app.execute("SELECT tenancy.set_tenant($1)", &[&tenant])
            .unwrap();

        let owner_count: i64 = owner.query_one(literal.as_str(), &[]).unwrap().get(0);
        assert_eq!(owner_count, ROWS / tenants);
        let mut compare = |app: &mut Client, scenario: String, target: Option<f64>| {
            compare_counts(
                app,
                &mut owner,
                &literal,
                owner_count,
                report,
                &scenario,
                target,
            );
        };
        compare(
            &mut app,
            format!("isolation: count(*) 1M rows, {label}"),
            Some(1.10),
        );

        // For reference, the seeds' hand-written policy, which casts a setting on every row.
        admin
            .batch_execute(
                "ALTER POLICY tenancy_isolation ON orders
                     USING (tenant_id = current_setting('app.current_tenant')::uuid)
                     WITH CHECK (tenant_id = current_setting('app.current_tenant')::uuid)",
            )
            .unwrap();
        app.batch_execute(&format!("SET app.current_tenant = '{tenant}'"))
            .unwrap();
        compare(
            &mut app,
            format!("  reference: seed policy current_setting()::uuid, {label}"),
            None,
        );
        drop(app);
        drop(owner);
        admin.batch_execute("DROP TABLE orders").unwrap();
    }
    let mut admin = bench.connect("postgres");
    admin
        .batch_execute("DROP DATABASE IF EXISTS bench_isolation WITH (FORCE); ")
        .unwrap();
    admin
        .batch_execute("DROP ROLE IF EXISTS bench_app")
        .unwrap();
}

/// Times an application role's policy-filtered `count(*)` of `orders`
/// against the owner's `literal` one (row security off), after checking both
/// count the same rows, and reports the two side by side.
pub fn compare_counts(
    app: &mut Client,
    owner: &mut Client,
    literal: &str,
    owner_count: i64,
    report: &mut Report,
    scenario: &str,
    target: Option<f64>,
) {
    let app_count: i64 = app
        .query_one("SELECT count(*) FROM orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        owner_count, app_count,
        "the two queries must count the same rows"
    );
    let (isolated, baseline) = median_times_interleaved(
        3,
        31,
        || {
            app.query_one("SELECT count(*) FROM orders", &[]).unwrap();
        },
        || {
            owner.query_one(literal, &[]).unwrap();
        },
    );
    report.compare_times(
        scenario,
        isolated,
        "literal WHERE as owner",
        baseline,
        target,
    );
}
