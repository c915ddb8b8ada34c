//! pg_tenancy on a Citus cluster (issue 17): a coordinator and two workers
//! that scripts/bench.sh starts beside the single-node cluster when Citus is
//! installed (PGTENANCY_CITUS_DSN; skipped otherwise).
//!
//! - Isolation overhead: one tenant's `SELECT count(*)` over a 1M-row table
//!   distributed by tenant, as an application role (the policy supplies the
//!   filter; pg_tenancy carries the tenant to the workers and names it so
//!   Citus routes to one shard), against the owner's literal
//!   `WHERE tenant_id = '…'` with row security off. Target <= 1.10.
//! - `consume` with 16 clients on the coordinator against the same on the
//!   single-node cluster, in the same run. Target >= 0.5.
//! - Audit (issue 18): 100k-row INSERT, one-column UPDATE and DELETE on a
//!   10-column table distributed by its tenant column, unaudited against
//!   audited, beside the same on one node, runs interleaved. The audit cost
//!   per changed row on the cluster against the cost on one node: target
//!   <= 2.

use crate::report::{median_times_interleaved, Better, Report, Row};
use crate::Bench;

const DATABASE: &str = "bench_citus";
const ROWS: i64 = 1_000_000;
const TENANTS: i64 = 20;
const CLIENTS: u32 = 16;
const HOT: &str = "00000000-0000-4000-8000-000000000001";

pub fn citus(bench: &Bench, report: &mut Report) {
    let Some(cluster) = bench.citus() else {
        eprintln!("bench: citus skipped (Citus is not installed)");
        return;
    };
    isolation(&cluster, report);
    consume(bench, &cluster, report);
    audit(bench, &cluster, report);
}

fn audit(single: &Bench, cluster: &Bench, report: &mut Report) {
    use crate::audit::{
        create_table, median, paired_cost, single_node_run, write_rows, ROWS, RUNS,
    };
    let single_db = "bench_citus_audit";
    let mut one_node = crate::audit::prepare_single_node(single, single_db);
    let mut coordinator = cluster.connect(DATABASE);
    // Tenant ids for the org_id values the rows take (50 of them).
    coordinator
        .batch_execute(&format!(
            "SET client_min_messages = warning;
             CREATE EXTENSION IF NOT EXISTS pg_tenancy;
             DROP TABLE IF EXISTS cluster_plain, cluster_audited;
             {}; {};
             -- Citus wants the distribution column in the primary key.
             ALTER TABLE cluster_plain DROP CONSTRAINT cluster_plain_pkey, ADD PRIMARY KEY (org_id, id);
             ALTER TABLE cluster_audited DROP CONSTRAINT cluster_audited_pkey, ADD PRIMARY KEY (org_id, id);
             SELECT create_distributed_table('cluster_plain', 'org_id');
             SELECT create_distributed_table('cluster_audited', 'org_id', colocate_with => 'cluster_plain');
             SELECT tenancy.register_table('cluster_audited', 'org_id');
             SELECT tenancy.enable_audit('cluster_audited');",
            create_table("cluster_plain"),
            create_table("cluster_audited")
        ))
        .unwrap();
    let mut cluster_runs: [Vec<[std::time::Duration; 3]>; 2] = [Vec::new(), Vec::new()];
    let mut node_runs: [Vec<[std::time::Duration; 3]>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..RUNS {
        // Interleaved, so drift hits every variant alike.
        for (v, table) in ["cluster_plain", "cluster_audited"].iter().enumerate() {
            coordinator
                .batch_execute("TRUNCATE tenancy.cluster_audit_log")
                .unwrap();
            cluster_runs[v].push(write_rows(&mut coordinator, table));
            if v == 1 {
                let logged: i64 = coordinator
                    .query_one("SELECT count(*) FROM tenancy.cluster_audit_log", &[])
                    .unwrap()
                    .get(0);
                assert_eq!(
                    logged,
                    3 * ROWS,
                    "every change on the cluster must be audited"
                );
            }
            node_runs[v].push(single_node_run(&mut one_node, v == 1));
        }
    }
    for (op, name) in ["INSERT", "UPDATE", "DELETE"].iter().enumerate() {
        let (on_cluster, _) = paired_cost(&cluster_runs[1], &cluster_runs[0], op);
        let (on_one_node, _) = paired_cost(&node_runs[1], &node_runs[0], op);
        let plain = median(cluster_runs[0].iter().map(|r| r[op]).collect());
        let audited = median(cluster_runs[1].iter().map(|r| r[op]).collect());
        report.push(Row {
            scenario: format!(
                "citus: audit cost per row, 100k-row {name}, distributed vs one node (median of {RUNS} paired runs)"
            ),
            ours: format!(
                "{on_cluster:.2} us ({} audited, {} not)",
                crate::report::format_duration(audited),
                crate::report::format_duration(plain)
            ),
            anchor: format!("{on_one_node:.2} us on one node"),
            ratio: Some(on_cluster / on_one_node),
            target: Some((Better::Lower, 2.0)),
        });
    }
    coordinator
        .batch_execute("DROP TABLE cluster_plain, cluster_audited")
        .unwrap();
    drop(one_node);
    single
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {single_db} WITH (FORCE)"))
        .unwrap();
}

fn isolation(cluster: &Bench, report: &mut Report) {
    let mut admin = cluster.connect(DATABASE);
    admin
        .batch_execute(&format!(
            "SET client_min_messages = warning;
             CREATE EXTENSION IF NOT EXISTS pg_tenancy;
             DROP TABLE IF EXISTS orders;
             DROP ROLE IF EXISTS bench_app;
             CREATE ROLE bench_app LOGIN;
             SELECT tenancy.create_tenant('t' || i, 'Tenant ' || i) FROM generate_series(1, {TENANTS}) i;
             CREATE TABLE orders (id bigint NOT NULL, tenant_id uuid NOT NULL, amount numeric NOT NULL, note text,
                                  PRIMARY KEY (tenant_id, id));
             SELECT create_distributed_table('orders', 'tenant_id');
             INSERT INTO orders
             SELECT i, t.ids[1 + i % {TENANTS}], i % 1000, 'order ' || i
               FROM generate_series(1, {ROWS}) i,
                    (SELECT array_agg(id ORDER BY slug) AS ids FROM tenancy.tenants) t;
             SELECT tenancy.enable_isolation('orders');
             GRANT SELECT ON orders TO bench_app;"
        ))
        .unwrap();
    // Alone: in a multi-statement query it would run in a transaction block.
    admin.batch_execute("VACUUM ANALYZE orders").unwrap();
    let tenant: uuid::Uuid = admin
        .query_one("SELECT id FROM tenancy.tenants ORDER BY slug LIMIT 1", &[])
        .unwrap()
        .get(0);
    let mut owner = cluster.connect(DATABASE);
    owner.batch_execute("SET row_security = off").unwrap();
    let literal = format!("SELECT count(*) FROM orders WHERE tenant_id = '{tenant}'");
    let mut app = cluster.connect_as(DATABASE, "bench_app");
    app.execute("SELECT tenancy.set_tenant($1)", &[&tenant])
        .unwrap();
    let owner_count: i64 = owner.query_one(literal.as_str(), &[]).unwrap().get(0);
    assert_eq!(owner_count, ROWS / TENANTS);
    crate::tenants::compare_counts(
        &mut app,
        &mut owner,
        &literal,
        owner_count,
        report,
        "citus: isolation, count(*) 1M distributed rows, 1 of 20 tenants",
        Some(1.10),
    );
    // The same inside a transaction block, as an application behind a
    // transaction pooler runs it (a transaction-local tenant): Citus opens a
    // remote transaction block for the owner's query too, so only the
    // tenant's SET LOCAL riding on it remains. Reported, no target.
    let (isolated, baseline) = median_times_interleaved(
        3,
        31,
        || {
            let mut tx = app.transaction().unwrap();
            tx.execute("SELECT tenancy.set_tenant($1, true)", &[&tenant])
                .unwrap();
            tx.query_one("SELECT count(*) FROM orders", &[]).unwrap();
            tx.commit().unwrap();
        },
        || {
            let mut tx = owner.transaction().unwrap();
            tx.query_one(literal.as_str(), &[]).unwrap();
            tx.commit().unwrap();
        },
    );
    report.compare_times(
        "citus: same, in a transaction with set_tenant(is_local)",
        isolated,
        "literal WHERE as owner, in a transaction",
        baseline,
        None,
    );
    drop(app);
    drop(owner);
    admin.batch_execute("DROP TABLE orders").unwrap();
}

fn consume(single: &Bench, cluster: &Bench, report: &mut Report) {
    let setup = format!(
        "SET client_min_messages = warning;
         CREATE EXTENSION IF NOT EXISTS pg_tenancy;
         SELECT tenancy.define_resource('messages', 'month')
          WHERE NOT EXISTS (SELECT FROM tenancy.quota_resources WHERE name = 'messages');
         SELECT tenancy.set_plan_limit('free', 'messages', 1000000000);
         SELECT tenancy.create_tenant('hot', 'Hot', 'free', '{HOT}')
          WHERE NOT EXISTS (SELECT FROM tenancy.tenants WHERE id = '{HOT}');"
    );
    let single_db = "bench_citus_single";
    let mut admin = single.fresh_database(single_db);
    admin.batch_execute(&setup).unwrap();
    cluster.connect(DATABASE).batch_execute(&setup).unwrap();
    let script = format!("SELECT tenancy.consume('{HOT}', 'messages');\n");
    let on_one_node = single.pgbench(single_db, &script, CLIENTS, 5);
    let on_coordinator = cluster.pgbench(DATABASE, &script, CLIENTS, 5);
    report.push(Row {
        scenario: format!("citus: consume, {CLIENTS} clients on the coordinator, one hot tenant"),
        ours: format!("{on_coordinator:.0} calls/s"),
        anchor: format!("{on_one_node:.0} calls/s on one node"),
        ratio: Some(on_coordinator / on_one_node),
        target: Some((Better::Higher, 0.5)),
    });
    drop(admin);
    single
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {single_db} WITH (FORCE)"))
        .unwrap();
}
