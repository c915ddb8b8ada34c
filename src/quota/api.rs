//! SQL API for "Quotas" (DESIGN.md): resources, limits, and the calls an
//! application makes on every request (consume, require, release,
//! check_quota) plus the status view of them.

use super::ledger::Key;
use super::period::{self, Period};
use super::terms;
use super::usage::{self, exceeded};
use super::{row_quota, storage};
use crate::common::clock;
use crate::common::error::{self, required, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::sql::{select_value, write_returning};
use crate::common::sqltypes::RegClass;
use crate::tenant::context;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// The arguments of `consume`, `require` and `release`, checked in order:
/// the counter they spend from or give back to, and an amount of at least 0.
fn spending_arguments(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    amount: Option<i64>,
) -> Result<(Key, i64)> {
    let key = key_for(required(tenant, "tenant")?, required(resource, "resource")?)?;
    Ok((key, amount_argument(amount)?))
}

/// A session acting for one tenant (`set_tenant`) may only use that
/// tenant's quotas: one tenant's request cannot spend or give back another's.
/// Superusers and sessions without a tenant act for any tenant, except that a
/// role bound to tenants (`tenancy.bind_role`) acts for those only.
fn key_for(tenant: pgrx::Uuid, resource: &str) -> Result<Key> {
    let tenant = *tenant.as_bytes();
    crate::tenant::bindings::require_acting_for(
        &tenant,
        "Quota calls for another tenant need a session without tenancy.set_tenant().",
    )?;
    Ok(Key {
        tenant,
        resource: resource.to_owned(),
    })
}

fn amount_argument(amount: Option<i64>) -> Result<i64> {
    let amount = required(amount, "amount")?;
    if amount < 0 {
        return Err(error::invalid_parameter(format!(
            "amount must not be negative (got {amount})"
        ))
        .set_hint("Use tenancy.release() to give units back."));
    }
    Ok(amount)
}

fn limit_argument(limit: Option<i64>) -> Result<i64> {
    let limit = required(limit, "quota_limit")?;
    if limit < 0 {
        return Err(error::invalid_parameter(format!(
            "quota_limit must not be negative (got {limit})"
        )));
    }
    Ok(limit)
}

/// Defines (or redefines) a countable resource. `period` is `none` (a
/// running total), `minute`, `hour`, `day` or `month`; periods are calendar
/// windows in UTC and usage starts from zero in each. Defining it again the
/// same way is a NOTICE; changing the period starts a fresh period.
///
/// ```sql
/// SELECT tenancy.define_resource('api_calls', 'minute');
/// SELECT tenancy.define_resource('tokens', 'month', 'tokens');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn define_resource(
    name: Option<&str>,
    period: default!(Option<&str>, "'none'"),
    unit: default!(Option<&str>, "'count'"),
) -> Result<()> {
    let name = required(name, "name")?;
    let period_name = required(period, "period")?;
    let unit = required(unit, "unit")?;
    let valid_name = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(
            error::invalid_parameter(format!("invalid resource name \"{name}\"")).set_hint(
                "Use lowercase letters, digits and _, starting with a letter (at most 63 bytes).",
            ),
        );
    }
    let period = Period::parse(period_name).ok_or_else(|| {
        error::invalid_parameter(format!("unknown period \"{period_name}\""))
            .set_hint(format!("A period is one of: {}.", period::NAMES.join(", ")))
    })?;
    if unit.is_empty() {
        return Err(error::invalid_parameter("unit must not be empty"));
    }
    let existing: Option<Vec<String>> = as_extension_owner(|| {
        select_value(
            "SELECT ARRAY[period, unit] FROM tenancy.quota_resources WHERE name = $1",
            &[name.into()],
        )
    });
    if let Some(existing) = &existing {
        if existing[0] == period.name() && existing[1] == unit {
            error::notice(format!("resource \"{name}\" is already defined"));
            return Ok(());
        }
        if existing[0] != period.name() {
            if let Some(table) = row_quota::counting_table(name) {
                return Err(error::not_in_prerequisite_state(format!(
                    "resource \"{name}\" counts the rows of table {table}; its period must stay none"
                )));
            }
        }
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.quota_resources (name, period, unit) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET period = EXCLUDED.period, unit = EXCLUDED.unit",
            &[name.into(), period.name().into(), unit.into()],
        )
    })
    .expect("saving the resource failed");
    if existing.is_some() {
        error::notice(format!(
            "resource \"{name}\" redefined: period {}, unit {unit}",
            period.name()
        ));
    }
    terms::forget();
    Ok(())
}

/// Removes a resource with its limits, overrides and usage. Refused while a
/// row quota counts against it.
#[pg_extern(volatile, parallel_unsafe)]
fn drop_resource(name: Option<&str>) -> Result<()> {
    let name = required(name, "name")?;
    if let Some(table) = row_quota::counting_table(name) {
        return Err(error::not_in_prerequisite_state(format!(
            "resource \"{name}\" counts the rows of table {table}"
        ))
        .set_hint("Call tenancy.disable_row_quota() on that table first."));
    }
    let dropped: Option<bool> = as_extension_owner(|| {
        let dropped = write_returning(
            "DELETE FROM tenancy.quota_resources WHERE name = $1 RETURNING true",
            &[name.into()],
        );
        if dropped.is_some() {
            Spi::run_with_args(
                "UPDATE tenancy.plans SET limits = limits - $1 WHERE limits ? $1",
                &[name.into()],
            )
            .expect("removing plan limits failed");
        }
        dropped
    });
    if dropped.is_none() {
        return Err(terms::unknown_resource(name));
    }
    terms::forget();
    Ok(())
}

fn require_resource(resource: &str) -> Result<()> {
    let exists: Option<bool> = as_extension_owner(|| {
        select_value(
            "SELECT true FROM tenancy.quota_resources WHERE name = $1",
            &[resource.into()],
        )
    });
    exists
        .map(|_| ())
        .ok_or_else(|| terms::unknown_resource(resource))
}

fn require_plan(plan: &str) -> Result<()> {
    let exists: Option<bool> = as_extension_owner(|| {
        select_value(
            "SELECT true FROM tenancy.plans WHERE name = $1",
            &[plan.into()],
        )
    });
    exists.map(|_| ()).ok_or_else(|| {
        error::invalid_parameter(format!("plan \"{plan}\" does not exist"))
            .set_hint("Plans are listed in tenancy.plans.")
    })
}

fn require_tenant(tenant: &[u8; 16]) -> Result<()> {
    let exists: Option<bool> = as_extension_owner(|| {
        select_value(
            "SELECT true FROM tenancy.tenants WHERE id = $1",
            &[pgrx::Uuid::from_bytes(*tenant).into()],
        )
    });
    exists
        .map(|_| ())
        .ok_or_else(|| crate::tenant::registry::unknown_tenant(tenant))
}

/// Writes a limit (`sql` as the extension owner) and makes this backend read
/// the terms again; other backends see the change through the relcache.
fn change_limits(sql: &str, args: &[DatumWithOid], failure: &str) -> Result<()> {
    as_extension_owner(|| Spi::run_with_args(sql, args)).expect(failure);
    terms::forget();
    Ok(())
}

/// Sets a plan's limit for a resource (stored in `plans.limits` under the
/// resource's name); every tenant on the plan without an override gets it.
#[pg_extern(volatile, parallel_unsafe)]
fn set_plan_limit(
    plan: Option<&str>,
    resource: Option<&str>,
    quota_limit: Option<i64>,
) -> Result<()> {
    let plan = required(plan, "plan")?;
    let resource = required(resource, "resource")?;
    let limit = limit_argument(quota_limit)?;
    require_plan(plan)?;
    require_resource(resource)?;
    change_limits(
        "UPDATE tenancy.plans SET limits = limits || pg_catalog.jsonb_build_object($2::text, $3::bigint) WHERE name = $1",
        &[plan.into(), resource.into(), limit.into()],
        "saving the plan limit failed",
    )
}

/// Removes a plan's limit for a resource: its tenants become unlimited for
/// it (unless they have their own quota).
#[pg_extern(volatile, parallel_unsafe)]
fn clear_plan_limit(plan: Option<&str>, resource: Option<&str>) -> Result<()> {
    let plan = required(plan, "plan")?;
    let resource = required(resource, "resource")?;
    require_plan(plan)?;
    require_resource(resource)?;
    change_limits(
        "UPDATE tenancy.plans SET limits = limits - $2 WHERE name = $1",
        &[plan.into(), resource.into()],
        "removing the plan limit failed",
    )
}

/// Gives one tenant its own limit for a resource, winning over its plan's.
#[pg_extern(volatile, parallel_unsafe)]
fn set_quota(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    quota_limit: Option<i64>,
) -> Result<()> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    let resource = required(resource, "resource")?;
    let limit = limit_argument(quota_limit)?;
    require_tenant(&tenant)?;
    require_resource(resource)?;
    change_limits(
        "INSERT INTO tenancy.tenant_quotas (tenant_id, resource, quota_limit) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, resource) DO UPDATE SET quota_limit = EXCLUDED.quota_limit, set_at = pg_catalog.now()",
        &[pgrx::Uuid::from_bytes(tenant).into(), resource.into(), limit.into()],
        "saving the quota failed",
    )
}

/// Removes a tenant's own limit: its plan's limit applies again.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_quota(tenant: Option<pgrx::Uuid>, resource: Option<&str>) -> Result<()> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    let resource = required(resource, "resource")?;
    require_tenant(&tenant)?;
    require_resource(resource)?;
    change_limits(
        "DELETE FROM tenancy.tenant_quotas WHERE tenant_id = $1 AND resource = $2",
        &[pgrx::Uuid::from_bytes(tenant).into(), resource.into()],
        "removing the quota failed",
    )
}

/// Takes `amount` units of `resource` for `tenant` if they fit under its
/// limit in the current period, and returns true; otherwise takes nothing and
/// returns false. Exact under any concurrency: the tenant's counter is locked
/// until the transaction ends, and a rolled-back transaction takes nothing.
///
/// ```sql
/// SELECT tenancy.consume(tenant, 'api_calls');        -- one call
/// SELECT tenancy.consume(tenant, 'tokens', 1500);
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn consume(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    amount: default!(Option<i64>, "1"),
) -> Result<bool> {
    let (key, amount) = spending_arguments(tenant, resource, amount)?;
    Ok(usage::consume(&key, amount)?.granted)
}

/// As `consume`, but raises 53400 (configuration_limit_exceeded) with the
/// limit, the usage and the period's end in the DETAIL when the units do not fit.
#[pg_extern(volatile, parallel_unsafe)]
fn require(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    amount: default!(Option<i64>, "1"),
) -> Result<()> {
    let (key, amount) = spending_arguments(tenant, resource, amount)?;
    let decision = usage::consume(&key, amount)?;
    if decision.granted {
        Ok(())
    } else {
        Err(exceeded(&key, &decision, amount))
    }
}

/// Gives back up to `amount` units taken in the current period (usage never
/// goes below zero).
#[pg_extern(volatile, parallel_unsafe)]
fn release(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    amount: default!(Option<i64>, "1"),
) -> Result<()> {
    let (key, amount) = spending_arguments(tenant, resource, amount)?;
    usage::release(&key, amount)
}

/// Whether the tenant has room left for `resource` in the current period
/// (usage below the limit, or no limit). Takes nothing and locks nothing.
#[pg_extern(volatile, parallel_unsafe)]
fn check_quota(tenant: Option<pgrx::Uuid>, resource: Option<&str>) -> Result<bool> {
    let key = key_for(required(tenant, "tenant")?, required(resource, "resource")?)?;
    let terms = terms::terms_of(&key)?;
    let Some(limit) = terms.limit else {
        return Ok(true);
    };
    let used = match usage::pending(&key, terms.period) {
        Some(used) => used,
        None => super::status::stored_used(&key, terms.period),
    };
    Ok(used < limit)
}

/// Every tenant's (or one tenant's) use of every resource it has a limit for
/// or has used: the current period, usage, limit, what remains and the
/// percentage used. Includes this transaction's own uncommitted use.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn quota_status(
    tenant: default!(Option<pgrx::Uuid>, "NULL"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(tenant_id, pgrx::Uuid),
            name!(resource, String),
            name!(period_start, Option<pgrx::datum::TimestampWithTimeZone>),
            name!(used, i64),
            name!(quota_limit, Option<i64>),
            name!(remaining, Option<i64>),
            name!(pct_used, Option<pgrx::AnyNumeric>),
            name!(period, String),
            name!(period_end, Option<pgrx::datum::TimestampWithTimeZone>),
            name!(unit, String),
        ),
    >,
> {
    // A session acting for a tenant sees only that tenant's figures.
    let only = match (tenant, context::current_tenant()) {
        (Some(t), _) => Some(key_for(t, "")?.tenant),
        // SAFETY: reads the current user's superuser flag.
        (None, Some(session)) if !unsafe { pg_sys::superuser() } => Some(session),
        (None, _) => None,
    };
    let mut rows = super::status::rows(only, clock::now_micros());
    // A role bound to tenants sees only theirs, with or without a tenant set.
    let access = crate::tenant::bindings::session_access();
    rows.retain(|r| access.allows(&r.tenant));
    Ok(TableIterator::new(rows.into_iter().map(|r| {
        (
            pgrx::Uuid::from_bytes(r.tenant),
            r.resource,
            r.window.map(|w| clock::timestamptz(w.from)),
            r.used,
            r.limit,
            r.limit.map(|l| (l - r.used).max(0)),
            r.pct_used
                .map(|p| pgrx::AnyNumeric::try_from(p.as_str()).expect("a decimal")),
            r.period.name().to_owned(),
            r.window.map(|w| clock::timestamptz(w.to)),
            r.unit,
        )
    })))
}

/// Makes a table's rows count against a resource (period none) per tenant:
/// existing rows are counted now, an INSERT past a tenant's limit fails with
/// 53400, DELETE and TRUNCATE give units back. The table must be registered.
///
/// ```sql
/// SELECT tenancy.define_resource('projects');
/// SELECT tenancy.enforce_row_quota('projects', 'projects');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn enforce_row_quota(tbl: Option<RegClass>, resource: Option<&str>) -> Result<()> {
    row_quota::enforce(required(tbl, "tbl")?, required(resource, "resource")?)
}

/// Stops counting a table's rows; the usage counted so far stays.
#[pg_extern(volatile, parallel_unsafe)]
fn disable_row_quota(tbl: Option<RegClass>) -> Result<()> {
    row_quota::disable(required(tbl, "tbl")?)
}

/// Internal: row-quota triggers for partitions created or attached by hand
/// (called by the event trigger `tenancy_cover_new_partitions`).
#[pg_extern(volatile, parallel_unsafe)]
fn _row_quota_cover_partitions(tbl: Option<RegClass>) -> Result<()> {
    row_quota::cover_partitions(required(tbl, "tbl")?)
}

/// Internal: re-creates a row-quota table's triggers after its tenant column
/// was renamed (called by the event trigger `tenancy_follow_renamed_columns`,
/// which has already updated tenancy.row_quotas): the triggers name the column.
#[pg_extern(volatile, parallel_unsafe)]
fn _row_quota_follow_rename(tbl: Option<RegClass>) -> Result<()> {
    row_quota::follow_rename(required(tbl, "tbl")?)
}

/// Measures the bytes each tenant occupies across the registered tables and
/// stores them as its `storage_bytes` usage; returns the bytes attributed.
/// Reads every row of those tables: a job for the scheduler, not a request.
#[pg_extern(volatile, parallel_unsafe)]
fn refresh_storage_usage() -> Result<i64> {
    storage::refresh()
}
