//! Tenant context behind a real transaction-pooling PgBouncer (Debian's
//! pgbouncer, started here on 127.0.0.1 with one server connection per pool),
//! and the tenant setting reported to clients (GUC_REPORT).
//!
//! With `pool_mode = transaction` and `default_pool_size = 1`, every client of
//! a role shares one server connection: whatever a transaction leaves in the
//! session is what the next client sees. `is_local` tenants leave nothing;
//! `tenancy.require_local_context` refuses the session-level mistake.

use pg_tenancy_multi::{base_dsn, TestDb, TestRole};
use postgres::{Client, NoTls, SimpleQueryMessage};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const ACME: &str = "a0000000-0000-4000-8000-00000000000a";
const GLOBEX: &str = "b0000000-0000-4000-8000-00000000000b";
const ROWS_PER_TENANT: usize = 50;
const CLIENTS: usize = 8;
const TRANSACTIONS: usize = 10_000;

/// A PgBouncer in front of one test database, stopped when dropped.
struct PgBouncer {
    process: Child,
    dir: PathBuf,
    port: u16,
}

impl PgBouncer {
    fn start(db: &TestDb, users: &[&str]) -> PgBouncer {
        let server_port = dsn_value(&base_dsn(), "port");
        let server_host = dsn_value(&base_dsn(), "host");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("pg_tenancy_pgbouncer_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let users_file: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
        std::fs::write(dir.join("users.txt"), users_file).unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n{db} = host={server_host} port={server_port} dbname={db}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 default_pool_size = 1\nmax_client_conn = 100\n\
                 ignore_startup_parameters = extra_float_digits, options\n\
                 logfile = {log}\npidfile = {pid}\n",
                db = db.name,
                users = dir.join("users.txt").display(),
                log = dir.join("pgbouncer.log").display(),
                pid = dir.join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        // PgBouncer refuses to run as root: run it as the cluster's user then.
        let running_as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let config = dir.join("pgbouncer.ini").display().to_string();
        let mut command = if running_as_root {
            Command::new("chmod")
                .args(["-R", "a+rwX"])
                .arg(&dir)
                .status()
                .unwrap();
            let mut c = Command::new("runuser");
            c.args([
                "-u",
                &dsn_value(&base_dsn(), "user"),
                "--",
                "pgbouncer",
                "-q",
                &config,
            ]);
            c
        } else {
            let mut c = Command::new("pgbouncer");
            c.args(["-q", &config]);
            c
        };
        let process = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pgbouncer is installed by `make setup` (Debian package pgbouncer)");
        let bouncer = PgBouncer { process, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not start: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    fn connect(&self, db: &TestDb, user: &str) -> Client {
        Client::connect(
            &format!(
                "host=127.0.0.1 port={} dbname={} user={user}",
                self.port, db.name
            ),
            NoTls,
        )
        .unwrap_or_else(|e| panic!("connect through pgbouncer as {user}: {e}\n{}", self.log()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on to pgbouncer.
        let _ = Command::new("kill")
            .arg(self.process.id().to_string())
            .status();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dsn_value(dsn: &str, key: &str) -> String {
    dsn.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {dsn}"))
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first column of every row of a simple-protocol query (PgBouncer in
/// transaction mode does not keep prepared statements).
fn column(client: &mut Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or_default().to_string()),
            _ => None,
        })
        .collect()
}

fn setup(db: &TestDb) {
    db.connect()
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('acme', 'Acme', 'free', '{ACME}');
             SELECT tenancy.create_tenant('globex', 'Globex', 'free', '{GLOBEX}');
             CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
             CREATE INDEX ON docs (tenant_id);
             INSERT INTO docs SELECT g, CASE WHEN g % 2 = 0 THEN '{ACME}'::uuid ELSE '{GLOBEX}'::uuid END, 'doc ' || g
               FROM generate_series(1, {}) g;
             SELECT tenancy.enable_isolation('docs');
             GRANT SELECT ON docs TO pool_app, pool_loose;
             ALTER ROLE pool_app IN DATABASE {} SET tenancy.require_local_context = on;",
            2 * ROWS_PER_TENANT,
            db.name
        ))
        .unwrap();
}

/// 10,000 transactions from 8 clients, alternating two tenants with
/// `is_local`, over one server connection: every transaction sees exactly its
/// own tenant's rows, and a statement outside a transaction sees none.
#[test]
fn transaction_pooling_keeps_tenants_apart() {
    let _app = TestRole::new("pool_app", "");
    let _loose = TestRole::new("pool_loose", "");
    let db = TestDb::new("multi_pooling");
    setup(&db);
    let bouncer = PgBouncer::start(&db, &["pool_app", "pool_loose"]);

    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let mut client = bouncer.connect(&db, "pool_app");
            std::thread::spawn(move || {
                let (mut transactions, mut cross_tenant_rows, mut rows_without_tenant) = (0, 0, 0);
                for i in 0..TRANSACTIONS / CLIENTS {
                    let tenant = if (i + worker) % 2 == 0 { ACME } else { GLOBEX };
                    client.simple_query("BEGIN").unwrap();
                    column(
                        &mut client,
                        &format!("SELECT tenancy.set_tenant('{tenant}', is_local => true)"),
                    );
                    let seen = column(&mut client, "SELECT tenant_id FROM docs");
                    client.simple_query("COMMIT").unwrap();
                    assert_eq!(seen.len(), ROWS_PER_TENANT, "rows of {tenant}");
                    cross_tenant_rows += seen.iter().filter(|t| t.as_str() != tenant).count();
                    transactions += 1;
                    if i % 10 == 0 {
                        rows_without_tenant += column(&mut client, "SELECT count(*) FROM docs")[0]
                            .parse::<usize>()
                            .unwrap();
                    }
                }
                (transactions, cross_tenant_rows, rows_without_tenant)
            })
        })
        .collect();
    let results: Vec<(usize, usize, usize)> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    let transactions: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(transactions, TRANSACTIONS);
    assert_eq!(
        results.iter().map(|r| r.1).sum::<usize>(),
        0,
        "cross-tenant rows"
    );
    assert_eq!(
        results.iter().map(|r| r.2).sum::<usize>(),
        0,
        "rows seen with no tenant set"
    );

    // The session-level mistake: refused for a role with require_local_context,
    // so the next client on the same server connection still sees nothing ...
    let mut careless = bouncer.connect(&db, "pool_app");
    let mut next = bouncer.connect(&db, "pool_app");
    let err = careless
        .simple_query(&format!("SELECT tenancy.set_tenant('{GLOBEX}')"))
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err}");
    let err = careless
        .simple_query(&format!("SET tenancy.tenant_id = '{GLOBEX}'"))
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err}");
    assert_eq!(column(&mut next, "SELECT count(*) FROM docs"), vec!["0"]);

    // ... whereas without it (the control), the next client inherits globex:
    // the leak this setting exists to stop, reproduced through this very pool.
    let mut careless = bouncer.connect(&db, "pool_loose");
    let mut next = bouncer.connect(&db, "pool_loose");
    column(
        &mut careless,
        &format!("SELECT tenancy.set_tenant('{GLOBEX}')"),
    );
    assert_eq!(
        column(&mut next, "SELECT count(*) FROM docs"),
        vec![ROWS_PER_TENANT.to_string()],
        "the control must show the leak through the shared server connection"
    );
}

/// `tenancy.tenant_id` is GUC_REPORT: the server sends a ParameterStatus
/// message whenever it changes, which is what lets PgBouncer 1.20+
/// (`track_extra_parameters`) track it per client. Read off the wire.
#[test]
fn tenant_setting_is_reported_to_the_client() {
    let db = TestDb::new("multi_guc_report");
    db.connect()
        .batch_execute(&format!(
            "SELECT tenancy.create_tenant('acme', 'Acme', 'free', '{ACME}')"
        ))
        .unwrap();
    let mut wire = Wire::connect(
        &dsn_value(&base_dsn(), "host"),
        &dsn_value(&base_dsn(), "port"),
        &db.name,
    );
    let reported = wire.query(&format!("SELECT tenancy.set_tenant('{ACME}')"));
    assert!(
        reported.contains(&("tenancy.tenant_id".to_string(), ACME.to_string())),
        "no ParameterStatus for the tenant: {reported:?}"
    );
    let reported = wire.query("SELECT tenancy.clear_tenant()");
    assert!(
        reported.contains(&("tenancy.tenant_id".to_string(), String::new())),
        "no ParameterStatus when it was cleared: {reported:?}"
    );
    let reported = wire.query("SELECT 1");
    assert!(
        !reported.iter().any(|(name, _)| name == "tenancy.tenant_id"),
        "{reported:?}"
    );
}

/// The least of the v3 protocol needed to see ParameterStatus messages:
/// startup with trust authentication, simple queries.
struct Wire {
    stream: TcpStream,
}

impl Wire {
    fn connect(host: &str, port: &str, database: &str) -> Wire {
        let mut stream = TcpStream::connect(format!("{host}:{port}")).unwrap();
        let user = dsn_value(&base_dsn(), "user");
        let mut body = 196608u32.to_be_bytes().to_vec(); // protocol 3.0
        for (key, value) in [("user", user.as_str()), ("database", database)] {
            body.extend_from_slice(key.as_bytes());
            body.push(0);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        message.extend(body);
        stream.write_all(&message).unwrap();
        let mut wire = Wire { stream };
        wire.until_ready();
        wire
    }

    /// Sends one query; the ParameterStatus (name, value) pairs that came back.
    fn query(&mut self, sql: &str) -> Vec<(String, String)> {
        let mut message = vec![b'Q'];
        message.extend(((sql.len() + 5) as u32).to_be_bytes());
        message.extend_from_slice(sql.as_bytes());
        message.push(0);
        self.stream.write_all(&message).unwrap();
        self.until_ready()
    }

    fn until_ready(&mut self) -> Vec<(String, String)> {
        let mut reported = Vec::new();
        loop {
            let mut header = [0u8; 5];
            self.stream.read_exact(&mut header).unwrap();
            let length = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize - 4;
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).unwrap();
            match header[0] {
                b'S' => {
                    let mut parts = body.split(|b| *b == 0);
                    let name =
                        String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    let value =
                        String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    reported.push((name, value));
                }
                b'E' => panic!("server error: {}", String::from_utf8_lossy(&body)),
                b'R' => assert_eq!(
                    &body[..4],
                    &0u32.to_be_bytes(),
                    "trust authentication expected"
                ),
                b'Z' => return reported,
                _ => {}
            }
        }
    }
}
