//! `make bench`: runs every scenario against a throwaway cluster holding the
//! release build of pg_tenancy and prints our figures beside the anchors'
//! (what users would otherwise run) as ratios, with the target of each.
//!
//! Usage: pg_tenancy_bench "host=... port=... user=..." [scenario ...]

mod accounting;
mod audit;
mod citus;
mod health;
mod masking;
mod partitions;
mod quotas;
mod report;
mod retention;
mod tenants;
mod usage;

use postgres::{Client, NoTls};
use report::Report;

/// A benchmark scenario: a name to select it by and a function that measures.
struct Scenario {
    name: &'static str,
    run: fn(&Bench, &mut Report),
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "isolation",
        run: tenants::isolation_overhead,
    },
    Scenario {
        name: "partitions",
        run: partitions::partitions,
    },
    Scenario {
        name: "audit",
        run: audit::audit,
    },
    Scenario {
        name: "quotas",
        run: quotas::quotas,
    },
    Scenario {
        name: "masking",
        run: masking::masking,
    },
    Scenario {
        name: "health",
        run: health::health,
    },
    Scenario {
        name: "retention",
        run: retention::retention,
    },
    Scenario {
        name: "usage",
        run: usage::usage,
    },
    Scenario {
        name: "accounting",
        run: accounting::accounting,
    },
    Scenario {
        name: "citus",
        run: citus::citus,
    },
];

/// Where the scenarios connect.
pub struct Bench {
    dsn: String,
    /// PostgreSQL's bin directory (pgbench).
    bindir: String,
}

impl Bench {
    /// The Citus cluster scripts/bench.sh started (PGTENANCY_CITUS_DSN: its
    /// coordinator, whose database bench_citus is on every node), if any.
    pub fn citus(&self) -> Option<Bench> {
        std::env::var("PGTENANCY_CITUS_DSN").ok().map(|dsn| Bench {
            dsn,
            bindir: self.bindir.clone(),
        })
    }

    /// A connection to database `database`.
    pub fn connect(&self, database: &str) -> Client {
        Client::connect(&format!("{} dbname={database}", self.dsn), NoTls)
            .unwrap_or_else(|e| panic!("connect to {database}: {e}"))
    }

    pub fn connect_as(&self, database: &str, role: &str) -> Client {
        Client::connect(
            &format!("{} dbname={database} user={role}", self.dsn),
            NoTls,
        )
        .unwrap_or_else(|e| panic!("connect to {database} as {role}: {e}"))
    }

    /// Runs pgbench with `script` for `seconds` with `clients` clients and
    /// returns the transactions per second it reports.
    pub fn pgbench(&self, database: &str, script: &str, clients: u32, seconds: u32) -> f64 {
        let path =
            std::env::temp_dir().join(format!("pg_tenancy_bench_{}.sql", std::process::id()));
        std::fs::write(&path, script).expect("write pgbench script");
        let tps = self.pgbench_with(
            database,
            "",
            &["-f", path.to_str().expect("a UTF-8 temporary path")],
            clients,
            seconds,
        );
        let _ = std::fs::remove_file(&path);
        tps
    }

    /// Runs pgbench with `workload` (its arguments: `-f FILE`, `-b NAME`)
    /// and the sessions' settings `options` (as PGOPTIONS takes them) for
    /// `seconds` with `clients` clients; returns the transactions per second.
    pub fn pgbench_with(
        &self,
        database: &str,
        options: &str,
        workload: &[&str],
        clients: u32,
        seconds: u32,
    ) -> f64 {
        self.pgbench_side_by_side(database, &[options], workload, clients, seconds)[0]
    }

    /// Runs one pgbench per entry of `options` at the same time, each with
    /// `clients` clients and those settings, for `seconds`; returns each
    /// one's transactions per second. Running side by side, they share the
    /// machine's drift: their ratio is what the settings cost, not the noise.
    pub fn pgbench_side_by_side(
        &self,
        database: &str,
        options: &[&str],
        workload: &[&str],
        clients: u32,
        seconds: u32,
    ) -> Vec<f64> {
        let jobs = clients.min(2).to_string();
        let children: Vec<std::process::Child> = options
            .iter()
            .map(|options| {
                std::process::Command::new(format!("{}/pgbench", self.bindir))
                    .arg(format!("{} dbname={database}", self.dsn))
                    .env("PGOPTIONS", options)
                    .args([
                        "-n",
                        "-c",
                        &clients.to_string(),
                        "-j",
                        &jobs,
                        "-T",
                        &seconds.to_string(),
                    ])
                    .args(workload)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run pgbench")
            })
            .collect();
        children
            .into_iter()
            .map(|child| {
                let output = child.wait_with_output().expect("wait for pgbench");
                let text = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "pgbench failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                text.lines()
                    .find_map(|line| line.strip_prefix("tps = "))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|number| number.parse().ok())
                    .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"))
            })
            .collect()
    }

    /// `pgbench -i` at `scale` in `database`.
    pub fn pgbench_init(&self, database: &str, scale: u32) {
        let output = std::process::Command::new(format!("{}/pgbench", self.bindir))
            .arg(format!("{} dbname={database}", self.dsn))
            .args(["-i", "-q", "-s", &scale.to_string()])
            .output()
            .expect("run pgbench -i");
        assert!(
            output.status.success(),
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Creates a fresh database with pg_tenancy installed.
    pub fn fresh_database(&self, name: &str) -> Client {
        let mut admin = self.connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut client = self.connect(name);
        client.batch_execute("CREATE EXTENSION pg_tenancy").unwrap();
        client
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dsn = args
        .next()
        .expect("usage: pg_tenancy_bench DSN [scenario ...]");
    let selected: Vec<String> = args.collect();
    let bindir =
        std::env::var("PGTENANCY_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let bench = Bench { dsn, bindir };
    let mut report = Report::default();
    for scenario in SCENARIOS {
        if selected.is_empty() || selected.iter().any(|s| s == scenario.name) {
            eprintln!("bench: running {}", scenario.name);
            (scenario.run)(&bench, &mut report);
        }
    }
    report.print();
}
