//! Looking up the tables and columns an API call names, with the contract's
//! errors when they are missing or unsuitable.

use super::error::{self, Result};
use super::sqltypes::RegClass;
use pgrx::prelude::*;
use pgrx::spi::quote_qualified_identifier;

/// What the API needs to know about a relation passed as `regclass`.
#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: pg_sys::Oid,
    pub schema: String,
    pub name: String,
    /// `pg_class.relkind`: `r` table, `p` partitioned table, `v` view, ...
    pub kind: char,
    /// Whether the current user has the privileges of the relation's owner.
    pub caller_is_owner: bool,
}

impl Relation {
    /// `schema.name`, each part quoted when it needs to be.
    pub fn qualified_name(&self) -> String {
        quote_qualified_identifier(&self.schema, &self.name)
    }

    /// Fetches the relation, or 42P01 when the OID no longer names one
    /// (a regclass value can outlive its table).
    pub fn lookup(tbl: RegClass) -> Result<Relation> {
        let row = Spi::connect(|client| {
            let table = client.select(
                "SELECT n.nspname::text, c.relname::text, c.relkind::text,
                        pg_catalog.pg_has_role(c.relowner, 'USAGE')
                   FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = $1",
                None,
                &[tbl.oid().into()],
            )?;
            if table.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let row = table.first();
            Ok(Some((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<bool>(4)?.unwrap_or(false),
            )))
        })
        .expect("relation lookup query failed");
        let (schema, name, kind, caller_is_owner) = row.ok_or_else(|| {
            error::undefined_table(format!("relation with OID {} does not exist", tbl.oid()))
        })?;
        Ok(Relation {
            oid: tbl.oid(),
            schema,
            name,
            kind: kind.chars().next().unwrap_or('?'),
            caller_is_owner,
        })
    }

    /// Fetches a plain or partitioned table (42809 for views, sequences, ...).
    pub fn lookup_table(tbl: RegClass) -> Result<Relation> {
        let relation = Relation::lookup(tbl)?;
        if !relation.is_table() {
            return Err(error::wrong_object_type(format!(
                "\"{}\" is not a table",
                relation.qualified_name()
            ))
            .set_detail(format!("It is a {}.", relkind_description(relation.kind))));
        }
        Ok(relation)
    }

    /// A plain or partitioned table the caller owns: what every call that
    /// changes a table's setup needs (42809 not a table, 42501 not the owner).
    pub fn owned_table(tbl: RegClass) -> Result<Relation> {
        let table = Relation::lookup_table(tbl)?;
        table.require_owner()?;
        Ok(table)
    }

    pub fn is_table(&self) -> bool {
        matches!(self.kind, 'r' | 'p')
    }

    pub fn is_partitioned(&self) -> bool {
        self.kind == 'p'
    }

    /// 42501 unless the caller has the owner's privileges (superusers do).
    pub fn require_owner(&self) -> Result<()> {
        if self.caller_is_owner {
            Ok(())
        } else {
            Err(error::insufficient_privilege(format!(
                "must be owner of table {}",
                self.qualified_name()
            )))
        }
    }

    /// Looks a column up by name: 42703 when there is none.
    pub fn column(&self, column: &str) -> Result<Column> {
        let found = Spi::connect(|client| {
            let table = client.select(
                "SELECT a.attnum, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod)
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = $1 AND a.attname = $2::text::name
                    AND a.attnum > 0 AND NOT a.attisdropped",
                None,
                &[self.oid.into(), column.into()],
            )?;
            if table.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let row = table.first();
            Ok(Some(Column {
                number: row.get::<i16>(1)?.unwrap_or_default(),
                type_oid: row.get::<pg_sys::Oid>(2)?.unwrap_or(pg_sys::InvalidOid),
                type_name: row.get::<String>(3)?.unwrap_or_default(),
            }))
        })
        .expect("column lookup query failed");
        found.ok_or_else(|| {
            error::undefined_column(format!(
                "column \"{column}\" of relation {} does not exist",
                self.qualified_name()
            ))
        })
    }

    /// The leaf and intermediate partitions of a partitioned table (empty otherwise).
    pub fn partitions(&self) -> Vec<Relation> {
        if !self.is_partitioned() {
            return Vec::new();
        }
        let oids: Vec<pg_sys::Oid> = Spi::connect(|client| {
            client
                .select(
                    "SELECT relid FROM pg_catalog.pg_partition_tree($1) WHERE relid <> $1",
                    None,
                    &[RegClass(self.oid).into()],
                )?
                .map(|row| row.get::<pg_sys::Oid>(1).map(|oid| oid.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .expect("partition tree query failed");
        oids.into_iter()
            .filter_map(|oid| Relation::lookup(RegClass(oid)).ok())
            .collect()
    }
}

/// A column of a looked-up relation.
#[derive(Debug, Clone)]
pub struct Column {
    pub number: i16,
    pub type_oid: pg_sys::Oid,
    /// As `format_type` prints it, for messages.
    pub type_name: String,
}

fn relkind_description(kind: char) -> &'static str {
    match kind {
        'r' => "table",
        'p' => "partitioned table",
        'v' => "view",
        'm' => "materialized view",
        'S' => "sequence",
        'f' => "foreign table",
        'i' | 'I' => "index",
        'c' => "composite type",
        't' => "TOAST table",
        _ => "relation of another kind",
    }
}

/// A relation of schema tenancy, if it exists (the syscache answers; an
/// older release's SQL may not have it yet).
pub fn catalog_relid(name: &std::ffi::CStr) -> Option<pg_sys::Oid> {
    // SAFETY: syscache lookups inside a transaction.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(c"tenancy".as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        let relid = pg_sys::get_relname_relid(name.as_ptr(), namespace);
        (relid != pg_sys::InvalidOid).then_some(relid)
    }
}

/// A relation's name, schema-qualified and quoted from `nspname` and
/// `relname` (never `regclass::text`, which leaves out the schema when it is
/// on the search_path of the moment), or None if the OID names none.
pub fn qualified_name_of(relid: pg_sys::Oid) -> Option<String> {
    // SAFETY: syscache lookups inside a transaction; the names they return
    // are palloc'd copies, read before this function returns.
    unsafe {
        let name = pg_sys::get_rel_name(relid);
        if name.is_null() {
            return None;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if schema.is_null() {
            return None;
        }
        Some(quote_qualified_identifier(
            std::ffi::CStr::from_ptr(schema).to_string_lossy(),
            std::ffi::CStr::from_ptr(name).to_string_lossy(),
        ))
    }
}
