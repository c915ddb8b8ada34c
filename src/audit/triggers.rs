//! The triggers that audit a table: their definitions, and what a change to
//! them means for the cached audit plans.

use crate::common::relation::Relation;
use crate::common::triggers;
use pgrx::pg_sys;

/// The four statement triggers auditing a table, by name and definition;
/// `arguments` are the trigger function's (the excluded columns, on Citus).
pub fn trigger_definitions(
    qualified_table: &str,
    arguments: &[String],
) -> Vec<(&'static str, String)> {
    let arguments: Vec<String> = arguments
        .iter()
        .map(|a| crate::common::sql::literal(a))
        .collect();
    let function = format!(
        "EXECUTE FUNCTION tenancy._audit_statement({})",
        arguments.join(", ")
    );
    vec![
        (
            "tenancy_audit_insert",
            format!("AFTER INSERT ON {qualified_table} REFERENCING NEW TABLE AS tenancy_audit_new FOR EACH STATEMENT {function}"),
        ),
        (
            "tenancy_audit_update",
            format!(
                "AFTER UPDATE ON {qualified_table} REFERENCING OLD TABLE AS tenancy_audit_old NEW TABLE AS tenancy_audit_new FOR EACH STATEMENT {function}"
            ),
        ),
        (
            "tenancy_audit_delete",
            format!("AFTER DELETE ON {qualified_table} REFERENCING OLD TABLE AS tenancy_audit_old FOR EACH STATEMENT {function}"),
        ),
        ("tenancy_audit_truncate", format!("AFTER TRUNCATE ON {qualified_table} FOR EACH STATEMENT {function}")),
    ]
}

/// `CREATE TRIGGER` statements auditing a new partition of an audited table.
pub fn trigger_sql(qualified_table: &str, arguments: &[String]) -> Vec<String> {
    triggers::create_sql(trigger_definitions(qualified_table, arguments))
}

/// Every backend rebuilds what it cached about the table (its audit plan).
pub fn invalidate(table: &Relation) {
    // SAFETY: queues a relcache invalidation, sent at commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table.oid) };
    for partition in table.partitions() {
        // SAFETY: queues a relcache invalidation, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(partition.oid) };
    }
}
