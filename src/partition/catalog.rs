//! Reading the managed sets and their children from the catalogs, in two
//! queries for all sets (a run over a thousand sets must not cost a thousand
//! round trips before it does anything).

use super::bounds::{self, ControlKind, Range, Step};
use crate::common::clock;
use crate::common::privilege::as_extension_owner;
use crate::common::settings::with_settings;
use pgrx::prelude::*;
use pgrx::spi::quote_qualified_identifier;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    Drop,
    Detach,
}

impl RetentionMode {
    pub fn parse(text: &str) -> Option<RetentionMode> {
        match text {
            "drop" => Some(RetentionMode::Drop),
            "detach" => Some(RetentionMode::Detach),
            _ => None,
        }
    }
}

/// A managed set, ready for planning: its catalog row plus what was derived
/// from it. It reads as the row for everything else (`set.name`, `set.owner`).
#[derive(Debug, Clone)]
pub struct PartitionSet {
    pub row: SetRow,
    pub kind: ControlKind,
    pub step: Step,
    pub retention_mode: RetentionMode,
    /// Where the first child starts, as asked at registration.
    pub start: Option<i64>,
}

impl std::ops::Deref for PartitionSet {
    type Target = SetRow;

    fn deref(&self) -> &SetRow {
        &self.row
    }
}

/// A set's row as read, before its interval and column type are checked
/// (a set whose parent was altered by hand fails here, alone).
#[derive(Debug, Clone)]
pub struct SetRow {
    pub parent: pg_sys::Oid,
    pub schema: String,
    pub namespace: pg_sys::Oid,
    pub name: String,
    pub owner: pg_sys::Oid,
    pub column: String,
    pub column_type: Option<pg_sys::Oid>,
    pub part_interval: String,
    pub premake: i32,
    pub retention: bool,
    /// Children ending at or before this instant are expired (time sets with retention).
    pub retention_cutoff: Option<i64>,
    pub retention_mode: String,
    pub start_at: Option<i64>,
    pub start_value: Option<i64>,
    pub default_partition: bool,
    /// The parent's row-level security: (ENABLE, FORCE).
    pub row_security: (bool, bool),
    /// The parent's policies, to be created on every child: PostgreSQL does
    /// not give partitions their parent's policies, and a child read directly
    /// must be as protected as the parent.
    pub policies: Vec<OnChild>,
    /// `partition_sets.child_ddl`: statements for every new child, `{child}`
    /// standing for its name (the set's documented template).
    pub child_ddl: Vec<String>,
    /// The parent's tablespace, if not the database default.
    pub tablespace: Option<String>,
    /// The parent's grants, to be given on every child.
    pub grants: Vec<OnChild>,
}

/// A statement about a child, in the two parts around the child's name
/// (`GRANT SELECT ON ` + child + ` TO app`): the parts come from the
/// catalogs, with expressions and role names already quoted, and are joined
/// around the child's quoted name, never searched and replaced in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChild {
    head: String,
    tail: String,
}

impl OnChild {
    fn pairs(heads: Vec<String>, tails: Vec<String>) -> Vec<OnChild> {
        heads
            .into_iter()
            .zip(tails)
            .map(|(head, tail)| OnChild { head, tail })
            .collect()
    }

    /// The statement for the child `qualified` (quoted, schema-qualified).
    pub fn on(&self, qualified: &str) -> String {
        format!("{}{qualified}{}", self.head, self.tail)
    }
}

impl SetRow {
    pub fn qualified_parent(&self) -> String {
        quote_qualified_identifier(&self.schema, &self.name)
    }

    pub fn resolve(&self) -> Result<PartitionSet, String> {
        let column_type = self
            .column_type
            .ok_or_else(|| format!("control column \"{}\" no longer exists", self.column))?;
        let kind = control_kind(column_type).ok_or_else(|| {
            format!(
                "control column \"{}\" has a type partitions cannot be managed on",
                self.column
            )
        })?;
        let step = step_of(&self.part_interval, kind)?;
        let retention_mode = RetentionMode::parse(&self.retention_mode)
            .ok_or_else(|| format!("unknown retention mode \"{}\"", self.retention_mode))?;
        if self.retention && !kind.is_time() {
            return Err("retention applies to time-based sets only".into());
        }
        Ok(PartitionSet {
            row: self.clone(),
            kind,
            step,
            retention_mode,
            start: if kind.is_time() {
                self.start_at
            } else {
                self.start_value
            },
        })
    }
}

/// The kind of a control column of type `type_oid`, if supported.
pub fn control_kind(type_oid: pg_sys::Oid) -> Option<ControlKind> {
    match type_oid {
        pg_sys::TIMESTAMPTZOID => Some(ControlKind::TimestampTz),
        pg_sys::TIMESTAMPOID => Some(ControlKind::Timestamp),
        pg_sys::DATEOID => Some(ControlKind::Date),
        pg_sys::INT2OID => Some(ControlKind::Integer {
            min: i16::MIN as i64,
            max: i16::MAX as i64,
        }),
        pg_sys::INT4OID => Some(ControlKind::Integer {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        }),
        pg_sys::INT8OID => Some(ControlKind::Integer {
            min: i64::MIN,
            max: i64::MAX,
        }),
        _ => None,
    }
}

/// The step of `part_interval` for a column of kind `kind`. Intervals are read
/// by PostgreSQL's own parser ('1 day', '1 mon', '3 months', 'P1D', ...),
/// which raises an ERROR for text that is not one: callers that must not
/// fail run this in a subtransaction.
pub fn step_of(part_interval: &str, kind: ControlKind) -> Result<Step, String> {
    if !kind.is_time() {
        return Step::from_width(part_interval);
    }
    let text = std::ffi::CString::new(part_interval)
        .map_err(|_| "the interval contains NUL".to_string())?;
    // SAFETY: interval_in takes (cstring, typioparam, typmod) and returns an Interval.
    let interval: pgrx::datum::Interval = unsafe {
        pgrx::fcinfo::direct_function_call(
            pg_sys::interval_in,
            &[
                text.as_c_str().into_datum(),
                pg_sys::InvalidOid.into_datum(),
                (-1i32).into_datum(),
            ],
        )
    }
    .ok_or_else(|| "the interval is NULL".to_string())?;
    Step::from_interval(interval.months(), interval.days(), interval.micros(), kind)
}

/// Reads every managed set (or just `only`). `now` feeds the retention cutoffs.
pub fn load_sets(only: Option<pg_sys::Oid>, now: i64) -> Vec<SetRow> {
    // One set is looked up by its primary key, not filtered out of all of them.
    let (filter, args): (&str, Vec<pgrx::datum::DatumWithOid>) = match only {
        Some(parent) => (
            "WHERE s.parent = $2::oid::regclass",
            vec![clock::timestamptz(now).into(), parent.into()],
        ),
        None => ("", vec![clock::timestamptz(now).into()]),
    };
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    &format!("SELECT s.parent::oid, n.nspname::text, c.relname::text, c.relowner,
                            s.control_column::text, a.atttypid, s.part_interval, s.premake,
                            s.retention IS NOT NULL,
                            (extract(epoch from ($1 - s.retention)) * 1000000)::bigint,
                            s.retention_mode,
                            (extract(epoch from s.start_at) * 1000000)::bigint,
                            s.start_value, s.default_partition,
                            ARRAY(SELECT format('CREATE POLICY %I ON ', p.polname)
                                    FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid ORDER BY p.polname),
                            ARRAY(SELECT format(' AS %s FOR %s TO %s%s%s',
                                                CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                                                CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                                              WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                                                (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC'
                                                                        ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END, ', ')
                                                   FROM unnest(p.polroles) r),
                                                ' USING (' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')',
                                                ' WITH CHECK (' || pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) || ')')
                                    FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid ORDER BY p.polname),
                            c.relnamespace, sp.spcname::text,
                            ARRAY(SELECT format('GRANT %s ON ', g.privilege_type)
                                    FROM pg_catalog.aclexplode(c.relacl) g
                                   WHERE g.grantee <> c.relowner ORDER BY g.grantee, g.privilege_type),
                            ARRAY(SELECT format(' TO %s%s',
                                                CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                                                     ELSE pg_catalog.quote_ident(r.rolname) END,
                                                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                                    FROM pg_catalog.aclexplode(c.relacl) g
                                    LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
                                   WHERE g.grantee <> c.relowner ORDER BY g.grantee, g.privilege_type),
                            c.relrowsecurity, c.relforcerowsecurity,
                            s.child_ddl
                       FROM tenancy.partition_sets s
                       JOIN pg_catalog.pg_class c ON c.oid = s.parent
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                       LEFT JOIN pg_catalog.pg_tablespace sp ON sp.oid = c.reltablespace
                       LEFT JOIN pg_catalog.pg_attribute a
                              ON a.attrelid = s.parent AND a.attname = s.control_column
                             AND a.attnum > 0 AND NOT a.attisdropped
                      {filter}
                      ORDER BY n.nspname, c.relname"),
                    None,
                    &args,
                )?
                .map(|row| {
                    Ok(SetRow {
                        parent: row.get(1)?.unwrap_or_default(),
                        schema: row.get(2)?.unwrap_or_default(),
                        name: row.get(3)?.unwrap_or_default(),
                        owner: row.get(4)?.unwrap_or_default(),
                        column: row.get(5)?.unwrap_or_default(),
                        column_type: row.get(6)?,
                        part_interval: row.get(7)?.unwrap_or_default(),
                        // A premake set by hand beyond the API's limit is held to it.
                        premake: row.get::<i32>(8)?.unwrap_or(1).clamp(1, super::bounds::MAX_PREMAKE),
                        retention: row.get(9)?.unwrap_or(false),
                        retention_cutoff: row.get(10)?,
                        retention_mode: row.get(11)?.unwrap_or_default(),
                        start_at: row.get(12)?,
                        start_value: row.get(13)?,
                        default_partition: row.get(14)?.unwrap_or(true),
                        policies: OnChild::pairs(
                            row.get::<Vec<String>>(15)?.unwrap_or_default(),
                            row.get::<Vec<String>>(16)?.unwrap_or_default(),
                        ),
                        namespace: row.get(17)?.unwrap_or_default(),
                        tablespace: row.get(18)?,
                        grants: OnChild::pairs(
                            row.get::<Vec<String>>(19)?.unwrap_or_default(),
                            row.get::<Vec<String>>(20)?.unwrap_or_default(),
                        ),
                        row_security: (row.get(21)?.unwrap_or(false), row.get(22)?.unwrap_or(false)),
                        child_ddl: row.get::<Vec<String>>(23)?.unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading tenancy.partition_sets failed")
    })
}

/// A partition of a set's parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub oid: pg_sys::Oid,
    pub schema: String,
    pub name: String,
    pub bound: ChildBound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildBound {
    Default,
    Range(Range),
    /// A bound this set does not manage (MINVALUE, another layout): left alone.
    Unmanaged,
}

impl Child {
    pub fn qualified_name(&self) -> String {
        quote_qualified_identifier(&self.schema, &self.name)
    }

    pub fn range(&self) -> Option<Range> {
        match self.bound {
            ChildBound::Range(range) => Some(range),
            _ => None,
        }
    }
}

/// Raw partition bound texts of the children of `parents`, keyed by parent.
/// Bounds are printed with TimeZone UTC and DateStyle ISO, which
/// [`bounds::parse_partition_bound`] reads.
pub fn load_children(
    parents: &[pg_sys::Oid],
) -> HashMap<pg_sys::Oid, Vec<(pg_sys::Oid, String, String, String)>> {
    if parents.is_empty() {
        return HashMap::new();
    }
    let rows = with_settings(&[("TimeZone", "UTC"), ("DateStyle", "ISO, YMD")], || {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT i.inhparent, c.oid, n.nspname::text, c.relname::text,
                            pg_catalog.pg_get_expr(c.relpartbound, c.oid)
                       FROM pg_catalog.pg_inherits i
                       JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE i.inhparent = ANY ($1)",
                    None,
                    &[parents.to_vec().into()],
                )?
                .map(|row| {
                    Ok((
                        row.get::<pg_sys::Oid>(1)?.unwrap_or_default(),
                        (
                            row.get::<pg_sys::Oid>(2)?.unwrap_or_default(),
                            row.get::<String>(3)?.unwrap_or_default(),
                            row.get::<String>(4)?.unwrap_or_default(),
                            row.get::<String>(5)?.unwrap_or_default(),
                        ),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading partitions failed")
    });
    let mut by_parent: HashMap<pg_sys::Oid, Vec<_>> = HashMap::new();
    for (parent, child) in rows {
        by_parent.entry(parent).or_default().push(child);
    }
    by_parent
}

/// Parses raw children for a set of kind `kind`, sorted by range start.
pub fn parse_children(
    kind: ControlKind,
    raw: &[(pg_sys::Oid, String, String, String)],
) -> Vec<Child> {
    let mut children: Vec<Child> = raw
        .iter()
        .map(|(oid, schema, name, bound)| Child {
            oid: *oid,
            schema: schema.clone(),
            name: name.clone(),
            bound: match bounds::parse_partition_bound(kind, bound) {
                Ok(None) => ChildBound::Default,
                Ok(Some(range)) => ChildBound::Range(range),
                Err(_) => ChildBound::Unmanaged,
            },
        })
        .collect();
    children.sort_by_key(|child| child.range().map(|r| r.from).unwrap_or(i64::MAX));
    children
}
