//! Partition maintenance against other sessions: it never queues behind a
//! long transaction, gives up within its lock timeout, and writers keep going.

use pg_tenancy_multi::TestDb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A long-running reader holds the set's default partition (as any report
/// over the parent does). Maintenance, which needs that partition exclusively
/// to attach a new child, tries for `tenancy.maintenance_lock_timeout` (1 s by
/// default), reports the set as skipped and returns; a writer inserting into
/// the set all the while is never held up. Once the reader is gone, the next
/// run creates the children.
#[test]
fn maintenance_gives_up_on_a_held_lock_while_inserts_flow() {
    let db = TestDb::new("multi_partitions");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "SET tenancy.now_override = '2026-11-22 12:00:00+00';
             CREATE TABLE events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
             CREATE INDEX ON events (at);
             SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 1);",
        )
        .unwrap();

    let mut reader = db.connect();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM events;")
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = db.connect();
        thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut inserted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                client
                    .execute(
                        "INSERT INTO events VALUES ('2026-11-22 13:00:00+00', 1)",
                        &[],
                    )
                    .unwrap();
                worst = worst.max(start.elapsed());
                inserted += 1;
            }
            (inserted, worst)
        })
    };

    let mut maint = db.connect();
    maint
        .batch_execute("SET tenancy.now_override = '2026-11-25 12:00:00+00'")
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let rows = maint
        .query(
            "SELECT action, coalesce(detail, '') FROM tenancy.run_maintenance()",
            &[],
        )
        .unwrap();
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (inserted, worst) = writer.join().unwrap();

    let outcomes: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    eprintln!("maintenance took {took:?}: {outcomes:?}; writer inserted {inserted} rows, worst latency {worst:?}");
    assert!(
        outcomes
            .iter()
            .any(|(action, detail)| action == "skipped" && detail.contains("could not lock")),
        "maintenance did not report the set as skipped: {outcomes:?}"
    );
    assert!(!outcomes.iter().any(|(action, _)| action == "created"));
    assert!(
        took >= Duration::from_millis(900),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(3000),
        "did not give up within the timeout: {took:?}"
    );
    assert!(
        inserted > 50,
        "the writer was held up: only {inserted} inserts"
    );
    assert!(
        worst < Duration::from_millis(250),
        "an insert waited {worst:?}"
    );

    reader.batch_execute("COMMIT").unwrap();
    let created: i64 = maint
        .query_one(
            "SELECT count(*) FROM tenancy.run_maintenance() WHERE action = 'created'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        created, 2,
        "the next run should create the 25th and the 26th"
    );
    let total: i64 = admin
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(total as u64, inserted);
}
