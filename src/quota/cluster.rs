//! Row quotas on Citus distributed tables (sql/quota_cluster.sql).
//!
//! The counting triggers of a distributed table fire where its rows are
//! written: in a shard, on a worker, inside the transaction the coordinator
//! opened there. The coordinator's counters are one network round trip away,
//! and a round trip per statement from inside a shard query is what Citus is
//! built to avoid. So on a cluster each tenant's counter is a row of
//! `tenancy.cluster_row_usage`, distributed by tenant and co-located with the
//! counted tables: the shard trigger finds the counter shard that covers the
//! same hash range, on the same node, and bumps the tenant's row there with
//! one upsert per tenant per statement. The row lock of that upsert
//! serializes concurrent writers of one tenant exactly as the single-node
//! counter does, and Citus commits the shard's rows and its counter in one
//! (two-phase when several nodes take part) transaction. The limit comes
//! from this node's copy of `tenancy.cluster_quota_limits`.

use super::ledger::Key;
use super::store::Terms;
use super::usage::{exceeded, Decision};
use crate::common::citus::{self, ShardOf};
use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// Where a relation firing a row-quota trigger keeps its counters.
#[derive(Clone, Debug)]
pub enum Counters {
    /// Not a Citus table: `tenancy.quota_usage`, through the usage ledger.
    Local,
    /// A shard: this counter shard of `tenancy.cluster_row_usage` (quoted);
    /// on the coordinator, for a distributed table itself, the distributed
    /// counter table. (Only its TRUNCATE trigger fires there: Citus sends
    /// INSERT, UPDATE and DELETE to the shards, and copies every trigger but
    /// the TRUNCATE ones to them.)
    Shard(String),
    /// A placement of a reference table on a worker: its rows are counted
    /// once, by the coordinator's placement (in `tenancy.quota_usage` there),
    /// which Citus writes in the same transaction.
    Elsewhere,
}

/// The counters, as the coordinator reaches them through Citus.
const DISTRIBUTED_COUNTERS: &str = "tenancy.cluster_row_usage";

thread_local! {
    static COUNTERS: RefCell<HashMap<pg_sys::Oid, Counters>> = RefCell::new(HashMap::new());
}

/// Registers the cache's invalidation; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(|relid| {
        COUNTERS.with(|c| {
            let mut c = c.borrow_mut();
            if relid == pg_sys::InvalidOid {
                c.clear();
            } else {
                c.remove(&relid);
            }
        })
    });
}

/// Where the counters of `relid`'s rows are. A shard of a table whose
/// counter table is not co-located with it (which `enforce` refuses to set
/// up) is an error, not a silent count on this node.
pub fn counters_of(relid: pg_sys::Oid) -> Counters {
    let Some(node) = citus::active() else {
        return Counters::Local;
    };
    if let Some(known) = COUNTERS.with(|c| c.borrow().get(&relid).cloned()) {
        return known;
    }
    match citus::table_kind(relid) {
        Some('h') => {
            let counters = Counters::Shard(DISTRIBUTED_COUNTERS.to_owned());
            COUNTERS.with(|c| c.borrow_mut().insert(relid, counters.clone()));
            return counters;
        }
        Some(_) => return Counters::Local,
        None => {}
    }
    // The co-located counter shard covers the same hash range.
    let found = citus::shard_of(relid, "cluster_row_usage");
    let on_coordinator = node.is_coordinator();
    let counters = match found {
        None => Counters::Local,
        Some(shard) if shard.kind != 'h' && on_coordinator => Counters::Local,
        Some(shard) if shard.kind != 'h' => Counters::Elsewhere,
        Some(ShardOf {
            colocated_shard: Some(counter),
            ..
        }) => {
            Counters::Shard(crate::common::relation::qualified_name_of(counter).unwrap_or_default())
        }
        Some(_) => {
            let name = crate::common::relation::qualified_name_of(relid).unwrap_or_default();
            error::not_in_prerequisite_state(format!(
                "shard {name} has a row quota but no co-located row counters on this node"
            ))
            .set_hint("Call tenancy.disable_row_quota() and tenancy.enforce_row_quota() on its table again on the coordinator.")
            .report(PgLogLevel::ERROR);
            unreachable!("an ERROR does not return")
        }
    };
    COUNTERS.with(|c| c.borrow_mut().insert(relid, counters.clone()));
    counters
}

/// Takes `rows` units per tenant in the counter shard, in tenant order (so
/// concurrent statements lock counters in the same order); 53400 when a
/// tenant's rows would pass its limit, which aborts the statement whole.
pub fn take_in_shard(counter: &str, resource: &str, counts: &BTreeMap<[u8; 16], i64>) {
    let limits = citus::local_copy(c"cluster_quota_limits");
    let tenants = citus::local_copy(c"cluster_tenants");
    let sql = format!(
        "WITH bumped AS (
             INSERT INTO {counter} AS u (tenant_id, resource, used) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, resource) DO UPDATE SET used = u.used OPERATOR(pg_catalog.+) excluded.used
             RETURNING u.used)
         SELECT b.used,
                (SELECT l.quota_limit FROM {limits} l
                  WHERE l.tenant_id OPERATOR(pg_catalog.=) $1 AND l.resource OPERATOR(pg_catalog.=) $2),
                EXISTS (SELECT FROM {tenants} t WHERE t.id OPERATOR(pg_catalog.=) $1)
           FROM bumped b"
    );
    for (tenant, rows) in counts {
        let (used, limit, known) = as_extension_owner(|| {
            Spi::connect_mut(|client| {
                let result = client.update(
                    &sql,
                    Some(1),
                    &[
                        pgrx::Uuid::from_bytes(*tenant).into(),
                        resource.into(),
                        (*rows).into(),
                    ],
                )?;
                let row = result.first();
                Ok::<_, pgrx::spi::Error>((
                    row.get::<i64>(1)?.unwrap_or(0),
                    row.get::<i64>(2)?,
                    row.get::<bool>(3)?.unwrap_or(false),
                ))
            })
            .expect("counting rows in the counter shard failed")
        });
        if !known {
            crate::tenant::registry::unknown_tenant(tenant).report(PgLogLevel::ERROR);
        }
        if let Some(limit) = limit.filter(|limit| used > *limit) {
            let key = Key {
                tenant: *tenant,
                resource: resource.to_owned(),
            };
            let decision = Decision {
                granted: false,
                used: used - rows,
                terms: Terms {
                    period: super::period::Period::None,
                    limit: Some(limit),
                },
                window: None,
            };
            exceeded(&key, &decision, *rows).report(PgLogLevel::ERROR);
        }
    }
}

/// Gives `rows` units per tenant back in the counter shard.
pub fn give_back_in_shard(counter: &str, resource: &str, counts: &BTreeMap<[u8; 16], i64>) {
    let sql = format!(
        "UPDATE {counter}
            SET used = GREATEST(used OPERATOR(pg_catalog.-) $3, 0)
          WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND resource OPERATOR(pg_catalog.=) $2"
    );
    for (tenant, rows) in counts {
        as_extension_owner(|| {
            Spi::run_with_args(
                &sql,
                &[
                    pgrx::Uuid::from_bytes(*tenant).into(),
                    resource.into(),
                    (*rows).into(),
                ],
            )
        })
        .expect("giving rows back in the counter shard failed");
    }
}

/// For `enforce_row_quota` on a Citus table of partition method `kind`:
/// 0A000 unless it is distributed by its tenant column, in the co-location
/// group the counters are in (they join the table's group the first time),
/// or a reference (or Citus local) table with a placement on the
/// coordinator, which counts its rows.
pub fn prepare_table(table: &Relation, kind: char, tenant_column: &str) -> Result<()> {
    citus::ensure_replicated("tenancy.enforce_row_quota()")?;
    let refused = |why: &str| {
        error::feature_not_supported(format!(
            "rows of {} cannot count against a quota on Citus: {why}",
            table.qualified_name()
        ))
        .set_hint("See docs/citus.md: row quotas count rows of tables distributed by their tenant column, co-located with each other.")
    };
    if kind != 'h' {
        // A reference table's placements all hold every row: the
        // coordinator's counts them, in this node's counters.
        return if citus::has_coordinator_placement(table.oid) {
            Ok(())
        } else {
            Err(refused(
                "it has no placement on the coordinator, where the rows of a reference table are counted (citus_set_coordinator_host)",
            ))
        };
    }
    let (by_tenant, colocated): (bool, Option<bool>) = as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) OPERATOR(pg_catalog.=) $2,
                        (SELECT cp.colocationid OPERATOR(pg_catalog.=) p.colocationid
                           FROM pg_catalog.pg_dist_partition cp
                          WHERE cp.logicalrelid OPERATOR(pg_catalog.=) 'tenancy.cluster_row_usage'::pg_catalog.regclass)
                   FROM pg_catalog.pg_dist_partition p
                  WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[table.oid.into(), tenant_column.into()],
            )?;
            let row = rows.first();
            Ok::<_, pgrx::spi::Error>((row.get::<bool>(1)?.unwrap_or(false), row.get::<bool>(2)?))
        })
        .expect("reading the table's distribution failed")
    });
    if !by_tenant {
        return Err(refused(&format!(
            "it is not distributed by its tenant column \"{tenant_column}\""
        )));
    }
    match colocated {
        Some(true) => Ok(()),
        Some(false) => Err(refused(
            "it is not co-located with the tables whose rows already count (tenancy.cluster_row_usage)",
        )),
        None => {
            as_extension_owner(|| {
                Spi::run_with_args(
                    "SELECT pg_catalog.create_distributed_table('tenancy.cluster_row_usage', 'tenant_id', colocate_with => $1)",
                    &[table.qualified_name().as_str().into()],
                )
            })
            .expect("distributing the row counters failed");
            Ok(())
        }
    }
}

/// Sets the counters of `resource` to the rows `rows_sql` (a query of one
/// column, `tenant`) finds per tenant; returns (tenant, rows) for each
/// tenant counted.
pub fn recount(resource: &str, rows_sql: &str) -> Vec<([u8; 16], i64)> {
    as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client.update(
                &format!("DELETE FROM {DISTRIBUTED_COUNTERS} WHERE resource OPERATOR(pg_catalog.=) $1"),
                None,
                &[resource.into()],
            )?;
            let counts = client
                .select(
                    &format!(
                        "SELECT tenant, count(*) FROM ({rows_sql}) r WHERE tenant IS NOT NULL GROUP BY 1 ORDER BY 1"
                    ),
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        *row.get::<pgrx::Uuid>(1)?.expect("a tenant").as_bytes(),
                        row.get::<i64>(2)?.unwrap_or(0),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()?;
            for (tenant, rows) in &counts {
                client.update(
                    &format!("INSERT INTO {DISTRIBUTED_COUNTERS} (tenant_id, resource, used) VALUES ($1, $2, $3)"),
                    None,
                    &[
                        pgrx::Uuid::from_bytes(*tenant).into(),
                        resource.into(),
                        (*rows).into(),
                    ],
                )?;
            }
            Ok::<_, pgrx::spi::Error>(counts)
        })
        .expect("counting the rows of distributed tables failed")
    })
}

/// The committed row counts of distributed tables, by tenant and resource
/// (empty off Citus, or before any distributed table counts rows), for one
/// tenant or all.
pub fn usage(only: Option<[u8; 16]>) -> HashMap<Key, i64> {
    if citus::active().is_none() || citus::table_kind(cluster_usage_relid()).is_none() {
        return HashMap::new();
    }
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT tenant_id, resource, used FROM tenancy.cluster_row_usage
                      WHERE $1::pg_catalog.uuid IS NULL OR tenant_id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[only.map(pgrx::Uuid::from_bytes).into()],
                )?
                .map(|row| {
                    Ok((
                        Key {
                            tenant: *row.get::<pgrx::Uuid>(1)?.expect("a tenant").as_bytes(),
                            resource: row.get::<String>(2)?.unwrap_or_default(),
                        },
                        row.get::<i64>(3)?.unwrap_or(0),
                    ))
                })
                .collect::<std::result::Result<HashMap<_, _>, pgrx::spi::Error>>()
        })
        .expect("reading the row counters of distributed tables failed")
    })
}

fn cluster_usage_relid() -> pg_sys::Oid {
    crate::common::relation::catalog_relid(c"cluster_row_usage").unwrap_or(pg_sys::InvalidOid)
}

/// The unit of `resource` (for status rows made from cluster counters).
pub fn unit_of(resource: &str) -> String {
    as_extension_owner(|| {
        crate::common::sql::select_value::<String>(
            "SELECT unit FROM tenancy.quota_resources WHERE name = $1",
            &[resource.into()],
        )
    })
    .unwrap_or_default()
}
