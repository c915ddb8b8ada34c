//! The audit log and its hash chains are append-only for everyone but the
//! extension's own code paths, whatever was granted (issue 15): one trigger
//! function guards them all, as a statement trigger (`tenancy_no_changes`) on
//! every table of the log (the parent, each partition, the chain tables) and
//! as a row trigger (`tenancy_append_only`) on the log's parent, which
//! PostgreSQL clones onto every partition, even one attached by hand.
//!
//! What passes: writes inside `common::internal_writes` (partition maintenance
//! moving rows out of the default partition, `seal_audit`, `purge_tenant`,
//! retention's expiry record), and a superuser's INSERT, which is how
//! pg_restore puts a dumped log back. Audit rows themselves are written below
//! the executor (audit::store), where no trigger fires. A superuser can still
//! switch triggers off (session_replication_role = replica, ALTER TABLE ...
//! DISABLE TRIGGER); `verify_audit` then finds any sealed row that changed.

use crate::common::error;
use crate::common::internal_writes;
use pgrx::prelude::*;

/// The trigger function behind `tenancy_no_changes` and `tenancy_append_only`.
#[pg_trigger]
fn _guard_audit_tables<'a>(
    trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let op = trigger.op().expect("a DML or TRUNCATE trigger");
    // SAFETY: reads the current user's superuser flag.
    let restoring = matches!(op, PgTriggerOperation::Insert) && unsafe { pg_sys::superuser() };
    if !internal_writes::allowed() && !restoring {
        let table = match (trigger.table_schema(), trigger.table_name()) {
            (Ok(schema), Ok(name)) => format!("{schema}.{name}"),
            _ => "the audit log".to_owned(),
        };
        let verb = match op {
            PgTriggerOperation::Insert => "INSERT into",
            PgTriggerOperation::Update => "UPDATE",
            PgTriggerOperation::Delete => "DELETE from",
            PgTriggerOperation::Truncate => "TRUNCATE",
        };
        error::insufficient_privilege(format!(
            "permission denied: cannot {verb} {table}, which only pg_tenancy writes"
        ))
        .set_detail(
            "The audit log and its hash chains are append-only: audit triggers add rows, \
             tenancy.seal_audit() extends the chains, and only partition retention and \
             tenancy.purge_tenant() remove rows. Granted privileges do not change this.",
        )
        .report(PgLogLevel::ERROR);
    }
    // A row trigger lets the row through as it is; a statement trigger returns nothing.
    Ok(match (trigger.level(), op) {
        (PgTriggerLevel::Statement, _) => None,
        (_, PgTriggerOperation::Delete) => trigger.old(),
        _ => trigger.new(),
    })
}
