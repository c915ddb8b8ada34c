//! Accounting (issue 19): what counting every statement of a tenant costs.
//! pgbench's built-in select-only (`-S`) and TPC-B-like (write mix)
//! workloads, 4 clients, every session's tenant set (PGOPTIONS), with
//! `tenancy.track_activity` off and on. Runs one after the other on this
//! 2-core VM differ by up to 20% from drift alone, so the two run side by
//! side, two clients each, sharing the CPU: each round's ratio of their
//! transactions per second is what counting costs. Rounds alternate which
//! one starts first; the median round is reported (target >= 0.97).

use crate::report::{Better, Report, Row};
use crate::Bench;

const DATABASE: &str = "bench_accounting";
const TENANT: &str = "00000000-0000-4000-8000-0000000000ac";
const ROUNDS: usize = 9;
const SECONDS: u32 = 5;
/// Clients of each side.
const CLIENTS: u32 = 2;

pub fn accounting(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    client
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('counted', 'Counted', 'free', '{TENANT}')"
        ))
        .unwrap();
    bench.pgbench_init(DATABASE, 10);
    client.batch_execute("CHECKPOINT").unwrap();
    let variants = [
        format!("-c tenancy.tenant_id={TENANT} -c tenancy.track_activity=off"),
        format!("-c tenancy.tenant_id={TENANT}"),
    ];
    for (workload, name) in [
        ("select-only", "pgbench -S"),
        ("tpcb-like", "pgbench TPC-B-like (write mix)"),
    ] {
        bench.pgbench_side_by_side(
            DATABASE,
            &[&variants[0], &variants[1]],
            &["-b", workload],
            CLIENTS,
            2,
        );
        // Even rounds start the one without accounting first, odd ones the other.
        let mut rounds: Vec<(f64, f64, f64)> = (0..ROUNDS)
            .map(|round| {
                let (first, second) = if round % 2 == 0 { (0, 1) } else { (1, 0) };
                let tps = bench.pgbench_side_by_side(
                    DATABASE,
                    &[&variants[first], &variants[second]],
                    &["-b", workload],
                    CLIENTS,
                    SECONDS,
                );
                let (off, on) = if first == 0 {
                    (tps[0], tps[1])
                } else {
                    (tps[1], tps[0])
                };
                (on / off, off, on)
            })
            .collect();
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, off, on) = rounds[ROUNDS / 2];
        report.push(Row {
            scenario: format!(
                "accounting: {name}, {CLIENTS} clients on beside {CLIENTS} off, median of {ROUNDS} rounds"
            ),
            ours: format!(
                "{on:.0} tps (ratios {:.3}..{:.3})",
                rounds[0].0,
                rounds[ROUNDS - 1].0
            ),
            anchor: format!("{off:.0} tps accounting off"),
            ratio: Some(ratio),
            target: Some((Better::Higher, 0.97)),
        });
    }
    let counted: i64 = client
        .query_one(
            &format!("SELECT coalesce(sum(calls), 0)::bigint FROM tenancy.tenant_activity() WHERE tenant_id = '{TENANT}'"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(counted > 0, "the runs with accounting on were counted");
    drop(client);
    let mut admin = bench.connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}
