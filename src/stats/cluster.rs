//! The cluster in the health checks: on a Citus coordinator, whether each
//! worker answers, and the single-node checks that matter on every node
//! (connections, wraparound, replication) measured on each worker.
//!
//! The workers run the very queries of `checks.rs` (one round trip per
//! worker, all of them in one `run_command_on_workers`), so a figure means the
//! same on a worker as on the coordinator and the same thresholds apply. The
//! coordinator's own figures are the single-node checks themselves.

use super::checks;
use crate::common::subxact::attempt;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// The single-node checks measured on every worker; each reports as
/// `cluster_<name>` with the worst node's figure, against `<name>`'s thresholds.
const PER_NODE: [&str; 4] = [
    "connection_saturation",
    "xid_wraparound",
    "multixact_wraparound",
    "replication_lag_bytes",
];

/// The check counting workers that do not answer (its own thresholds row).
pub const UNREACHABLE: &str = "cluster_unreachable_nodes";

/// How long a worker may take to accept a connection before it counts as
/// unreachable: Citus's default (30 s) would stall health_check on a node
/// whose packets vanish.
const CONNECT_TIMEOUT_MS: &str = "5000";

/// A figure of the cluster, ready to be evaluated like a single-node check.
pub struct Figure {
    pub name: String,
    /// The `tenancy.health_thresholds` row that judges it.
    pub thresholds_of: String,
    pub value: Option<AnyNumeric>,
    pub detail: String,
}

/// One check measured on one worker (`check` None: the worker answered
/// nothing, `detail` says why).
pub struct NodeFigure {
    pub node: String,
    pub port: i32,
    pub reachable: bool,
    pub check: Option<String>,
    pub value: Option<AnyNumeric>,
    pub detail: String,
}

/// Whether this backend is a Citus coordinator, the node that sees the cluster.
pub fn applies() -> bool {
    crate::common::citus::active().is_some_and(|c| c.is_coordinator())
}

/// The query each worker runs: `{"<check>": [value, detail], ...}`.
fn probe() -> String {
    let fields: Vec<String> = checks::all()
        .into_iter()
        .filter(|check| PER_NODE.contains(&check.name))
        .map(|check| {
            format!(
                "'{}', (SELECT pg_catalog.json_build_array(c.v::pg_catalog.numeric, c.d::pg_catalog.text) FROM ({}) AS c(v, d))",
                check.name, check.sql
            )
        })
        .collect();
    format!("SELECT pg_catalog.json_build_object({})", fields.join(", "))
}

/// Every active primary worker, checked for a connection, and on the ones
/// that answer every per-node check. Raises what Citus raises (a role
/// without the right to run commands on the workers, say).
pub fn node_figures() -> Vec<NodeFigure> {
    crate::common::settings::with_settings(
        // The detail says which worker did not answer; Citus's own warning
        // about it would only repeat that.
        &[
            ("citus.node_connection_timeout", CONNECT_TIMEOUT_MS),
            ("client_min_messages", "error"),
        ],
        || {
            Spi::connect(|client| {
                client
                    .select(
                        "WITH workers AS (
                             SELECT n.nodeid, n.nodename, n.nodeport,
                                    pg_catalog.citus_check_connection_to_node(n.nodename, n.nodeport) AS reachable
                               FROM pg_catalog.pg_dist_node n
                              WHERE n.isactive AND n.noderole OPERATOR(pg_catalog.=) 'primary'
                                AND n.groupid OPERATOR(pg_catalog.<>) 0
                         ), answers AS (
                             SELECT r.nodename, r.nodeport, r.success, r.result
                               FROM pg_catalog.run_command_on_workers($1) r
                              WHERE EXISTS (SELECT FROM workers w WHERE w.reachable)
                         )
                         SELECT w.nodename, w.nodeport, w.reachable, f.key,
                                (f.value OPERATOR(pg_catalog.->>) 0)::pg_catalog.numeric,
                                CASE WHEN NOT w.reachable THEN 'does not accept connections'
                                     WHEN a.success IS NOT TRUE THEN 'could not run: ' OPERATOR(pg_catalog.||) coalesce(a.result, 'no answer')
                                     ELSE f.value OPERATOR(pg_catalog.->>) 1 END
                           FROM workers w
                           LEFT JOIN answers a ON a.nodename OPERATOR(pg_catalog.=) w.nodename
                                              AND a.nodeport OPERATOR(pg_catalog.=) w.nodeport
                           LEFT JOIN LATERAL pg_catalog.jsonb_each(
                                CASE WHEN w.reachable AND a.success THEN a.result::pg_catalog.jsonb END) f ON true
                          ORDER BY w.nodeid, f.key",
                        None,
                        &[probe().into()],
                    )?
                    .map(|row| {
                        Ok(NodeFigure {
                            node: row.get::<String>(1)?.unwrap_or_default(),
                            port: row.get::<i32>(2)?.unwrap_or_default(),
                            reachable: row.get::<bool>(3)?.unwrap_or(false),
                            check: row.get::<String>(4)?,
                            value: row.get::<AnyNumeric>(5)?,
                            detail: row.get::<String>(6)?.unwrap_or_default(),
                        })
                    })
                    .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
            })
            .unwrap_or_else(|e| panic!("measuring the Citus workers: {e}"))
        },
    )
}

fn as_f64(value: &Option<AnyNumeric>) -> Option<f64> {
    value.clone().and_then(|v| f64::try_from(v).ok())
}

/// `host:port`
fn address(figure: &NodeFigure) -> String {
    format!("{}:{}", figure.node, figure.port)
}

/// The cluster checks of `health_check()`: unreachable workers, then each
/// per-node check with the worst worker's figure. A failure to measure the
/// cluster at all is reported on the first, which then counts as a warning.
pub fn figures() -> Vec<Figure> {
    let nodes = match attempt(node_figures) {
        Ok(nodes) => nodes,
        Err(failure) => {
            return vec![Figure {
                name: UNREACHABLE.into(),
                thresholds_of: UNREACHABLE.into(),
                value: None,
                detail: format!("could not run: {failure}"),
            }]
        }
    };
    let mut workers: Vec<&NodeFigure> = Vec::new();
    for figure in &nodes {
        if !workers
            .iter()
            .any(|w| w.node == figure.node && w.port == figure.port)
        {
            workers.push(figure);
        }
    }
    let unreachable: Vec<String> = workers
        .iter()
        .filter(|w| !w.reachable)
        .map(|w| address(w))
        .collect();
    let mut out = vec![Figure {
        name: UNREACHABLE.into(),
        thresholds_of: UNREACHABLE.into(),
        value: (!workers.is_empty()).then(|| AnyNumeric::from(unreachable.len() as i64)),
        detail: if workers.is_empty() {
            "no worker node in pg_dist_node".into()
        } else if unreachable.is_empty() {
            format!("all {} worker(s) accept connections", workers.len())
        } else {
            format!(
                "{} of {} worker(s) do not accept connections: {}",
                unreachable.len(),
                workers.len(),
                unreachable.join(", ")
            )
        },
    }];
    for name in PER_NODE {
        let measured: Vec<&NodeFigure> = nodes
            .iter()
            .filter(|f| f.check.as_deref() == Some(name))
            .collect();
        let worst = measured
            .iter()
            .filter(|f| f.value.is_some())
            .max_by(|a, b| as_f64(&a.value).partial_cmp(&as_f64(&b.value)).unwrap());
        let missing: Vec<String> = workers
            .iter()
            .filter(|w| {
                !measured
                    .iter()
                    .any(|m| m.node == w.node && m.port == w.port)
            })
            .map(|w| format!("{} ({})", address(w), w.detail))
            .collect();
        let mut detail = match worst {
            Some(w) => format!(
                "worst of {} worker(s): {}: {}",
                measured.len(),
                address(w),
                w.detail
            ),
            None if measured.is_empty() => "no worker measured".into(),
            None => format!("{} worker(s): {}", measured.len(), measured[0].detail),
        };
        if !missing.is_empty() {
            detail.push_str(&format!("; not measured: {}", missing.join(", ")));
        }
        out.push(Figure {
            name: format!("cluster_{name}"),
            thresholds_of: name.into(),
            value: worst.and_then(|w| w.value.clone()),
            detail,
        });
    }
    out
}
