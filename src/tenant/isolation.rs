//! Row-level isolation: the policy text and the DDL that installs or removes it.

use crate::common::relation::Relation;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

/// Name of the one policy `enable_isolation` owns on every isolated table.
pub const POLICY_NAME: &str = "tenancy_isolation";

/// The predicate used for both USING and WITH CHECK.
///
/// `current_tenant()` sits in a scalar subquery so the planner runs it once per
/// query as an InitPlan instead of once per row; the comparison names the
/// catalog's operator so the policy means the same under any search_path.
/// In a Citus database the function is called directly: Citus copies policies
/// to the shards but refuses any subquery in one (and PostgreSQL's second
/// parse of it fails with XX000). Each shard's copy is evaluated on its
/// worker, where the tenant arrives with the statement (`crate::citus`).
pub fn policy_predicate(tenant_column: &str) -> String {
    let current = if crate::common::citus::active().is_some() {
        "tenancy.current_tenant()"
    } else {
        "(SELECT tenancy.current_tenant())"
    };
    format!(
        "{} OPERATOR(pg_catalog.=) {current}",
        quote_identifier(tenant_column)
    )
}

/// `CREATE POLICY` for one table: one policy for all commands, all roles.
pub fn create_policy_sql(qualified_table: &str, tenant_column: &str) -> String {
    let predicate = policy_predicate(tenant_column);
    format!(
        "CREATE POLICY {policy} ON {qualified_table} AS PERMISSIVE FOR ALL TO PUBLIC \
         USING ({predicate}) WITH CHECK ({predicate})",
        policy = quote_identifier(POLICY_NAME),
    )
}

/// What a table's row-level security looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlsState {
    pub enabled: bool,
    pub forced: bool,
    pub has_policy: bool,
    /// Permissive policies other than ours: they OR with ours and widen access.
    pub other_permissive: Vec<String>,
    /// Policies of any kind other than ours.
    pub other_policies: usize,
}

pub fn rls_state(table: &Relation) -> RlsState {
    Spi::connect(|client| {
        let row = client
            .select(
                "SELECT c.relrowsecurity, c.relforcerowsecurity,
                        EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                                 WHERE p.polrelid = c.oid AND p.polname = $2),
                        ARRAY(SELECT p.polname::text FROM pg_catalog.pg_policy p
                               WHERE p.polrelid = c.oid AND p.polname <> $2 AND p.polpermissive
                               ORDER BY 1),
                        (SELECT count(*) FROM pg_catalog.pg_policy p
                          WHERE p.polrelid = c.oid AND p.polname <> $2)
                   FROM pg_catalog.pg_class c WHERE c.oid = $1",
                None,
                &[table.oid.into(), POLICY_NAME.into()],
            )?
            .first();
        Ok::<_, pgrx::spi::Error>(RlsState {
            enabled: row.get::<bool>(1)?.unwrap_or(false),
            forced: row.get::<bool>(2)?.unwrap_or(false),
            has_policy: row.get::<bool>(3)?.unwrap_or(false),
            other_permissive: row.get::<Vec<String>>(4)?.unwrap_or_default(),
            other_policies: row.get::<i64>(5)?.unwrap_or(0) as usize,
        })
    })
    .expect("row-level security state query failed")
}

/// Enables and forces RLS on one table and installs the policy if missing.
/// Runs as the caller, so PostgreSQL itself requires table ownership.
/// Returns whether anything changed.
pub fn isolate_one(table: &Relation, tenant_column: &str) -> bool {
    let state = rls_state(table);
    let qualified = table.qualified_name();
    // The policy first: the ALTER TABLEs fire the event trigger that covers
    // new partitions (tenancy_cover_new_partitions), which must find this one
    // already covered rather than create the policy a second time.
    let mut statements = Vec::new();
    if !state.has_policy {
        statements.push(create_policy_sql(&qualified, tenant_column));
    }
    if !state.enabled {
        statements.push(format!("ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY"));
    }
    if !state.forced {
        statements.push(format!("ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY"));
    }
    crate::common::sql::run_each(&statements);
    !statements.is_empty()
}

/// Drops our policy; turns RLS off only when no other policy still needs it.
pub fn release_one(table: &Relation) -> bool {
    let state = rls_state(table);
    let qualified = table.qualified_name();
    let mut statements = Vec::new();
    if state.has_policy {
        statements.push(format!(
            "DROP POLICY {} ON {qualified}",
            quote_identifier(POLICY_NAME)
        ));
    }
    if state.other_policies == 0 {
        if state.forced {
            statements.push(format!(
                "ALTER TABLE {qualified} NO FORCE ROW LEVEL SECURITY"
            ));
        }
        if state.enabled {
            statements.push(format!(
                "ALTER TABLE {qualified} DISABLE ROW LEVEL SECURITY"
            ));
        }
    }
    crate::common::sql::run_each(&statements);
    !statements.is_empty()
}

/// Whether some index starts with the tenant column (policies filter on it).
pub fn has_leading_index(table: &Relation, column_number: i16) -> bool {
    Spi::connect(|client| {
        client
            .select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                 WHERE i.indrelid = $1 AND i.indkey[0] = $2)",
                None,
                &[table.oid.into(), column_number.into()],
            )?
            .first()
            .get::<bool>(1)
    })
    .expect("index lookup failed")
    .unwrap_or(false)
}
