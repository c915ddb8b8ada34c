//! `purge_tenant`: one tenant's rows erased (or anonymized) from every
//! registered table, then the capabilities' purge hooks (its quota usage
//! reset, its audit trail replaced by a single audited record of the purge),
//! all in one transaction.

use crate::common::error::{self, Result};
use crate::common::privilege::{as_extension_owner, as_table_owner, relation_owner};
use crate::common::relation::Relation;
use crate::common::selection::{RowFilter, Value};
use crate::common::sqltypes::RegClass;
use crate::tenant::context::with_tenant;
use pgrx::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Delete,
    Anonymize,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "delete" => Some(Mode::Delete),
            "anonymize" => Some(Mode::Anonymize),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Delete => "delete",
            Mode::Anonymize => "anonymize",
        }
    }
}

/// Orders tables so that a table referencing another by foreign key comes
/// before it (its rows go first); `edges` are (referencing, referenced).
/// Tables in a reference cycle keep their given order.
pub fn delete_order<T: Copy + PartialEq>(tables: &[T], edges: &[(T, T)]) -> Vec<T> {
    let mut pending: Vec<T> = tables.to_vec();
    let mut ordered = Vec::with_capacity(tables.len());
    while !pending.is_empty() {
        let free = pending.iter().position(|t| {
            !edges
                .iter()
                .any(|(from, to)| to == t && from != t && pending.contains(from))
        });
        let next = pending.remove(free.unwrap_or(0));
        ordered.push(next);
    }
    ordered
}

struct Target {
    table: Relation,
    tenant_column: String,
}

fn registered_tables() -> Result<Vec<Target>> {
    let rows: Vec<(RegClass, String)> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT tbl, tenant_column::text FROM tenancy.tenant_tables ORDER BY tbl::oid",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get::<RegClass>(1)?.expect("tbl"),
                        row.get::<String>(2)?.unwrap_or_default(),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading registered tables failed")
    });
    rows.into_iter()
        .map(|(tbl, tenant_column)| {
            Ok(Target {
                table: Relation::lookup_table(tbl)?,
                tenant_column,
            })
        })
        .collect()
}

fn foreign_keys(oids: &[pg_sys::Oid]) -> Vec<(pg_sys::Oid, pg_sys::Oid)> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT conrelid, confrelid FROM pg_catalog.pg_constraint
                  WHERE contype = 'f' AND conrelid = ANY ($1) AND confrelid = ANY ($1)",
                None,
                &[oids.to_vec().into()],
            )?
            .map(|row| {
                Ok((
                    row.get::<pg_sys::Oid>(1)?.expect("conrelid"),
                    row.get::<pg_sys::Oid>(2)?.expect("confrelid"),
                ))
            })
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .expect("reading foreign keys failed")
}

pub fn purge(tenant: pgrx::Uuid, mode: Mode) -> Result<i64> {
    let slug: Option<String> = crate::common::sql::select_value(
        "SELECT slug FROM tenancy.tenants WHERE id = $1",
        &[tenant.into()],
    );
    let Some(slug) = slug else {
        return Err(error::invalid_parameter(format!(
            "tenant {tenant} does not exist"
        )));
    };
    let targets = registered_tables()?;
    let anonymizer = match mode {
        Mode::Delete => None,
        Mode::Anonymize => {
            let anonymizer = crate::common::hooks::anonymizer();
            let without: Vec<String> = targets
                .iter()
                .filter(|t| !anonymizer.is_some_and(|a| (a.covers)(&t.table)))
                .map(|t| t.table.qualified_name())
                .collect();
            if !without.is_empty() {
                return Err(error::not_in_prerequisite_state(format!(
                    "cannot anonymize tenant {slug}: registered tables without masking rules: {}",
                    without.join(", ")
                ))
                .set_hint("Set masking rules on them (tenancy.set_masking_rule), or purge with mode 'delete'."));
            }
            anonymizer
        }
    };
    let oids: Vec<pg_sys::Oid> = targets.iter().map(|t| t.table.oid).collect();
    let order = delete_order(&oids, &foreign_keys(&oids));
    let mut per_table = serde_json::Map::new();
    let mut total = 0i64;
    for oid in order {
        let target = targets
            .iter()
            .find(|t| t.table.oid == oid)
            .expect("a registered table");
        let name = target.table.qualified_name();
        let filter = RowFilter::all().equal(&target.tenant_column, Value::Uuid(tenant));
        // As the table's owner, so its triggers and defaults run with the
        // owner's rights, never a superuser's; with the tenant set, because
        // the isolation policy (FORCEd on the owner too) shows only its rows.
        let owner = relation_owner(target.table.oid);
        let rows = as_table_owner(owner, || {
            with_tenant(tenant.as_bytes(), || match anonymizer {
                None => Spi::connect_mut(|client| {
                    client
                        .update(
                            &format!("DELETE FROM {name} WHERE {}", filter.sql(1)),
                            None,
                            &filter.values(),
                        )
                        .map(|t| t.len() as i64)
                })
                .map_err(|e| {
                    error::not_in_prerequisite_state(format!("purging {name} failed: {e}"))
                }),
                Some(anonymizer) => (anonymizer.run)(&target.table, &filter, 10_000),
            })
        })?;
        total += rows;
        per_table.insert(name, rows.into());
    }
    // The capabilities do their part (quota counters back to zero), then the
    // purge is recorded (the audit trail replaced by one PURGE row).
    crate::common::hooks::tenant_purged(&crate::common::hooks::TenantPurged {
        tenant: *tenant.as_bytes(),
        mode: mode.as_str(),
        rows: total,
        per_table: &per_table,
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referencing_tables_go_first() {
        // 3 references 2, 2 references 1; 4 stands alone; 5 references itself.
        let order = delete_order(&[1, 2, 3, 4, 5], &[(3, 2), (2, 1), (5, 5)]);
        let at = |t| order.iter().position(|x| *x == t).unwrap();
        assert!(at(3) < at(2) && at(2) < at(1));
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn a_cycle_does_not_hang() {
        assert_eq!(delete_order(&[1, 2], &[(1, 2), (2, 1)]).len(), 2);
    }

    #[test]
    fn modes_are_a_closed_list() {
        assert_eq!(Mode::parse("delete"), Some(Mode::Delete));
        assert_eq!(Mode::parse("anonymize"), Some(Mode::Anonymize));
        assert_eq!(Mode::parse("drop"), None);
    }
}
