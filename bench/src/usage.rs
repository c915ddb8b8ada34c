//! Usage (issue 19): `throttle` calls per second in one session, in one
//! statement (target >= 1,000,000/s), and one call per transaction (a
//! procedure committing after every call, as the quotas scenario measures
//! `consume`) against `consume` the same way (target >= 10x).

use crate::report::{median_times_interleaved, Better, Report, Row};
use crate::Bench;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_usage";
const TENANT: &str = "00000000-0000-4000-8000-0000000000aa";

pub fn usage(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    client
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('throttled', 'Throttled', 'free', '{TENANT}');
             -- A rate no call reaches: every call is admitted, and pays the full path.
             SELECT tenancy.set_throttle('api', 1e12, 1e12, plan => 'free');
             SELECT tenancy.define_resource('calls');
             SELECT tenancy.set_plan_limit('free', 'calls', 1000000000);"
        ))
        .unwrap();
    const CALLS: i64 = 1_000_000;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let admitted: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE tenancy.throttle('{TENANT}', 'api')) FROM generate_series(1, {CALLS})"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        best = best.min(start.elapsed());
        assert_eq!(admitted, CALLS);
    }
    let per_second = CALLS as f64 / best.as_secs_f64();
    report.push(Row {
        scenario: format!("usage: throttle in one session, {CALLS} calls in one statement"),
        ours: format!(
            "{per_second:.0} calls/s ({:.3} us/call)",
            best.as_secs_f64() * 1e6 / CALLS as f64
        ),
        anchor: "1000000 calls/s target".into(),
        ratio: Some(per_second / 1_000_000.0),
        target: Some((Better::Higher, 1.0)),
    });
    const COMMITTED: i64 = 20_000;
    let loop_sql = |call: &str| {
        format!("DO $$ BEGIN FOR i IN 1..{COMMITTED} LOOP PERFORM {call}; COMMIT; END LOOP; END $$")
    };
    let throttle_sql = loop_sql(&format!("tenancy.throttle('{TENANT}', 'api')"));
    let consume_sql = loop_sql(&format!("tenancy.consume('{TENANT}', 'calls')"));
    let mut other = bench.connect(DATABASE);
    let (throttle, consume) = median_times_interleaved(
        1,
        5,
        || client.batch_execute(&throttle_sql).unwrap(),
        || other.batch_execute(&consume_sql).unwrap(),
    );
    // What a one-statement transaction costs with nothing in it: the floor
    // both stand on, reported so their own costs can be read off.
    let empty_sql = loop_sql("1");
    let (empty, _) =
        median_times_interleaved(1, 5, || client.batch_execute(&empty_sql).unwrap(), || {});
    let per_txn = |d: Duration| d.as_secs_f64() * 1e6 / COMMITTED as f64;
    report.push(Row {
        scenario: format!(
            "usage: one call per transaction, {COMMITTED} transactions, throttle vs consume"
        ),
        ours: format!("{:.2} us/txn throttle", per_txn(throttle)),
        anchor: format!("{:.2} us/txn consume", per_txn(consume)),
        ratio: Some(consume.as_secs_f64() / throttle.as_secs_f64()),
        target: Some((Better::Higher, 10.0)),
    });
    let above = |d: Duration| per_txn(d) - per_txn(empty);
    report.push(Row {
        scenario: "usage: same, above an empty transaction's cost".into(),
        ours: format!(
            "{:.2} us throttle (empty transaction {:.2} us)",
            above(throttle),
            per_txn(empty)
        ),
        anchor: format!("{:.2} us consume", above(consume)),
        ratio: Some(above(consume) / above(throttle)),
        target: None,
    });
    drop(client);
    drop(other);
    bench
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}
