//! Quotas: consume calls per second (one session in the server, one session
//! over the wire, 16 sessions on one hot tenant and on 16 tenants), a 100k-row
//! INSERT under a row quota against none, and the seed's read-then-compare
//! PL/pgSQL check beside ours, with its overshoot counted in the same race.

use crate::report::{format_duration, median_times_interleaved, Better, Report, Row};
use crate::Bench;
use postgres::Client;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_quotas";
const HOT: &str = "00000000-0000-4000-8000-000000000000";
const SESSIONS: u32 = 16;
/// The limit the overshoot race runs against.
const RACE_LIMIT: i64 = 2000;

/// The seed's quota table and check (seed "mirai-chat-platform",
/// check_tenant_quota), plus the increment its callers do after a true check.
const SEED_QUOTAS: &str = r#"
CREATE TABLE tenant_quotas (
    organization_id UUID PRIMARY KEY,
    max_storage_gb INTEGER DEFAULT 100,
    max_api_calls_per_minute INTEGER DEFAULT 1000,
    max_concurrent_connections INTEGER DEFAULT 50,
    max_messages_per_month BIGINT DEFAULT 1000000,
    current_storage_gb DECIMAL(10,2) DEFAULT 0,
    current_messages_this_month BIGINT DEFAULT 0,
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE OR REPLACE FUNCTION check_tenant_quota(p_organization_id UUID, p_resource_type VARCHAR)
RETURNS BOOLEAN AS $$
DECLARE
    v_quota RECORD;
    v_result BOOLEAN DEFAULT true;
BEGIN
    SELECT * INTO v_quota FROM tenant_quotas WHERE organization_id = p_organization_id;
    CASE p_resource_type
        WHEN 'storage' THEN v_result := v_quota.current_storage_gb < v_quota.max_storage_gb;
        WHEN 'messages' THEN v_result := v_quota.current_messages_this_month < v_quota.max_messages_per_month;
        ELSE v_result := true;
    END CASE;
    RETURN v_result;
END;
$$ LANGUAGE plpgsql;
-- How the seed's application spends a message: check, then count it.
CREATE FUNCTION seed_consume(p_organization_id UUID) RETURNS boolean AS $$
BEGIN
    IF check_tenant_quota(p_organization_id, 'messages') THEN
        UPDATE tenant_quotas SET current_messages_this_month = current_messages_this_month + 1
         WHERE organization_id = p_organization_id;
        RETURN true;
    END IF;
    RETURN false;
END;
$$ LANGUAGE plpgsql;
"#;

fn tenant_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn setup(client: &mut Client) {
    client.batch_execute(SEED_QUOTAS).unwrap();
    client
        .batch_execute(
            "SELECT tenancy.define_resource('messages', 'month');
             SELECT tenancy.define_resource('rows');
             SELECT tenancy.set_plan_limit('free', 'messages', 1000000000);",
        )
        .unwrap();
    for n in 0..=SESSIONS {
        let id = tenant_id(n);
        client
            .execute(
                "SELECT tenancy.create_tenant($1, $1, 'free', $2::text::uuid)",
                &[&format!("bench-{n}"), &id],
            )
            .unwrap();
        client
            .execute(
                "INSERT INTO tenant_quotas (organization_id, max_messages_per_month) VALUES ($1::text::uuid, 1000000000)",
                &[&id],
            )
            .unwrap();
    }
}

fn consume_script(tenant: &str, ours: bool) -> String {
    if ours {
        format!("SELECT tenancy.consume({tenant}, 'messages');\n")
    } else {
        format!("SELECT seed_consume({tenant});\n")
    }
}

/// One session, all in the server: `consume` in a loop of one statement.
fn in_server(bench: &Bench, client: &mut Client, report: &mut Report) {
    const CALLS: i64 = 200_000;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let granted: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE tenancy.consume('{HOT}', 'messages')) FROM generate_series(1, {CALLS})"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        best = best.min(start.elapsed());
        assert_eq!(granted, CALLS);
    }
    let per_second = CALLS as f64 / best.as_secs_f64();
    report.push(Row {
        scenario: format!("quotas: consume in one session, {CALLS} calls in one statement"),
        ours: format!(
            "{per_second:.0} calls/s ({:.2} us/call)",
            best.as_secs_f64() * 1e6 / CALLS as f64
        ),
        anchor: "50000 calls/s target".into(),
        ratio: Some(per_second / 50_000.0),
        target: Some((Better::Higher, 1.0)),
    });
    // One call per transaction, still in the server (a procedure committing
    // after every call): the cost of a request that makes one call.
    const COMMITTED: i64 = 20_000;
    let loop_sql = |call: &str| {
        format!("DO $$ BEGIN FOR i IN 1..{COMMITTED} LOOP PERFORM {call}; COMMIT; END LOOP; END $$")
    };
    let ours_sql = loop_sql(&format!("tenancy.consume('{HOT}', 'messages')"));
    let seed_sql = loop_sql(&format!("seed_consume('{HOT}')"));
    let mut other = bench.connect(DATABASE);
    let (ours, seed) = median_times_interleaved(
        1,
        5,
        || client.batch_execute(&ours_sql).unwrap(),
        || other.batch_execute(&seed_sql).unwrap(),
    );
    report.push(Row {
        scenario: format!("quotas: one call per transaction, {COMMITTED} transactions"),
        ours: format!(
            "{} ({:.1} us/txn)",
            format_duration(ours),
            ours.as_secs_f64() * 1e6 / COMMITTED as f64
        ),
        anchor: format!(
            "{} seed check+increment ({:.1} us/txn)",
            format_duration(seed),
            seed.as_secs_f64() * 1e6 / COMMITTED as f64
        ),
        ratio: Some(ours.as_secs_f64() / seed.as_secs_f64()),
        target: None,
    });
}

/// pgbench: 1 session, 16 sessions on one hot tenant, 16 sessions on 16 tenants.
fn over_the_wire(bench: &Bench, report: &mut Report) {
    let hot = format!("'{HOT}'");
    let spread =
        "('00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid".to_string();
    let cases = [
        ("1 session", 1u32, &hot, None),
        ("16 sessions, one hot tenant", SESSIONS, &hot, Some(5000.0)),
        ("16 sessions, 16 tenants", SESSIONS, &spread, None),
    ];
    for (label, clients, tenant, target) in cases {
        let ours = bench.pgbench(DATABASE, &consume_script(tenant, true), clients, 5);
        let seed = bench.pgbench(DATABASE, &consume_script(tenant, false), clients, 5);
        report.push(Row {
            scenario: format!("quotas: consume over the wire, {label}"),
            ours: format!("{ours:.0} calls/s"),
            anchor: format!("{seed:.0} calls/s seed check+increment"),
            ratio: Some(ours / seed),
            target: None,
        });
        if let Some(target) = target {
            report.push(Row {
                scenario: format!("quotas: {label} (target >= {target:.0} calls/s)"),
                ours: format!("{ours:.0} calls/s"),
                anchor: format!("{target:.0} calls/s target"),
                ratio: Some(ours / target),
                target: Some((Better::Higher, 1.0)),
            });
        }
    }
}

/// 16 sessions race for the last units of a limit: ours grants exactly the
/// limit, the seed's check-then-increment grants more.
fn overshoot(bench: &Bench, client: &mut Client, report: &mut Report) {
    client
        .batch_execute(&format!(
            "SELECT tenancy.set_quota('{HOT}', 'messages', {RACE_LIMIT});
             DELETE FROM tenancy.quota_usage WHERE tenant_id = '{HOT}';
             UPDATE tenant_quotas SET max_messages_per_month = {RACE_LIMIT}, current_messages_this_month = 0
              WHERE organization_id = '{HOT}';"
        ))
        .unwrap();
    let hot = format!("'{HOT}'");
    bench.pgbench(DATABASE, &consume_script(&hot, true), SESSIONS, 3);
    bench.pgbench(DATABASE, &consume_script(&hot, false), SESSIONS, 3);
    let ours: i64 = client
        .query_one(
            &format!("SELECT used FROM tenancy.quota_status('{HOT}') WHERE resource = 'messages'"),
            &[],
        )
        .unwrap()
        .get(0);
    let seed: i64 = client
        .query_one(
            &format!("SELECT current_messages_this_month FROM tenant_quotas WHERE organization_id = '{HOT}'"),
            &[],
        )
        .unwrap()
        .get(0);
    report.push(Row {
        scenario: format!("quotas: 16 sessions racing for a limit of {RACE_LIMIT}, units granted"),
        ours: format!("{ours} granted (overshoot {})", ours - RACE_LIMIT),
        anchor: format!(
            "{seed} granted by the seed (overshoot {})",
            seed - RACE_LIMIT
        ),
        ratio: Some(ours as f64 / RACE_LIMIT as f64),
        target: Some((Better::Lower, 1.0)),
    });
}

/// A 100k-row INSERT into a table under a row quota, against the same INSERT
/// with no quota.
fn row_quota(bench: &Bench, client: &mut Client, report: &mut Report) {
    const ROWS: i64 = 100_000;
    client
        .batch_execute(
            "CREATE TABLE rows_plain (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);
             CREATE TABLE rows_quota (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text);
             SELECT tenancy.register_table('rows_quota');
             SELECT tenancy.enforce_row_quota('rows_quota', 'rows');
             SELECT tenancy.set_plan_limit('free', 'rows', 1000000000);",
        )
        .unwrap();
    let insert = |table: &str| {
        format!(
            "TRUNCATE {table}; CHECKPOINT;
             INSERT INTO {table} SELECT i, '{HOT}', 'row ' || i FROM generate_series(1, {ROWS}) i"
        )
    };
    let (plain_sql, quota_sql) = (insert("rows_plain"), insert("rows_quota"));
    // The TRUNCATE and CHECKPOINT are timed alike on both sides; they cost a
    // few milliseconds against the INSERT's hundreds.
    let mut other = bench.connect(DATABASE);
    let (ours, plain) = median_times_interleaved(
        1,
        7,
        || client.batch_execute(&quota_sql).unwrap(),
        || other.batch_execute(&plain_sql).unwrap(),
    );
    let used: i64 = client
        .query_one(
            &format!("SELECT used FROM tenancy.quota_status('{HOT}') WHERE resource = 'rows'"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(used, ROWS, "every row counted");
    report.compare_times(
        "quotas: 100k-row INSERT under enforce_row_quota (target <= 1.3x)",
        ours,
        "no quota",
        plain,
        Some(1.3),
    );
}

pub fn quotas(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    setup(&mut client);
    in_server(bench, &mut client, report);
    over_the_wire(bench, report);
    overshoot(bench, &mut client, report);
    row_quota(bench, &mut client, report);
    drop(client);
    bench
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}
