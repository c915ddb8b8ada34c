//! What pg_tenancy needs to know of Citus, for every capability: whether
//! this backend's database is a Citus cluster and which node this is, where
//! this node keeps its copy of a replicated catalog, and the reference
//! tables those catalogs become. pg_tenancy links nothing of Citus and works
//! without it: what it asks, it asks the catalogs Citus keeps (`pg_dist_*`)
//! and the settings Citus reads, the way a client of Citus could.
//!
//! One thing has a faster way where there is one ([`internals`]): carrying a
//! setting to the workers (`crate::citus::context`). Through Citus's SQL
//! interface it costs a procedure call, and a read outside a transaction
//! block whose shard queries do not carry the tenant (or a COPY, an EXPLAIN)
//! also an empty intermediate result, a file Citus creates and removes (0.25
//! to 1.5 ms on this VM); two C functions of Citus do both in memory. citus.so exports
//! them where PostgreSQL 15 built it; PostgreSQL 16 and later build
//! extensions with hidden symbols, and there only its SQL-callable functions
//! are exported.

use crate::common::error::{self, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::settings::with_settings;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::pg_sys::ffi::pg_guard_ffi_boundary;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// Citus's library is loaded in this backend. What it answers needs a
/// transaction (catalog reads).
#[derive(Clone, Copy)]
pub struct Citus(());

/// `application_name` of the connections Citus opens to run shard queries
/// (Citus's CITUS_APPLICATION_NAME_PREFIX), then the global process id of the
/// backend that opened them.
const INTERNAL_APPLICATION_NAME: &str = "citus_internal gpid=";

impl Citus {
    /// The citus extension exists in this database, and is not being created
    /// or updated (`CitusHasBeenLoaded`'s rule): its catalog
    /// `pg_catalog.pg_dist_partition` is there ([`pg_catalog_relid`]). Cheap
    /// enough for every statement.
    pub fn in_this_database(&self) -> bool {
        // SAFETY: reads backend globals and the syscache, inside a transaction.
        unsafe {
            if pg_sys::IsBinaryUpgrade {
                return false;
            }
            if pg_sys::creating_extension
                && pg_sys::CurrentExtensionObject
                    == pg_sys::get_extension_oid(c"citus".as_ptr(), true)
            {
                return false;
            }
        }
        pg_catalog_relid(c"pg_dist_partition").is_some()
    }

    /// This node is the coordinator: its group (`pg_dist_local_group`) is 0.
    pub fn is_coordinator(&self) -> bool {
        local_group() == Some(0)
    }

    /// This backend serves another node: a connection Citus opened to run
    /// shard queries, which Citus names `citus_internal gpid=<n>` (n > 0).
    pub fn is_internal_backend(&self) -> bool {
        // SAFETY: application_name is NULL or a C string the GUC machinery owns.
        let name = unsafe {
            let name = pg_sys::application_name;
            if name.is_null() {
                return false;
            }
            CStr::from_ptr(name)
        };
        is_internal_application_name(name.to_bytes())
    }
}

/// Whether `name` is the `application_name` of a Citus internal connection:
/// the prefix, then a global process id other than 0 (Citus reads the digits
/// with strtoul, so anything may follow them). Checked before every
/// statement, so without allocating.
fn is_internal_application_name(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(INTERNAL_APPLICATION_NAME.as_bytes()) else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .is_some_and(|gpid| gpid != 0)
}

thread_local! {
    /// This node's group, once read: (pg_dist_local_group's OID, groupid).
    static LOCAL_GROUP: Cell<Option<(pg_sys::Oid, Option<i32>)>> = const { Cell::new(None) };
}

/// This node's group in the Citus cluster (0: the coordinator), None while
/// pg_dist_local_group has no row (during pg_upgrade). Read once, and again
/// after Citus invalidates the table (its trigger does when the group changes).
fn local_group() -> Option<i32> {
    if let Some((_, group)) = LOCAL_GROUP.get() {
        return group;
    }
    let Some(relid) = pg_catalog_relid(c"pg_dist_local_group") else {
        return Some(0);
    };
    let group = crate::common::sql::select_value::<i32>(
        "SELECT groupid FROM pg_catalog.pg_dist_local_group",
        &[],
    );
    LOCAL_GROUP.set(Some((relid, group)));
    group
}

/// `pg_catalog.<name>` (a Citus catalog), through the syscache, which also
/// keeps a missing name and forgets it when the relation is created.
fn pg_catalog_relid(name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: a syscache lookup inside a transaction.
    let relid = unsafe {
        pg_sys::get_relname_relid(
            name.as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        )
    };
    (relid != pg_sys::InvalidOid).then_some(relid)
}

/// `SET LOCAL setting TO 'value'`, the statement Citus sends the workers.
pub fn set_local_statement(setting: &CStr, value: &str) -> String {
    format!(
        "SET LOCAL {} TO {}",
        setting.to_string_lossy(),
        crate::common::sql::literal(value)
    )
}

/// Forgets the group when pg_dist_local_group is invalidated (or everything is).
fn forget_local_group(relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || LOCAL_GROUP.get().is_some_and(|(table, _)| table == relid) {
        LOCAL_GROUP.set(None);
    }
}

static CITUS: OnceLock<bool> = OnceLock::new();

/// Citus, or None when citus.so is not loaded in this backend. Found by the
/// symbol PostgreSQL itself looks up by name in every library that declares a
/// SQL-callable function (`pg_finfo_citus_version`), so exported by every
/// build of Citus; dlsym with RTLD_DEFAULT (a null handle on glibc) searches
/// every library loaded with RTLD_GLOBAL, as PostgreSQL loads them. Looked up
/// once: Citus must be preloaded (it refuses to load otherwise), so it is
/// there before any of our code runs, and is never unloaded.
pub fn citus() -> Option<Citus> {
    // SAFETY: dlsym only reads the loaded libraries' symbol tables.
    let loaded = *CITUS.get_or_init(|| unsafe {
        !dlsym(std::ptr::null_mut(), c"pg_finfo_citus_version".as_ptr()).is_null()
    });
    loaded.then_some(Citus(()))
}

type Action = unsafe extern "C-unwind" fn();
type SetLocal = unsafe extern "C-unwind" fn(*mut pg_sys::VariableSetStmt, *const c_char);

/// `tenancy.citus_internals`: use [`Internals`] where citus.so exports them.
static USE_INTERNALS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Two C functions of Citus 11 to 13 (`nm -D citus.so`), found by name:
/// what Citus itself calls for a `SET LOCAL` under
/// `citus.propagate_set_commands = local`, usable outside a transaction
/// block too. Each call goes through pgrx's FFI guard: a Citus ERROR becomes
/// a Rust panic that unwinds our frames and is re-raised as the same ERROR.
#[derive(Clone, Copy)]
pub struct Internals {
    use_coordinated_transaction: Action,
    propagate_set_local: SetLocal,
}

impl Internals {
    /// Has Citus send `SET LOCAL setting TO value` to every remote
    /// transaction open in this transaction now and to every one opened later
    /// in it, and run the rest of this transaction's remote work in
    /// transaction blocks (`UseCoordinatedTransaction`), which carry it.
    pub fn set_local_on_workers(&self, setting: &CStr, value: &str) {
        let text = std::ffi::CString::new(set_local_statement(setting, value))
            .expect("no NUL in a setting");
        // SAFETY: UseCoordinatedTransaction changes Citus's transaction state
        // only. PostprocessVariableSetStmt reads the statement node only in
        // assertions (kind, is_local, name), and sends and keeps the text,
        // which it copies before it returns; the node lives in the current
        // memory context.
        unsafe {
            pg_guard_ffi_boundary(|| (self.use_coordinated_transaction)());
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

static INTERNALS: OnceLock<Option<Internals>> = OnceLock::new();

/// Citus's [`Internals`], when citus.so exports them and
/// `tenancy.citus_internals` is on; None otherwise, where pg_tenancy uses
/// Citus's SQL interface instead.
pub fn internals() -> Option<Internals> {
    if !USE_INTERNALS.get() {
        return None;
    }
    *INTERNALS.get_or_init(|| {
        // SAFETY: dlsym only reads the loaded libraries' symbol tables.
        let (coordinate, propagate) = unsafe {
            (
                dlsym(std::ptr::null_mut(), c"UseCoordinatedTransaction".as_ptr()),
                dlsym(std::ptr::null_mut(), c"PostprocessVariableSetStmt".as_ptr()),
            )
        };
        if coordinate.is_null() || propagate.is_null() {
            return None;
        }
        // SAFETY: each symbol is the Citus function of that name, whose C
        // signature (Citus 11 to 13 headers) is the one the field declares.
        unsafe {
            Some(Internals {
                use_coordinated_transaction: std::mem::transmute::<*mut c_void, Action>(coordinate),
                propagate_set_local: std::mem::transmute::<*mut c_void, SetLocal>(propagate),
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
    crate::common::invalidation::on_relcache(forget_local_group);
    GucRegistry::define_bool_guc(
        c"tenancy.citus_internals",
        c"Carries the tenant to Citus workers through two C functions of Citus, where citus.so exports them.",
        c"Citus built for PostgreSQL 15 exports them; for 16 and later it does not, and \
          pg_tenancy uses Citus's SQL interface, which costs a procedure call, and an empty \
          intermediate result for a read outside a transaction block whose shard queries do \
          not carry the tenant. Off uses the SQL interface everywhere.",
        &USE_INTERNALS,
        GucContext::Suset,
        GucFlags::default(),
    );
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

/// Whether the Citus table `relid` has a placement on the coordinator (group
/// 0), where a reference table's rows are counted and audited once.
pub fn has_coordinator_placement(relid: pg_sys::Oid) -> bool {
    as_extension_owner(|| {
        crate::common::sql::select_value::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_shard s
                              JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid
                             WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1
                               AND pl.groupid OPERATOR(pg_catalog.=) 0)",
            &[relid.into()],
        )
    })
    .unwrap_or(false)
}

/// Runs `work` (creating or dropping pg_tenancy's triggers) on `relid`; on a
/// Citus table with `citus.enable_unsafe_triggers`, which Citus demands
/// before it copies the triggers to every shard, where the rows are.
pub fn with_unsafe_triggers<R>(relid: pg_sys::Oid, work: impl FnOnce() -> R) -> R {
    if table_kind(relid).is_some() {
        with_settings(&[("citus.enable_unsafe_triggers", "on")], work)
    } else {
        work()
    }
}

/// What a shard is: the table it belongs to and, for a shard of a
/// distributed table, the shard of a co-located table covering the same
/// hash range (on the same node, as co-location keeps them).
#[derive(Clone, Debug)]
pub struct ShardOf {
    /// `h` distributed by hash, `n` reference, ... (pg_dist_partition).
    pub kind: char,
    /// The table, as `schema.table` (quoted as needed).
    pub table_name: String,
    /// Its distribution column (None for a reference table).
    pub distribution_column: Option<String>,
    /// The shard of `tenancy.<colocated>` for the same hash range, when that
    /// table is in the same co-location group.
    pub colocated_shard: Option<pg_sys::Oid>,
    /// This node's group.
    pub group: i64,
}

/// The shard `relid` is, or None when it is no shard. Looked up by name
/// (`<table>_<shardid>`, in the table's schema), from the syscache: Citus
/// hides shards from queries of pg_class in client backends (a reference
/// table's placement on the coordinator is read by one).
pub fn shard_of(relid: pg_sys::Oid, colocated: &str) -> Option<ShardOf> {
    // SAFETY: syscache lookups inside a transaction.
    let (name, namespace) = unsafe {
        let name = pg_sys::get_rel_name(relid);
        if name.is_null() {
            return None;
        }
        (
            CStr::from_ptr(name).to_string_lossy().into_owned(),
            pg_sys::get_rel_namespace(relid),
        )
    };
    as_extension_owner(|| {
        Spi::connect(|client| -> std::result::Result<_, pgrx::spi::Error> {
            let rows = client.select(
                "SELECT p.partmethod::pg_catalog.text,
                        pg_catalog.format('%I.%I', ln.nspname, l.relname),
                        CASE WHEN p.partmethod OPERATOR(pg_catalog.=) 'h'
                             THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END,
                        (SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'tenancy',
                                    $3 OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) cs.shardid))::pg_catalog.oid
                           FROM pg_catalog.pg_dist_partition cp
                           JOIN pg_catalog.pg_dist_shard cs
                             ON cs.logicalrelid OPERATOR(pg_catalog.=) cp.logicalrelid
                            AND cs.shardminvalue OPERATOR(pg_catalog.=) s.shardminvalue
                          WHERE cp.logicalrelid OPERATOR(pg_catalog.=)
                                pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'tenancy', $3))
                            AND cp.colocationid OPERATOR(pg_catalog.=) p.colocationid),
                        (SELECT g.groupid::pg_catalog.int8 FROM pg_catalog.pg_dist_local_group g)
                   FROM pg_catalog.pg_dist_shard s
                   JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid
                   JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) s.logicalrelid
                   JOIN pg_catalog.pg_namespace ln ON ln.oid OPERATOR(pg_catalog.=) l.relnamespace
                  WHERE s.shardid OPERATOR(pg_catalog.=) pg_catalog.substring($1, '_(\\d+)$')::pg_catalog.int8
                    AND l.relnamespace OPERATOR(pg_catalog.=) $2
                    AND $1 OPERATOR(pg_catalog.=)
                        (l.relname::pg_catalog.text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) s.shardid)",
                Some(1),
                &[name.as_str().into(), namespace.into(), colocated.into()],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            let row = rows.first();
            Ok(Some(ShardOf {
                kind: row.get::<String>(1)?.unwrap_or_default().chars().next().unwrap_or(' '),
                table_name: row.get::<String>(2)?.unwrap_or_default(),
                distribution_column: row.get::<String>(3)?,
                colocated_shard: row.get::<pg_sys::Oid>(4)?,
                group: row.get::<i64>(5)?.unwrap_or(0),
            }))
        })
        .expect("looking up a shard failed")
    })
}

/// Drops the triggers named `prefix...` from the shards of the distributed
/// table `relid`, which `DROP TRIGGER` on the table does not reach: Citus
/// copies no TRUNCATE trigger to the shards it creates, so it sends no DROP
/// for one either, yet a shard moved or copied later gets every trigger of
/// its table. Runs through new connections (run_command_on_shards), so it
/// must come before this transaction locks a shard; each waits for a lock
/// two seconds at most, and a shard it could not clean keeps its trigger.
pub fn drop_shard_triggers(relid: pg_sys::Oid, prefix: &str) {
    if table_kind(relid) != Some('h') {
        return;
    }
    let pattern = format!("{}%%", prefix.replace('_', "\\_"));
    let command = format!(
        "DO $drop$ DECLARE t pg_catalog.name; BEGIN
             PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
             FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g
                       WHERE g.tgrelid OPERATOR(pg_catalog.=) '%1$s'::pg_catalog.regclass AND g.tgname::pg_catalog.text LIKE {}
             LOOP EXECUTE pg_catalog.format('DROP TRIGGER %%I ON %%s', t, '%1$s'); END LOOP;
         END $drop$",
        crate::common::sql::literal(&pattern)
    );
    as_extension_owner(|| {
        Spi::run_with_args(
            "SELECT count(*) FROM pg_catalog.run_command_on_shards($1, $2) WHERE success",
            &[relid.into(), command.as_str().into()],
        )
    })
    .expect("dropping the shards' leftover triggers failed");
}

#[cfg(test)]
mod tests {
    fn internal(name: &str) -> bool {
        super::is_internal_application_name(name.as_bytes())
    }

    #[test]
    fn citus_internal_connections_are_told_by_their_application_name() {
        assert!(internal("citus_internal gpid=10000012345"));
        // Citus reads the digits as strtoul does: what follows them is ignored.
        assert!(internal("citus_internal gpid=42 extra"));
        // Global process id 0 is Citus's "invalid".
        assert!(!internal("citus_internal gpid=0"));
        assert!(!internal("citus_internal gpid="));
        assert!(!internal("citus_internal gpid=x1"));
        // The rebalancer's and run_command_on_*'s connections are not shard queries.
        assert!(!internal("citus_rebalancer gpid=10000012345"));
        assert!(!internal("citus_run_command gpid=10000012345"));
        assert!(!internal("psql"));
        assert!(!internal(""));
    }
}
