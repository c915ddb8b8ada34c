//! Retention against failure and time: a run killed in the middle of a
//! million-row archive loses and duplicates nothing, and the scheduler (the
//! suites' cluster preloads pg_tenancy) runs the jobs every interval, survives
//! failing jobs and takes new settings on reload.

use pg_tenancy_multi::{connect, TestDb};
use postgres::Client;
use std::thread;
use std::time::{Duration, Instant};

const ROWS: i64 = 1_000_000;
const FRESH: i64 = 1_000;

fn count(client: &mut Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_killed_archive_run_resumes_with_every_row_exactly_once() {
    let db = TestDb::new("multi_retention_kill");
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text);
             INSERT INTO events SELECT g, now() - interval '400 days' + g * interval '1 second', 'expired ' || g
               FROM generate_series(1, {ROWS}) g;
             INSERT INTO events SELECT {ROWS} + g, now() - g * interval '1 minute', 'fresh'
               FROM generate_series(1, {FRESH}) g;
             CREATE INDEX ON events (created_at);
             CREATE TABLE events_archive (LIKE events);
             SELECT tenancy.set_retention('events', '30 days', 'archive', archive_table => 'events_archive', batch_size => 10000);"
        ))
        .unwrap();
    // Alone: VACUUM refuses the implicit transaction of a multi-statement batch.
    admin.batch_execute("VACUUM ANALYZE events").unwrap();

    let mut runner = db.connect();
    let runner_pid: i32 = runner
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let run = thread::spawn(move || runner.batch_execute("CALL tenancy.run_retention()"));

    // Kill it once a good part (but not all) of the rows has moved.
    let start = Instant::now();
    loop {
        let archived = count(&mut admin, "SELECT count(*) FROM events_archive");
        if archived >= ROWS / 5 {
            assert!(
                archived < ROWS,
                "the run finished before it could be killed"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run made no progress"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&runner_pid])
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(
        run.join().unwrap().is_err(),
        "the killed session's CALL failed"
    );

    // Every row is in exactly one of the two tables, none twice.
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events_archive),
                    (SELECT count(DISTINCT id) FROM events_archive)",
            &[],
        )
        .unwrap();
    let (left, archived, distinct): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(left + archived, ROWS + FRESH);
    assert_eq!(archived, distinct);
    assert!(
        archived > 0 && archived < ROWS,
        "killed mid-run: {archived}"
    );
    // The killed run's record stays unfinished.
    let unfinished = count(
        &mut admin,
        "SELECT count(*) FROM tenancy.job_runs WHERE job = 'retention:events' AND finished_at IS NULL",
    );
    assert_eq!(unfinished, 1);

    // Run again: the end state is exact.
    admin.batch_execute("CALL tenancy.run_retention()").unwrap();
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE body <> 'fresh'),
                    (SELECT count(*) FROM events_archive), (SELECT count(DISTINCT id) FROM events_archive),
                    (SELECT count(*) FROM events_archive WHERE body = 'fresh'),
                    (SELECT coalesce(sum(id), 0)::bigint FROM events_archive)",
            &[],
        )
        .unwrap();
    let (left, expired_left, archived, distinct, fresh_archived, id_sum): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(left, FRESH);
    assert_eq!(expired_left, 0);
    assert_eq!(archived, ROWS);
    assert_eq!(distinct, ROWS);
    assert_eq!(fresh_archived, 0);
    assert_eq!(id_sum, ROWS * (ROWS + 1) / 2, "ids 1..ROWS, each once");
}

/// Resets the scheduler settings however the test ends.
struct SchedulerSettings;

impl SchedulerSettings {
    fn set(database: &str, interval: &str) -> SchedulerSettings {
        // One statement per call: ALTER SYSTEM refuses a transaction block.
        let mut admin = connect("postgres");
        for sql in [
            format!("ALTER SYSTEM SET tenancy.scheduler_interval = '{interval}'"),
            format!("ALTER SYSTEM SET tenancy.scheduler_database = '{database}'"),
            "SELECT pg_reload_conf()".into(),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        SchedulerSettings
    }

    fn interval(interval: &str) {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!(
                "ALTER SYSTEM SET tenancy.scheduler_interval = '{interval}'"
            ))
            .unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    }
}

impl Drop for SchedulerSettings {
    fn drop(&mut self) {
        let mut admin = connect("postgres");
        for sql in [
            "ALTER SYSTEM RESET tenancy.scheduler_interval",
            "ALTER SYSTEM RESET tenancy.scheduler_database",
            "SELECT pg_reload_conf()",
        ] {
            let _ = admin.batch_execute(sql);
        }
        // Let the worker leave the database before it is dropped.
        thread::sleep(Duration::from_millis(500));
    }
}

fn scheduled_runs(client: &mut Client) -> i64 {
    count(
        client,
        "SELECT count(*) FROM tenancy.job_runs WHERE job = 'record_metrics'",
    )
}

fn wait_for(
    client: &mut Client,
    what: &str,
    within: Duration,
    mut done: impl FnMut(&mut Client) -> bool,
) {
    let start = Instant::now();
    while !done(client) {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_scheduler_runs_jobs_survives_failures_and_reloads_settings() {
    let db = TestDb::new("multi_scheduler");
    let mut admin = db.connect();
    // A retention policy that fails on every run: its column changed type.
    admin
        .batch_execute(
            "CREATE TABLE logs (id int PRIMARY KEY, logged_on date NOT NULL);
             SELECT tenancy.set_retention('logs', '1 day', time_column => 'logged_on');
             ALTER TABLE logs ALTER COLUMN logged_on TYPE text;",
        )
        .unwrap();
    assert_eq!(
        scheduled_runs(&mut admin),
        0,
        "nothing runs while the database setting is empty"
    );

    let _settings = SchedulerSettings::set(&db.name, "1s");
    wait_for(
        &mut admin,
        "three scheduled runs",
        Duration::from_secs(20),
        |c| scheduled_runs(c) >= 3,
    );
    let worker: i64 = count(
        &mut admin,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_tenancy scheduler' AND datname = current_database()",
    );
    assert_eq!(worker, 1);
    // Every run recorded every step; the failing table failed every time and the worker went on.
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE job = 'partition_maintenance'),
                    count(*) FILTER (WHERE job = 'audit_seal' AND status = 'ok'),
                    count(*) FILTER (WHERE job = 'retention:logs' AND status = 'failed'),
                    count(*) FILTER (WHERE job = 'retention:logs' AND status = 'ok')
               FROM tenancy.job_runs",
            &[],
        )
        .unwrap();
    let (maintenance, seals, failed, succeeded): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert!(
        maintenance >= 3 && seals >= 3,
        "{maintenance} maintenance, {seals} seals"
    );
    assert!(failed >= 3, "{failed} failed retention runs");
    assert_eq!(succeeded, 0);

    // A reload with a long interval stops the runs...
    SchedulerSettings::interval("1h");
    thread::sleep(Duration::from_millis(1500));
    let before = scheduled_runs(&mut admin);
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        scheduled_runs(&mut admin),
        before,
        "no run within the new interval"
    );
    // ... and a short one brings them back at once.
    SchedulerSettings::interval("1s");
    wait_for(&mut admin, "runs to resume", Duration::from_secs(10), |c| {
        scheduled_runs(c) >= before + 2
    });
}

#[test]
fn a_concurrent_run_jobs_returns_at_once_with_a_notice() {
    let db = TestDb::new("multi_jobs_concurrent");
    // One session is in the middle of a run (it holds the run's lock between steps).
    let mut first = db.connect();
    assert!(first
        .query_one("SELECT tenancy._jobs_begin(false)", &[])
        .unwrap()
        .get::<_, bool>(0));

    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = notices.clone();
    let mut config: postgres::Config = db.dsn().parse().unwrap();
    config.notice_callback(move |notice| seen.lock().unwrap().push(notice.message().to_string()));
    let mut second = config.connect(postgres::NoTls).unwrap();
    let start = Instant::now();
    second.batch_execute("CALL tenancy.run_jobs()").unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "it did not wait");
    assert_eq!(
        notices.lock().unwrap().as_slice(),
        ["tenancy.run_jobs() is already running in another session: skipped"]
    );
    assert_eq!(
        count(&mut second, "SELECT count(*) FROM tenancy.job_runs"),
        0
    );

    // Once the first run is over, a call runs every step.
    while first
        .query_one("SELECT tenancy._jobs_step()", &[])
        .unwrap()
        .get::<_, bool>(0)
    {}
    second.batch_execute("CALL tenancy.run_jobs()").unwrap();
    let jobs: Vec<String> = second
        .query(
            "SELECT DISTINCT job FROM tenancy.job_runs ORDER BY job",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        jobs,
        [
            "audit_seal",
            "partition_maintenance",
            "record_metrics",
            "retention"
        ]
    );
}
