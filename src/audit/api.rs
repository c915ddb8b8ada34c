//! SQL API for "Audit" (DESIGN.md): enable and disable auditing of a table,
//! read a record's history, seal and verify the hash chains.

use super::seal;
use super::triggers::{invalidate, trigger_definitions};
use crate::common::citus;
use crate::common::error::{self, required, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sqltypes::RegClass;
use crate::common::triggers;
use pgrx::prelude::*;

/// The columns PostgreSQL identifies rows of `table` by: its primary key, else
/// its replica identity index. 55000 when there is neither.
fn require_record_key(table: &Relation) -> Result<()> {
    let has_key = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1 AND (indisprimary OR indisreplident))",
        &[table.oid.into()],
    )
    .expect("key lookup failed")
    .unwrap_or(false);
    if has_key {
        Ok(())
    } else {
        Err(error::not_in_prerequisite_state(format!(
            "table {} has no primary key",
            table.qualified_name()
        ))
        .set_detail("Audit rows identify the changed record by its key (record_key).")
        .set_hint("Add a primary key, or mark a unique index on NOT NULL columns with ALTER TABLE ... REPLICA IDENTITY USING INDEX."))
    }
}

/// Starts auditing `tbl`: every INSERT, UPDATE, DELETE and TRUNCATE is
/// recorded in `tenancy.audit_log`, with `exclude_columns` left out of the
/// recorded rows. Partitions of a partitioned table are audited too, so
/// writes straight to a partition are not missed. Running it again with the
/// same exclusions is a NOTICE; with others, it changes them.
///
/// ```sql
/// SELECT tenancy.enable_audit('accounts', exclude_columns => '{password_hash}');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn enable_audit(
    tbl: Option<RegClass>,
    exclude_columns: default!(Option<Vec<Option<String>>>, "'{}'"),
) -> Result<()> {
    let tbl = required(tbl, "tbl")?;
    let exclude_columns = required(exclude_columns, "exclude_columns")?;
    let table = Relation::owned_table(tbl)?;
    if table.schema == "tenancy" {
        return Err(error::invalid_parameter(
            "pg_tenancy's own tables cannot be audited",
        ));
    }
    require_record_key(&table)?;
    let mut excluded: Vec<String> = Vec::new();
    for column in exclude_columns {
        let column = column
            .ok_or_else(|| error::invalid_parameter("exclude_columns must not contain NULL"))?;
        table.column(&column)?;
        if !excluded.contains(&column) {
            excluded.push(column);
        }
    }
    excluded.sort();
    // Audit rows are written where the change happens: on Citus, beside the
    // shard (audit::cluster).
    let citus_kind = citus::table_kind(table.oid);
    if let Some(kind) = citus_kind {
        super::cluster::prepare_table(&table, kind)?;
    }
    super::ensure_audit_log_partitions();

    let previous: Option<Option<Vec<String>>> = as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT exclude_columns FROM tenancy.audit_config WHERE tbl = $1",
                None,
                &[tbl.into()],
            )?;
            if rows.is_empty() {
                Ok::<_, pgrx::spi::Error>(None)
            } else {
                Ok(Some(rows.first().get::<Vec<String>>(1)?))
            }
        })
        .expect("reading audit settings failed")
    });
    // On Citus the exclusions travel in the triggers: new ones replace them.
    if citus_kind.is_some() && matches!(previous, Some(Some(ref old)) if *old != excluded) {
        citus::with_unsafe_triggers(table.oid, || triggers::drop_all(&table, "tenancy_audit_"));
    }
    let changed = install_triggers(&table, &excluded);
    match previous {
        Some(Some(ref old)) if *old == excluded && !changed => {
            error::notice(format!(
                "auditing is already enabled on table {}",
                table.qualified_name()
            ));
            return Ok(());
        }
        Some(Some(ref old)) if *old != excluded => error::notice(format!(
            "excluded columns of table {} changed from {:?} to {:?}",
            table.qualified_name(),
            old,
            excluded
        )),
        _ => {}
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.audit_config (tbl, exclude_columns) VALUES ($1, $2)
             ON CONFLICT (tbl) DO UPDATE SET exclude_columns = EXCLUDED.exclude_columns",
            &[tbl.into(), excluded.into()],
        )
    })
    .expect("saving audit settings failed");
    invalidate(&table);
    Ok(())
}

/// Puts the audit triggers on every partition of the audited `tbl` that lacks
/// them: partitions created or attached by hand, whose writes would otherwise
/// go unrecorded. Called by the event trigger `tenancy_cover_new_partitions`.
#[pg_extern(volatile, parallel_unsafe)]
fn _audit_cover_partitions(tbl: RegClass) -> Result<()> {
    let table = Relation::lookup_table(tbl)?;
    let excluded = as_extension_owner(|| {
        crate::common::sql::select_value::<Vec<String>>(
            "SELECT exclude_columns FROM tenancy.audit_config WHERE tbl = $1",
            &[tbl.into()],
        )
    })
    .unwrap_or_default();
    if install_triggers(&table, &excluded) {
        invalidate(&table);
    }
    Ok(())
}

/// Puts the audit triggers on `table` and its partitions where they are
/// missing; true when it created any.
fn install_triggers(table: &Relation, excluded: &[String]) -> bool {
    let arguments = super::cluster::trigger_arguments(table.oid, excluded);
    citus::with_unsafe_triggers(table.oid, || {
        triggers::install(table, |qualified| {
            trigger_definitions(qualified, &arguments)
        })
    })
}

/// Stops auditing `tbl` (and its partitions). The rows already logged stay.
#[pg_extern(volatile, parallel_unsafe)]
fn disable_audit(tbl: Option<RegClass>) -> Result<()> {
    let tbl = required(tbl, "tbl")?;
    let table = Relation::owned_table(tbl)?;
    // First, before this transaction holds a lock on a shard: the TRUNCATE
    // trigger a moved shard may have (an idle one: a shard's TRUNCATE is
    // its table's, logged on the coordinator).
    citus::drop_shard_triggers(table.oid, "tenancy_audit_truncate");
    let changed =
        citus::with_unsafe_triggers(table.oid, || triggers::drop_all(&table, "tenancy_audit_"));
    let configured = as_extension_owner(|| {
        Spi::connect_mut(|client| {
            Ok::<_, pgrx::spi::Error>(
                !client
                    .update(
                        "DELETE FROM tenancy.audit_config WHERE tbl = $1 RETURNING true",
                        None,
                        &[tbl.into()],
                    )?
                    .is_empty(),
            )
        })
        .expect("removing audit settings failed")
    });
    if !changed && !configured {
        error::notice(format!(
            "auditing is not enabled on table {}",
            table.qualified_name()
        ));
    }
    invalidate(&table);
    Ok(())
}

/// Extends every tenant's hash chain over the audit rows of transactions that
/// have finished; returns how many rows it sealed. Asynchronous by design:
/// call it from the scheduler (run_jobs) or by hand, never on the write path.
#[pg_extern(volatile, parallel_unsafe)]
fn seal_audit() -> i64 {
    seal::seal()
}

/// Recomputes each tenant's chain (or `tenant`'s; the nil UUID names rows
/// without a tenant) and reports the first audit row whose link is broken or
/// missing, and rows added below the sealed horizon.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn verify_audit(
    tenant: default!(Option<pgrx::Uuid>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(tenant_id, Option<pgrx::Uuid>),
        name!(rows_checked, i64),
        name!(ok, bool),
        name!(first_bad_id, Option<i64>),
    ),
> {
    TableIterator::new(
        seal::verify(tenant)
            .into_iter()
            .map(|v| (v.tenant, v.rows_checked, v.ok, v.first_bad_id)),
    )
}

/// The rows of `tenancy.cluster_audit_log` the calling role may read, as
/// JSON (`tenancy.audit_trail` and `row_history` turn them back into rows):
/// of `tables` when given, of the record `record_key` names when given.
/// Empty where the cluster log is not distributed.
#[pg_extern(stable, parallel_unsafe)]
fn _cluster_audit_rows(
    tables: Option<Vec<String>>,
    record_key: Option<pgrx::JsonB>,
) -> SetOfIterator<'static, pgrx::JsonB> {
    SetOfIterator::new(super::cluster::readable_rows(tables, record_key))
}
