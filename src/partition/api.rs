//! SQL API for "Partitions" (DESIGN.md): register a range-partitioned table,
//! maintain it, look at it, stop managing it.

use super::bounds::{self, ControlKind, MAX_PREMAKE};
use super::catalog::{self, RetentionMode};
use super::maintenance;
use crate::common::clock;
use crate::common::error::{self, required, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::sqltypes::{RegClass, SqlName};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::prelude::*;

/// Registers `parent` (a table `PARTITION BY RANGE (control_column)`) as a
/// managed set and creates its children: a default partition (unless
/// `default_partition` is false), then one child per `part_interval` from the
/// current period (or `start_at` / `start_value`) through `premake` periods
/// ahead. Returns the number of tables created.
///
/// ```sql
/// CREATE TABLE events (at timestamptz NOT NULL, body jsonb) PARTITION BY RANGE (at);
/// SELECT tenancy.create_partitioned('events', 'at', '1 day', premake => 7, retention => '90 days');
/// ```
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn create_partitioned(
    parent: Option<RegClass>,
    control_column: Option<SqlName>,
    part_interval: Option<&str>,
    premake: default!(Option<i32>, 4),
    retention: default!(Option<Interval>, "NULL"),
    retention_mode: default!(Option<&str>, "'drop'"),
    start_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    start_value: default!(Option<i64>, "NULL"),
    default_partition: default!(Option<bool>, "true"),
) -> Result<i32> {
    let parent = required(parent, "parent")?;
    let control_column = required(control_column, "control_column")?;
    let part_interval = required(part_interval, "part_interval")?;
    let premake = required(premake, "premake")?;
    let retention_mode = required(retention_mode, "retention_mode")?;
    let default_partition = required(default_partition, "default_partition")?;

    let table = Relation::owned_table(parent)?;
    let column = table.column(control_column.as_str())?;
    require_range_key(&table, control_column.as_str(), column.number)?;
    let kind = catalog::control_kind(column.type_oid).ok_or_else(|| {
        error::datatype_mismatch(format!(
            "control column \"{}\" has type {}",
            control_column.as_str(),
            column.type_name
        ))
        .set_hint("Partition sets are managed on timestamptz, timestamp, date, smallint, integer or bigint columns.")
    })?;
    // The interval parser raises its own error for text that is no interval;
    // catch it to report the contract's 22023 with the reason as detail.
    crate::common::subxact::attempt(|| catalog::step_of(part_interval, kind))
        .unwrap_or_else(|failure| Err(failure.message))
        .map_err(|why| {
            error::invalid_parameter(format!(
                "invalid part_interval \"{part_interval}\" for column \"{}\" of type {}",
                control_column.as_str(),
                column.type_name
            ))
            .set_detail(why)
            .set_hint(if kind.is_time() {
                "Use an interval of at least one second: '1 hour', '1 day', '7 days', '1 month'."
            } else {
                "Use a positive integer width, such as '100000'."
            })
        })?;
    if !(1..=MAX_PREMAKE).contains(&premake) {
        return Err(error::invalid_parameter(format!(
            "premake must be from 1 to {MAX_PREMAKE}, not {premake}"
        ))
        .set_hint("premake counts the children made ahead of the current one."));
    }
    if RetentionMode::parse(retention_mode).is_none() {
        return Err(error::invalid_parameter(format!(
            "unknown retention_mode \"{retention_mode}\""
        ))
        .set_hint("Use 'drop' or 'detach'."));
    }
    if let Some(retention) = &retention {
        if !kind.is_time() {
            return Err(error::invalid_parameter(
                "retention applies to time-based sets only",
            ));
        }
        if retention.months() < 0
            || retention.days() < 0
            || retention.micros() < 0
            || (retention.months() == 0 && retention.days() == 0 && retention.micros() == 0)
        {
            return Err(error::invalid_parameter(
                "retention must be a positive interval",
            ));
        }
    }
    if start_at.is_some() && !kind.is_time() {
        return Err(
            error::invalid_parameter("start_at applies to time-based sets")
                .set_hint("Integer sets start at start_value."),
        );
    }
    if start_value.is_some() && kind.is_time() {
        return Err(
            error::invalid_parameter("start_value applies to integer sets")
                .set_hint("Time-based sets start at start_at."),
        );
    }

    let inserted = as_extension_owner(|| {
        Spi::connect_mut(|client| {
            let rows = client.update(
                "INSERT INTO tenancy.partition_sets
                     (parent, control_column, part_interval, premake, retention, retention_mode,
                      start_at, start_value, default_partition)
                 VALUES ($1, $2::text::name, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (parent) DO NOTHING
                 RETURNING true",
                None,
                &[
                    parent.into(),
                    control_column.as_str().into(),
                    part_interval.trim().into(),
                    premake.into(),
                    retention.into(),
                    retention_mode.into(),
                    start_at.into(),
                    start_value.into(),
                    default_partition.into(),
                ],
            )?;
            Ok::<_, pgrx::spi::Error>(!rows.is_empty())
        })
        .expect("registering the partition set failed")
    });
    if !inserted {
        error::notice_with_hint(
            format!("table {} is already a managed partition set", table.qualified_name()),
            "Change its settings with UPDATE tenancy.partition_sets; run tenancy.run_maintenance() to apply them.",
        );
        return Ok(0);
    }
    let row = catalog::load_sets(Some(table.oid), clock::now_micros())
        .pop()
        .expect("the set just registered is readable");
    let first = if kind.is_time() {
        start_at.map(clock::micros_of)
    } else {
        start_value
    };
    maintenance::initialize(&row, first)
}

/// 55000 unless `table` is partitioned by RANGE on exactly `column`.
fn require_range_key(table: &Relation, column: &str, number: i16) -> Result<()> {
    if !table.is_partitioned() {
        return Err(error::not_in_prerequisite_state(format!(
            "table {} is not partitioned",
            table.qualified_name()
        ))
        .set_hint(format!("Create it with PARTITION BY RANGE ({column}).")));
    }
    let (strategy, keys): (Option<String>, Option<Vec<i16>>) = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT partstrat::text, partattrs::int2[] FROM pg_catalog.pg_partitioned_table WHERE partrelid = $1",
                None,
                &[table.oid.into()],
            )?
            .first();
        Ok::<_, pgrx::spi::Error>((row.get(1)?, row.get(2)?))
    })
    .expect("partition key lookup failed");
    let keys = keys.unwrap_or_default();
    let problem = if strategy.as_deref() != Some("r") {
        Some("it is not partitioned by RANGE".to_string())
    } else if keys.len() != 1 || keys[0] == 0 {
        Some("its partition key is not a single column".to_string())
    } else if keys[0] != number {
        Some(format!(
            "it is partitioned on another column, not \"{column}\""
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(error::not_in_prerequisite_state(format!(
            "table {} cannot be managed on \"{column}\": {problem}",
            table.qualified_name()
        ))
        .set_hint(format!(
            "Partition sets need PARTITION BY RANGE ({column})."
        ))),
        None => Ok(()),
    }
}

/// Premakes children, moves rows out of the default partition into children
/// of their own, and retires children older than the retention, for every
/// set or just `parent`. Each set runs in its own subtransaction: one failing
/// set is reported (`error`, or `skipped` when a lock was not free within
/// `tenancy.maintenance_lock_timeout`) and the others go on. A concurrent
/// call returns one `skipped` row at once.
// pgrx reads the result's column names from this signature; it cannot be aliased.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn run_maintenance(
    parent: default!(Option<RegClass>, "NULL"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(parent, Option<RegClass>),
            name!(action, String),
            name!(partition, Option<String>),
            name!(detail, Option<String>),
        ),
    >,
> {
    if let Some(parent) = parent {
        let table = Relation::lookup(parent)?;
        require_managed(&table)?;
    }
    let outcomes = maintenance::run(parent.map(RegClass::oid));
    Ok(TableIterator::new(outcomes.into_iter().map(|o| {
        (o.parent.map(RegClass), o.action, o.partition, o.detail)
    })))
}

fn require_managed(table: &Relation) -> Result<()> {
    let managed = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT EXISTS (SELECT 1 FROM tenancy.partition_sets WHERE parent = $1)",
                    None,
                    &[RegClass(table.oid).into()],
                )?
                .first()
                .get::<bool>(1)
        })
        .expect("partition set lookup failed")
        .unwrap_or(false)
    });
    if managed {
        Ok(())
    } else {
        Err(error::not_in_prerequisite_state(format!(
            "table {} is not a managed partition set",
            table.qualified_name()
        ))
        .set_hint("Register it with tenancy.create_partitioned()."))
    }
}

/// The children of a partitioned table in range order, the default last,
/// with their bounds, estimated rows (NULL before the first ANALYZE) and size.
#[allow(clippy::type_complexity)] // the column names live in the signature, as above
#[pg_extern(stable, parallel_safe)]
fn show_partitions(
    parent: Option<RegClass>,
) -> Result<
    TableIterator<
        'static,
        (
            name!(partition, RegClass),
            name!(range_from, Option<String>),
            name!(range_to, Option<String>),
            name!(is_default, bool),
            name!(est_rows, Option<i64>),
            name!(total_bytes, i64),
        ),
    >,
> {
    let parent = required(parent, "parent")?;
    let table = Relation::lookup_table(parent)?;
    if !table.is_partitioned() {
        return Err(error::not_in_prerequisite_state(format!(
            "table {} is not partitioned",
            table.qualified_name()
        )));
    }
    let kind = partition_key_kind(&table);
    let raw = catalog::load_children(&[table.oid])
        .remove(&table.oid)
        .unwrap_or_default();
    // On Citus a child's rows and bytes are in its shards: its estimate is
    // left unknown there, its size is the shards' (citus_total_relation_size).
    let on_citus = crate::common::citus::table_kind(table.oid).is_some();
    let stats_sql = format!(
        "SELECT c.oid, CASE WHEN c.reltuples < 0 OR $2 THEN NULL ELSE c.reltuples::bigint END,
                {}
           FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1",
        crate::common::citus::total_relation_size_sql("c.oid")
    );
    let stats: std::collections::HashMap<pg_sys::Oid, (Option<i64>, i64)> =
        Spi::connect(|client| {
            client
                .select(&stats_sql, None, &[table.oid.into(), on_citus.into()])?
                .map(|row| {
                    Ok((
                        row.get::<pg_sys::Oid>(1)?.unwrap_or_default(),
                        (row.get::<i64>(2)?, row.get::<i64>(3)?.unwrap_or(0)),
                    ))
                })
                .collect::<std::result::Result<_, pgrx::spi::Error>>()
        })
        .expect("partition statistics query failed");
    let mut rows: Vec<_> = raw
        .iter()
        .map(|(oid, _, _, bound_text)| {
            let parsed = kind.map(|kind| bounds::parse_partition_bound(kind, bound_text));
            let (from, to, is_default, order) = match (kind, parsed) {
                (_, Some(Ok(None))) => (None, None, true, (1, i64::MAX)),
                (Some(kind), Some(Ok(Some(range)))) => (
                    Some(bounds::bound_text(kind, range.from)),
                    Some(bounds::bound_text(kind, range.to)),
                    false,
                    (0, range.from),
                ),
                _ if bound_text == "DEFAULT" => (None, None, true, (1, i64::MAX)),
                _ => (Some(bound_text.clone()), None, false, (0, i64::MIN)),
            };
            let (est_rows, total_bytes) = stats.get(oid).cloned().unwrap_or((None, 0));
            (
                order,
                (RegClass(*oid), from, to, is_default, est_rows, total_bytes),
            )
        })
        .collect();
    rows.sort_by_key(|(order, _)| *order);
    Ok(TableIterator::new(rows.into_iter().map(|(_, row)| row)))
}

/// The kind of a single-column range partition key, if it is one we can read.
fn partition_key_kind(table: &Relation) -> Option<ControlKind> {
    let type_oid: Option<pg_sys::Oid> = Spi::connect(|client| {
        client
            .select(
                "SELECT a.atttypid FROM pg_catalog.pg_partitioned_table p
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
                  WHERE p.partrelid = $1 AND p.partnatts = 1 AND p.partstrat = 'r'",
                None,
                &[table.oid.into()],
            )?
            .first()
            .get::<pg_sys::Oid>(1)
    })
    .unwrap_or(None);
    type_oid.and_then(catalog::control_kind)
}

/// Stops managing `parent`: its children and data stay as they are.
#[pg_extern(volatile, parallel_unsafe)]
fn undo_partition_set(parent: Option<RegClass>) -> Result<()> {
    let parent = required(parent, "parent")?;
    let table = Relation::lookup(parent)?;
    table.require_owner()?;
    let removed = as_extension_owner(|| {
        Spi::connect_mut(|client| {
            Ok::<_, pgrx::spi::Error>(
                !client
                    .update(
                        "DELETE FROM tenancy.partition_sets WHERE parent = $1 RETURNING true",
                        None,
                        &[parent.into()],
                    )?
                    .is_empty(),
            )
        })
        .expect("removing the partition set failed")
    });
    if !removed {
        error::notice(format!(
            "table {} is not a managed partition set",
            table.qualified_name()
        ));
    }
    Ok(())
}
