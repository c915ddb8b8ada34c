//! Partition maintenance against other sessions: it never queues behind a
//! long transaction, gives up within its lock timeout, and writers keep going.

use pg_tenancy_multi::TestDb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A session running one INSERT over and over until stopped; it reports how
/// many it made and the longest one took.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(u64, Duration)>,
}

impl Writer {
    fn start(db: &TestDb, insert: &'static str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = db.connect();
        let running = stop.clone();
        let thread = thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut inserted = 0u64;
            while !running.load(Ordering::Relaxed) {
                let start = Instant::now();
                client.execute(insert, &[]).unwrap();
                worst = worst.max(start.elapsed());
                inserted += 1;
            }
            (inserted, worst)
        });
        Writer { stop, thread }
    }

    fn stop(self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

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
             SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 1);
             CREATE TABLE logs (at timestamptz NOT NULL) PARTITION BY RANGE (at);
             SELECT tenancy.create_partitioned('logs', 'at', '1 day', premake => 1,
                 retention => '2 days', start_at => '2026-11-20 00:00:00+00');",
        )
        .unwrap();

    let mut reader = db.connect();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM events; SELECT count(*) FROM logs;")
        .unwrap();

    let writer = Writer::start(
        &db,
        "INSERT INTO events VALUES ('2026-11-22 13:00:00+00', 1)",
    );

    let mut maint = db.connect();
    maint
        .batch_execute("SET tenancy.now_override = '2026-11-25 12:00:00+00'")
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let rows = maint
        .query(
            "SELECT parent::text, action, coalesce(detail, '') FROM tenancy.run_maintenance()",
            &[],
        )
        .unwrap();
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(200));
    let (inserted, worst) = writer.stop();

    let outcomes: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    eprintln!("maintenance took {took:?}: {outcomes:?}; writer inserted {inserted} rows, worst latency {worst:?}");
    // Each set is given up at its first lock not free in time: one `skipped`
    // line each, and its later steps (retention for logs) do not wait again.
    for parent in ["events", "logs"] {
        let lines: Vec<&(String, String, String)> =
            outcomes.iter().filter(|(p, _, _)| p == parent).collect();
        assert!(
            lines.len() == 1 && lines[0].1 == "skipped" && lines[0].2.contains("could not lock"),
            "{parent} was not skipped exactly once: {outcomes:?}"
        );
    }
    assert!(
        took >= Duration::from_millis(1800),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(3500),
        "did not give up within one timeout per set: {took:?}"
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
            "SELECT count(*) FROM tenancy.run_maintenance('events') WHERE action = 'created'",
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

/// Rows stranded in the default partition are moved out while another session
/// keeps inserting into an existing child: the writer is never held up, and
/// every row ends up exactly once in a child of its own day.
#[test]
fn relocation_from_the_default_partition_lets_writers_through() {
    let db = TestDb::new("multi_relocation");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "SET tenancy.now_override = '2026-11-22 12:00:00+00';
             CREATE TABLE events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
             CREATE INDEX ON events (at);
             SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 1);
             -- 200,000 rows over five days that have no child: all in the default.
             INSERT INTO events
             SELECT '2026-11-10 00:00:00+00'::timestamptz + (g % 5) * interval '1 day' + (g % 86400) * interval '1 second', g
               FROM generate_series(1, 200000) g;",
        )
        .unwrap();

    let writer = Writer::start(
        &db,
        "INSERT INTO events VALUES ('2026-11-22 13:00:00+00', -1)",
    );

    let mut maint = db.connect();
    maint
        .batch_execute("SET tenancy.now_override = '2026-11-22 12:00:00+00'")
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let relocated: i64 = maint
        .query_one(
            "SELECT count(*) FROM tenancy.run_maintenance('events') WHERE action = 'relocated'",
            &[],
        )
        .unwrap()
        .get(0);
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(200));
    let (inserted, worst) = writer.stop();
    eprintln!("relocation of 200000 rows took {took:?}; writer inserted {inserted} rows, worst latency {worst:?}");

    assert_eq!(relocated, 5, "one new child per stranded day");
    assert!(
        worst < Duration::from_millis(250),
        "an insert into an existing child waited {worst:?} (the move took {took:?})"
    );
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE v > 0), count(DISTINCT v) FILTER (WHERE v > 0),
                    count(*) FILTER (WHERE v < 0),
                    (SELECT count(*) FROM ONLY events_default),
                    count(*) FILTER (WHERE v > 0 AND tableoid::regclass::text
                                     <> 'events_p' || to_char(at AT TIME ZONE 'UTC', 'YYYYMMDD'))
               FROM events",
            &[],
        )
        .unwrap();
    let (moved, distinct, written, left, misplaced): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (moved, distinct),
        (200_000, 200_000),
        "rows lost or duplicated"
    );
    assert_eq!(written as u64, inserted);
    assert_eq!(left, 0, "rows left in the default partition");
    assert_eq!(misplaced, 0, "rows in the wrong child");
}
