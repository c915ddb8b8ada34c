//! health_check() with 1,000 and 10,000 relations and 100 open connections
//! (target: at most 100 ms at 10,000), beside the seed's `system_health`
//! view (seed "mirai-chat-platform": four figures, no thresholds) over the
//! same catalog, for scale.

use crate::report::{format_duration, median_times_interleaved, Better, Report, Row};
use crate::Bench;
use postgres::Client;
use std::time::Duration;

const DATABASE: &str = "bench_health";
const BUDGET: Duration = Duration::from_millis(100);
/// Idle connections held open while measuring, a tenth of them inside a transaction.
const CONNECTIONS: usize = 100;

const SEED_SYSTEM_HEALTH: &str = "
CREATE OR REPLACE VIEW system_health AS
SELECT 'database_size' as metric,
    pg_database_size(current_database())::DECIMAL / (1024*1024*1024) as value, 'GB' as unit
UNION ALL
SELECT 'active_connections', count(*)::DECIMAL, 'count' FROM pg_stat_activity WHERE state = 'active'
UNION ALL
SELECT 'cache_hit_ratio',
    CASE WHEN sum(blks_hit + blks_read) = 0 THEN 0
         ELSE (sum(blks_hit)::DECIMAL / sum(blks_hit + blks_read) * 100) END, 'percentage'
FROM pg_stat_database WHERE datname = current_database()
UNION ALL
SELECT 'deadlocks', deadlocks::DECIMAL, 'count' FROM pg_stat_database WHERE datname = current_database();
";

/// Adds tables (each with an identity key: table, index and sequence, so
/// three relations) until the database holds `relations` relations of its
/// own, with one row in each so every table and sequence has statistics.
fn grow_to(client: &mut Client, relations: i64) {
    client
        .batch_execute(&format!(
            "DO $$
             DECLARE
                 i int := (SELECT count(*) FROM pg_class WHERE relname LIKE 'bench_t%' AND relkind = 'r');
             BEGIN
                 WHILE (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public') < {relations} LOOP
                     i := i + 1;
                     EXECUTE format('CREATE TABLE bench_t%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int)', i);
                     EXECUTE format('INSERT INTO bench_t%s (v) VALUES (1)', i);
                 END LOOP;
             END $$;"
        ))
        .unwrap();
}

pub fn health(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    client.batch_execute(SEED_SYSTEM_HEALTH).unwrap();
    let mut idle: Vec<Client> = (0..CONNECTIONS).map(|_| bench.connect(DATABASE)).collect();
    for c in idle.iter_mut().take(CONNECTIONS / 10) {
        c.batch_execute("BEGIN; SELECT 1").unwrap();
    }
    let mut other = bench.connect(DATABASE);
    let mut measured = vec![];
    for relations in [1_000, 10_000] {
        grow_to(&mut client, relations);
        let (ours, seed) = median_times_interleaved(
            2,
            9,
            || {
                client
                    .query_one("SELECT count(*) FROM tenancy.health_check()", &[])
                    .unwrap();
            },
            || {
                other.query("SELECT * FROM system_health", &[]).unwrap();
            },
        );
        measured.push((relations, ours));
        report.compare_times(
            &format!("health_check(), {relations} relations, {CONNECTIONS} connections: vs the seed's system_health (4 figures)"),
            ours,
            "seed view",
            seed,
            None,
        );
        report.push(Row {
            scenario: format!("health_check(), {relations} relations, {CONNECTIONS} connections: against the 100 ms budget"),
            ours: format_duration(ours),
            anchor: format!("{} budget", format_duration(BUDGET)),
            ratio: Some(ours.as_secs_f64() / BUDGET.as_secs_f64()),
            target: Some((Better::Lower, 1.0)),
        });
    }
    let ((small, at_small), (large, at_large)) = (measured[0], measured[1]);
    report.push(Row {
        scenario: format!("health_check() growth from {small} to {large} relations"),
        ours: format!(
            "{} -> {}",
            format_duration(at_small),
            format_duration(at_large)
        ),
        anchor: format!("{}x the relations", large / small),
        ratio: Some(at_large.as_secs_f64() / at_small.as_secs_f64()),
        target: None,
    });
    for c in idle.iter_mut().take(CONNECTIONS / 10) {
        c.batch_execute("COMMIT").unwrap();
    }
}
