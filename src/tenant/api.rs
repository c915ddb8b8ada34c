//! SQL API for "Tenants and context" (DESIGN.md): tenant registry, session
//! context and row-level isolation. Thin wrappers: argument checks here, the
//! rest in `context`, `registry` and `isolation`.

use super::context::{self, ACTOR_SETTING, TENANT_SETTING};
use super::{bindings, registry, scope};
use crate::common::error::{self, required, Result};
use crate::common::relation::Relation;
use crate::common::sqltypes::{RegClass, RegRole, SqlName};
use pgrx::prelude::*;

/// Creates a tenant and returns its id.
///
/// `slug` is the tenant's stable handle (lowercase letters, digits, `-`, `_`),
/// `plan` must exist in `tenancy.plans`. `id` keeps an id the tenant already
/// has elsewhere (a migration); by default a random one is generated.
///
/// ```sql
/// SELECT tenancy.create_tenant('acme', 'Acme Corp');            -- on plan 'free'
/// SELECT tenancy.create_tenant('globex', 'Globex', 'pro');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn create_tenant(
    slug: Option<&str>,
    name: Option<&str>,
    plan: default!(Option<&str>, "'free'"),
    id: default!(Option<pgrx::Uuid>, "NULL"),
) -> Result<pgrx::Uuid> {
    let slug = required(slug, "slug")?;
    let name = required(name, "name")?;
    let plan = required(plan, "plan")?;
    let id = id.map(|id| *id.as_bytes());
    crate::common::citus::ensure_replicated("tenancy.create_tenant()")?;
    registry::create_tenant(slug, name, plan, id).map(pgrx::Uuid::from_bytes)
}

/// Makes `tenant` the session's tenant (or the transaction's, with `is_local`).
///
/// Raises 22023 for an unknown tenant, 55000 for a suspended one, 42501 for
/// one the session's roles are not bound to (tenancy.bind_role), and 55000
/// for a session-level tenant where `tenancy.require_local_context` is on.
/// Row-level isolation policies compare each row's tenant column with it.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant(tenant: Option<pgrx::Uuid>, is_local: default!(Option<bool>, "false")) -> Result<()> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    let is_local = required(is_local, "is_local")?;
    registry::require_active(&tenant)?;
    bindings::require_allowed(&tenant)?;
    scope::require_local(is_local, "tenant")?;
    warn_if_local_outside_transaction(is_local, "set_tenant");
    context::write_checked_tenant(&tenant, is_local);
    crate::common::hooks::tenant_chosen(&crate::common::hooks::TenantChosen {
        tenant: Some(tenant),
        is_local,
    })
}

/// Clears the session's tenant: isolated tables then show no rows.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_tenant(is_local: default!(Option<bool>, "false")) -> Result<()> {
    let is_local = required(is_local, "is_local")?;
    warn_if_local_outside_transaction(is_local, "clear_tenant");
    context::write_setting(TENANT_SETTING, "", is_local);
    crate::common::hooks::tenant_chosen(&crate::common::hooks::TenantChosen {
        tenant: None,
        is_local,
    })
}

/// The session's tenant, or NULL when none is set.
///
/// STABLE: it reads a setting that can only change between statements.
/// PARALLEL SAFE: settings are copied to parallel workers. LEAKPROOF (set in
/// SQL): it takes no argument, so it cannot reveal anything about a row.
/// 42501 when the tenant set is not one the session's roles may select (a
/// bound role reached by SET ROLE after the tenant was set).
#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> Option<pgrx::Uuid> {
    context::current_tenant().map(pgrx::Uuid::from_bytes)
}

/// Records who acts in this session (an application user id, an email, a job
/// name); audit triggers store it. An empty string clears it.
#[pg_extern(volatile, parallel_unsafe)]
fn set_actor(actor: Option<&str>, is_local: default!(Option<bool>, "false")) -> Result<()> {
    let actor = required(actor, "actor")?;
    let is_local = required(is_local, "is_local")?;
    if !actor.is_empty() {
        scope::require_local(is_local, "actor")?;
    }
    warn_if_local_outside_transaction(is_local, "set_actor");
    context::write_setting(ACTOR_SETTING, actor, is_local);
    Ok(())
}

/// The session's actor, or NULL when none is set.
#[pg_extern(stable, parallel_safe)]
fn current_actor() -> Option<String> {
    context::current_actor()
}

/// The id of the tenant with this slug (22023 if there is none, or if it is
/// not one the session's roles may select: a bound role learns nothing about
/// other tenants).
#[pg_extern(stable, parallel_safe)]
fn find_tenant(slug: Option<&str>) -> Result<pgrx::Uuid> {
    let slug = required(slug, "slug")?;
    let id = registry::find_by_slug(slug)?;
    if !bindings::session_access().allows(&id) {
        return Err(registry::no_such_slug(slug));
    }
    Ok(pgrx::Uuid::from_bytes(id))
}

/// Binds `role` (and every role that is a member of it) to `tenants`: from
/// then on its sessions can select only those, by any path (set_tenant, SET,
/// set_config, ALTER ROLE ... SET, a JWT claim, SET ROLE), and `find_tenant`
/// shows it nothing else. Binding it again replaces its list. Superusers
/// cannot be bound (they bypass row-level security).
///
/// ```sql
/// SELECT tenancy.bind_role('acme_app', ARRAY[tenancy.find_tenant('acme')]);
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn bind_role(role: Option<RegRole>, tenants: Option<Vec<Option<pgrx::Uuid>>>) -> Result<()> {
    let role = required(role, "role")?;
    let tenants = required(tenants, "tenants")?;
    let tenants: Vec<[u8; 16]> = tenants
        .into_iter()
        .map(|t| t.map(|t| *t.as_bytes()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| error::invalid_parameter("tenants must not contain NULL"))?;
    crate::common::citus::ensure_replicated("tenancy.bind_role()")?;
    bindings::bind(role.oid(), tenants)
}

/// Removes `role`'s binding: it may select any active tenant again.
#[pg_extern(volatile, parallel_unsafe)]
fn unbind_role(role: Option<RegRole>) -> Result<()> {
    let role = required(role, "role")?;
    crate::common::citus::ensure_replicated("tenancy.unbind_role()")?;
    bindings::unbind(role.oid())
}

/// Suspends a tenant:/// Suspends a tenant: `set_tenant` refuses it until `activate_tenant`.
#[pg_extern(volatile, parallel_unsafe)]
fn suspend_tenant(tenant: Option<pgrx::Uuid>) -> Result<()> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    crate::common::citus::ensure_replicated("tenancy.suspend_tenant()")?;
    registry::set_status(&tenant, registry::TenantStatus::Suspended)
}

/// Re-activates a suspended tenant.
#[pg_extern(volatile, parallel_unsafe)]
fn activate_tenant(tenant: Option<pgrx::Uuid>) -> Result<()> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    crate::common::citus::ensure_replicated("tenancy.activate_tenant()")?;
    registry::set_status(&tenant, registry::TenantStatus::Active)
}

/// Records `tbl` as tenant-scoped, its tenant stored in `tenant_column` (uuid).
/// Quotas, statistics, retention and purge work over registered tables.
#[pg_extern(volatile, parallel_unsafe)]
fn register_table(
    tbl: Option<RegClass>,
    tenant_column: default!(Option<SqlName>, "'tenant_id'"),
) -> Result<()> {
    let (table, tenant_column) = checked_tenant_table(tbl, tenant_column)?;
    registry::register(&table, tenant_column.as_str())
}

/// Removes a table's registration (it must not be isolated any more).
#[pg_extern(volatile, parallel_unsafe)]
fn unregister_table(tbl: Option<RegClass>) -> Result<()> {
    let table = Relation::owned_table(required(tbl, "tbl")?)?;
    registry::unregister(&table)
}

/// Registers `tbl` and limits every role's reads and writes on it to the rows
/// whose `tenant_column` equals `current_tenant()`: ENABLE and FORCE row-level
/// security with one policy, `tenancy_isolation`, for all commands. On a
/// partitioned table the partitions get the same policy. Superusers and roles
/// with BYPASSRLS are not subject to it (the admin path). Running it again is a
/// NOTICE (and covers partitions attached since).
#[pg_extern(volatile, parallel_unsafe)]
fn enable_isolation(
    tbl: Option<RegClass>,
    tenant_column: default!(Option<SqlName>, "'tenant_id'"),
) -> Result<()> {
    let (table, tenant_column) = checked_tenant_table(tbl, tenant_column)?;
    crate::common::citus::ensure_replicated("tenancy.enable_isolation()")?;
    registry::enable_isolation(&table, tenant_column.as_str())
}

/// Removes the `tenancy_isolation` policy (and row-level security, when no
/// other policy needs it) from `tbl` and its partitions; keeps the registration.
#[pg_extern(volatile, parallel_unsafe)]
fn disable_isolation(tbl: Option<RegClass>) -> Result<()> {
    let table = Relation::owned_table(required(tbl, "tbl")?)?;
    registry::disable_isolation(&table)
}

/// Internal: isolation for partitions of an isolated table created or attached
/// by hand (called by the event trigger `tenancy_cover_new_partitions`): a
/// partition queried by name is governed by its own row-level security.
#[pg_extern(volatile, parallel_unsafe)]
fn _isolation_cover_partitions(tbl: Option<RegClass>) -> Result<()> {
    let table = Relation::lookup_table(required(tbl, "tbl")?)?;
    registry::cover_partitions(&table);
    Ok(())
}

/// The arguments of a registering call: a table the caller owns, with a uuid
/// column `tenant_column` (errors in argument order).
fn checked_tenant_table(
    tbl: Option<RegClass>,
    tenant_column: Option<SqlName>,
) -> Result<(Relation, SqlName)> {
    let tbl = required(tbl, "tbl")?;
    let tenant_column = required(tenant_column, "tenant_column")?;
    let table = Relation::owned_table(tbl)?;
    let column = table.column(tenant_column.as_str())?;
    if column.type_oid != pg_sys::UUIDOID {
        return Err(error::datatype_mismatch(format!(
            "tenant column \"{}\" of table {} has type {}, not uuid",
            tenant_column.as_str(),
            table.qualified_name(),
            column.type_name
        ))
        .set_hint("Tenant ids are uuid values from tenancy.tenants.id."));
    }
    Ok((table, tenant_column))
}

fn warn_if_local_outside_transaction(is_local: bool, function: &str) {
    if is_local && !context::in_transaction_block() {
        error::warning_with_hint(
            format!("{function}(..., is_local => true) outside a transaction block lasts only for this statement"),
            "Call it after BEGIN, or pass is_local => false.",
        );
    }
}
