//! What pg_tenancy needs to know of Citus, for every capability: whether
//! this backend's database is a Citus cluster and which node this is, where
//! this node keeps its copy of a replicated catalog, and the few Citus
//! functions pg_tenancy calls, found in the loaded citus.so by name. Citus has no API for what we need (carrying a session's tenant to
//! the workers on every statement), so these are internal functions of Citus
//! 13.2 (`nm -D citus.so`); pg_tenancy links nothing of Citus and works
//! without it. In a backend where any of them is missing pg_tenancy acts as
//! if Citus were absent.

use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::settings::with_settings;
use pgrx::pg_sys;
use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

type Predicate = unsafe extern "C-unwind" fn() -> bool;
type Action = unsafe extern "C-unwind" fn();
type SetLocal = unsafe extern "C-unwind" fn(*mut pg_sys::VariableSetStmt, *const c_char);

/// Citus's functions, when citus.so is loaded in this backend. Each call goes
/// through pgrx's FFI guard: a Citus ERROR becomes a Rust panic that unwinds
/// our frames and is re-raised as the same ERROR.
#[derive(Clone, Copy)]
pub struct Citus {
    has_been_loaded: Predicate,
    is_coordinator: Predicate,
    is_internal_backend: Predicate,
    use_coordinated_transaction: Action,
    propagate_set_local: SetLocal,
}

impl Citus {
    /// `CitusHasBeenLoaded()`: the citus extension exists in this database
    /// (and is not being created, altered or dropped). Needs a transaction.
    pub fn in_this_database(&self) -> bool {
        // SAFETY: a Citus function without arguments, called inside a transaction.
        unsafe { pg_guard_ffi_boundary(|| (self.has_been_loaded)()) }
    }

    /// `IsCoordinator()`: this node is the coordinator (group 0).
    pub fn is_coordinator(&self) -> bool {
        // SAFETY: as above; reads pg_dist_local_group through Citus's cache.
        unsafe { pg_guard_ffi_boundary(|| (self.is_coordinator)()) }
    }

    /// `IsCitusInternalBackend()`: this backend serves another node (a
    /// connection the coordinator opened to run shard queries).
    pub fn is_internal_backend(&self) -> bool {
        // SAFETY: as above; reads this backend's own Citus state.
        unsafe { pg_guard_ffi_boundary(|| (self.is_internal_backend)()) }
    }

    /// `UseCoordinatedTransaction()`: the rest of this transaction's remote
    /// work runs in transaction blocks on the workers (which carry the SET
    /// LOCAL statements below).
    pub fn use_coordinated_transaction(&self) {
        // SAFETY: as above; changes Citus's transaction state only.
        unsafe { pg_guard_ffi_boundary(|| (self.use_coordinated_transaction)()) }
    }

    /// `PostprocessVariableSetStmt(stmt, text)`: sends `text`, a `SET LOCAL`,
    /// to every remote transaction open in this transaction now and to every
    /// one opened later in it (what Citus does itself for a `SET LOCAL` under
    /// `citus.propagate_set_commands = local`).
    pub fn propagate_set_local(&self, setting: &CStr, value: &str) {
        let text = format!(
            "SET LOCAL {} TO {}",
            setting.to_string_lossy(),
            crate::common::sql::literal(value)
        );
        let text = std::ffi::CString::new(text).expect("no NUL in a setting");
        // SAFETY: Citus reads the statement node only in assertions (kind,
        // is_local, name), and sends and keeps the text, which it copies
        // before it returns; the node lives in the current memory context.
        unsafe {
            let stmt = pg_sys::palloc0(std::mem::size_of::<pg_sys::VariableSetStmt>())
                as *mut pg_sys::VariableSetStmt;
            (*stmt).type_ = pg_sys::NodeTag::T_VariableSetStmt;
            (*stmt).kind = pg_sys::VariableSetKind::VAR_SET_VALUE;
            (*stmt).name = pg_sys::pstrdup(setting.as_ptr());
            (*stmt).is_local = true;
            pg_guard_ffi_boundary(|| (self.propagate_set_local)(stmt, text.as_ptr()));
        }
    }
}

static CITUS: OnceLock<Option<Citus>> = OnceLock::new();

fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT (a null handle on glibc) searches every
    // library loaded with RTLD_GLOBAL, as PostgreSQL loads extensions.
    unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) }
}

/// Citus's functions, or None when citus.so is not loaded in this backend.
/// Looked up once: Citus must be preloaded (it refuses to load otherwise), so
/// it is there before any of our code runs, and is never unloaded.
pub fn citus() -> Option<Citus> {
    *CITUS.get_or_init(|| {
        let names: [&CStr; 5] = [
            c"CitusHasBeenLoaded",
            c"IsCoordinator",
            c"IsCitusInternalBackend",
            c"UseCoordinatedTransaction",
            c"PostprocessVariableSetStmt",
        ];
        let found: Vec<*mut c_void> = names.iter().map(|name| lookup(name)).collect();
        if found.iter().any(|pointer| pointer.is_null()) {
            return None;
        }
        // SAFETY: each symbol is the Citus function of that name, whose C
        // signature (Citus 13.2 headers) is the one the field declares.
        unsafe {
            Some(Citus {
                has_been_loaded: std::mem::transmute::<*mut c_void, Predicate>(found[0]),
                is_coordinator: std::mem::transmute::<*mut c_void, Predicate>(found[1]),
                is_internal_backend: std::mem::transmute::<*mut c_void, Predicate>(found[2]),
                use_coordinated_transaction: std::mem::transmute::<*mut c_void, Action>(found[3]),
                propagate_set_local: std::mem::transmute::<*mut c_void, SetLocal>(found[4]),
            })
        }
    })
}

/// Citus, when this backend's database uses it (the library loaded and the
/// extension created here). Needs a transaction.
pub fn active() -> Option<Citus> {
    citus().filter(|c| c.in_this_database())
}

/// How Citus holds `relid`: `h` distributed by hash, `n` a reference (or
/// Citus local) table, `s` single-shard, None when it is not a Citus table
/// (or Citus is not used here).
pub fn table_kind(relid: pg_sys::Oid) -> Option<char> {
    active()?;
    crate::common::sql::select_value::<String>(
        "SELECT partmethod::pg_catalog.text FROM pg_catalog.pg_dist_partition
          WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
        &[relid.into()],
    )
    .and_then(|kind| kind.chars().next())
}

/// SQL for the bytes of the relation `relid_expr` (an SQL expression of type
/// regclass or oid) takes with its indexes and TOAST: for a Citus table the
/// sum over its shards (`citus_total_relation_size`; its own relation on
/// the coordinator is an empty shell), else `pg_total_relation_size`.
pub fn total_relation_size_sql(relid_expr: &str) -> String {
    let local = format!("pg_catalog.pg_total_relation_size({relid_expr})");
    if active().is_none() {
        return local;
    }
    format!(
        "CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_partition d
                            WHERE d.logicalrelid OPERATOR(pg_catalog.=) ({relid_expr})::pg_catalog.regclass)
              THEN pg_catalog.citus_total_relation_size(({relid_expr})::pg_catalog.regclass)
              ELSE {local} END"
    )
}

/// 0A000 when `relid` is a Citus table and `what` does not support those.
pub fn refuse_citus_table(relid: pg_sys::Oid, name: &str, what: &str) -> Result<()> {
    if table_kind(relid).is_some() {
        return Err(error::feature_not_supported(format!(
            "{what} does not support Citus tables yet ({name} is one)"
        ))
        .set_hint("See docs/citus.md for what works on a Citus cluster."));
    }
    Ok(())
}

/// Whether this node is a Citus worker: its copies of the catalogs the
/// coordinator writes (tenants, role bindings) are not the authority here.
pub fn on_worker() -> bool {
    active().is_some_and(|c| !c.is_coordinator())
}

thread_local! {
    /// Local copies found so far: catalog name -> relation to read.
    static LOCAL_COPIES: std::cell::RefCell<std::collections::HashMap<String, String>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Forgets the local copies found at any relcache invalidation: a table
/// made a reference table, or a placement added or moved, invalidates the
/// table, and finding a copy again costs one catalog query.
fn forget_local_copies(_relid: pgrx::pg_sys::Oid) {
    LOCAL_COPIES.with(|c| c.borrow_mut().clear());
}

/// Registers the cache's invalidation; called from `_PG_init`.
pub fn init() {
    crate::common::invalidation::on_relcache(forget_local_copies);
}

/// The relation that holds this node's copy of `tenancy.<table>`, quoted:
/// where it is a Citus reference table with a placement on this node, that
/// placement, read directly (reading the reference table itself from inside
/// a shard query would be a nested distributed query, which Citus refuses);
/// anywhere else the table itself.
pub fn local_copy(table: &CStr) -> String {
    let name = table.to_string_lossy().into_owned();
    let plain = || pgrx::spi::quote_qualified_identifier("tenancy", name.as_str());
    if active().is_none() {
        return plain();
    }
    if let Some(found) = LOCAL_COPIES.with(|c| c.borrow().get(&name).cloned()) {
        return found;
    }
    let Some(relid) = crate::common::relation::catalog_relid(table) else {
        return plain();
    };
    let shard: Option<i64> = crate::common::sql::select_value(
        "SELECT s.shardid FROM pg_catalog.pg_dist_shard s
           JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
          WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1
            AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
        &[relid.into()],
    );
    let found = match shard {
        Some(shard) => {
            pgrx::spi::quote_qualified_identifier("tenancy", format!("{name}_{shard}").as_str())
        }
        None => plain(),
    };
    LOCAL_COPIES.with(|c| c.borrow_mut().insert(name, found.clone()));
    found
}

// The catalogs every node of a Citus cluster reads: on the coordinator they
// become reference tables (Citus keeps a copy on every node and writes all
// copies in the same transaction), the first time a management call needs
// them. Their triggers go to every copy (`citus.enable_unsafe_triggers` for
// the conversion only), so each node forgets what it cached.

/// The replicated catalogs, in schema tenancy.
const CATALOGS: [&str; 4] = [
    "cluster_tenants",
    "cluster_role_bindings",
    "cluster_masking_key",
    "cluster_quota_limits",
];

thread_local! {
    /// This backend has seen every catalog replicated (they never go back).
    static DONE: Cell<bool> = const { Cell::new(false) };
}

/// On a Citus coordinator, makes the replicated catalogs reference tables if
/// they are not yet; elsewhere nothing. On a Citus worker: 0A000, since what
/// the caller is about to change is the coordinator's to change.
pub fn ensure_replicated(what: &str) -> Result<()> {
    let Some(citus) = active() else {
        return Ok(());
    };
    if !citus.is_coordinator() {
        return Err(error::feature_not_supported(format!(
            "{what} must run on the Citus coordinator"
        ))
        .set_hint("Connect to the coordinator: it changes every node."));
    }
    if DONE.get() {
        return Ok(());
    }
    as_extension_owner(|| {
        with_settings(&[("citus.enable_unsafe_triggers", "on")], || {
            for table in CATALOGS {
                Spi::run_with_args(
                    "SELECT pg_catalog.create_reference_table(c.oid)
                       FROM pg_catalog.pg_class c
                      WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
                        AND c.relname OPERATOR(pg_catalog.=) $1
                        AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                                         WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.oid)",
                    &[table.into()],
                )
                .expect("making a pg_tenancy catalog a reference table failed");
            }
        })
    });
    DONE.set(true);
    Ok(())
}
