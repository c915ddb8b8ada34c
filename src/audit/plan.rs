//! What the audit trigger needs to know about an audited table, worked out
//! once per table per backend and kept until the table's relcache entry is
//! invalidated (ALTER TABLE, enable_audit with new exclusions, registering the
//! table's tenant column all invalidate it).

use super::jsonb;
use crate::common::privilege::as_extension_owner;
use crate::common::varlena::{detoast_packed, vardata_any};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

/// How one column becomes a JSON value: the categories of `to_jsonb`, with
/// fast paths for the common types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Numeric,
    /// float4, float8: the shortest decimal that reads back the same (what
    /// float4out/float8out print), as a number unless NaN or infinite.
    Float4,
    Float8,
    /// text, varchar, bpchar: the stored characters.
    Text,
    Name,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Jsonb,
    /// json, arrays, composites, user types: PostgreSQL's to_jsonb.
    ToJsonb,
    /// Anything else: its output function's text, as to_jsonb does.
    Output,
}

#[derive(Debug)]
pub struct Column {
    /// 0-based index into the tuple's values.
    pub index: usize,
    pub name: Vec<u8>,
    pub kind: Kind,
    pub typlen: i16,
    pub typbyval: bool,
    pub collation: pg_sys::Oid,
    /// Output or to_jsonb function, for the kinds that need one.
    pub function: *mut pg_sys::FmgrInfo,
}

/// An audited table as the trigger sees it.
#[derive(Debug)]
pub struct TablePlan {
    /// `schema.table`, quoted as needed: the audit rows' table_name, as a
    /// text datum in the plan's memory.
    pub table_name_datum: pg_sys::Datum,
    /// Audited columns in jsonb key order (excluded columns left out).
    pub row: Vec<Column>,
    /// The same columns' positions in `row`, in table column order (for changed_cols).
    pub row_in_table_order: Vec<usize>,
    /// Record key columns (primary key, or replica identity index) in jsonb key order.
    pub key: Vec<Column>,
    /// The tenant column's index when the table is registered.
    pub tenant_index: Option<usize>,
    /// Memory holding the function infos; deleted with the plan.
    memory: pg_sys::MemoryContext,
}

impl Drop for TablePlan {
    fn drop(&mut self) {
        // SAFETY: the context was created for this plan alone.
        unsafe { pg_sys::MemoryContextDelete(self.memory) };
    }
}

thread_local! {
    static PLANS: RefCell<HashMap<pg_sys::Oid, Rc<TablePlan>>> = RefCell::new(HashMap::new());
}

/// Drops cached plans when PostgreSQL invalidates a relation (or everything).
pub fn forget(relid: pg_sys::Oid) {
    // The map is only ever borrowed briefly, with no PostgreSQL call inside
    // the borrow, so this callback cannot find it borrowed.
    PLANS.with(|plans| {
        let removed = {
            let mut plans = plans.borrow_mut();
            if relid == pg_sys::InvalidOid {
                std::mem::take(&mut *plans)
                    .into_values()
                    .collect::<Vec<_>>()
            } else {
                plans.remove(&relid).into_iter().collect()
            }
        };
        // Dropped outside the borrow: dropping a plan frees PostgreSQL memory.
        drop(removed);
    });
}

/// The plan of `relation`, built on first use. `arguments` are the
/// trigger's: on a shard, its table's excluded columns.
pub fn plan_for(
    relation: pg_sys::Relation,
    arguments: impl FnOnce() -> Vec<String>,
) -> Rc<TablePlan> {
    // SAFETY: the trigger manager hands us an open relation.
    let relid = unsafe { (*relation).rd_id };
    if let Some(plan) = PLANS.with(|plans| plans.borrow().get(&relid).cloned()) {
        return plan;
    }
    let plan = Rc::new(build(relation, arguments));
    PLANS.with(|plans| plans.borrow_mut().insert(relid, plan.clone()));
    plan
}

struct Settings {
    excluded: Vec<String>,
    tenant_column: Option<String>,
    key_columns: Vec<String>,
    qualified_name: String,
}

/// The settings of a shard of a Citus table (audit::cluster), which its
/// node may have no catalog rows for: its table's name, the excluded columns
/// its triggers carry, and as tenant column its distribution column (or,
/// for a reference table's placement on the coordinator, its table's
/// registered one).
fn shard_settings(
    relid: pg_sys::Oid,
    shard: super::cluster::Shard,
    excluded: Vec<String>,
) -> Settings {
    let catalog = catalog_settings(relid);
    let tenant_column = shard.distribution_column.or_else(|| {
        as_extension_owner(|| {
            crate::common::sql::select_value::<String>(
                "SELECT tenant_column::text FROM tenancy.tenant_tables WHERE tbl = pg_catalog.to_regclass($1)",
                &[shard.table_name.as_str().into()],
            )
        })
    });
    Settings {
        excluded,
        tenant_column,
        key_columns: catalog.key_columns,
        qualified_name: shard.table_name,
    }
}

fn settings(relid: pg_sys::Oid, arguments: impl FnOnce() -> Vec<String>) -> Settings {
    match super::cluster::shard_of(relid) {
        Some(shard) => shard_settings(relid, shard, arguments()),
        None => catalog_settings(relid),
    }
}

fn catalog_settings(relid: pg_sys::Oid) -> Settings {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    // A partition takes its settings from the nearest audited
                    // (or registered) ancestor, itself first: writes straight to a
                    // partition leave out the same columns as writes to the parent.
                    // (pg_partition_ancestors lists nothing for a plain table.)
                    "WITH chain AS (SELECT $1::pg_catalog.regclass AS rel, 0::bigint AS depth
                                    UNION ALL
                                    SELECT p.rel, p.depth
                                      FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY p(rel, depth))
                     SELECT (SELECT a.exclude_columns FROM chain
                               JOIN tenancy.audit_config a ON a.tbl OPERATOR(pg_catalog.=) chain.rel
                              ORDER BY chain.depth LIMIT 1),
                            (SELECT t.tenant_column::text FROM chain
                               JOIN tenancy.tenant_tables t ON t.tbl OPERATOR(pg_catalog.=) chain.rel
                              ORDER BY chain.depth LIMIT 1),
                            ARRAY(SELECT att.attname::text
                                    FROM pg_catalog.pg_index i
                                    JOIN pg_catalog.pg_attribute att
                                      ON att.attrelid = i.indrelid AND att.attnum = ANY (i.indkey)
                                   WHERE i.indexrelid = (
                                         -- The primary key, else the replica identity index.
                                         SELECT k.indexrelid FROM pg_catalog.pg_index k
                                          WHERE k.indrelid = $1 AND (k.indisprimary OR k.indisreplident)
                                          ORDER BY k.indisprimary DESC LIMIT 1))",
                    None,
                    &[relid.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>(Settings {
                excluded: row.get::<Vec<String>>(1)?.unwrap_or_default(),
                tenant_column: row.get::<String>(2)?,
                key_columns: row.get::<Vec<String>>(3)?.unwrap_or_default(),
                // From the syscache: Citus hides shards from queries of
                // pg_class in client backends, and this may be one.
                qualified_name: crate::common::relation::qualified_name_of(relid).unwrap_or_default(),
            })
        })
        .expect("reading the audit settings failed")
    })
}

fn kind_of(type_oid: pg_sys::Oid) -> Kind {
    // SAFETY: catalog lookups inside a transaction.
    let base = unsafe { pg_sys::getBaseType(type_oid) };
    match base {
        pg_sys::BOOLOID => Kind::Bool,
        pg_sys::INT2OID => Kind::Int2,
        pg_sys::INT4OID => Kind::Int4,
        pg_sys::INT8OID => Kind::Int8,
        pg_sys::NUMERICOID => Kind::Numeric,
        pg_sys::FLOAT4OID => Kind::Float4,
        pg_sys::FLOAT8OID => Kind::Float8,
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Text,
        pg_sys::NAMEOID => Kind::Name,
        pg_sys::UUIDOID => Kind::Uuid,
        pg_sys::DATEOID => Kind::Date,
        pg_sys::TIMESTAMPOID => Kind::Timestamp,
        pg_sys::TIMESTAMPTZOID => Kind::TimestampTz,
        pg_sys::JSONBOID => Kind::Jsonb,
        pg_sys::JSONOID => Kind::ToJsonb,
        _ => {
            // SAFETY: catalog lookups inside a transaction.
            let structured = unsafe {
                pg_sys::get_element_type(base) != pg_sys::InvalidOid
                    || pg_sys::type_is_rowtype(base)
            };
            // User types may define a cast to json; to_jsonb knows how to find it.
            if structured || u32::from(base) >= pg_sys::FirstNormalObjectId {
                Kind::ToJsonb
            } else {
                Kind::Output
            }
        }
    }
}

/// An FmgrInfo for `to_jsonb(anyelement)` that knows its argument's type
/// (to_jsonb reads it from the call expression, as for any polymorphic call).
unsafe fn to_jsonb_function(
    memory: pg_sys::MemoryContext,
    type_oid: pg_sys::Oid,
    typmod: i32,
    collation: pg_sys::Oid,
) -> *mut pg_sys::FmgrInfo {
    // SAFETY: `memory` is a live context the plan owns; the FmgrInfo is
    // allocated in it and lives as long as the plan.
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo(memory);
        let info =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(pg_sys::Oid::from(pg_sys::F_TO_JSONB), info, memory);
        let argument = pg_sys::makeNullConst(type_oid, typmod, collation);
        let args = pg_sys::lappend(std::ptr::null_mut(), argument.cast());
        let call = pg_sys::makeFuncExpr(
            pg_sys::Oid::from(pg_sys::F_TO_JSONB),
            pg_sys::JSONBOID,
            args,
            pg_sys::InvalidOid,
            collation,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        (*info).fn_expr = call.cast();
        pg_sys::MemoryContextSwitchTo(old);
        info
    }
}

unsafe fn output_function(
    memory: pg_sys::MemoryContext,
    type_oid: pg_sys::Oid,
) -> *mut pg_sys::FmgrInfo {
    // SAFETY: `memory` is a live context the plan owns; the FmgrInfo is
    // allocated in it and lives as long as the plan.
    unsafe {
        let mut function = pg_sys::InvalidOid;
        let mut is_varlena = false;
        pg_sys::getTypeOutputInfo(type_oid, &mut function, &mut is_varlena);
        let info = pg_sys::MemoryContextAllocZero(memory, std::mem::size_of::<pg_sys::FmgrInfo>())
            as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(function, info, memory);
        info
    }
}

fn build(relation: pg_sys::Relation, arguments: impl FnOnce() -> Vec<String>) -> TablePlan {
    // SAFETY: reads the open relation's descriptor; allocations go to a
    // context owned by the plan.
    unsafe {
        let relid = (*relation).rd_id;
        let settings = settings(relid, arguments);
        let memory = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CacheMemoryContext,
            c"pg_tenancy audit plan".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        let tupdesc = (*relation).rd_att;
        let attrs = crate::common::tupdesc::attributes(tupdesc);
        let mut row = Vec::new();
        let mut key = Vec::new();
        let mut tenant_index = None;
        for (index, attribute) in attrs.iter().enumerate() {
            if attribute.attisdropped {
                continue;
            }
            let name = CStr::from_ptr(attribute.attname.data.as_ptr())
                .to_bytes()
                .to_vec();
            let name_text = String::from_utf8_lossy(&name).into_owned();
            if settings.tenant_column.as_deref() == Some(name_text.as_str()) {
                tenant_index = Some(index);
            }
            let kind = kind_of(attribute.atttypid);
            let make_column = || Column {
                index,
                name: name.clone(),
                kind,
                typlen: attribute.attlen,
                typbyval: attribute.attbyval,
                collation: attribute.attcollation,
                function: match kind {
                    Kind::ToJsonb => to_jsonb_function(
                        memory,
                        attribute.atttypid,
                        attribute.atttypmod,
                        attribute.attcollation,
                    ),
                    Kind::Output | Kind::Float4 | Kind::Float8 => {
                        output_function(memory, attribute.atttypid)
                    }
                    _ => std::ptr::null_mut(),
                },
            };
            if settings.key_columns.contains(&name_text) {
                key.push(make_column());
            }
            if !settings.excluded.contains(&name_text) {
                row.push(make_column());
            }
        }
        let mut row_in_table_order: Vec<usize> = (0..row.len()).collect();
        row.sort_by(|a, b| jsonb::key_order(&a.name, &b.name));
        key.sort_by(|a, b| jsonb::key_order(&a.name, &b.name));
        row_in_table_order.sort_by_key(|&i| row[i].index);
        let name = std::ffi::CString::new(settings.qualified_name).expect("names have no NUL");
        let old = pg_sys::MemoryContextSwitchTo(memory);
        let table_name_datum = pg_sys::Datum::from(pg_sys::cstring_to_text(name.as_ptr()));
        pg_sys::MemoryContextSwitchTo(old);
        TablePlan {
            table_name_datum,
            row,
            row_in_table_order,
            key,
            tenant_index,
            memory,
        }
    }
}

/// Whether two values of a column are the same bytes (after detoasting),
/// PostgreSQL's datum_image_eq: what "changed" means for changed_cols.
pub unsafe fn same_image(column: &Column, a: pg_sys::Datum, b: pg_sys::Datum) -> bool {
    // SAFETY: `a` and `b` are datums of `column`'s type (the caller's contract);
    // varlena values are detoasted before their bytes are compared.
    unsafe {
        if column.typbyval {
            return a.value() == b.value();
        }
        match column.typlen {
            -1 => {
                if a.value() == b.value() {
                    return true;
                }
                let (a, b) = (
                    detoast_packed(a.cast_mut_ptr()),
                    detoast_packed(b.cast_mut_ptr()),
                );
                let (a_ptr, a_len) = vardata_any(a);
                let (b_ptr, b_len) = vardata_any(b);
                a_len == b_len
                    && std::slice::from_raw_parts(a_ptr, a_len)
                        == std::slice::from_raw_parts(b_ptr, b_len)
            }
            -2 => CStr::from_ptr(a.cast_mut_ptr()) == CStr::from_ptr(b.cast_mut_ptr()),
            length => {
                let length = length as usize;
                std::slice::from_raw_parts(a.cast_mut_ptr::<u8>(), length)
                    == std::slice::from_raw_parts(b.cast_mut_ptr::<u8>(), length)
            }
        }
    }
}
