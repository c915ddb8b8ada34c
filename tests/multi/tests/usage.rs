//! Request-rate limits under real concurrency: 16 sessions calling
//! `throttle` for one tenant as fast as they can are admitted burst + rate x
//! seconds, no more, within the timing of the measurement itself.

use pg_tenancy_multi::TestDb;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SESSIONS: usize = 16;
const TENANT: &str = "eeeeeeee-5555-4000-8000-00000000000e";
const RATE: f64 = 50.0;
const BURST: f64 = 20.0;

#[test]
fn racing_sessions_are_admitted_rate_times_seconds_plus_burst() {
    let db = TestDb::new("multi_usage_throttle");
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('throttled', 'Throttled', 'free', '{TENANT}');
             SELECT tenancy.set_throttle('api', {RATE}, {BURST}, tenant => '{TENANT}');
             SELECT tenancy.reset_throttles();"
        ))
        .unwrap();
    let tenant: Uuid = TENANT.parse().unwrap();
    let barrier = Arc::new(Barrier::new(SESSIONS + 1));
    let mut workers = Vec::new();
    for _ in 0..SESSIONS {
        let mut client = db.connect();
        // The rates are read once per backend: not during the race.
        client
            .query_one("SELECT tenancy.throttle($1, 'other')", &[&tenant])
            .unwrap();
        let barrier = barrier.clone();
        workers.push(thread::spawn(move || {
            barrier.wait();
            let first = Instant::now();
            let deadline = first + Duration::from_secs(3);
            let (mut admitted, mut refused) = (0i64, 0i64);
            while Instant::now() < deadline {
                let yes: bool = client
                    .query_one("SELECT tenancy.throttle($1, 'api')", &[&tenant])
                    .unwrap()
                    .get(0);
                if yes {
                    admitted += 1;
                } else {
                    refused += 1;
                }
            }
            (admitted, refused, first, Instant::now())
        }));
    }
    barrier.wait();
    let results: Vec<(i64, i64, Instant, Instant)> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    // From the first call sent to the last answer received.
    let started = results.iter().map(|r| r.2).min().unwrap();
    let ended = results.iter().map(|r| r.3).max().unwrap();
    let admitted: i64 = results.iter().map(|r| r.0).sum();
    let refused: i64 = results.iter().map(|r| r.1).sum();
    // The bucket's own time runs from the first call to the last, inside
    // what was measured here; the difference is at most the time a call
    // takes to start and to end (a few milliseconds), plus one token.
    let seconds = ended.duration_since(started).as_secs_f64();
    let expected = BURST + RATE * seconds;
    let slack = 1.0 + RATE * 0.05;
    assert!(
        refused > 1000,
        "the race must run far past the rate (refused {refused})"
    );
    assert!(
        (admitted as f64) <= expected + 1.0 && (admitted as f64) >= expected - slack,
        "admitted {admitted}, expected {expected:.1} (burst {BURST} + {RATE}/s x {seconds:.3} s)"
    );
}

const CAPPED: &str = "eeeeeeee-5555-4000-8000-0000000000ca";

/// A session of the capped tenant, its tenant set.
fn capped_session(db: &TestDb) -> postgres::Client {
    let mut client = db.connect();
    client
        .execute("SELECT tenancy.set_tenant($1::text::uuid)", &[&CAPPED])
        .unwrap();
    client
}

fn sqlstate(result: Result<Vec<postgres::Row>, postgres::Error>) -> Option<String> {
    result
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()))
}

/// Runs `sql` in a new capped session on another thread; returns its pid
/// and the thread, which yields the statement's SQLSTATE (None: it ran).
fn in_background(db: &TestDb, sql: &'static str) -> (i32, thread::JoinHandle<Option<String>>) {
    let mut client = capped_session(db);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let handle = thread::spawn(move || sqlstate(client.query(sql, &[])));
    // Until it runs.
    thread::sleep(Duration::from_millis(300));
    (pid, handle)
}

/// max_running_statements: the statement over the cap fails at once with
/// 53400, and a place comes back when a statement ends, fails, is cancelled
/// or its backend is terminated.
#[test]
fn the_running_statement_cap_refuses_the_extra_one_and_frees_every_place() {
    let db = TestDb::new("multi_usage_cap");
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('capped', 'Capped', 'free', '{CAPPED}');
             SELECT tenancy.set_governance('max_running_statements', '2', tenant => '{CAPPED}');"
        ))
        .unwrap();
    let mut probe = capped_session(&db);
    let over = |probe: &mut postgres::Client| sqlstate(probe.query("SELECT 1", &[]));

    // Two long statements hold both places: a third fails at once.
    let (_, first) = in_background(&db, "SELECT pg_sleep(1.5)");
    let (_, second) = in_background(&db, "SELECT pg_sleep(1.5)");
    let start = Instant::now();
    assert_eq!(over(&mut probe).as_deref(), Some("53400"));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused without waiting"
    );
    assert_eq!(first.join().unwrap(), None);
    assert_eq!(second.join().unwrap(), None);
    assert_eq!(over(&mut probe), None, "both places came back");

    // A failing statement gives its place back, in autocommit and in a
    // transaction block left aborted.
    admin
        .execute(
            "SELECT tenancy.set_governance('max_running_statements', '1', tenant => $1::text::uuid)",
            &[&CAPPED],
        )
        .unwrap();
    let mut failing = capped_session(&db);
    assert_eq!(
        sqlstate(failing.query("SELECT 1 / 0", &[])).as_deref(),
        Some("22012")
    );
    assert_eq!(over(&mut probe), None);
    failing.batch_execute("BEGIN").unwrap();
    assert_eq!(
        sqlstate(failing.query("SELECT 1 / 0", &[])).as_deref(),
        Some("22012")
    );
    assert_eq!(
        over(&mut probe),
        None,
        "an aborted transaction holds no place"
    );
    failing.batch_execute("ROLLBACK").unwrap();

    // Cancelled.
    let (pid, sleeper) = in_background(&db, "SELECT pg_sleep(30)");
    assert_eq!(over(&mut probe).as_deref(), Some("53400"));
    admin
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap();
    assert_eq!(sleeper.join().unwrap().as_deref(), Some("57014"));
    assert_eq!(
        over(&mut probe),
        None,
        "a cancelled statement gives its place back"
    );

    // Terminated.
    let (pid, sleeper) = in_background(&db, "SELECT pg_sleep(30)");
    assert_eq!(over(&mut probe).as_deref(), Some("53400"));
    admin
        .execute("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .unwrap();
    assert!(
        sleeper.join().unwrap().is_some(),
        "the terminated session's statement failed"
    );
    assert_eq!(
        over(&mut probe),
        None,
        "a terminated backend gives its place back"
    );

    // Without the rule, nothing is counted.
    admin
        .batch_execute("DELETE FROM tenancy.governance")
        .unwrap();
    let (_, sleeper) = in_background(&db, "SELECT pg_sleep(1)");
    assert_eq!(over(&mut probe), None);
    assert_eq!(sleeper.join().unwrap(), None);
}
