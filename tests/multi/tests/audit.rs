//! Audit under concurrency: writers in several tenants commit and roll back
//! while a sealer keeps sealing; at the end every committed change is in the
//! log exactly once, in a sealed chain, and every chain verifies.

use pg_tenancy_multi::TestDb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const TENANTS: [&str; 4] = [
    "a0000000-0000-4000-8000-000000000001",
    "b0000000-0000-4000-8000-000000000002",
    "c0000000-0000-4000-8000-000000000003",
    "d0000000-0000-4000-8000-000000000004",
];

#[test]
fn concurrent_writers_and_sealing_leave_every_chain_intact() {
    let db = TestDb::new("multi_audit");
    let mut admin = db.connect();
    for (i, tenant) in TENANTS.iter().enumerate() {
        admin
            .execute(
                "SELECT tenancy.create_tenant('t' || $1::text, 'Tenant', 'free', $2::text::uuid)",
                &[&(i as i32).to_string(), tenant],
            )
            .unwrap();
    }
    admin
        .batch_execute(
            "CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                  tenant_id uuid NOT NULL, amount int NOT NULL);
             SELECT tenancy.register_table('ledger');
             SELECT tenancy.enable_audit('ledger');",
        )
        .unwrap();

    // A transaction that starts before everything and commits after several
    // seals: its rows must be sealed by a later seal, not skipped.
    let mut long = db.connect();
    long.batch_execute(&format!(
        "BEGIN; INSERT INTO ledger (tenant_id, amount) VALUES ('{}', -1);",
        TENANTS[0]
    ))
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let sealer = {
        let stop = stop.clone();
        let mut client = db.connect();
        thread::spawn(move || {
            let mut seals = 0;
            while !stop.load(Ordering::Relaxed) {
                client
                    .query_one("SELECT tenancy.seal_audit()", &[])
                    .unwrap();
                seals += 1;
                thread::sleep(Duration::from_millis(50));
            }
            seals
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let tenant = TENANTS[w % TENANTS.len()].to_string();
            let mut client = db.connect();
            thread::spawn(move || {
                // Changes this writer committed: inserts plus updates.
                let mut committed = 0i64;
                let mut round = 0i32;
                while Instant::now() < deadline {
                    round += 1;
                    let mut tx = client.transaction().unwrap();
                    let rows = 1 + (round % 4);
                    tx.execute(
                        "INSERT INTO ledger (tenant_id, amount) SELECT $1::text::uuid, g FROM generate_series(1, $2) g",
                        &[&tenant, &rows],
                    )
                    .unwrap();
                    let updated = tx
                        .execute(
                            "UPDATE ledger SET amount = amount + 1
                              WHERE id = (SELECT max(id) FROM ledger WHERE tenant_id = $1::text::uuid)",
                            &[&tenant],
                        )
                        .unwrap();
                    if round % 5 == 0 {
                        tx.rollback().unwrap();
                    } else {
                        tx.commit().unwrap();
                        committed += rows as i64 + updated as i64;
                    }
                }
                (tenant, committed)
            })
        })
        .collect();
    let mut expected = std::collections::HashMap::new();
    for writer in writers {
        let (tenant, committed) = writer.join().unwrap();
        *expected.entry(tenant).or_insert(0i64) += committed;
    }
    long.batch_execute("COMMIT").unwrap();
    *expected.get_mut(TENANTS[0]).unwrap() += 1;
    stop.store(true, Ordering::Relaxed);
    let seals = sealer.join().unwrap();
    assert!(seals > 10, "the sealer ran only {seals} times");

    // Everything committed is now sealable.
    admin.query_one("SELECT tenancy.seal_audit()", &[]).unwrap();
    for tenant in TENANTS {
        let logged: i64 = admin
            .query_one(
                "SELECT count(*) FROM tenancy.audit_log WHERE tenant_id = $1::text::uuid",
                &[&tenant],
            )
            .unwrap()
            .get(0);
        assert_eq!(logged, expected[tenant], "audit rows of tenant {tenant}");
    }
    let unsealed: i64 = admin
        .query_one(
            "SELECT count(*) FROM tenancy.audit_log a
              WHERE NOT EXISTS (SELECT 1 FROM tenancy.audit_chain c WHERE c.audit_id = a.id)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unsealed, 0, "rows left out of the chains");
    let verdicts = admin
        .query(
            "SELECT tenant_id::text, rows_checked, ok FROM tenancy.verify_audit()",
            &[],
        )
        .unwrap();
    let total: i64 = verdicts.iter().map(|r| r.get::<_, i64>(1)).sum();
    let all: i64 = admin
        .query_one("SELECT count(*) FROM tenancy.audit_log", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, all, "every row is checked exactly once");
    for row in &verdicts {
        let ok: bool = row.get(2);
        assert!(ok, "chain of {:?} broken", row.get::<_, Option<String>>(0));
    }
    eprintln!(
        "{all} audit rows in {} chains, {seals} concurrent seals",
        verdicts.len()
    );
}

/// pg_dump / pg_restore carry the audit log (its partitions are ordinary
/// tables), the chains and the audit settings: the restored log verifies,
/// and auditing and sealing go on in the new database.
#[test]
fn audit_log_and_chains_survive_dump_and_restore() {
    let source = TestDb::new("multi_audit_dump_source");
    let mut admin = source.connect();
    admin
        .batch_execute(
            "SELECT tenancy.create_tenant('acme', 'Acme', 'free', 'a0000000-0000-4000-8000-000000000001');
             CREATE TABLE ledger (id int PRIMARY KEY, tenant_id uuid NOT NULL, amount int, secret text);
             SELECT tenancy.register_table('ledger');
             SELECT tenancy.enable_audit('ledger', '{secret}');
             INSERT INTO ledger SELECT g, 'a0000000-0000-4000-8000-000000000001', g, 's' FROM generate_series(1, 50) g;
             UPDATE ledger SET amount = -amount WHERE id <= 10;
             -- A partitioned table with a partition made by hand after auditing began:
             -- the event trigger gave it its triggers, and the restore must bring
             -- them back once, not fail on them.
             CREATE TABLE ledger_parts (id int, at date NOT NULL, amount int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE ledger_parts_2026 PARTITION OF ledger_parts FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             SELECT tenancy.enable_audit('ledger_parts');
             CREATE TABLE ledger_parts_2027 PARTITION OF ledger_parts FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
             INSERT INTO ledger_parts_2027 VALUES (1, '2027-02-01', 5);",
        )
        .unwrap();
    admin.query_one("SELECT tenancy.seal_audit()", &[]).unwrap();
    let target = pg_tenancy_multi::dump_and_restore(&source, "multi_audit_dump_target");

    let mut restored = target.connect();
    let count = |client: &mut postgres::Client, sql: &str| -> i64 {
        client.query_one(sql, &[]).unwrap().get(0)
    };
    assert_eq!(
        count(&mut restored, "SELECT count(*) FROM tenancy.audit_log"),
        61
    );
    assert_eq!(
        count(&mut restored, "SELECT count(*) FROM tenancy.audit_chain"),
        61
    );
    assert_eq!(
        count(
            &mut restored,
            "SELECT count(*) FROM tenancy.verify_audit() WHERE NOT ok"
        ),
        0
    );
    // Auditing goes on with the same settings, and so does sealing.
    restored
        .batch_execute("UPDATE ledger SET amount = 0, secret = 'changed' WHERE id = 50")
        .unwrap();
    let row = restored
        .query_one("SELECT old_row::text, changed_cols::text FROM tenancy.audit_log WHERE record_key = '{\"id\": 50}' AND op = 'UPDATE'", &[])
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "{\"amount\": 50}");
    assert_eq!(row.get::<_, String>(1), "{amount}");
    // Writes straight into the hand-made partition are still audited, once.
    restored
        .batch_execute("INSERT INTO ledger_parts_2027 VALUES (2, '2027-03-01', 7)")
        .unwrap();
    assert_eq!(
        count(
            &mut restored,
            "SELECT count(*) FROM tenancy.audit_log WHERE table_name = 'public.ledger_parts_2027'"
        ),
        2
    );
    assert_eq!(count(&mut restored, "SELECT tenancy.seal_audit()"), 2);
    assert_eq!(
        count(
            &mut restored,
            "SELECT count(*) FROM tenancy.verify_audit() WHERE NOT ok"
        ),
        0
    );
    drop(restored);
    drop(admin);
}
