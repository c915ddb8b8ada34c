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
            let deadline = Instant::now() + Duration::from_secs(3);
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
            (admitted, refused, Instant::now())
        }));
    }
    let started = Instant::now();
    barrier.wait();
    let results: Vec<(i64, i64, Instant)> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    let ended = results.iter().map(|r| r.2).max().unwrap();
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
