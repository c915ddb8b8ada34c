//! Helpers for multi-connection tests: every test gets a database of its own
//! in the cluster `scripts/run-suites.sh` started, with pg_tenancy installed.

use postgres::{Client, NoTls};
use std::process::Command;

/// Connection string of the test cluster (without a database name).
pub fn base_dsn() -> String {
    std::env::var("PGTENANCY_TEST_DSN")
        .expect("PGTENANCY_TEST_DSN is set by scripts/run-suites.sh (run `make test`)")
}

/// The PostgreSQL bin directory (pg_dump, pg_restore).
pub fn bindir() -> String {
    std::env::var("PGTENANCY_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
}

pub fn connect(database: &str) -> Client {
    Client::connect(&format!("{} dbname={database}", base_dsn()), NoTls)
        .unwrap_or_else(|e| panic!("connect to {database}: {e}"))
}

pub fn connect_as(database: &str, role: &str) -> Client {
    Client::connect(
        &format!("{} dbname={database} user={role}", base_dsn()),
        NoTls,
    )
    .unwrap_or_else(|e| panic!("connect to {database} as {role}: {e}"))
}

/// A database created for one test and dropped when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// Creates database `name` (dropping a leftover one) with pg_tenancy installed.
    pub fn new(name: &str) -> TestDb {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        connect(name)
            .batch_execute("CREATE EXTENSION pg_tenancy")
            .expect("create extension");
        TestDb {
            name: name.to_string(),
        }
    }

    /// A database created empty (for pg_restore to fill).
    pub fn empty(name: &str) -> TestDb {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        TestDb {
            name: name.to_string(),
        }
    }

    pub fn connect(&self) -> Client {
        connect(&self.name)
    }

    pub fn connect_as(&self, role: &str) -> Client {
        connect_as(&self.name, role)
    }

    /// `host=... port=... user=...` plus this database, as libpq tools take it.
    pub fn dsn(&self) -> String {
        format!("{} dbname={}", base_dsn(), self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&format!("{} dbname=postgres", base_dsn()), NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A role created for one test (cluster-wide) and dropped when the test ends.
pub struct TestRole {
    pub name: String,
}

impl TestRole {
    pub fn new(name: &str, attributes: &str) -> TestRole {
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {name}"))
            .expect("drop leftover role");
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN {attributes}"))
            .expect("create role");
        TestRole {
            name: name.to_string(),
        }
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&format!("{} dbname=postgres", base_dsn()), NoTls) {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

/// Runs a PostgreSQL client program from the cluster's bin directory.
pub fn run_tool(tool: &str, args: &[&str]) {
    let output = Command::new(format!("{}/{tool}", bindir()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// pg_dump of `source` (custom format) restored into a new empty database
/// `target`, the way an operator moves a database.
pub fn dump_and_restore(source: &TestDb, target: &str) -> TestDb {
    let dump = std::env::temp_dir().join(format!("{target}_{}.pgdump", std::process::id()));
    let dump_path = dump.to_str().expect("a UTF-8 temp path");
    run_tool(
        "pg_dump",
        &[
            "--format=custom",
            "--file",
            dump_path,
            "--dbname",
            &source.dsn(),
        ],
    );
    let restored = TestDb::empty(target);
    run_tool(
        "pg_restore",
        &["--exit-on-error", "--dbname", &restored.dsn(), dump_path],
    );
    let _ = std::fs::remove_file(&dump);
    restored
}
