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
    let (_, first) = in_background(&db, "SELECT pg_sleep(3)");
    let (_, second) = in_background(&db, "SELECT pg_sleep(3)");
    let start = Instant::now();
    assert_eq!(over(&mut probe).as_deref(), Some("53400"));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "refused without waiting"
    );
    // Monitoring sees the tenant at its cap.
    let at_cap = admin
        .query_one(
            "SELECT running_statements, running_cap FROM tenancy.tenant_stats() WHERE tenant_id = $1::text::uuid",
            &[&CAPPED],
        )
        .unwrap();
    assert_eq!(
        (
            at_cap.get::<_, Option<i32>>(0),
            at_cap.get::<_, Option<i32>>(1)
        ),
        (Some(2), Some(2))
    );
    let check = admin
        .query_one(
            "SELECT status, value::int, detail FROM tenancy.health_check() WHERE check_name = 'tenants_at_running_cap'",
            &[],
        )
        .unwrap();
    assert_eq!(check.get::<_, String>(0), "warning");
    assert_eq!(check.get::<_, i32>(1), 1);
    assert!(
        check.get::<_, String>(2).contains(CAPPED),
        "the detail names the tenant"
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

const BUSY_A: &str = "eeeeeeee-5555-4000-8000-0000000000a1";
const BUSY_B: &str = "eeeeeeee-5555-4000-8000-0000000000b1";

/// Accounting under concurrency: tenant A's 500 SELECTs and tenant B's 50
/// UPDATEs, sent at the same time from their own sessions, are each
/// attributed exactly to their tenant.
#[test]
fn concurrent_tenants_are_each_attributed_exactly() {
    let db = TestDb::new("multi_usage_activity");
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('busy-a', 'Busy A', 'free', '{BUSY_A}');
             SELECT tenancy.create_tenant('busy-b', 'Busy B', 'free', '{BUSY_B}');
             CREATE TABLE busy_items (id int PRIMARY KEY, tenant_id uuid NOT NULL, v int NOT NULL);
             INSERT INTO busy_items SELECT g, CASE WHEN g <= 50 THEN '{BUSY_B}'::uuid ELSE '{BUSY_A}'::uuid END, 0
               FROM generate_series(1, 100) g;
             SELECT tenancy.register_table('busy_items');
             SELECT tenancy.reset_tenant_activity();"
        ))
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let run = |tenant: &'static str, statements: Vec<String>| {
        let mut client = db.connect();
        client
            .batch_execute(&format!("SET tenancy.tenant_id = '{tenant}'"))
            .unwrap();
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            for sql in statements {
                client.batch_execute(&sql).unwrap();
            }
            client.batch_execute("RESET tenancy.tenant_id").unwrap();
        })
    };
    let selects = (0..500)
        .map(|i| format!("SELECT v FROM busy_items WHERE id = {}", 51 + i % 50))
        .collect();
    let updates = (1..=50)
        .map(|i| format!("UPDATE busy_items SET v = v + 1 WHERE id = {i}"))
        .collect();
    let a = run(BUSY_A, selects);
    let b = run(BUSY_B, updates);
    a.join().unwrap();
    b.join().unwrap();
    let rows = admin
        .query(
            "SELECT tenant_id::text, sum(calls)::bigint, sum(rows)::bigint, sum(errors)::bigint, sum(wal_bytes)::bigint
               FROM tenancy.tenant_activity() WHERE tenant_id IN ($1::text::uuid, $2::text::uuid)
              GROUP BY tenant_id ORDER BY 1",
            &[&BUSY_A, &BUSY_B],
        )
        .unwrap();
    let got: Vec<(String, i64, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            (BUSY_A.to_string(), 500, 500, 0),
            (BUSY_B.to_string(), 50, 50, 0)
        ]
    );
    assert!(rows[1].get::<_, i64>(4) > 0, "B's updates wrote WAL");
}
