//! consume, release and absolute settings of usage counters: the ledger of
//! counters this transaction holds, in front of the kept plans of `store`.
//!
//! The first time a transaction touches a counter it takes the row lock (one
//! UPDATE that also takes the units when they fit); every later touch in the
//! same transaction is a hash lookup, and the final figure is written once,
//! just before commit (see `ledger` for why).

use super::ledger::{Key, Ledger, SubId, Value};
use super::period::{self, Period};
use super::store::{self, Terms};
use super::terms::terms_of;
use crate::common::clock;
use crate::common::error::{self, Result};
use crate::common::privilege::{as_extension_owner, as_extension_owner_qualified as as_owner};
use crate::common::sql::select_value;
use crate::tenant::context;
use pgrx::pg_guard;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use std::cell::RefCell;

thread_local! {
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

/// What `consume` decided.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub granted: bool,
    /// Units used in the current period after the call.
    pub used: i64,
    pub terms: Terms,
    /// The current period's window in Unix microseconds (None for `none`).
    pub window: Option<crate::common::calendar::Range>,
}

fn current_sub() -> SubId {
    // SAFETY: reads the transaction state.
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

/// The counter's value in the current period, locking it first if this
/// transaction does not hold it yet. None: the counter does not exist and
/// `create` is false.
fn held_value(key: &Key, start: i64, create: bool) -> Option<Value> {
    if let Some(value) = LEDGER.with(|l| l.borrow().get(key)) {
        return Some(value);
    }
    let (period_start, used) = as_owner(|| store::lock(key, start, create))?;
    let value = Value {
        period_start,
        used,
        dirty: false,
    };
    LEDGER.with(|l| l.borrow_mut().lock(key.clone(), value, current_sub()));
    Some(value)
}

/// Units used in the period starting at `start`, given a counter's value.
fn used_in(value: Value, start: i64) -> i64 {
    if value.period_start == start {
        value.used
    } else {
        0
    }
}

fn record(key: &Key, start: i64, used: i64) {
    let value = Value {
        period_start: start,
        used,
        dirty: true,
    };
    LEDGER.with(|l| l.borrow_mut().set(key, value, current_sub()));
}

/// Takes `amount` units if they fit under the limit in the current period.
pub fn consume(key: &Key, amount: i64) -> Result<Decision> {
    let now = clock::now_micros();
    let terms = terms_of(key)?;
    let window = terms.period.window(now);
    let start = terms.period.stored_start(now);
    let held = LEDGER.with(|l| l.borrow().get(key));
    let value = match held {
        Some(value) => value,
        None => {
            // First touch: one UPDATE takes the units and the lock when they fit.
            if let Some(used) = as_owner(|| store::bump(key, start, amount, terms.limit)) {
                let value = Value {
                    period_start: start,
                    used,
                    dirty: false,
                };
                LEDGER.with(|l| l.borrow_mut().lock(key.clone(), value, current_sub()));
                return Ok(Decision {
                    granted: true,
                    used,
                    terms,
                    window,
                });
            }
            // No counter yet, or the units do not fit: lock it and decide below.
            held_value(key, start, true).expect("the counter was just created")
        }
    };
    let used = used_in(value, start);
    let fits = used
        .checked_add(amount)
        .filter(|total| terms.limit.is_none_or(|limit| *total <= limit));
    let granted = fits.is_some();
    if let Some(total) = fits {
        record(key, start, total);
    }
    Ok(Decision {
        granted,
        used: fits.unwrap_or(used),
        terms,
        window,
    })
}

/// Gives back up to `amount` units of the current period.
pub fn release(key: &Key, amount: i64) -> Result<()> {
    let terms = terms_of(key)?;
    let start = terms.period.stored_start(clock::now_micros());
    if let Some(value) = held_value(key, start, false) {
        let used = used_in(value, start);
        record(key, start, (used - amount).max(0));
    }
    Ok(())
}

/// Sets a counter to an absolute figure (rows counted when a row quota
/// starts, bytes measured by refresh_storage_usage).
pub fn set_used(key: &Key, used: i64) -> Result<()> {
    let terms = terms_of(key)?;
    let start = terms.period.stored_start(clock::now_micros());
    held_value(key, start, true).expect("the counter was just created");
    record(key, start, used);
    Ok(())
}

/// This transaction's own figure for a counter it holds, in the current period.
pub fn pending(key: &Key, period: Period) -> Option<i64> {
    let start = period.stored_start(clock::now_micros());
    LEDGER
        .with(|l| l.borrow().get(key))
        .map(|v| used_in(v, start))
}

/// Writes the final figures of changed counters (just before commit).
fn flush() {
    let dirty = LEDGER.with(|l| l.borrow_mut().take_dirty());
    if dirty.is_empty() {
        return;
    }
    // At pre-commit the statement's portal and snapshot are gone; SPI needs
    // an active snapshot to run the UPDATEs.
    // SAFETY: pushed and popped around the writes (an error aborts the
    // transaction, and abort cleans up the snapshot stack).
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    as_owner(|| {
        for (key, value) in &dirty {
            store::write(key, value.period_start, value.used);
        }
    });
    // SAFETY: pops the snapshot pushed at the start of this function.
    unsafe { pg_sys::PopActiveSnapshot() };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => flush(),
        XACT_EVENT_COMMIT
        | XACT_EVENT_ABORT
        | XACT_EVENT_PREPARE
        | XACT_EVENT_PARALLEL_ABORT
        | XACT_EVENT_PARALLEL_COMMIT => LEDGER.with(|l| l.borrow_mut().clear()),
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    sub: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_ABORT_SUB => LEDGER.with(|l| l.borrow_mut().abort_sub(sub)),
        SUBXACT_EVENT_COMMIT_SUB => LEDGER.with(|l| l.borrow_mut().commit_sub(sub, parent)),
        _ => {}
    }
}

/// Registers the transaction callbacks; called from `_PG_init`.
pub fn init() {
    // SAFETY: registering callbacks while the library loads.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_transaction), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut());
    }
}

fn tenant_label(tenant: &[u8; 16]) -> String {
    let slug: Option<String> = as_extension_owner(|| {
        select_value(
            "SELECT slug FROM tenancy.tenants WHERE id = $1",
            &[pgrx::Uuid::from_bytes(*tenant).into()],
        )
    });
    match slug {
        Some(slug) => format!("{slug} ({})", context::format_tenant(tenant)),
        None => context::format_tenant(tenant),
    }
}

/// The 53400 error of `require` and of row quotas.
pub fn exceeded(key: &Key, decision: &Decision, amount: i64) -> ErrorReport {
    let limit = decision.terms.limit.unwrap_or(i64::MAX);
    let mut detail = format!(
        "Tenant {} has used {} of {} {} {}; {} more asked for.",
        tenant_label(&key.tenant),
        decision.used,
        limit,
        key.resource,
        decision.terms.period.phrase(),
        amount
    );
    let hint = match decision.window {
        Some(window) => {
            detail.push_str(&format!(" The period ends at {}.", period::utc_text(window.to)));
            "Wait for the next period, or raise the limit with tenancy.set_quota() or tenancy.set_plan_limit()."
        }
        None => "Free some units (tenancy.release, or delete rows counted by a row quota), or raise the limit with tenancy.set_quota() or tenancy.set_plan_limit().",
    };
    error::quota_exceeded(format!("quota exceeded for resource \"{}\"", key.resource))
        .set_detail(detail)
        .set_hint(hint)
}
