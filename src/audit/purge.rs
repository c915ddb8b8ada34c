//! What a tenant purge does to the audit log (registered as the purge's
//! recording hook, `common::hooks::on_purge_recorded`): the tenant's audit
//! rows go (they hold the erased values in their row images) and so does its
//! seal chain; one audit row, op PURGE, says what was purged, what the other
//! hooks reported and what chain was dropped, and starts the tenant's new chain.

use crate::common::error::Result;
use crate::common::hooks::{PurgeReport, TenantPurged};
use crate::common::internal_writes::with_internal_writes;
use crate::common::privilege::as_extension_owner;
use pgrx::prelude::*;
use pgrx::JsonB;

pub fn record(event: &TenantPurged, report: &mut PurgeReport) -> Result<()> {
    let tenant = pgrx::Uuid::from_bytes(event.tenant);
    // The log has partitions only once something was audited.
    super::ensure_audit_log_partitions();
    // The log and its chains refuse every other writer (audit::guard).
    with_internal_writes(|| {
        as_extension_owner(|| {
            Spi::connect_mut(|client| {
                // On Citus the tenant's rows of distributed tables are in
                // the cluster log's shard for it (empty on one node; absent
                // while an older release's SQL is installed).
                let mut deleted = 0i64;
                let mut logs = vec!["tenancy.audit_log"];
                if crate::common::relation::catalog_relid(c"cluster_audit_log").is_some() {
                    logs.push("tenancy.cluster_audit_log");
                }
                for log in logs {
                    deleted += client
                        .update(&format!("DELETE FROM {log} WHERE tenant_id = $1"), None, &[tenant.into()])?
                        .len() as i64;
                }
                client.update("DELETE FROM tenancy.audit_chain WHERE tenant_key = $1", None, &[tenant.into()])?;
                let head = client.update(
                    "DELETE FROM tenancy.audit_chain_heads WHERE tenant_key = $1
                     RETURNING pos, pg_catalog.encode(link_hash, 'hex')",
                    None,
                    &[tenant.into()],
                )?;
                let (chain_length, chain_head) = if head.is_empty() {
                    (0i64, None)
                } else {
                    let row = head.first();
                    (row.get::<i64>(1)?.unwrap_or(0), row.get::<String>(2)?)
                };
                let mut detail = report.facts.clone();
                detail.insert("mode".into(), event.mode.into());
                detail.insert("rows".into(), event.rows.into());
                detail.insert("tables".into(), event.per_table.clone().into());
                detail.insert("audit_rows_deleted".into(), deleted.into());
                detail.insert("sealed_chain_length".into(), chain_length.into());
                detail.insert("sealed_chain_head".into(), chain_head.into());
                client.update(
                    "INSERT INTO tenancy.audit_log (tenant_id, table_name, op, record_key, new_row, actor, application_name, client_addr, txid)
                     VALUES ($1, 'tenancy.tenants', 'PURGE', pg_catalog.jsonb_build_object('id', $1), $2,
                             coalesce(tenancy.current_actor(), session_user::text),
                             nullif(pg_catalog.current_setting('application_name'), ''),
                             pg_catalog.inet_client_addr(), pg_catalog.txid_current())",
                    None,
                    &[tenant.into(), JsonB(serde_json::Value::Object(detail)).into()],
                )?;
                Ok::<_, pgrx::spi::Error>(())
            })
            .expect("erasing the tenant's audit trail failed")
        })
    });
    Ok(())
}
