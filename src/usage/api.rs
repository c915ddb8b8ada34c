//! SQL API for request-rate limits (docs/usage.md): `throttle` and
//! `throttle_or_raise`, answered from shared memory.

use super::bucket::Decision;
use super::{rates, shared};
use crate::common::error::{self, required};
use crate::tenant::context;
use pgrx::prelude::*;

/// The decision for a call, None when nothing limits the resource.
fn decide(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    cost: Option<f64>,
) -> error::Result<Option<(Decision, super::bucket::Rate)>> {
    let tenant = *required(tenant, "tenant")?.as_bytes();
    let resource = required(resource, "resource")?;
    let cost = required(cost, "cost")?;
    if !(cost >= 0.0 && cost.is_finite()) {
        return Err(error::invalid_parameter(
            "cost must be a finite number of 0 or more",
        ));
    }
    // As with consume: a session acting for one tenant spends only its tokens.
    crate::tenant::bindings::require_acting_for(
        &tenant,
        "Throttle calls for another tenant need a session without tenancy.set_tenant().",
    )?;
    let Some(limit) = rates::rate(&tenant, resource) else {
        return Err(crate::tenant::registry::unknown_tenant(&tenant));
    };
    let Some(rate) = limit else {
        return Ok(None);
    };
    if !shared::available() {
        return Err(error::not_in_prerequisite_state(
            "tenancy.throttle() needs pg_tenancy in shared_preload_libraries",
        )
        .set_hint(
            "Add pg_tenancy to shared_preload_libraries and restart the server (docs/usage.md).",
        ));
    }
    Ok(Some((shared::take(&tenant, resource, rate, cost), rate)))
}

/// Whether `tenant` may make a request of `resource` costing `cost` now: a
/// token bucket per tenant and resource (`tenancy.set_throttle`), in shared
/// memory. True when no rate applies.
///
/// ```sql
/// SELECT tenancy.throttle(tenancy.current_tenant(), 'api');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn throttle(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    cost: default!(Option<f64>, "1"),
) -> error::Result<bool> {
    Ok(decide(tenant, resource, cost)?.is_none_or(|(decision, _)| decision.admitted))
}

/// As `throttle`, but raises 53400 (configuration_limit_exceeded) when the
/// request is over the rate, with the rate and the wait in the DETAIL.
#[pg_extern(volatile, parallel_unsafe)]
fn throttle_or_raise(
    tenant: Option<pgrx::Uuid>,
    resource: Option<&str>,
    cost: default!(Option<f64>, "1"),
) -> error::Result<()> {
    match decide(tenant, resource, cost)? {
        Some((decision, rate)) if !decision.admitted => Err(error::quota_exceeded(format!(
            "rate limit exceeded for resource \"{}\"",
            resource.unwrap_or_default()
        ))
        .set_detail(format!(
            "Tenant {} may spend {} per second, up to {} at once; {:.3} left.",
            context::format_tenant(tenant.expect("checked").as_bytes()),
            rate.per_second,
            rate.burst,
            decision.tokens
        ))
        .set_hint(format!("Retry in {}.", wait_text(decision.wait_micros)))),
        _ => Ok(()),
    }
}

/// A wait, rounded up: milliseconds under ten seconds, else seconds.
fn wait_text(micros: i64) -> String {
    if micros < 10_000_000 {
        format!("{} ms", (micros + 999) / 1000)
    } else {
        format!("{} s", (micros + 999_999) / 1_000_000)
    }
}

/// Empties the buckets of every tenant: they start full again.
#[pg_extern(volatile, parallel_unsafe)]
fn reset_throttles() {
    shared::clear();
}

/// Sets the value `set_tenant` gives `setting` for the tenants of `plan`, or
/// for `tenant` (exactly one of them): 22023 for a setting that cannot be
/// governed or a value it does not take.
///
/// ```sql
/// SELECT tenancy.set_governance('statement_timeout', '5s', plan => 'free');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn set_governance(
    setting: Option<&str>,
    value: Option<&str>,
    plan: default!(Option<&str>, "NULL"),
    tenant: default!(Option<pgrx::Uuid>, "NULL"),
) -> error::Result<()> {
    let setting = required(setting, "setting")?;
    let value = required(value, "value")?;
    super::governance::validate(setting, value)?;
    // As the caller, who was granted EXECUTE: the table's own constraints
    // report a plan or tenant that does not exist (23503) or both or none (23514).
    Spi::run_with_args(
        "INSERT INTO tenancy.governance (setting, value, plan, tenant_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (setting, plan, tenant_id) DO UPDATE SET value = EXCLUDED.value",
        &[setting.into(), value.into(), plan.into(), tenant.into()],
    )
    .expect("saving the governed setting failed");
    Ok(())
}

/// The statement trigger on `tenancy.throttle_rates`, `tenancy.governance`
/// and on plan changes of `tenancy.tenants`: every backend forgets the rates
/// and settings it remembered.
#[pg_trigger]
fn _usage_catalog_changed<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    crate::tenant::bindings::broadcast_change(c"throttle_rates");
    crate::tenant::bindings::broadcast_change(c"governance");
    Ok(None)
}
