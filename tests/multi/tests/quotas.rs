//! Quotas under real concurrency: many sessions racing for the last units of
//! one tenant's limit get exactly the limit, never more, through `consume`
//! and through a row quota.

use pg_tenancy_multi::TestDb;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SESSIONS: usize = 16;
const LIMIT: i64 = 1000;
const TENANT: &str = "dddddddd-4444-4000-8000-00000000000d";

fn setup(db: &TestDb) -> Uuid {
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('racer', 'Racer', 'free', '{TENANT}');
             SELECT tenancy.define_resource('calls');
             SELECT tenancy.define_resource('widgets');
             SELECT tenancy.set_quota('{TENANT}', 'calls', {LIMIT});
             SELECT tenancy.set_quota('{TENANT}', 'widgets', {LIMIT});"
        ))
        .unwrap();
    TENANT.parse().unwrap()
}

/// Runs `work` in SESSIONS threads, each with its own connection, started
/// together and stopped after a few seconds; returns what each counted.
fn race(db: &TestDb, work: fn(&mut postgres::Client, Uuid) -> bool) -> Vec<(i64, i64)> {
    let tenant: Uuid = TENANT.parse().unwrap();
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let mut workers = Vec::new();
    for _ in 0..SESSIONS {
        let mut client = db.connect();
        let barrier = barrier.clone();
        workers.push(thread::spawn(move || {
            barrier.wait();
            let deadline = Instant::now() + Duration::from_secs(3);
            let (mut granted, mut refused) = (0i64, 0i64);
            while Instant::now() < deadline {
                if work(&mut client, tenant) {
                    granted += 1;
                } else {
                    refused += 1;
                }
            }
            (granted, refused)
        }));
    }
    workers.into_iter().map(|w| w.join().unwrap()).collect()
}

/// 16 sessions call consume(t, r, 1) against a limit of 1,000 as fast as they
/// can: exactly 1,000 calls return true, and quota_status shows 1,000 used.
#[test]
fn racing_consumers_get_exactly_the_limit() {
    let db = TestDb::new("multi_quota_consume");
    let tenant = setup(&db);
    let results = race(&db, |client, tenant| {
        client
            .query_one("SELECT tenancy.consume($1, 'calls')", &[&tenant])
            .unwrap()
            .get::<_, bool>(0)
    });
    let granted: i64 = results.iter().map(|r| r.0).sum();
    let refused: i64 = results.iter().map(|r| r.1).sum();
    assert_eq!(granted, LIMIT, "granted calls (refused: {refused})");
    assert!(refused > 0, "the race must run past the limit");
    let used: i64 = db
        .connect()
        .query_one(
            "SELECT used FROM tenancy.quota_status($1) WHERE resource = 'calls'",
            &[&tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(used, LIMIT);
}

/// 16 sessions insert rows of one tenant into a table whose rows count against
/// a limit of 1,000: the table ends with exactly 1,000 of them, and the
/// counter agrees. Half the inserts are two-row statements, which fail whole
/// when only one unit is left.
#[test]
fn racing_inserts_stop_at_the_row_quota() {
    let db = TestDb::new("multi_quota_rows");
    let tenant = setup(&db);
    db.connect()
        .batch_execute(
            "CREATE TABLE widgets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL);
             SELECT tenancy.register_table('widgets');
             SELECT tenancy.enforce_row_quota('widgets', 'widgets');",
        )
        .unwrap();
    let results = race(&db, |client, tenant| {
        let rows = if rand_pair() { "($1), ($1)" } else { "($1)" };
        match client.execute(
            &format!("INSERT INTO widgets (tenant_id) VALUES {rows}"),
            &[&tenant],
        ) {
            Ok(_) => true,
            Err(e) => {
                let code = e.code().map(|c| c.code().to_owned());
                assert_eq!(code.as_deref(), Some("53400"), "unexpected error: {e}");
                false
            }
        }
    });
    assert!(
        results.iter().map(|r| r.1).sum::<i64>() > 0,
        "the race must run past the limit"
    );
    let mut client = db.connect();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM widgets", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, LIMIT);
    let used: i64 = client
        .query_one(
            "SELECT used FROM tenancy.quota_status($1) WHERE resource = 'widgets'",
            &[&tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(used, LIMIT);
    // Deleting gives the units back, so inserts flow again.
    client
        .execute(
            "DELETE FROM widgets WHERE id IN (SELECT id FROM widgets LIMIT 10)",
            &[],
        )
        .unwrap();
    client
        .execute(
            "INSERT INTO widgets (tenant_id) SELECT $1 FROM generate_series(1, 10)",
            &[&tenant],
        )
        .unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM widgets", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, LIMIT);
}

/// A counter deleted while consumers first touch it (what purge_tenant,
/// drop_resource or a deleted tenant does): every call still decides cleanly.
/// A limit of 0 sends each call down the slow path that creates and locks the
/// counter; one session deletes it as fast as it can. Before the counter was
/// created and locked in one statement, a delete landing between the two
/// statements panicked (XX000 "the counter was just created").
#[test]
fn counters_deleted_under_consumers_never_panic() {
    let db = TestDb::new("multi_quota_deleted_counter");
    let tenant = setup(&db);
    db.connect()
        .batch_execute(&format!("SELECT tenancy.set_quota('{TENANT}', 'calls', 0)"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut deleter = db.connect();
    let deleting = thread::spawn(move || {
        let mut deletes = 0u64;
        while Instant::now() < deadline {
            deleter
                .execute(
                    "DELETE FROM tenancy.quota_usage WHERE resource = 'calls'",
                    &[],
                )
                .unwrap();
            deletes += 1;
        }
        deletes
    });
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let mut client = db.connect();
            thread::spawn(move || {
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    match client.query_one("SELECT tenancy.consume($1, 'calls')", &[&tenant]) {
                        Ok(row) => assert!(!row.get::<_, bool>(0), "a limit of 0 granted a call"),
                        Err(e) => panic!("consume failed while its counter was deleted: {e:?}"),
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let calls: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    let deletes = deleting.join().unwrap();
    assert!(
        calls > 1000 && deletes > 1000,
        "too little overlap: {calls} calls, {deletes} deletes"
    );
}

/// Every other statement inserts two rows (cheap, thread-local alternation).
fn rand_pair() -> bool {
    thread_local!(static FLIP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    FLIP.with(|f| {
        f.set(!f.get());
        f.get()
    })
}

/// pg_dump / pg_restore carry resources, limits, usage and row quotas: the
/// restored database grants and refuses exactly as the original would.
#[test]
fn dump_and_restore_keep_limits_usage_and_row_quotas() {
    let source = TestDb::new("multi_quota_dump_source");
    let tenant = setup(&source);
    let mut admin = source.connect();
    admin
        .batch_execute(&format!(
            "SELECT tenancy.set_plan_limit('free', 'calls', 7);
             SELECT tenancy.clear_quota('{TENANT}', 'calls');
             SELECT tenancy.consume('{TENANT}', 'calls', 5);
             SELECT tenancy.set_quota('{TENANT}', 'widgets', 3);
             CREATE TABLE widgets (id int PRIMARY KEY, tenant_id uuid NOT NULL);
             SELECT tenancy.register_table('widgets');
             SELECT tenancy.enforce_row_quota('widgets', 'widgets');
             INSERT INTO widgets VALUES (1, '{TENANT}'), (2, '{TENANT}');"
        ))
        .unwrap();
    let snapshot = |client: &mut postgres::Client| -> String {
        client
            .query_one(
                "SELECT string_agg(format('%s|%s|%s|%s', resource, used, quota_limit, period), ';' ORDER BY resource)
                   FROM tenancy.quota_status()",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = snapshot(&mut admin);
    let target = pg_tenancy_multi::dump_and_restore(&source, "multi_quota_dump_target");
    let mut restored = target.connect();
    assert_eq!(snapshot(&mut restored), before);
    assert!(before.contains("calls|5|7|none"), "{before}");
    // Two calls left of seven, one widget of three.
    let granted: Vec<bool> = (0..3)
        .map(|_| {
            restored
                .query_one("SELECT tenancy.consume($1, 'calls')", &[&tenant])
                .unwrap()
                .get(0)
        })
        .collect();
    assert_eq!(granted, vec![true, true, false]);
    restored
        .execute("INSERT INTO widgets VALUES (3, $1)", &[&tenant])
        .unwrap();
    let err = restored
        .execute("INSERT INTO widgets VALUES (4, $1)", &[&tenant])
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("53400"), "{err}");
}
