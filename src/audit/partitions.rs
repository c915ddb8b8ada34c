//! Audit's part in partition maintenance (`common::hooks`): a new child of an
//! audited table gets the audit triggers, a new child of the audit log its
//! index and statement guard; audit log partitions retired by
//! retention are recorded in `tenancy.audit_expiry`, so `verify_audit`
//! expires their links instead of reporting them missing.

use super::catalog_oids;
use crate::common::hooks::{ChildAttached, ChildrenRetired};
use crate::common::internal_writes::with_internal_writes;
use crate::common::privilege::as_extension_owner;
use crate::common::sql::select_value;
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;

pub fn child_attached(event: &ChildAttached) {
    if event.parent == catalog_oids::audit_log() {
        give_log_partition_extras(event.child);
        return;
    }
    if is_cluster_log(event.parent) {
        // No guard: nobody holds a privilege on it (audit_catalog.sql), and
        // its shards are written by shard queries, which the coordinator's
        // extension code cannot vouch for on the worker.
        as_extension_owner(|| crate::common::sql::run_each(&[brin_index(event.child)]));
        return;
    }
    let excluded = as_extension_owner(|| {
        select_value::<Vec<String>>(
            "SELECT exclude_columns FROM tenancy.audit_config WHERE tbl OPERATOR(pg_catalog.=) $1",
            &[RegClass(event.parent).into()],
        )
    });
    if let Some(excluded) = excluded {
        let arguments = super::cluster::trigger_arguments(event.parent, &excluded);
        crate::common::citus::with_unsafe_triggers(event.parent, || {
            crate::common::triggers::create_for_partition(&super::triggers::trigger_sql(
                event.child,
                &arguments,
            ))
        });
    }
}

pub fn children_retired(event: &ChildrenRetired) {
    if event.parent != catalog_oids::audit_log() && !is_cluster_log(event.parent) {
        return;
    }
    with_internal_writes(|| {
        as_extension_owner(|| {
            Spi::run_with_args(
                "INSERT INTO tenancy.audit_expiry (expired_before, mode, partitions) VALUES ($1, $2, $3)",
                &[event.before.into(), event.action.into(), event.children.to_vec().into()],
            )
        })
    })
    .expect("recording expired audit partitions failed");
}

/// What every partition of `tenancy.audit_log` needs beyond the parent's
/// shape: a BRIN index on (txid, logged_at), as audit rows arrive in
/// transaction order it is nearly free to keep and lets sealing find recent
/// transactions without a full scan (not declared on the parent, see
/// sql/audit_catalog.sql); and the statement guard, since statement triggers
/// are not cloned to partitions (the parent's row guard is), see audit::guard.
fn give_log_partition_extras(child: &str) {
    as_extension_owner(|| {
        crate::common::sql::run_each(&[
            brin_index(child),
            format!(
                "CREATE TRIGGER tenancy_no_changes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {child}
                     FOR EACH STATEMENT EXECUTE FUNCTION tenancy._guard_audit_tables()"
            ),
        ])
    });
}

fn brin_index(child: &str) -> String {
    format!("CREATE INDEX ON {child} USING brin (txid, logged_at)")
}

fn is_cluster_log(relid: pg_sys::Oid) -> bool {
    crate::common::relation::catalog_relid(c"cluster_audit_log") == Some(relid)
}
