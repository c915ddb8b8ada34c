//! Governance: the settings a tenant's statements run with (statement and
//! lock timeouts, work_mem, parallel workers), per plan and per tenant in
//! `tenancy.governance`, applied by `set_tenant` for the session or the
//! transaction as it chose, and taken back by `clear_tenant` (and by the
//! next `set_tenant` for a tenant that does not govern them): a setting no
//! rule governs gets the value the session had before its first governed
//! tenant. Also the cap on a tenant's running statements (`running`). Read
//! once per tenant per backend, forgotten when the rules or a tenant's plan
//! change. Costs nothing while no rule exists.

use crate::common::error::{self, Result};
use crate::common::hooks::TenantChosen;
use crate::common::privilege::as_extension_owner;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

/// The settings a rule may govern, in `tenancy.governance.setting`'s order.
pub const SETTINGS: [&CStr; 4] = [
    c"statement_timeout",
    c"lock_timeout",
    c"work_mem",
    c"max_parallel_workers_per_gather",
];

/// The rule that caps a tenant's running statements (`running`), not a setting.
pub const RUNNING_CAP: &str = "max_running_statements";

/// A tenant's governed values, by index into [`SETTINGS`], and its cap.
#[derive(Default)]
struct Rules {
    values: [Option<String>; SETTINGS.len()],
    running_cap: Option<i64>,
}

type Governed = Rc<Rules>;

thread_local! {
    static BY_TENANT: RefCell<HashMap<[u8; 16], Governed>> = RefCell::new(HashMap::new());
    /// Whether any rule exists (None: not read since the last change).
    static ANY: Cell<Option<bool>> = const { Cell::new(None) };
    /// The session's values from before its first governed tenant.
    static BASE: RefCell<Option<[String; SETTINGS.len()]>> = const { RefCell::new(None) };
    static TABLE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    static STALE: Cell<bool> = const { Cell::new(false) };
}

/// Registers the hook and the cache's invalidation; called from `_PG_init`.
pub fn init() {
    crate::common::hooks::on_tenant_chosen(apply);
    crate::common::invalidation::on_relcache(|relid| {
        if relid == pg_sys::InvalidOid || relid == TABLE.get() {
            STALE.set(true);
        }
    });
}

fn forget_if_stale() {
    if STALE.replace(false) {
        BY_TENANT.with(|b| b.borrow_mut().clear());
        ANY.set(None);
    }
}

fn any_rule() -> bool {
    forget_if_stale();
    if let Some(any) = ANY.get() {
        return any;
    }
    if TABLE.get() == pg_sys::InvalidOid {
        TABLE.set(crate::common::relation::catalog_relid(c"governance").unwrap_or_default());
    }
    if TABLE.get() == pg_sys::InvalidOid {
        // An older release's SQL: no rules.
        return false;
    }
    let any = as_extension_owner(|| {
        crate::common::sql::select_value::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.governance)",
            &[],
        )
    })
    .unwrap_or(false);
    if !STALE.get() {
        ANY.set(Some(any));
    }
    any
}

fn governed(tenant: &[u8; 16]) -> Governed {
    if let Some(known) = BY_TENANT.with(|b| b.borrow().get(tenant).cloned()) {
        return known;
    }
    let rows: Vec<(String, String)> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT DISTINCT ON (g.setting) g.setting, g.value FROM tenancy.governance g
                      WHERE g.tenant_id = $1
                         OR g.plan = (SELECT t.plan FROM tenancy.tenants t WHERE t.id = $1)
                      ORDER BY g.setting, g.tenant_id IS NULL",
                    None,
                    &[pgrx::Uuid::from_bytes(*tenant).into()],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading the tenant's governed settings failed")
    });
    let mut rules = Rules::default();
    for (setting, value) in rows {
        if let Some(i) = SETTINGS
            .iter()
            .position(|s| s.to_bytes() == setting.as_bytes())
        {
            rules.values[i] = Some(value);
        } else if setting == RUNNING_CAP {
            rules.running_cap = value.parse().ok();
        }
    }
    let values: Governed = Rc::new(rules);
    if !STALE.get() {
        BY_TENANT.with(|b| b.borrow_mut().insert(*tenant, values.clone()));
    }
    values
}

fn current_value(setting: &CStr) -> String {
    // SAFETY: a built-in setting that exists; the returned string is palloc'd.
    unsafe {
        let value = pg_sys::GetConfigOptionByName(setting.as_ptr(), std::ptr::null_mut(), false);
        CStr::from_ptr(value).to_string_lossy().into_owned()
    }
}

/// The `set_tenant` / `clear_tenant` hook: gives each governed setting the
/// tenant's value, else its plan's, else the session's own.
fn apply(event: &TenantChosen) -> Result<()> {
    let governing = BASE.with(|b| b.borrow().is_some());
    if !governing && !any_rule() {
        return Ok(());
    }
    forget_if_stale();
    let base = BASE.with(|b| {
        b.borrow_mut()
            .get_or_insert_with(|| SETTINGS.map(current_value))
            .clone()
    });
    let values = event.tenant.as_ref().map(governed);
    for (i, setting) in SETTINGS.iter().enumerate() {
        let value = values
            .as_ref()
            .and_then(|v| v.values[i].as_deref())
            .unwrap_or(base[i].as_str());
        crate::tenant::context::write_setting(setting, value, event.is_local);
    }
    Ok(())
}

/// The cap on `tenant`'s running statements, if a rule sets one (read from
/// the backend's cache: this runs before every statement of a tenant).
pub fn running_cap(tenant: &[u8; 16]) -> Option<i64> {
    if !any_rule() {
        return None;
    }
    governed(tenant).running_cap
}

/// 22023 unless `value` is a value `setting` takes: set in a subtransaction
/// that is always rolled back (an accepted value ends it with an error of
/// ours), so nothing of the caller's settings changes.
pub fn validate(setting: &str, value: &str) -> Result<()> {
    const ACCEPTED: &str = "pg_tenancy: governed value accepted";
    if setting == RUNNING_CAP {
        return match value.trim().parse::<i64>() {
            Ok(cap) if cap >= 1 => Ok(()),
            _ => Err(error::invalid_parameter(format!(
                "{RUNNING_CAP} must be a whole number of 1 or more, not \"{value}\""
            ))),
        };
    }
    let Some(name) = SETTINGS.iter().find(|s| s.to_bytes() == setting.as_bytes()) else {
        return Err(error::invalid_parameter(format!(
            "setting \"{setting}\" cannot be governed"
        ))
        .set_hint("Governed settings: statement_timeout, lock_timeout, work_mem, max_parallel_workers_per_gather, max_running_statements."));
    };
    let outcome = crate::common::subxact::attempt(|| {
        crate::tenant::context::write_setting(name, value, true);
        pgrx::error!("{ACCEPTED}");
    });
    match outcome {
        Err(failure) if failure.message == ACCEPTED => Ok(()),
        Err(failure) => Err(error::invalid_parameter(format!(
            "invalid value for setting \"{setting}\": {}",
            failure.message
        ))),
        Ok(()) => unreachable!("the attempt always ends with an error"),
    }
}
