//! `make bench`: runs every scenario against a throwaway cluster holding the
//! release build of pg_tenancy and prints our figures beside the anchors'
//! (what users would otherwise run) as ratios, with the target of each.
//!
//! Usage: pg_tenancy_bench "host=... port=... user=..." [scenario ...]

mod partitions;
mod report;
mod tenants;

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
];

/// Where the scenarios connect.
pub struct Bench {
    dsn: String,
}

impl Bench {
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
    let bench = Bench { dsn };
    let mut report = Report::default();
    for scenario in SCENARIOS {
        if selected.is_empty() || selected.iter().any(|s| s == scenario.name) {
            eprintln!("bench: running {}", scenario.name);
            (scenario.run)(&bench, &mut report);
        }
    }
    report.print();
}
