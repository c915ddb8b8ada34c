//! Partition management against pg_partman 4.7, in the same cluster and run.
//!
//! For S daily sets with premake 4 (S = 200 and 1,000): the time to register
//! all of them, and one `run_maintenance()` over all of them when there is
//! nothing to do. Targets: registration <= 0.5x pg_partman's time, a no-op
//! run <= 0.2x, and a flat cost per set as S grows. Then retention of 365
//! expired daily children in one run (target <= 5 s), both tools.

use crate::report::{format_duration, median_times_interleaved, Better, Report, Row};
use crate::Bench;
use postgres::Client;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_partitions";

fn table_ddl(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text,
                              PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)"
    )
}

fn timed(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

fn per_set(total: Duration, sets: usize) -> String {
    format!("{:.2} ms/set", total.as_secs_f64() * 1e3 / sets as f64)
}

/// A row comparing our total time over `sets` sets with pg_partman's.
fn per_set_row(
    scenario: String,
    ours: Duration,
    partman: Duration,
    sets: usize,
    target: f64,
) -> Row {
    Row {
        scenario,
        ours: format!("{} ({})", format_duration(ours), per_set(ours, sets)),
        anchor: format!(
            "{} ({}) pg_partman 4.7",
            format_duration(partman),
            per_set(partman, sets)
        ),
        ratio: Some(ours.as_secs_f64() / partman.as_secs_f64()),
        target: Some((Better::Lower, target)),
    }
}

fn fresh(bench: &Bench) -> Client {
    let mut client = bench.fresh_database(DATABASE);
    client
        .batch_execute("CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;")
        .expect("pg_partman 4.7 (Debian's postgresql-15-partman) must be installed: make setup installs it");
    client
}

pub fn partitions(bench: &Bench, report: &mut Report) {
    for sets in [200usize, 1000] {
        let mut client = fresh(bench);
        for i in 0..sets {
            client
                .batch_execute(&table_ddl(&format!("ours_{i}")))
                .unwrap();
            client
                .batch_execute(&table_ddl(&format!("partman_{i}")))
                .unwrap();
        }
        // One untimed set each first (library load, catalog caches), then the
        // two tools alternate set by set, so neither runs on a warmer or a
        // fuller catalog than the other.
        let register_ours = |client: &mut Client, table: &str| {
            client
                .execute(
                    "SELECT tenancy.create_partitioned($1::text::regclass, 'created_at', '1 day', 4)",
                    &[&table],
                )
                .unwrap();
        };
        let register_partman = |client: &mut Client, table: &str| {
            client
                .execute(
                    "SELECT partman.create_parent($1, 'created_at', 'native', 'daily', p_premake := 4)",
                    &[&format!("public.{table}")],
                )
                .unwrap();
        };
        client.batch_execute(&table_ddl("ours_warmup")).unwrap();
        client.batch_execute(&table_ddl("partman_warmup")).unwrap();
        register_ours(&mut client, "ours_warmup");
        register_partman(&mut client, "partman_warmup");
        let (mut ours, mut partman) = (Duration::ZERO, Duration::ZERO);
        for i in 0..sets {
            ours += timed(|| register_ours(&mut client, &format!("ours_{i}")));
            partman += timed(|| register_partman(&mut client, &format!("partman_{i}")));
        }
        report.push(per_set_row(
            format!("partitions: register {sets} daily sets (premake 4)"),
            ours,
            partman,
            sets,
            0.5,
        ));

        let mut partman_client = bench.connect(DATABASE);
        let (ours, partman) = median_times_interleaved(
            1,
            5,
            || {
                let actions: i64 = client
                    .query_one("SELECT count(*) FROM tenancy.run_maintenance()", &[])
                    .unwrap()
                    .get(0);
                assert_eq!(actions, 0, "nothing should be due");
            },
            || {
                partman_client
                    .batch_execute("SELECT partman.run_maintenance()")
                    .unwrap();
            },
        );
        report.push(per_set_row(
            format!("partitions: no-op run_maintenance over {sets} sets"),
            ours,
            partman,
            sets,
            0.2,
        ));
    }

    // Retention: 365 expired daily children dropped in one run.
    let mut client = fresh(bench);
    client.batch_execute(&table_ddl("ours_retention")).unwrap();
    client
        .batch_execute(&table_ddl("partman_retention"))
        .unwrap();
    client
        .batch_execute(
            "SELECT tenancy.create_partitioned('ours_retention', 'created_at', '1 day', 4,
                                               start_at => now() - interval '395 days');
             SELECT partman.create_parent('public.partman_retention', 'created_at', 'native', 'daily',
                                          p_premake := 4, p_start_partition := (now() - interval '395 days')::text);",
        )
        .unwrap();
    client
        .batch_execute(
            "UPDATE tenancy.partition_sets SET retention = '30 days';
             UPDATE partman.part_config SET retention = '30 days', retention_keep_table = false;",
        )
        .unwrap();
    let mut dropped = 0i64;
    let ours = timed(|| {
        dropped = client
            .query_one(
                "SELECT count(*) FROM tenancy.run_maintenance() WHERE action = 'dropped'",
                &[],
            )
            .unwrap()
            .get(0);
    });
    let partman = timed(|| {
        client
            .batch_execute("SELECT partman.run_maintenance('public.partman_retention')")
            .unwrap();
    });
    assert!(
        dropped >= 365,
        "expected at least 365 expired children, dropped {dropped}"
    );
    report.push(Row {
        scenario: format!("partitions: retention dropping {dropped} daily children"),
        ours: format_duration(ours),
        anchor: format!("{} pg_partman 4.7", format_duration(partman)),
        ratio: Some(ours.as_secs_f64() / partman.as_secs_f64()),
        target: None,
    });
    report.push(Row {
        scenario: "partitions: retention run time (target <= 5 s)".into(),
        ours: format_duration(ours),
        anchor: "5 s target".into(),
        ratio: Some(ours.as_secs_f64() / 5.0),
        target: Some((Better::Lower, 1.0)),
    });
    drop(client);
    let mut admin = bench.connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}
