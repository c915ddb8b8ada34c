//! Audit cost, side by side in one run on a 10-column table: no trigger, the
//! seed's PL/pgSQL row trigger (seed 002's `audit_trigger_func`, copied below
//! as the reference), and ours. 100k-row INSERT, one-column UPDATE and DELETE
//! of the same rows; the audit cost per changed row is
//! (audited - unaudited) / rows. Target for ours: <= 5 us per row for each.
//! Then pgbench, 4 clients of single-row INSERT and UPDATE transactions:
//! audited tps >= 0.8 x unaudited with PostgreSQL's default durability; the
//! same run without durability (the rest of the bench's setting) is printed
//! beside it, with an empty statement trigger as the floor.

use crate::report::{format_duration, median_paired_ratio, paired_rounds, Better, Report, Row};
use crate::Bench;
use postgres::Client;
use std::time::{Duration, Instant};

const DATABASE: &str = "bench_audit";
pub const ROWS: i64 = 100_000;
pub const RUNS: usize = 5;
/// pgbench rounds per durability setting (one run of each variant a round).
const PGBENCH_ROUNDS: usize = 7;

/// The seed's audit table and trigger, as written in seed 002 (minus
/// TimescaleDB: a plain table with the same indexes).
const SEED_AUDIT: &str = r#"
CREATE TABLE audit_logs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    time TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    actor_type VARCHAR(20) NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'webhook')),
    actor_id UUID,
    actor_ip INET,
    actor_user_agent TEXT,
    org_id UUID,
    project_id UUID,
    action VARCHAR(50) NOT NULL,
    resource_type VARCHAR(50) NOT NULL,
    resource_id UUID,
    changes JSONB,
    request_id UUID,
    sensitive BOOLEAN NOT NULL DEFAULT FALSE,
    retention_days INTEGER
);
CREATE INDEX idx_audit_logs_org ON audit_logs(org_id, time DESC);
CREATE INDEX idx_audit_logs_actor ON audit_logs(actor_id, time DESC);
CREATE INDEX idx_audit_logs_resource ON audit_logs(resource_type, resource_id, time DESC);
CREATE INDEX idx_audit_logs_action ON audit_logs(action, time DESC);

CREATE OR REPLACE FUNCTION audit_trigger_func()
RETURNS TRIGGER AS $$
DECLARE
    changes_json JSONB;
    old_json JSONB;
    new_json JSONB;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changes_json = jsonb_build_object('deleted', to_jsonb(OLD));
        INSERT INTO audit_logs (actor_type, actor_id, org_id, action, resource_type, resource_id, changes)
        VALUES ('system', current_setting('app.current_user_id', true)::uuid,
                COALESCE(OLD.org_id, current_setting('app.current_org_id', true)::uuid),
                TG_TABLE_NAME || '.delete', TG_TABLE_NAME, OLD.id, changes_json);
        RETURN OLD;
    ELSIF TG_OP = 'UPDATE' THEN
        old_json = to_jsonb(OLD);
        new_json = to_jsonb(NEW);
        SELECT jsonb_object_agg(key, jsonb_build_object('old', old_json->key, 'new', new_json->key))
          INTO changes_json
          FROM jsonb_each(new_json)
         WHERE new_json->key IS DISTINCT FROM old_json->key
           AND key NOT IN ('updated_at');
        IF changes_json IS NOT NULL THEN
            INSERT INTO audit_logs (actor_type, actor_id, org_id, action, resource_type, resource_id, changes)
            VALUES ('system', current_setting('app.current_user_id', true)::uuid,
                    COALESCE(NEW.org_id, current_setting('app.current_org_id', true)::uuid),
                    TG_TABLE_NAME || '.update', TG_TABLE_NAME, NEW.id, changes_json);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO audit_logs (actor_type, actor_id, org_id, action, resource_type, resource_id, changes)
        VALUES ('system', current_setting('app.current_user_id', true)::uuid,
                COALESCE(NEW.org_id, current_setting('app.current_org_id', true)::uuid),
                TG_TABLE_NAME || '.create', TG_TABLE_NAME, NEW.id, jsonb_build_object('created', to_jsonb(NEW)));
        RETURN NEW;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"#;

/// The 10-column table every variant writes to.
pub fn create_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
             id uuid PRIMARY KEY, org_id uuid NOT NULL, name text, email text,
             amount numeric(12,2), qty int, active bool, created_at timestamptz,
             note text, score float8)"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Seed,
    Ours,
    /// An empty PL/pgSQL statement trigger with transition tables: what
    /// PostgreSQL's trigger machinery costs before any audit work is done.
    Empty,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "no trigger",
            Variant::Seed => "seed PL/pgSQL trigger",
            Variant::Ours => "pg_tenancy",
            Variant::Empty => "empty statement trigger",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Variant::Plain => "bench_plain",
            Variant::Seed => "bench_seed",
            Variant::Ours => "bench_ours",
            Variant::Empty => "bench_empty",
        }
    }

    fn setup(self, client: &mut Client) {
        let table = self.table();
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {table}; {}",
                create_table(table)
            ))
            .unwrap();
        match self {
            Variant::Plain => {}
            Variant::Seed => client
                .batch_execute(&format!(
                    "CREATE TRIGGER audit_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}
                     FOR EACH ROW EXECUTE FUNCTION audit_trigger_func()"
                ))
                .unwrap(),
            Variant::Ours => client
                .batch_execute(&format!(
                    "SELECT tenancy.register_table('{table}', 'org_id'); SELECT tenancy.enable_audit('{table}');"
                ))
                .unwrap(),
            Variant::Empty => client
                .batch_execute(&format!(
                    "CREATE OR REPLACE FUNCTION empty_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
                     CREATE TRIGGER empty_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS n
                         FOR EACH STATEMENT EXECUTE FUNCTION empty_trigger();
                     CREATE TRIGGER empty_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS o NEW TABLE AS n
                         FOR EACH STATEMENT EXECUTE FUNCTION empty_trigger();"
                ))
                .unwrap(),
        }
    }
}

/// Times INSERT, UPDATE and DELETE of ROWS rows on a fresh table. The audit
/// logs are emptied first, so no run pays for the rows of the runs before it.
fn run_once(client: &mut Client, variant: Variant) -> [Duration; 3] {
    variant.setup(client);
    client
        // The log refuses TRUNCATE unless its guards are off (replication mode).
        .batch_execute(
            "SET session_replication_role = replica;
             TRUNCATE tenancy.audit_log, audit_logs;
             RESET session_replication_role",
        )
        .unwrap();
    let times = write_rows(client, variant.table());
    if variant == Variant::Ours {
        let logged: i64 = client
            .query_one("SELECT count(*) FROM tenancy.audit_log", &[])
            .unwrap()
            .get(0);
        assert_eq!(logged, 3 * ROWS, "every change must be audited");
    }
    times
}

/// One single-node run of the unaudited table or pg_tenancy's audited one,
/// for comparisons made elsewhere (the Citus scenario). `client` is on a
/// database [`prepare_single_node`] set up.
pub fn single_node_run(client: &mut Client, audited: bool) -> [Duration; 3] {
    run_once(
        client,
        if audited {
            Variant::Ours
        } else {
            Variant::Plain
        },
    )
}

/// Makes `database` ready for [`single_node_run`].
pub fn prepare_single_node(bench: &Bench, database: &str) -> Client {
    let mut client = bench.fresh_database(database);
    client.batch_execute(SEED_AUDIT).unwrap();
    client
}

/// INSERT, UPDATE and DELETE of ROWS rows in `table` (empty, 10 columns),
/// each timed; the table is empty again after it.
pub fn write_rows(client: &mut Client, table: &str) -> [Duration; 3] {
    let statements = [
        format!(
            "INSERT INTO {table}
             SELECT lpad(to_hex(i), 32, '0')::uuid, lpad(to_hex(i % 50), 32, '0')::uuid, 'name ' || i, 'user' || i || '@example.com',
                    i * 1.5, i % 100, i % 2 = 0, now(), 'note ' || i, i / 7.0
               FROM generate_series(1, {ROWS}) i"
        ),
        format!("UPDATE {table} SET qty = qty + 1"),
        format!("DELETE FROM {table}"),
    ];
    let mut times = [Duration::ZERO; 3];
    for (i, sql) in statements.iter().enumerate() {
        // No run pays for writing out the dirty pages of the one before.
        client.batch_execute("CHECKPOINT").unwrap();
        let start = Instant::now();
        let changed = client.execute(sql.as_str(), &[]).unwrap();
        times[i] = start.elapsed();
        assert_eq!(changed as i64, ROWS);
    }
    times
}

pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The median of the paired per-row differences `audited[i] - plain[i]` of
/// operation `op`, and all of them in run order.
pub fn paired_cost(
    audited: &[[Duration; 3]],
    plain: &[[Duration; 3]],
    op: usize,
) -> (f64, Vec<f64>) {
    let runs: Vec<f64> = audited
        .iter()
        .zip(plain)
        .map(|(a, p)| per_row(a[op]) - per_row(p[op]))
        .collect();
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    (sorted[sorted.len() / 2], runs)
}

pub fn per_row(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6 / ROWS as f64
}

pub fn audit(bench: &Bench, report: &mut Report) {
    let mut client = prepare_single_node(bench, DATABASE);
    let variants = [Variant::Plain, Variant::Seed, Variant::Ours];
    let mut samples: Vec<Vec<[Duration; 3]>> = vec![Vec::new(); variants.len()];
    for _ in 0..RUNS {
        // Interleaved, so drift (checkpoints, caches) hits every variant alike.
        for (v, &variant) in variants.iter().enumerate() {
            samples[v].push(run_once(&mut client, variant));
        }
    }
    // Runs are paired (each variant's run i next to the unaudited run i), and
    // the audit cost is the median of the paired differences: this VM's
    // timings wander by 20% over a minute, and pairing cancels most of it.
    for (op, name) in ["INSERT", "UPDATE", "DELETE"].iter().enumerate() {
        let plain = median(samples[0].iter().map(|r| r[op]).collect());
        for v in [1usize, 2] {
            let audited = median(samples[v].iter().map(|r| r[op]).collect());
            let (cost, mut costs) = paired_cost(&samples[v], &samples[0], op);
            costs.sort_by(|a, b| a.total_cmp(b));
            report.push(Row {
                scenario: format!("audit: 100k-row {name}, {}", variants[v].label()),
                ours: format!(
                    "{} ({:.2} us/row audit cost)",
                    format_duration(audited),
                    cost
                ),
                anchor: format!("{} no trigger", format_duration(plain)),
                ratio: Some(audited.as_secs_f64() / plain.as_secs_f64()),
                target: None,
            });
            if variants[v] == Variant::Ours {
                report.push(Row {
                    scenario: format!(
                        "audit: {name} cost per row, median of {RUNS} paired runs (target <= 5 us)"
                    ),
                    ours: format!(
                        "{cost:.2} us (runs: {})",
                        costs
                            .iter()
                            .map(|c| format!("{c:.2}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    anchor: "5 us target".into(),
                    ratio: Some(cost / 5.0),
                    target: Some((Better::Lower, 1.0)),
                });
            }
        }
    }
    pgbench(bench, &mut client, report);
    drop(client);
    let mut admin = bench.connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .unwrap();
}

/// Durability settings a pgbench comparison runs under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on):
    /// what a production server runs, and where the target applies.
    Defaults,
    /// The bench cluster's own setting (all three off): no commit waits for
    /// the disk, so every byte and microsecond the audit adds shows fully.
    Off,
}

impl Durability {
    fn label(self) -> &'static str {
        match self {
            Durability::Defaults => "durable (PostgreSQL defaults)",
            Durability::Off => "fsync/synchronous_commit/full_page_writes off",
        }
    }

    /// Switches the running cluster to these settings (all three take a reload).
    fn apply(self, client: &mut Client) {
        let value = if self == Durability::Defaults {
            "on"
        } else {
            "off"
        };
        for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
            client
                .batch_execute(&format!("ALTER SYSTEM SET {setting} = {value}"))
                .unwrap();
        }
        // The checkpoint also writes out what fsync = off left in the kernel.
        client.batch_execute("SELECT pg_reload_conf()").unwrap();
        client.batch_execute("CHECKPOINT").unwrap();
    }
}

/// pgbench: 4 clients, single-row INSERT and UPDATE transactions on an
/// unaudited table, an audited one and one with an empty statement trigger,
/// alternating runs; once with PostgreSQL's default durability, once without.
fn pgbench(bench: &Bench, client: &mut Client, report: &mut Report) {
    let variants = [Variant::Plain, Variant::Ours, Variant::Empty];
    for variant in variants {
        variant.setup(client);
        let table = variant.table();
        client
            .batch_execute(&format!(
                "INSERT INTO {table}
                 SELECT lpad(to_hex(i), 32, '0')::uuid, lpad(to_hex(i % 50), 32, '0')::uuid, 'name ' || i, 'user' || i || '@example.com',
                        i * 1.5, i % 100, i % 2 = 0, now(), 'note ' || i, i / 7.0
                   FROM generate_series(1, 100000) i"
            ))
            .unwrap();
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
    for durability in [Durability::Defaults, Durability::Off] {
        durability.apply(client);
        // One unmeasured run each first: after the checkpoint, the first
        // writes to every page carry full-page images.
        for variant in variants {
            bench.pgbench(DATABASE, &pgbench_script(variant.table()), 4, 2);
        }
        let tps = paired_rounds(PGBENCH_ROUNDS, variants.len(), |v| {
            bench.pgbench(DATABASE, &pgbench_script(variants[v].table()), 4, 5)
        });
        for (v, variant) in variants.iter().enumerate().skip(1) {
            let (ratio, round, lowest, highest) = median_paired_ratio(&tps[v], &tps[0]);
            report.push(Row {
                scenario: format!(
                    "audit: pgbench 4 clients, 1-row INSERT + UPDATE txns, {}, {}, median of {PGBENCH_ROUNDS} paired rounds",
                    variant.label(),
                    durability.label()
                ),
                ours: format!(
                    "{:.0} tps (ratios {lowest:.3}..{highest:.3})",
                    tps[v][round]
                ),
                anchor: format!("{:.0} tps no trigger", tps[0][round]),
                ratio: Some(ratio),
                target: (*variant == Variant::Ours && durability == Durability::Defaults)
                    .then_some((Better::Higher, 0.8)),
            });
        }
    }
    for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
        client
            .batch_execute(&format!("ALTER SYSTEM RESET {setting}"))
            .unwrap();
    }
    client.batch_execute("SELECT pg_reload_conf()").unwrap();
}

fn pgbench_script(table: &str) -> String {
    format!(
        "\\set k random(1, 100000)
\\set n random(100001, 1000000000)
BEGIN;
INSERT INTO {table} VALUES (md5(:n::text)::uuid, md5((:n % 50)::text)::uuid, 'name', 'x@example.com', 1.5, 1, true, now(), 'note', 0.5) ON CONFLICT DO NOTHING;
UPDATE {table} SET qty = qty + 1 WHERE id = lpad(to_hex(:k), 32, '0')::uuid;
COMMIT;
"
    )
}
