//! Health checks against conditions other sessions create: a session idle in
//! a transaction, sessions blocked on a lock, a long query, many connections.
//! Each shows up in its check with the status its thresholds call for, and a
//! role without pg_monitor is told what it cannot see.

use pg_tenancy_multi::{TestDb, TestRole};
use postgres::Client;
use std::thread;
use std::time::{Duration, Instant};

/// (status, value, detail) of one check, as `client` sees it.
fn check(client: &mut Client, name: &str) -> (String, f64, String) {
    let row = client
        .query_one(
            "SELECT status, coalesce(value, 0)::float8, detail FROM tenancy.health_check() WHERE check_name = $1",
            &[&name],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

fn set_thresholds(client: &mut Client, name: &str, warn: f64, crit: f64) {
    client
        .execute(
            "UPDATE tenancy.health_thresholds SET warn_threshold = $2::float8::numeric, crit_threshold = $3::float8::numeric
              WHERE check_name = $1",
            &[&name, &warn, &crit],
        )
        .unwrap();
}

/// Polls the check until its status is `want` (or fails after `within`).
fn wait_for_status(client: &mut Client, name: &str, want: &str, within: Duration) -> (f64, String) {
    let start = Instant::now();
    loop {
        let (status, value, detail) = check(client, name);
        if status == want {
            return (value, detail);
        }
        assert!(
            start.elapsed() < within,
            "{name} stayed {status} (value {value}, {detail}), wanted {want}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn an_idle_transaction_turns_warning_then_critical_and_only_monitors_see_it() {
    let db = TestDb::new("multi_health_idle");
    let _app = TestRole::new("health_plain", "");
    let _monitor = TestRole::new("health_watch", "IN ROLE pg_monitor");
    let mut admin = db.connect();
    set_thresholds(&mut admin, "idle_in_transaction", 1.0, 3.0);

    let (status, _, _) = check(&mut admin, "idle_in_transaction");
    assert_eq!(status, "ok");

    let mut idle = db.connect();
    let idle_pid = backend_pid(&mut idle);
    idle.batch_execute("BEGIN; SELECT 1").unwrap();

    let (value, detail) = wait_for_status(
        &mut admin,
        "idle_in_transaction",
        "warning",
        Duration::from_secs(5),
    );
    assert!(value >= 1.0, "{value}");
    assert!(detail.contains(&format!("pid {idle_pid} ")), "{detail}");
    let (value, _) = wait_for_status(
        &mut admin,
        "idle_in_transaction",
        "critical",
        Duration::from_secs(6),
    );
    assert!(value >= 3.0, "{value}");

    // A pg_monitor role sees it too; a plain role cannot, and is told why.
    let mut monitor = db.connect_as("health_watch");
    assert_eq!(check(&mut monitor, "idle_in_transaction").0, "critical");
    assert_eq!(check(&mut monitor, "monitoring_privileges").0, "ok");
    let mut plain = db.connect_as("health_plain");
    assert_eq!(check(&mut plain, "idle_in_transaction").0, "ok");
    let (status, _, detail) = check(&mut plain, "monitoring_privileges");
    assert_eq!(status, "warning");
    assert!(
        detail.contains("GRANT pg_monitor TO health_plain"),
        "{detail}"
    );
    drop(plain);
    drop(monitor);

    idle.batch_execute("COMMIT").unwrap();
    wait_for_status(
        &mut admin,
        "idle_in_transaction",
        "ok",
        Duration::from_secs(5),
    );
}

#[test]
fn blocked_sessions_are_counted_with_their_blocker() {
    let db = TestDb::new("multi_health_blocked");
    let mut admin = db.connect();
    admin.batch_execute("CREATE TABLE hot (id int)").unwrap();
    set_thresholds(&mut admin, "blocked_sessions", 1.0, 2.0);

    let mut holder = db.connect();
    let holder_pid = backend_pid(&mut holder);
    holder
        .batch_execute("BEGIN; LOCK TABLE hot IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    let waiter = |db_name: String| {
        thread::spawn(move || {
            let mut client = pg_tenancy_multi::connect(&db_name);
            client.batch_execute("SELECT count(*) FROM hot").unwrap();
        })
    };
    let first = waiter(db.name.clone());
    let (value, detail) = wait_for_status(
        &mut admin,
        "blocked_sessions",
        "warning",
        Duration::from_secs(5),
    );
    assert_eq!(value, 1.0);
    assert!(
        detail.contains(&format!("blocked by pid {holder_pid}")),
        "{detail}"
    );
    let second = waiter(db.name.clone());
    let (value, _) = wait_for_status(
        &mut admin,
        "blocked_sessions",
        "critical",
        Duration::from_secs(5),
    );
    assert_eq!(value, 2.0);

    // The waiting sessions show in connection_stats and connection_summary too.
    let waiting: i32 = admin
        .query_one("SELECT waiting FROM tenancy.connection_summary()", &[])
        .unwrap()
        .get(0);
    assert_eq!(waiting, 2);

    holder.batch_execute("COMMIT").unwrap();
    first.join().unwrap();
    second.join().unwrap();
    wait_for_status(&mut admin, "blocked_sessions", "ok", Duration::from_secs(5));
}

#[test]
fn a_long_query_is_named_in_the_longest_query_check() {
    let db = TestDb::new("multi_health_long");
    let mut admin = db.connect();
    set_thresholds(&mut admin, "longest_query", 1.0, 2.5);
    // The oldest transaction is the same statement, seen from its transaction start.
    set_thresholds(&mut admin, "oldest_transaction", 1.0, 2.5);

    let name = db.name.clone();
    let sleeper = thread::spawn(move || {
        let mut client = pg_tenancy_multi::connect(&name);
        client.batch_execute("SELECT pg_sleep(4)").unwrap();
    });
    let (_, detail) = wait_for_status(
        &mut admin,
        "longest_query",
        "warning",
        Duration::from_secs(3),
    );
    assert!(detail.contains("pg_sleep(4)"), "{detail}");
    wait_for_status(
        &mut admin,
        "longest_query",
        "critical",
        Duration::from_secs(3),
    );
    assert_eq!(check(&mut admin, "oldest_transaction").0, "critical");
    sleeper.join().unwrap();
    wait_for_status(&mut admin, "longest_query", "ok", Duration::from_secs(3));
}

#[test]
fn many_connections_raise_saturation_in_steps() {
    let db = TestDb::new("multi_health_conns");
    let mut admin = db.connect();
    let (_, before, _) = check(&mut admin, "connection_saturation");
    let (max_conn, reserved): (i32, i32) = {
        let row = admin
            .query_one(
                "SELECT max_connections, reserved FROM tenancy.connection_summary()",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let per_connection = 100.0 / f64::from(max_conn - reserved);
    // Warning after about 15 more connections, critical after about 25.
    set_thresholds(
        &mut admin,
        "connection_saturation",
        before + 14.5 * per_connection,
        before + 24.5 * per_connection,
    );

    let mut extra: Vec<Client> = (0..30).map(|_| db.connect()).collect();
    let (status, after, detail) = check(&mut admin, "connection_saturation");
    assert_eq!(status, "critical", "{detail}");
    assert!(
        (after - before - 30.0 * per_connection).abs() < 0.2,
        "{before} -> {after}: {detail}"
    );
    let total: i32 = admin
        .query_one("SELECT total FROM tenancy.connection_summary()", &[])
        .unwrap()
        .get(0);
    assert!(total >= 31, "{total}");

    extra.truncate(20);
    wait_for_status(
        &mut admin,
        "connection_saturation",
        "warning",
        Duration::from_secs(5),
    );
    extra.clear();
    wait_for_status(
        &mut admin,
        "connection_saturation",
        "ok",
        Duration::from_secs(5),
    );
}

#[test]
fn dump_and_restore_keep_edited_thresholds_alerts_and_samples() {
    let source = TestDb::new("multi_health_dump");
    let mut admin = source.connect();
    admin
        .batch_execute(
            "UPDATE tenancy.health_thresholds SET warn_threshold = 1, alert_after = 1 WHERE check_name = 'database_size';
             SELECT tenancy.record_metrics();",
        )
        .unwrap();
    let checks: i64 = admin
        .query_one("SELECT count(*) FROM tenancy.health_thresholds", &[])
        .unwrap()
        .get(0);
    let target = pg_tenancy_multi::dump_and_restore(&source, "multi_health_restored");
    let mut restored = target.connect();
    let row = restored
        .query_one(
            "SELECT warn_threshold::float8, alert_after,
                    (SELECT count(*) FROM tenancy.health_thresholds),
                    (SELECT count(*) FROM tenancy.alerts WHERE check_name = 'database_size' AND resolved_at IS NULL),
                    (SELECT count(*) FROM tenancy.metrics)
               FROM tenancy.health_thresholds WHERE check_name = 'database_size'",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, f64>(0), 1.0);
    assert_eq!(row.get::<_, i32>(1), 1);
    assert_eq!(
        row.get::<_, i64>(2),
        checks,
        "defaults merged, not duplicated"
    );
    assert_eq!(row.get::<_, i64>(3), 1, "the open alert came back");
    assert!(row.get::<_, i64>(4) > 30, "the samples came back");
    // And sampling goes on where it stopped: the alert is refreshed, not doubled.
    restored
        .batch_execute("SELECT tenancy.record_metrics()")
        .unwrap();
    let open: i64 = restored
        .query_one("SELECT count(*) FROM tenancy.alerts WHERE resolved_at IS NULL AND check_name = 'database_size'", &[])
        .unwrap()
        .get(0);
    assert_eq!(open, 1);
}
