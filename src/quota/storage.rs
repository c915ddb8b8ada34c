//! `refresh_storage_usage`: bytes per tenant across the registered tables,
//! into resource `storage_bytes`.
//!
//! Each table's on-disk size (heap, TOAST and indexes, all partitions) is
//! shared among tenants in proportion to the bytes of their rows
//! (`pg_column_size` of each row), so the figures add up to what the tables
//! really occupy, bloat and indexes included. It reads every row of every
//! registered table: run it from a job (run_jobs), not per request.

use super::ledger::Key;
use super::usage;
use crate::common::error::Result;
use crate::common::privilege::as_extension_owner;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use std::collections::BTreeMap;

pub const RESOURCE: &str = "storage_bytes";

struct Table {
    name: String,
    tenant_column: String,
    bytes: f64,
}

fn registered_tables() -> Vec<Table> {
    // A partition registered beside its registered parent is measured once,
    // with the parent; partitioned tables have no bytes of their own (and
    // Citus measures only leaves). pg_partition_tree is empty for a table
    // outside any partition tree.
    let sql = format!(
        "SELECT tt.tbl::text, tt.tenant_column::text,
                coalesce((SELECT sum({leaf_size}) FROM pg_catalog.pg_partition_tree(tt.tbl) pt WHERE pt.isleaf),
                         {table_size})::float8
           FROM tenancy.tenant_tables tt
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(tt.tbl) a
                             JOIN tenancy.tenant_tables p ON p.tbl = a.relid
                            WHERE a.relid <> tt.tbl)
          ORDER BY 1",
        leaf_size = crate::common::citus::total_relation_size_sql("pt.relid"),
        table_size = crate::common::citus::total_relation_size_sql("tt.tbl"),
    );
    Spi::connect(|client| {
        client
            .select(&sql, None, &[])?
            .map(|row| {
                Ok(Table {
                    name: row.get::<String>(1)?.unwrap_or_default(),
                    tenant_column: row.get::<String>(2)?.unwrap_or_default(),
                    bytes: row.get::<f64>(3)?.unwrap_or(0.0),
                })
            })
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .expect("listing registered tables failed")
}

/// Row bytes per tenant in one table, and the bytes of all its rows.
fn row_bytes(table: &Table) -> (BTreeMap<[u8; 16], f64>, f64) {
    let sql = format!(
        "SELECT {column}, sum(pg_catalog.pg_column_size(t.*))::float8 FROM {table} t GROUP BY 1",
        column = quote_identifier(&table.tenant_column),
        table = table.name
    );
    let rows: Vec<(Option<pgrx::Uuid>, f64)> = Spi::connect(|client| {
        client
            .select(&sql, None, &[])?
            .map(|row| Ok((row.get::<pgrx::Uuid>(1)?, row.get::<f64>(2)?.unwrap_or(0.0))))
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| panic!("measuring {}: {e}", table.name));
    let total = rows.iter().map(|(_, b)| b).sum();
    let per_tenant = rows
        .into_iter()
        .filter_map(|(tenant, bytes)| tenant.map(|t| (*t.as_bytes(), bytes)))
        .collect();
    (per_tenant, total)
}

/// Measures and stores every tenant's bytes; returns the bytes attributed.
pub fn refresh() -> Result<i64> {
    let (per_tenant, tenants) = as_extension_owner(|| {
        let mut per_tenant: BTreeMap<[u8; 16], f64> = BTreeMap::new();
        for table in registered_tables() {
            let (shares, total_row_bytes) = row_bytes(&table);
            if total_row_bytes <= 0.0 {
                continue;
            }
            for (tenant, bytes) in shares {
                *per_tenant.entry(tenant).or_insert(0.0) += table.bytes * bytes / total_row_bytes;
            }
        }
        let tenants: Vec<pgrx::Uuid> = Spi::connect(|client| {
            client
                .select("SELECT id FROM tenancy.tenants ORDER BY id", None, &[])?
                .map(|row| row.get::<pgrx::Uuid>(1).map(|id| id.expect("tenant id")))
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("listing tenants failed");
        (per_tenant, tenants)
    });
    let mut attributed = 0i64;
    // Every tenant gets a figure, zero included (its rows may all be gone);
    // rows of tenants that do not exist (any more) are left out.
    for tenant in tenants {
        let tenant = *tenant.as_bytes();
        let bytes = per_tenant.get(&tenant).copied().unwrap_or(0.0).round() as i64;
        usage::set_used(
            &Key {
                tenant,
                resource: RESOURCE.to_owned(),
            },
            bytes,
        )?;
        attributed += bytes;
    }
    Ok(attributed)
}
