//! Row quotas: a table's rows count against a resource per tenant.
//!
//! Statement triggers read the statement's transition tables and take (or
//! give back) one unit per row in a single `consume` per tenant, so a
//! 100,000-row INSERT touches each tenant's counter once, and a multi-row
//! INSERT that would cross the limit fails whole. A row trigger, which fires
//! only when the tenant column really changes, moves rows between tenants.

use super::cluster::{self, Counters};
use super::ledger::Key;
use super::terms;
use super::usage;
use super::usage::exceeded;
use crate::common::error;
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sql::literal;
use crate::common::sql::{select_text_pairs, select_value};
use crate::common::sqltypes::RegClass;
use crate::common::transition::TransitionReader;
use crate::common::triggers::{self, Definitions};
use pgrx::pg_sys::panic::ErrorReportable;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use std::collections::BTreeMap;

/// Name prefix of every row-quota trigger.
pub const TRIGGER_PREFIX: &str = "tenancy_quota_";

/// The statement triggers (on the table and on every partition) counting rows
/// of `resource` by `tenant_column`. The resource and column travel as
/// trigger arguments, so the trigger needs no catalog lookup.
pub fn statement_triggers(
    qualified_table: &str,
    resource: &str,
    tenant_column: &str,
) -> Definitions {
    let function = format!(
        "EXECUTE FUNCTION tenancy._row_quota_statement({}, {})",
        literal(resource),
        literal(tenant_column)
    );
    vec![
        (
            "tenancy_quota_insert",
            format!("AFTER INSERT ON {qualified_table} REFERENCING NEW TABLE AS tenancy_quota_new FOR EACH STATEMENT {function}"),
        ),
        (
            "tenancy_quota_delete",
            format!("AFTER DELETE ON {qualified_table} REFERENCING OLD TABLE AS tenancy_quota_old FOR EACH STATEMENT {function}"),
        ),
        ("tenancy_quota_truncate", format!("BEFORE TRUNCATE ON {qualified_table} FOR EACH STATEMENT {function}")),
    ]
}

/// The row trigger for rows moving between tenants. PostgreSQL clones a row
/// trigger of a partitioned table to every partition, present and future.
fn move_trigger(qualified_table: &str, resource: &str, tenant_column: &str) -> Definitions {
    let column = quote_identifier(tenant_column);
    vec![(
        "tenancy_quota_move",
        format!(
            "AFTER UPDATE OF {column} ON {qualified_table} FOR EACH ROW
             WHEN (OLD.{column} IS DISTINCT FROM NEW.{column})
             EXECUTE FUNCTION tenancy._row_quota_move({}, {})",
            literal(resource),
            literal(tenant_column)
        ),
    )]
}

/// Row quotas' part in partition maintenance (`common::hooks`): a new child
/// of a table whose rows count against a resource gets the statement triggers.
pub fn child_attached(event: &crate::common::hooks::ChildAttached) {
    if let Some((resource, column)) = configuration(RegClass(event.parent)) {
        crate::common::citus::with_unsafe_triggers(event.parent, || {
            triggers::create_for_partition(&triggers::create_sql(statement_triggers(
                event.child,
                &resource,
                &column,
            )))
        });
    }
}

/// The column's position (0-based) in the trigger's relation.
unsafe fn column_index(tupdesc: pg_sys::TupleDesc, column: &str) -> usize {
    // SAFETY: `tupdesc` is the trigger relation's descriptor.
    let attributes = unsafe { crate::common::tupdesc::attributes(tupdesc) };
    for (index, attribute) in attributes.into_iter().enumerate() {
        if !attribute.attisdropped && pgrx::name_data_to_str(&attribute.attname) == column {
            return index;
        }
    }
    // Renames are followed (tenancy_follow_renamed_columns); a dropped column is not.
    error::not_in_prerequisite_state(format!(
        "the tenant column \"{column}\" of a table with a row quota is gone"
    ))
    .set_hint("Call tenancy.disable_row_quota() on the table, or add the column back.")
    .report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Rows per tenant in a transition table (rows without a tenant do not count).
unsafe fn count_by_tenant(
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    index: usize,
) -> BTreeMap<[u8; 16], i64> {
    let mut counts = BTreeMap::new();
    if store.is_null() {
        pgrx::error!("row quota trigger fired without its transition table; run tenancy.enforce_row_quota() again");
    }
    // SAFETY: `store` was checked non-null and is the trigger's transition
    // table shaped like `tupdesc`; `index` is one of its columns.
    unsafe {
        let mut reader = TransitionReader::new(store, tupdesc);
        while let Some((values, nulls)) = reader.next_prefix(index + 1) {
            if !nulls[index] {
                let tenant = *values[index].cast_mut_ptr::<[u8; 16]>();
                *counts.entry(tenant).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Takes `rows` units per tenant (in tenant order, so concurrent statements
/// lock counters in the same order), raising 53400 if any does not fit.
fn take(counters: &Counters, resource: &str, counts: &BTreeMap<[u8; 16], i64>) {
    match counters {
        Counters::Shard(counter) => return cluster::take_in_shard(counter, resource, counts),
        Counters::Elsewhere => return,
        Counters::Local => {}
    }
    for (tenant, rows) in counts {
        let key = Key {
            tenant: *tenant,
            resource: resource.to_owned(),
        };
        let decision = usage::consume(&key, *rows).unwrap_or_report();
        if !decision.granted {
            exceeded(&key, &decision, *rows).report(PgLogLevel::ERROR);
        }
    }
}

fn give_back(counters: &Counters, resource: &str, counts: &BTreeMap<[u8; 16], i64>) {
    match counters {
        Counters::Shard(counter) => return cluster::give_back_in_shard(counter, resource, counts),
        Counters::Elsewhere => return,
        Counters::Local => {}
    }
    for (tenant, rows) in counts {
        let key = Key {
            tenant: *tenant,
            resource: resource.to_owned(),
        };
        usage::release(&key, *rows).unwrap_or_report();
    }
}

fn trigger_arguments(trigger: &PgTrigger<'_>) -> (String, String) {
    let args = trigger.extra_args().expect("trigger arguments");
    match args.as_slice() {
        [resource, column] => (resource.clone(), column.clone()),
        _ => pgrx::error!("row quota trigger needs (resource, tenant_column) arguments"),
    }
}

/// Rows per tenant in the table itself (not its partitions: each partition's
/// own trigger counts its rows).
fn count_table_rows(relation: pg_sys::Oid, column: &str) -> BTreeMap<[u8; 16], i64> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let table = Relation::lookup(RegClass(relation)).unwrap_or_report();
            let sql = format!(
                "SELECT {column}, count(*) FROM ONLY {} WHERE {column} IS NOT NULL GROUP BY 1",
                table.qualified_name(),
                column = quote_identifier(column)
            );
            client
                .select(&sql, None, &[])?
                .map(|row| {
                    let tenant: pgrx::Uuid = row.get(1)?.expect("non-null tenant");
                    Ok((*tenant.as_bytes(), row.get::<i64>(2)?.unwrap_or(0)))
                })
                .collect::<std::result::Result<BTreeMap<_, _>, pgrx::spi::Error>>()
        })
        .expect("counting rows failed")
    })
}

/// The statement trigger behind `tenancy_quota_insert/delete/truncate`.
#[pg_trigger]
fn _row_quota_statement<'a>(
    trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let (resource, column) = trigger_arguments(trigger);
    let data = trigger.trigger_data();
    let event = data.tg_event;
    // SAFETY: a statement trigger's data: an open relation and the transition
    // table its definition declares.
    unsafe {
        let relation = data.tg_relation;
        let tupdesc = (*relation).rd_att;
        let counters = cluster::counters_of((*relation).rd_id);
        if pgrx::trigger_support::trigger_fired_by_truncate(event) {
            give_back(
                &counters,
                &resource,
                &count_table_rows((*relation).rd_id, &column),
            );
        } else {
            let index = column_index(tupdesc, &column);
            if pgrx::trigger_support::trigger_fired_by_insert(event) {
                take(
                    &counters,
                    &resource,
                    &count_by_tenant(data.tg_newtable, tupdesc, index),
                );
            } else if pgrx::trigger_support::trigger_fired_by_delete(event) {
                give_back(
                    &counters,
                    &resource,
                    &count_by_tenant(data.tg_oldtable, tupdesc, index),
                );
            }
        }
    }
    Ok(None)
}

/// The row trigger behind `tenancy_quota_move`: the row leaves its old
/// tenant's count and joins the new one's (53400 if that has no room).
#[pg_trigger]
fn _row_quota_move<'a>(
    trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let (resource, column) = trigger_arguments(trigger);
    let tenant_of = |row: Option<PgHeapTuple<'_, AllocatedByPostgres>>| -> Option<[u8; 16]> {
        row.and_then(|r| r.get_by_name::<pgrx::Uuid>(&column).ok().flatten())
            .map(|u| *u.as_bytes())
    };
    let old = tenant_of(trigger.old());
    let new = tenant_of(trigger.new());
    let counters = cluster::counters_of(trigger.relation().expect("a trigger relation").oid());
    if let Some(tenant) = new {
        take(&counters, &resource, &BTreeMap::from([(tenant, 1)]));
    }
    if let Some(tenant) = old {
        give_back(&counters, &resource, &BTreeMap::from([(tenant, 1)]));
    }
    Ok(None)
}

/// A table whose rows count against `resource`, if any, as its regclass text
/// (for messages: a resource with row quotas must keep period none).
pub fn counting_table(resource: &str) -> Option<String> {
    as_extension_owner(|| {
        select_value(
            "SELECT tbl::text FROM tenancy.row_quotas WHERE resource = $1 LIMIT 1",
            &[resource.into()],
        )
    })
}

/// The resource a table's rows count against, if any.
fn enforced_resource(table: &Relation) -> Option<String> {
    as_extension_owner(|| {
        select_value(
            "SELECT resource FROM tenancy.row_quotas WHERE tbl = $1",
            &[RegClass(table.oid).into()],
        )
    })
}

/// Sets every tenant's usage of `resource` to its rows in all tables whose
/// rows count against it; tenants over their limit get a NOTICE.
fn recount(resource: &str) -> error::Result<()> {
    let tables = as_extension_owner(|| {
        select_text_pairs(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), q.tenant_column::text
               FROM tenancy.row_quotas q
               JOIN pg_catalog.pg_class c ON c.oid = q.tbl
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE q.resource = $1",
            &[resource.into()],
        )
    });
    // Every counted row's tenant, as one query.
    let rows_sql = tables
        .iter()
        .map(|(table, column)| {
            format!("SELECT {} AS tenant FROM {table}", quote_identifier(column))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    if counts_on_cluster(resource) {
        for (tenant, rows) in cluster::recount(resource, &rows_sql) {
            let key = Key {
                tenant,
                resource: resource.to_owned(),
            };
            over_limit_notice(&key, rows)?;
        }
        return Ok(());
    }
    // Tenants with rows, and tenants with a counter that may now be stale.
    let sql = format!(
        "SELECT t.id, count(r.tenant)
           FROM tenancy.tenants t
           LEFT JOIN ({rows_sql}) r ON r.tenant = t.id
          WHERE r.tenant IS NOT NULL
             OR EXISTS (SELECT 1 FROM tenancy.quota_usage u WHERE u.tenant_id = t.id AND u.resource = $1)
          GROUP BY t.id
          ORDER BY t.id"
    );
    let counts: Vec<(pgrx::Uuid, i64)> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(&sql, None, &[resource.into()])?
                .map(|row| {
                    Ok((
                        row.get::<pgrx::Uuid>(1)?.expect("tenant id"),
                        row.get::<i64>(2)?.unwrap_or(0),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("counting rows failed")
    });
    for (tenant, rows) in counts {
        let key = Key {
            tenant: *tenant.as_bytes(),
            resource: resource.to_owned(),
        };
        usage::set_used(&key, rows)?;
        over_limit_notice(&key, rows)?;
    }
    Ok(())
}

/// A NOTICE when a tenant's counted rows are already over its limit.
fn over_limit_notice(key: &Key, rows: i64) -> error::Result<()> {
    if let Some(limit) = terms::terms_of(key)?.limit {
        if rows > limit {
            error::notice(format!(
                "tenant {} already has {rows} rows counting against \"{}\", over its limit of {limit}; its inserts fail until rows are deleted",
                crate::tenant::context::format_tenant(&key.tenant),
                key.resource
            ));
        }
    }
    Ok(())
}

/// Whether rows counting against `resource` are in Citus tables (whose
/// counters are `tenancy.cluster_row_usage`, not `tenancy.quota_usage`).
fn counts_on_cluster(resource: &str) -> bool {
    crate::common::citus::active().is_some()
        && as_extension_owner(|| {
            select_value::<bool>(
                "SELECT EXISTS (SELECT FROM tenancy.row_quotas q
                                  JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid = q.tbl
                                 WHERE q.resource = $1 AND p.partmethod = 'h')",
                &[resource.into()],
            )
        })
        .unwrap_or(false)
}

/// Makes `tbl`'s rows count against `resource` for their tenant: existing rows
/// are counted now, an INSERT past the limit fails with 53400, DELETE and
/// TRUNCATE give units back, and moving a row to another tenant moves its unit.
pub fn enforce(tbl: RegClass, resource: &str) -> error::Result<()> {
    let table = Relation::owned_table(tbl)?;
    let registration = crate::tenant::registry::registration(&table).ok_or_else(|| {
        error::not_in_prerequisite_state(format!(
            "table {} is not registered with pg_tenancy",
            table.qualified_name()
        ))
        .set_hint(
            "Call tenancy.register_table() (or enable_isolation) first, naming its tenant column.",
        )
    })?;
    let period: Option<String> = as_extension_owner(|| {
        select_value(
            "SELECT period FROM tenancy.quota_resources WHERE name = $1",
            &[resource.into()],
        )
    });
    match period.as_deref() {
        None => return Err(terms::unknown_resource(resource)),
        Some("none") => {}
        Some(other) => {
            return Err(error::invalid_parameter(format!(
                "resource \"{resource}\" resets every {other}; rows can only count against a resource with period none"
            ))
            .set_hint(format!("Define one with tenancy.define_resource('{resource}_rows') or similar.")))
        }
    }
    match enforced_resource(&table) {
        Some(existing) if existing == resource => {
            error::notice(format!(
                "rows of table {} already count against \"{resource}\"",
                table.qualified_name()
            ));
            crate::common::citus::with_unsafe_triggers(table.oid, || {
                triggers::install(&table, |q| {
                    statement_triggers(q, resource, &registration.tenant_column)
                })
            });
            return Ok(());
        }
        Some(existing) => {
            return Err(error::not_in_prerequisite_state(format!(
                "rows of table {} count against \"{existing}\"",
                table.qualified_name()
            ))
            .set_hint("Call tenancy.disable_row_quota() first."))
        }
        None => {}
    }
    // No writes while the existing rows are counted and the triggers go in.
    Spi::run(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        table.qualified_name()
    ))
    .expect("locking the table failed");
    let column = registration.tenant_column;
    // On Citus the rows are counted where they land (`cluster`); a resource
    // is counted either there or in this node's counters, not both.
    let kind = crate::common::citus::table_kind(table.oid);
    let on_cluster = kind == Some('h');
    if counting_table(resource).is_some() && counts_on_cluster(resource) != on_cluster {
        return Err(error::feature_not_supported(format!(
            "rows of \"{resource}\" are counted in {} tables already; rows of {} cannot join them",
            if on_cluster {
                "local or reference"
            } else {
                "distributed"
            },
            table.qualified_name()
        ))
        .set_hint("Count them against a resource of their own."));
    }
    if let Some(kind) = kind {
        cluster::prepare_table(&table, kind, &column)?;
    }
    install_all_triggers(&table, resource, &column);
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.row_quotas (tbl, resource, tenant_column) VALUES ($1, $2, $3::text::name)",
            &[tbl.into(), resource.into(), column.as_str().into()],
        )
    })
    .expect("saving the row quota failed");
    recount(resource)
}

/// Puts the row-quota statement triggers on every partition of `tbl` (whose
/// rows count against a resource) that lacks them, and counts the rows again
/// when one did: a partition attached by hand may bring rows of its own.
/// Called by the event trigger `tenancy_cover_new_partitions`.
pub fn cover_partitions(tbl: RegClass) -> error::Result<()> {
    let table = Relation::lookup_table(tbl)?;
    let Some((resource, column)) = configuration(tbl) else {
        return Ok(());
    };
    if crate::common::citus::with_unsafe_triggers(table.oid, || {
        triggers::install(&table, |q| statement_triggers(q, &resource, &column))
    }) {
        recount(&resource)?;
    }
    Ok(())
}

/// Re-creates the row-quota triggers of `tbl` and its partitions with the
/// tenant column tenancy.row_quotas now names (after a column rename). The
/// rows and their counts are unchanged, so nothing is counted again.
pub fn follow_rename(tbl: RegClass) -> error::Result<()> {
    let table = Relation::lookup_table(tbl)?;
    let Some((resource, column)) = configuration(tbl) else {
        return Ok(());
    };
    crate::common::citus::with_unsafe_triggers(table.oid, || {
        triggers::drop_all(&table, TRIGGER_PREFIX)
    });
    install_all_triggers(&table, &resource, &column);
    Ok(())
}

/// The resource and tenant column `tbl`'s row quota is configured with.
fn configuration(tbl: RegClass) -> Option<(String, String)> {
    as_extension_owner(|| {
        select_text_pairs(
            "SELECT resource, tenant_column::text FROM tenancy.row_quotas WHERE tbl = $1",
            &[tbl.into()],
        )
    })
    .pop()
}

/// The statement triggers on the table and every partition, and the row
/// trigger that moves a row's unit on the table itself.
fn install_all_triggers(table: &Relation, resource: &str, column: &str) {
    crate::common::citus::with_unsafe_triggers(table.oid, || {
        triggers::install(table, |q| {
            let mut definitions = statement_triggers(q, resource, column);
            if q == table.qualified_name() {
                definitions.extend(move_trigger(q, resource, column));
            }
            definitions
        })
    });
}

/// Stops counting `tbl`'s rows. Usage already counted stays as it is (other
/// tables may count against the same resource).
pub fn disable(tbl: RegClass) -> error::Result<()> {
    let table = Relation::owned_table(tbl)?;
    let dropped = crate::common::citus::with_unsafe_triggers(table.oid, || {
        triggers::drop_all(&table, TRIGGER_PREFIX)
    });
    let configured: Option<bool> = as_extension_owner(|| {
        crate::common::sql::write_returning(
            "DELETE FROM tenancy.row_quotas WHERE tbl = $1 RETURNING true",
            &[tbl.into()],
        )
    });
    if !dropped && configured.is_none() {
        error::notice(format!(
            "rows of table {} do not count against any resource",
            table.qualified_name()
        ));
    }
    Ok(())
}
