//! Masking, one run, 1M rows: a plain scan of the column, the seed's PL/pgSQL
//! mask_email (seed "mirai-chat-platform"), ours, and pseudonymize; then a
//! masked view with three masked columns against its base table, read in the
//! server and read by a client.

use crate::report::{median_times_interleaved, Report};
use crate::Bench;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_masking";
const ROWS: i64 = 1_000_000;

const SEED_MASK_EMAIL: &str = r#"
CREATE OR REPLACE FUNCTION mask_email(email TEXT)
RETURNS TEXT AS $$
BEGIN
    RETURN CASE
        WHEN email IS NULL THEN NULL
        ELSE LEFT(SPLIT_PART(email, '@', 1), 2) || '***@' || SPLIT_PART(email, '@', 2)
    END;
END;
$$ LANGUAGE plpgsql IMMUTABLE;
"#;

/// Every query runs on one core without JIT, so the ratios compare the
/// functions and not the planner's choices.
const SESSION: &str = "SET max_parallel_workers_per_gather = 0; SET jit = off;";

pub fn masking(bench: &Bench, report: &mut Report) {
    let mut client = bench.fresh_database(DATABASE);
    client.batch_execute(SEED_MASK_EMAIL).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE people AS
               SELECT i AS id, 'user.number' || i || '@example.com' AS email,
                      'First' || (i % 1000) || ' Last' || i AS full_name,
                      '+1 (555) ' || lpad((i % 1000)::text, 3, '0') || '-' || lpad((i % 10000)::text, 4, '0') AS phone,
                      now() - (i || ' minutes')::interval AS created_at, i % 100 AS score
                 FROM generate_series(1, {ROWS}) i;
             SELECT tenancy.set_masking_rule('people', 'email', 'email');
             SELECT tenancy.set_masking_rule('people', 'full_name', 'name');
             SELECT tenancy.set_masking_rule('people', 'phone', 'phone');
             SELECT tenancy.create_masked_view('people');"
        ))
        .unwrap();
    client.batch_execute("VACUUM ANALYZE people").unwrap();
    client.batch_execute(SESSION).unwrap();
    let mut other = bench.connect(DATABASE);
    other.batch_execute(SESSION).unwrap();
    let plain_sql = "SELECT sum(length(email)) FROM people";
    let mut compare = |label: &str, expression: &str, target: Option<f64>| {
        let sql = format!("SELECT sum(length({expression})) FROM people");
        let (ours, plain) = median_times_interleaved(
            1,
            7,
            || {
                client.query_one(sql.as_str(), &[]).unwrap();
            },
            || {
                other.query_one(plain_sql, &[]).unwrap();
            },
        );
        report.compare_times(
            &format!("masking: 1M rows, {label}"),
            ours,
            "plain scan of the column",
            plain,
            target,
        );
    };
    compare(
        "seed PL/pgSQL mask_email (reference)",
        "mask_email(email)",
        None,
    );
    compare(
        "tenancy.mask_email (target <= 1.5x)",
        "tenancy.mask_email(email)",
        Some(1.5),
    );
    compare(
        "tenancy.pseudonymize (target <= 3x)",
        "tenancy.pseudonymize(email)",
        Some(3.0),
    );
    compare("tenancy.mask_phone", "tenancy.mask_phone(phone)", None);
    compare("tenancy.mask_name", "tenancy.mask_name(full_name)", None);

    // The masked view (3 masked columns of 6) against the base table. In the
    // server: every column of every row evaluated (a whole-row reference).
    let (view, base) = median_times_interleaved(
        1,
        7,
        || {
            client
                .query_one("SELECT count(*) FROM (SELECT * FROM tenancy_masked.people) s WHERE s IS NOT NULL", &[])
                .unwrap();
        },
        || {
            other
                .query_one(
                    "SELECT count(*) FROM (SELECT * FROM people) s WHERE s IS NOT NULL",
                    &[],
                )
                .unwrap();
        },
    );
    report.compare_times(
        "masking: masked view, 3 masked columns, every row in the server",
        view,
        "base table",
        base,
        None,
    );
    // As a client reads it: every row sent (COPY ... TO STDOUT, read to the end).
    let read_all = |client: &mut postgres::Client, relation: &str| -> Duration {
        let start = Instant::now();
        let mut reader = client
            .copy_out(format!("COPY (SELECT * FROM {relation}) TO STDOUT").as_str())
            .unwrap();
        let total = std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert!(total > 0);
        start.elapsed()
    };
    let mut views = Vec::new();
    let mut bases = Vec::new();
    for round in 0..7 {
        if round % 2 == 0 {
            views.push(read_all(&mut client, "tenancy_masked.people"));
            bases.push(read_all(&mut other, "people"));
        } else {
            bases.push(read_all(&mut other, "people"));
            views.push(read_all(&mut client, "tenancy_masked.people"));
        }
    }
    views.sort();
    bases.sort();
    report.compare_times(
        "masking: masked view read by a client, 3 masked columns (target <= 1.5x)",
        views[views.len() / 2],
        "base table read by a client",
        bases[bases.len() / 2],
        Some(1.5),
    );
    drop(client);
    drop(other);
    bench
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}
