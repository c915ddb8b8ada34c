//! The tenant registry (`tenancy.tenants`) and table registrations
//! (`tenancy.tenant_tables`). Catalog rows are written as the extension owner;
//! the callers in `api` have already checked what the calling role may do.

use super::isolation;
use crate::common::error::{self, Result};
use crate::common::privilege::{as_extension_owner, as_extension_owner_qualified};
use crate::common::relation::Relation;
use crate::common::sql::{select_value, write_returning};
use crate::common::sqltypes::RegClass;
use pgrx::prelude::*;

/// Longest slug accepted: a DNS label, so a slug can name a subdomain.
const MAX_SLUG_LEN: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

/// Checks a slug: 1-63 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn validate_slug(slug: &str) -> std::result::Result<(), String> {
    if slug.is_empty() || slug.len() > MAX_SLUG_LEN {
        return Err(format!("a slug has 1 to {MAX_SLUG_LEN} characters"));
    }
    let mut chars = slug.chars();
    let first = chars.next().unwrap_or('-');
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err("a slug starts with a lowercase letter or a digit".into());
    }
    if !slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err("a slug has only lowercase letters, digits, '-' and '_'".into());
    }
    Ok(())
}

pub fn create_tenant(slug: &str, name: &str, plan: &str, id: Option<[u8; 16]>) -> Result<[u8; 16]> {
    validate_slug(slug).map_err(|why| {
        error::invalid_parameter(format!("invalid tenant slug \"{slug}\""))
            .set_detail(why)
            .set_hint("Use something like 'acme' or 'acme-eu-2'.")
    })?;
    if name.trim().is_empty() {
        return Err(error::invalid_parameter("tenant name must not be empty"));
    }
    as_extension_owner(|| {
        let plan_exists = select_value::<bool>(
            "SELECT true FROM tenancy.plans WHERE name = $1",
            &[plan.into()],
        )
        .is_some();
        if !plan_exists {
            return Err(
                error::invalid_parameter(format!("plan \"{plan}\" does not exist"))
                    .set_hint("See SELECT name FROM tenancy.plans;"),
            );
        }
        if select_value::<bool>(
            "SELECT true FROM tenancy.tenants WHERE slug = $1",
            &[slug.into()],
        )
        .is_some()
        {
            return Err(error::unique_violation(format!(
                "a tenant with slug \"{slug}\" already exists"
            )));
        }
        if let Some(id) = id {
            if tenant_status(&id).is_some() {
                return Err(error::unique_violation(format!(
                    "a tenant with id {} already exists",
                    super::context::format_tenant(&id)
                )));
            }
        }
        let id = write_returning::<pgrx::Uuid>(
            "INSERT INTO tenancy.tenants (id, slug, name, plan)
             VALUES (coalesce($4, pg_catalog.gen_random_uuid()), $1, $2, $3) RETURNING id",
            &[
                slug.into(),
                name.into(),
                plan.into(),
                id.map(pgrx::Uuid::from_bytes).into(),
            ],
        )
        .expect("INSERT ... RETURNING returned no row");
        Ok(*id.as_bytes())
    })
}

/// Also called from the tenant setting's check hook, so it changes no
/// setting itself (the qualified owner switch leaves search_path alone; the
/// query names every object and operator with its schema).
pub fn tenant_status(tenant: &[u8; 16]) -> Option<String> {
    // A Citus worker knows tenants from its copy of the coordinator's list.
    let source = if crate::common::citus::on_worker() {
        crate::common::citus::local_copy(c"cluster_tenants")
    } else {
        "tenancy.tenants".to_owned()
    };
    as_extension_owner_qualified(|| {
        select_value::<String>(
            &format!("SELECT status FROM {source} WHERE id OPERATOR(pg_catalog.=) $1"),
            &[pgrx::Uuid::from_bytes(*tenant).into()],
        )
    })
}

pub fn unknown_tenant(tenant: &[u8; 16]) -> pgrx::pg_sys::panic::ErrorReport {
    error::invalid_parameter(format!(
        "tenant {} does not exist",
        super::context::format_tenant(tenant)
    ))
    .set_hint("Tenants are listed in tenancy.tenants; tenancy.find_tenant(slug) returns an id.")
}

/// 22023 for an unknown tenant.
pub fn require_exists(tenant: &[u8; 16]) -> Result<()> {
    tenant_status(tenant)
        .map(|_| ())
        .ok_or_else(|| unknown_tenant(tenant))
}

/// 22023 for an unknown tenant, 55000 for one that is not active.
pub fn require_active(tenant: &[u8; 16]) -> Result<()> {
    match tenant_status(tenant) {
        None => Err(unknown_tenant(tenant)),
        Some(status) if status == TenantStatus::Active.as_str() => Ok(()),
        Some(status) => Err(not_active(tenant, &status)),
    }
}

/// 55000 for a tenant that exists but is suspended.
pub fn not_active(tenant: &[u8; 16], status: &str) -> pgrx::pg_sys::panic::ErrorReport {
    error::not_in_prerequisite_state(format!(
        "tenant {} is {status}",
        super::context::format_tenant(tenant)
    ))
    .set_hint("An administrator can call tenancy.activate_tenant() to re-activate it.")
}

pub fn find_by_slug(slug: &str) -> Result<[u8; 16]> {
    as_extension_owner(|| {
        select_value::<pgrx::Uuid>(
            "SELECT id FROM tenancy.tenants WHERE slug = $1",
            &[slug.into()],
        )
    })
    .map(|id| *id.as_bytes())
    .ok_or_else(|| no_such_slug(slug))
}

/// 22023 for a slug no tenant has (or one the caller may not learn about).
pub fn no_such_slug(slug: &str) -> pgrx::pg_sys::panic::ErrorReport {
    error::invalid_parameter(format!("no tenant has slug \"{slug}\""))
}

pub fn set_status(tenant: &[u8; 16], status: TenantStatus) -> Result<()> {
    let current = tenant_status(tenant).ok_or_else(|| unknown_tenant(tenant))?;
    if current == status.as_str() {
        error::notice(format!(
            "tenant {} is already {current}",
            super::context::format_tenant(tenant)
        ));
        return Ok(());
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE tenancy.tenants SET status = $2 WHERE id = $1",
            &[
                pgrx::Uuid::from_bytes(*tenant).into(),
                status.as_str().into(),
            ],
        )
    })
    .expect("tenant status update failed");
    // Cached checks of JWT-claimed tenants (claims.rs) must see the new status.
    super::bindings::broadcast_change(c"tenants");
    Ok(())
}

/// A table's row in `tenancy.tenant_tables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub tenant_column: String,
    pub isolated: bool,
}

pub fn registration(table: &Relation) -> Option<Registration> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT tenant_column::text, isolated FROM tenancy.tenant_tables WHERE tbl = $1",
                Some(1),
                &[RegClass(table.oid).into()],
            )?;
            if rows.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let row = rows.first();
            Ok(Some(Registration {
                tenant_column: row.get::<String>(1)?.unwrap_or_default(),
                isolated: row.get::<bool>(2)?.unwrap_or(false),
            }))
        })
        .expect("registration lookup failed")
    })
}

fn save_registration(table: &Relation, tenant_column: &str, isolated: bool) {
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.tenant_tables (tbl, tenant_column, isolated)
             VALUES ($1, $2::text::name, $3)
             ON CONFLICT (tbl) DO UPDATE
                SET tenant_column = EXCLUDED.tenant_column, isolated = EXCLUDED.isolated",
            &[
                RegClass(table.oid).into(),
                tenant_column.into(),
                isolated.into(),
            ],
        )
    })
    .expect("saving the table registration failed");
}

fn isolated_elsewhere(
    table: &Relation,
    registered: &Registration,
) -> pgrx::pg_sys::panic::ErrorReport {
    error::not_in_prerequisite_state(format!(
        "table {} is isolated on column \"{}\"",
        table.qualified_name(),
        registered.tenant_column
    ))
    .set_hint("Call tenancy.disable_isolation() first to change its tenant column.")
}

pub fn register(table: &Relation, tenant_column: &str) -> Result<()> {
    match registration(table) {
        Some(existing) if existing.tenant_column == tenant_column => {
            error::notice(format!(
                "table {} is already registered with tenant column \"{tenant_column}\"",
                table.qualified_name()
            ));
            Ok(())
        }
        Some(existing) if existing.isolated => Err(isolated_elsewhere(table, &existing)),
        Some(existing) => {
            error::notice(format!(
                "tenant column of table {} changed from \"{}\" to \"{tenant_column}\"",
                table.qualified_name(),
                existing.tenant_column
            ));
            save_registration(table, tenant_column, false);
            Ok(())
        }
        None => {
            save_registration(table, tenant_column, false);
            Ok(())
        }
    }
}

pub fn unregister(table: &Relation) -> Result<()> {
    match registration(table) {
        None => {
            error::notice(format!(
                "table {} is not registered",
                table.qualified_name()
            ));
            Ok(())
        }
        Some(existing) if existing.isolated => Err(error::not_in_prerequisite_state(format!(
            "table {} is isolated",
            table.qualified_name()
        ))
        .set_hint("Call tenancy.disable_isolation() first.")),
        Some(_) => {
            as_extension_owner(|| {
                Spi::run_with_args(
                    "DELETE FROM tenancy.tenant_tables WHERE tbl = $1",
                    &[RegClass(table.oid).into()],
                )
            })
            .expect("deleting the table registration failed");
            Ok(())
        }
    }
}

/// Gives every partition of an isolated table that lacks it the table's
/// isolation (row-level security enabled and forced, the policy).
pub fn cover_partitions(table: &Relation) {
    if crate::partition::creating_child() {
        return;
    }
    if let Some(registration) = registration(table).filter(|r| r.isolated) {
        for partition in table.partitions() {
            isolation::isolate_one(&partition, &registration.tenant_column);
        }
    }
}

pub fn enable_isolation(table: &Relation, tenant_column: &str) -> Result<()> {
    let existing = registration(table);
    if let Some(existing) = &existing {
        if existing.isolated && existing.tenant_column != tenant_column {
            return Err(isolated_elsewhere(table, existing));
        }
    }
    // The DDL runs as the caller: PostgreSQL checks ownership of every partition.
    let mut changed = isolation::isolate_one(table, tenant_column);
    for partition in table.partitions() {
        changed |= isolation::isolate_one(&partition, tenant_column);
    }
    let already = matches!(&existing, Some(r) if r.isolated) && !changed;
    if already {
        error::notice(format!(
            "isolation is already enabled on table {}",
            table.qualified_name()
        ));
        return Ok(());
    }
    save_registration(table, tenant_column, true);

    let state = isolation::rls_state(table);
    if !state.other_permissive.is_empty() {
        error::warning_with_hint(
            format!(
                "table {} has other permissive policies ({}) that widen what each tenant sees",
                table.qualified_name(),
                state.other_permissive.join(", ")
            ),
            "Permissive policies are OR-ed together; create extra rules AS RESTRICTIVE.",
        );
    }
    let column = table.column(tenant_column)?;
    if !isolation::has_leading_index(table, column.number) {
        error::notice_with_hint(
            format!(
                "no index on table {} starts with column \"{tenant_column}\"",
                table.qualified_name()
            ),
            "Every query on an isolated table filters on the tenant column; an index that starts with it usually pays.",
        );
    }
    Ok(())
}

pub fn disable_isolation(table: &Relation) -> Result<()> {
    let existing = registration(table);
    let mut changed = isolation::release_one(table);
    for partition in table.partitions() {
        changed |= isolation::release_one(&partition);
    }
    match existing {
        Some(existing) if existing.isolated => {
            save_registration(table, &existing.tenant_column, false);
        }
        _ if !changed => {
            error::notice(format!(
                "isolation is not enabled on table {}",
                table.qualified_name()
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod unit_tests {
    use super::validate_slug;

    #[test]
    fn slugs() {
        assert!(validate_slug("acme").is_ok());
        assert!(validate_slug("acme-eu_2").is_ok());
        assert!(validate_slug("9lives").is_ok());
        assert!(validate_slug("").is_err());
        assert!(validate_slug("-acme").is_err());
        assert!(validate_slug("Acme").is_err());
        assert!(validate_slug("acme corp").is_err());
        assert!(validate_slug(&"a".repeat(64)).is_err());
        assert!(validate_slug(&"a".repeat(63)).is_ok());
    }
}
