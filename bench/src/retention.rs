//! Retention, 1M expired rows deleted while another session keeps inserting
//! into the same table: `CALL tenancy.run_retention()` (committed batches of
//! 10,000, target at least 100,000 rows/s, worst insert at most 200 ms)
//! beside the seed's `apply_retention_policies()` (seed "mirai-chat-platform":
//! one DELETE in one transaction), with the same insert-latency probe.

use crate::report::{format_duration, Better, Report, Row};
use crate::Bench;
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_retention";
const EXPIRED: i64 = 1_000_000;
const TARGET_ROWS_PER_SECOND: f64 = 100_000.0;
const LATENCY_BUDGET: Duration = Duration::from_millis(200);

const SEED_RETENTION: &str = r#"
CREATE TABLE retention_policies (
    id serial PRIMARY KEY, table_name text, retention_days int, archive_strategy text,
    is_active boolean DEFAULT true, last_applied timestamptz);
CREATE OR REPLACE FUNCTION apply_retention_policies()
RETURNS void AS $$
DECLARE
    r RECORD;
BEGIN
    FOR r IN
        SELECT * FROM retention_policies
        WHERE is_active = true
    LOOP
        CASE r.archive_strategy
            WHEN 'delete' THEN
                EXECUTE format('
                    DELETE FROM %I
                    WHERE created_at < NOW() - INTERVAL ''%s days''',
                    r.table_name, r.retention_days
                );
            WHEN 'anonymize' THEN
                NULL;
            WHEN 'archive' THEN
                NULL;
        END CASE;
        UPDATE retention_policies
        SET last_applied = NOW()
        WHERE id = r.id;
    END LOOP;
END;
$$ LANGUAGE plpgsql;
"#;

/// A table of `EXPIRED` rows older than a year and a few fresh ones.
fn fill(client: &mut Client, table: &str) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid,
                                   created_at timestamptz NOT NULL, body text);
             INSERT INTO {table} (tenant_id, created_at, body)
             SELECT gen_random_uuid(), now() - interval '400 days' + g * interval '1 second', repeat('x', 100)
               FROM generate_series(1, {EXPIRED}) g;
             INSERT INTO {table} (tenant_id, created_at, body)
             SELECT gen_random_uuid(), now() - g * interval '1 minute', 'fresh' FROM generate_series(1, 10000) g;
             CREATE INDEX ON {table} (created_at);"
        ))
        .unwrap();
    client
        .batch_execute(&format!("VACUUM ANALYZE {table}"))
        .unwrap();
    client.batch_execute("CHECKPOINT").unwrap();
}

/// Runs `work` while another session inserts single rows into `table` as
/// fast as it can; returns the work's time and the worst insert's latency.
fn with_inserter(bench: &Bench, table: &str, work: impl FnOnce()) -> (Duration, Duration, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let inserter = {
        let stop = stop.clone();
        let mut client = bench.connect(DATABASE);
        let sql = format!("INSERT INTO {table} (tenant_id, created_at, body) VALUES (gen_random_uuid(), now(), 'new')");
        thread::spawn(move || {
            let (mut worst, mut inserted) = (Duration::ZERO, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                client.batch_execute(&sql).unwrap();
                worst = worst.max(start.elapsed());
                inserted += 1;
            }
            (worst, inserted)
        })
    };
    thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    work();
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (worst, inserted) = inserter.join().unwrap();
    (elapsed, worst, inserted)
}

pub fn retention(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    client.batch_execute(SEED_RETENTION).unwrap();

    fill(&mut client, "messages");
    client
        .batch_execute("SELECT tenancy.set_retention('messages', '30 days', batch_size => 10000)")
        .unwrap();
    let (ours, ours_worst, ours_inserts) = with_inserter(bench, "messages", || {
        client
            .batch_execute("CALL tenancy.run_retention()")
            .unwrap();
    });
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM messages WHERE created_at < now() - interval '30 days'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "run_retention left expired rows");

    fill(&mut client, "seed_messages");
    client
        .batch_execute("INSERT INTO retention_policies (table_name, retention_days, archive_strategy) VALUES ('seed_messages', 30, 'delete')")
        .unwrap();
    let (seed, seed_worst, seed_inserts) = with_inserter(bench, "seed_messages", || {
        client
            .batch_execute("SELECT apply_retention_policies()")
            .unwrap();
    });

    let rate = |d: Duration| EXPIRED as f64 / d.as_secs_f64();
    report.push(Row {
        scenario: format!("run_retention: {EXPIRED} expired rows deleted, batches of 10000, under inserts (rows/s)"),
        ours: format!("{:.0} rows/s ({})", rate(ours), format_duration(ours)),
        anchor: format!("{:.0} rows/s ({}) seed, one DELETE", rate(seed), format_duration(seed)),
        ratio: Some(rate(ours) / TARGET_ROWS_PER_SECOND),
        target: Some((Better::Higher, 1.0)),
    });
    report.push(Row {
        scenario: "run_retention: worst latency of a concurrent single-row INSERT (vs 200 ms)"
            .into(),
        ours: format!("{} ({ours_inserts} inserts)", format_duration(ours_worst)),
        anchor: format!(
            "{} seed ({seed_inserts} inserts)",
            format_duration(seed_worst)
        ),
        ratio: Some(ours_worst.as_secs_f64() / LATENCY_BUDGET.as_secs_f64()),
        target: Some((Better::Lower, 1.0)),
    });
    report.compare_times(
        "run_retention vs the seed's single DELETE, same rows (time)",
        ours,
        "seed",
        seed,
        None,
    );
}
