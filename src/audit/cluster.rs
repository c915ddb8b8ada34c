//! Audit on Citus (docs/citus.md): where the audit rows of a Citus table are
//! written, and what `enable_audit` checks and sets up for one.
//!
//! A distributed table's INSERT, UPDATE and DELETE run in its shards, on the
//! workers, and its audit triggers fire there (Citus copies them to every
//! shard). Sending the rows back to the coordinator would cost a network
//! round trip per statement from inside a shard query, so they stay on the
//! node: each shard's trigger writes into the shard of
//! `tenancy.cluster_audit_log` that covers the same hash range, which the
//! co-location puts on the same node, in the same transaction. The log is
//! distributed by tenant, so the coordinator reads a tenant's rows from the
//! one shard that holds them, and partitioned by time like the log, its
//! partitions created and retired on every node by the coordinator's
//! maintenance.
//!
//! Ids must be unique across the cluster, and each node draws from its own
//! sequence: a row written on node group `g` gets `(g + 1) << 52` plus the
//! number its sequence gives. The group stays in the id when a shard moves,
//! which is how sealing knows whose transaction ids a row carries.
//!
//! A worker has no copy of `tenancy.audit_config`: the excluded columns
//! travel as the triggers' arguments, and the tenant column is the table's
//! distribution column. A reference table's rows are the same on every
//! node: the coordinator's placement logs them, in its own log, and the
//! workers' placements log nothing. TRUNCATE triggers fire on the
//! coordinator only (Citus does not copy them to shards), which logs it as
//! on one node.

use crate::common::citus;
use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

/// Where the audit rows of a relation firing the audit trigger go.
#[derive(Clone, Debug)]
pub enum Target {
    /// Not a shard (or a reference table's placement on the coordinator):
    /// `tenancy.audit_log` on this node.
    Local,
    /// A shard of a distributed table: the co-located shard of the cluster
    /// log, with the ids of this node group.
    Shard(ShardLog),
    /// A reference table's placement on a worker: the coordinator logs it.
    Elsewhere,
}

#[derive(Clone, Debug)]
pub struct ShardLog {
    /// The cluster log's shard on this node (a partitioned table).
    pub log: pg_sys::Oid,
    /// Added to every id written here: `(group + 1) << 52`.
    pub id_base: i64,
}

/// Ids of node group `g` start at `(g + 1) << GROUP_SHIFT`; below
/// `1 << GROUP_SHIFT` are the ids of `tenancy.audit_log`.
pub const GROUP_SHIFT: u32 = 52;

/// The first id written on node group `group`.
pub fn id_base(group: i64) -> i64 {
    (group + 1) << GROUP_SHIFT
}

/// What a shard is, as the audit trigger needs to know it.
#[derive(Clone, Debug)]
pub struct Shard {
    /// The table it is a shard of, as `schema.table` (quoted as needed).
    pub table_name: String,
    /// Its distribution column (None for a reference table).
    pub distribution_column: Option<String>,
    target: Target,
}

thread_local! {
    static SHARDS: RefCell<HashMap<pg_sys::Oid, Option<Shard>>> = RefCell::new(HashMap::new());
}

/// Registers the cache's invalidation; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(|relid| {
        SHARDS.with(|s| {
            // A callback may arrive while the map is being filled.
            if let Ok(mut s) = s.try_borrow_mut() {
                if relid == pg_sys::InvalidOid {
                    s.clear();
                } else {
                    s.remove(&relid);
                }
            }
        })
    });
}

/// Where the audit rows of `relid` go.
pub fn target_of(relid: pg_sys::Oid) -> Target {
    shard_of(relid).map_or(Target::Local, |shard| shard.target)
}

/// The shard `relid` is, or None when it is no shard (or Citus is not here).
pub fn shard_of(relid: pg_sys::Oid) -> Option<Shard> {
    let node = citus::active()?;
    if let Some(known) = SHARDS.with(|s| s.borrow().get(&relid).cloned()) {
        return known;
    }
    let shard = citus::shard_of(relid, "cluster_audit_log").map(|found| {
        let table_name = found.table_name;
        let target = match (found.kind, found.colocated_shard) {
            ('h', Some(log)) => Target::Shard(ShardLog {
                log,
                id_base: id_base(found.group),
            }),
            ('h', None) => {
                error::not_in_prerequisite_state(format!(
                    "shard of {table_name} is audited but has no co-located audit log on this node"
                ))
                .set_hint("Call tenancy.disable_audit() and tenancy.enable_audit() on its table again on the coordinator.")
                .report(PgLogLevel::ERROR);
                unreachable!("an ERROR does not return")
            }
            _ if node.is_coordinator() => Target::Local,
            _ => Target::Elsewhere,
        };
        Shard {
            table_name,
            distribution_column: found.distribution_column,
            target,
        }
    });
    SHARDS.with(|s| s.borrow_mut().insert(relid, shard.clone()));
    shard
}

/// The arguments the audit triggers of `table` carry: its excluded columns
/// on a Citus table (whose shards cannot read `tenancy.audit_config`), none
/// elsewhere.
pub fn trigger_arguments(table: pg_sys::Oid, excluded: &[String]) -> Vec<String> {
    if citus::table_kind(table).is_some() {
        excluded.to_vec()
    } else {
        Vec::new()
    }
}

/// For `enable_audit` on a Citus table of partition method `kind`: 0A000
/// unless it is distributed by its tenant column (the cluster log is then
/// distributed co-located with it, the first time, or must already be in
/// its co-location group), or a reference table with a placement on the
/// coordinator, which logs its rows.
pub fn prepare_table(table: &Relation, kind: char) -> Result<()> {
    citus::ensure_replicated("tenancy.enable_audit()")?;
    let refused = |why: &str| {
        error::feature_not_supported(format!(
            "{} cannot be audited on Citus: {why}",
            table.qualified_name()
        ))
        .set_hint("See docs/citus.md: audited tables are distributed by their tenant column and co-located, or reference tables.")
    };
    if kind != 'h' {
        return if citus::has_coordinator_placement(table.oid) {
            Ok(())
        } else {
            Err(refused(
                "it has no placement on the coordinator, which logs the rows of a reference table (citus_set_coordinator_host)",
            ))
        };
    }
    let (by_tenant, colocated): (bool, Option<bool>) = as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT EXISTS (SELECT FROM tenancy.tenant_tables t
                                 WHERE t.tbl OPERATOR(pg_catalog.=) p.logicalrelid
                                   AND t.tenant_column::pg_catalog.text OPERATOR(pg_catalog.=)
                                       pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)),
                        (SELECT cp.colocationid OPERATOR(pg_catalog.=) p.colocationid
                           FROM pg_catalog.pg_dist_partition cp
                          WHERE cp.logicalrelid OPERATOR(pg_catalog.=) 'tenancy.cluster_audit_log'::pg_catalog.regclass)
                   FROM pg_catalog.pg_dist_partition p
                  WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[table.oid.into()],
            )?;
            let row = rows.first();
            Ok::<_, pgrx::spi::Error>((row.get::<bool>(1)?.unwrap_or(false), row.get::<bool>(2)?))
        })
        .expect("reading the table's distribution failed")
    });
    if !by_tenant {
        return Err(refused(
            "it is not distributed by its tenant column (tenancy.register_table)",
        ));
    }
    match colocated {
        Some(true) => Ok(()),
        Some(false) => Err(refused(
            "it is not co-located with the tables already audited (tenancy.cluster_audit_log)",
        )),
        None => {
            super::ensure_cluster_audit_log_partitions();
            as_extension_owner(|| {
                Spi::run_with_args(
                    "SELECT pg_catalog.create_distributed_table('tenancy.cluster_audit_log', 'tenant_id', colocate_with => $1)",
                    &[table.qualified_name().as_str().into()],
                )
            })
            .expect("distributing the cluster audit log failed");
            Ok(())
        }
    }
}

/// Whether the cluster log is a distributed table (a Citus cluster where a
/// distributed table has been audited).
pub fn log_is_distributed() -> bool {
    crate::common::relation::catalog_relid(c"cluster_audit_log")
        .is_some_and(|relid| citus::table_kind(relid).is_some())
}

/// Per node of the cluster, once the cluster log is distributed: its group,
/// its system identifier and the oldest transaction id still running there
/// (every transaction below it has finished). Nodes that do not answer are
/// left out: their rows wait for the next seal.
pub fn node_horizons() -> Vec<(i64, i64, i64)> {
    if !log_is_distributed() {
        return Vec::new();
    }
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT n.groupid::pg_catalog.int8,
                            pg_catalog.split_part(r.result, ' ', 1)::pg_catalog.int8,
                            pg_catalog.split_part(r.result, ' ', 2)::pg_catalog.int8
                       FROM pg_catalog.run_command_on_all_nodes(
                              $$SELECT (SELECT system_identifier FROM pg_catalog.pg_control_system())::pg_catalog.text
                                       OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||)
                                       pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text$$) r
                       JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) r.nodeid
                      WHERE r.success
                      ORDER BY 1",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get::<i64>(1)?.unwrap_or(0),
                        row.get::<i64>(2)?.unwrap_or(0),
                        row.get::<i64>(3)?.unwrap_or(0),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading the nodes' oldest transactions failed")
    })
}

/// What `_cluster_audit_rows` returns: the rule of the policy on
/// `tenancy.audit_log` applied as the caller (superusers and BYPASSRLS roles
/// read everything, masked roles nothing, other roles their tenant's rows),
/// the rows read as the extension owner, who alone may read them.
pub fn readable_rows(
    tables: Option<Vec<String>>,
    record_key: Option<pgrx::JsonB>,
) -> Vec<pgrx::JsonB> {
    if !log_is_distributed() {
        return Vec::new();
    }
    let reads_all = Spi::get_one::<bool>("SELECT tenancy._audit_reads_all()")
        .expect("checking the reader failed")
        .unwrap_or(false);
    let tenant = if reads_all {
        None
    } else {
        match Spi::get_one::<pgrx::Uuid>("SELECT tenancy._audit_readable_tenant()")
            .expect("checking the reader's tenant failed")
        {
            Some(tenant) => Some(tenant),
            None => return Vec::new(),
        }
    };
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT pg_catalog.to_jsonb(a) FROM tenancy.cluster_audit_log a
                      WHERE ($1::pg_catalog.uuid IS NULL OR a.tenant_id OPERATOR(pg_catalog.=) $1)
                        AND ($2::pg_catalog.text[] IS NULL OR a.table_name OPERATOR(pg_catalog.=) ANY ($2))
                        AND ($3::pg_catalog.jsonb IS NULL OR a.record_key OPERATOR(pg_catalog.=) $3
                             OR a.old_record_key OPERATOR(pg_catalog.=) $3)",
                    None,
                    &[tenant.into(), tables.into(), record_key.into()],
                )?
                .map(|row| Ok(row.get::<pgrx::JsonB>(1)?.expect("a row")))
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading the cluster audit log failed")
    })
}
