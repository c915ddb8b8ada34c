//! The statement triggers a capability installs on a user table (audit, row
//! quotas): named `tenancy_<capability>_<event>`, installed on the table and
//! each of its partitions, because a statement trigger fires only on the
//! table a statement names and a trigger with transition tables is not
//! cloned to partitions.
//!
//! Partitions created or attached by hand get the triggers of their audited
//! or row-quota ancestors from the event trigger `tenancy_cover_new_partitions`
//! (sql/housekeeping.sql); the partition manager gives its own children theirs.
//!
//! The trigger functions are not executable by PUBLIC: CREATE TRIGGER checks
//! EXECUTE on the function (firing does not), so no role can attach them to a
//! table of its own to forge audit rows or spend another tenant's quota. The
//! extension creates its triggers as the extension owner instead.

use super::privilege::as_extension_owner;
use super::relation::Relation;
use super::sqltypes::RegClass;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_qualified_identifier};

/// Trigger name and everything after `CREATE TRIGGER name`.
pub type Definitions = Vec<(&'static str, String)>;

/// `CREATE OR REPLACE TRIGGER` statements for a new partition. Replacing, not
/// creating: the event trigger `tenancy_cover_new_partitions` may already have
/// put them on a child the partition manager has just attached.
pub fn create_sql(definitions: Definitions) -> Vec<String> {
    definitions
        .into_iter()
        .map(|(name, definition)| {
            format!(
                "CREATE OR REPLACE TRIGGER {} {definition}",
                quote_identifier(name)
            )
        })
        .collect()
}

/// The names of the table's triggers starting with `prefix`.
fn existing(table: &Relation, prefix: &str) -> Vec<String> {
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    Spi::connect(|client| {
        client
            .select(
                "SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname::text LIKE $2",
                None,
                &[table.oid.into(), pattern.as_str().into()],
            )?
            .map(|row| row.get::<String>(1).map(|n| n.unwrap_or_default()))
            .collect::<std::result::Result<Vec<_>, _>>()
    })
    .expect("trigger lookup failed")
}

/// Creates the missing triggers on the table and every partition, with
/// `definitions` giving each one's definitions from its qualified name.
/// Returns whether any was missing. The caller has checked that the user may
/// change the table.
///
/// What is present is read for the whole tree in one query: the event
/// trigger `tenancy_cover_new_partitions` calls this after each DDL on a
/// partition, and a set with hundreds of children must not cost a query per
/// child each time.
pub fn install(table: &Relation, definitions: impl Fn(&str) -> Definitions) -> bool {
    as_extension_owner(|| {
        let tree: Vec<(String, String, Vec<String>)> = Spi::connect(|client| {
            client
                .select(
                    // pg_partition_tree lists nothing for a plain table, hence the UNION.
                    "SELECT n.nspname::text, c.relname::text,
                            ARRAY(SELECT g.tgname::text FROM pg_catalog.pg_trigger g
                                   WHERE g.tgrelid = c.oid AND g.tgname::text LIKE 'tenancy\\_%')
                       FROM (SELECT $1::pg_catalog.regclass AS relid
                             UNION SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t) r
                       JOIN pg_catalog.pg_class c ON c.oid = r.relid
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      ORDER BY c.oid <> $1::pg_catalog.regclass::pg_catalog.oid, c.oid",
                    None,
                    &[RegClass(table.oid).into()],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<Vec<String>>(3)?.unwrap_or_default(),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("trigger lookup failed");
        let mut changed = false;
        for (schema, name, present) in tree {
            let qualified = quote_qualified_identifier(&schema, &name);
            for (trigger, definition) in definitions(&qualified) {
                if !present.iter().any(|p| p == trigger) {
                    Spi::run(&format!(
                        "CREATE TRIGGER {} {definition}",
                        quote_identifier(trigger)
                    ))
                    .unwrap_or_else(|e| panic!("creating {trigger}: {e}"));
                    changed = true;
                }
            }
        }
        changed
    })
}

/// Runs `CREATE TRIGGER` statements (from [`create_sql`]) for a new partition.
pub fn create_for_partition(statements: &[String]) {
    if statements.is_empty() {
        return;
    }
    as_extension_owner(|| crate::common::sql::run_each(statements));
}

/// Drops the triggers named `prefix...` from the table and every partition;
/// returns whether there were any.
pub fn drop_all(table: &Relation, prefix: &str) -> bool {
    let relations: Vec<Relation> = std::iter::once(table.clone())
        .chain(table.partitions())
        .collect();
    as_extension_owner(|| drop_from(&relations, prefix))
}

fn drop_from(relations: &[Relation], prefix: &str) -> bool {
    let mut changed = false;
    for relation in relations {
        for name in existing(relation, prefix) {
            Spi::run(&format!(
                "DROP TRIGGER {} ON {}",
                quote_identifier(&name),
                relation.qualified_name()
            ))
            .unwrap_or_else(|e| panic!("dropping {name}: {e}"));
            changed = true;
        }
    }
    changed
}
