//! SQL API for "Masking" (DESIGN.md) beyond the functions themselves:
//! masking rules, PII detection, masked views, masked roles and static
//! anonymization.

use super::columns::{columns, rules_of};
use super::detect;
use super::rules::{ColumnKind, Rule, CLASSIFICATIONS, VOCABULARY};
use crate::common::error::{self, required, Result};
use crate::common::privilege::as_extension_owner;
use crate::common::relation::Relation;
use crate::common::selection::{RowFilter, Value};
use crate::common::sql::literal;
use crate::common::sql::{select_value, write_returning};
use crate::common::sqltypes::{RegClass, SqlName};
use crate::common::subxact;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

/// Sets the masking rule and data classification of one column. The rule
/// comes from a closed vocabulary (`email`, `phone`, `card`, `name`, `ip`,
/// `redact`, `null`, `pseudonymize`, `partial(N,M)`,
/// `generalize(day|month|year)`, or `none` to classify without masking),
/// never SQL; it must keep the column's type. Existing masked views of the
/// table are not changed until `create_masked_view` runs again.
///
/// ```sql
/// SELECT tenancy.set_masking_rule('customers', 'email', 'email');
/// SELECT tenancy.set_masking_rule('customers', 'card', 'partial(0,4)', 'restricted');
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn set_masking_rule(
    tbl: Option<RegClass>,
    col: Option<SqlName>,
    rule: Option<&str>,
    classification: default!(Option<&str>, "'confidential'"),
) -> Result<()> {
    let tbl = required(tbl, "tbl")?;
    let col = required(col, "col")?;
    let rule_text = required(rule, "rule")?;
    let classification = required(classification, "classification")?;
    let table = Relation::owned_table(tbl)?;
    let column = columns(&table)
        .into_iter()
        .find(|c| c.name == col.as_str())
        .ok_or_else(|| {
            error::undefined_column(format!(
                "column \"{}\" of relation {} does not exist",
                col.as_str(),
                table.qualified_name()
            ))
        })?;
    let rule = Rule::parse(rule_text).map_err(|why| {
        error::invalid_parameter(why).set_hint(format!("A masking rule is one of: {VOCABULARY}."))
    })?;
    if !rule.accepts(column.kind) {
        return Err(error::datatype_mismatch(format!(
            "masking rule {} cannot mask column \"{}\" of type {}",
            rule.text(),
            column.name,
            column.type_sql
        ))
        .set_hint(
            "email, phone, card, name, redact, pseudonymize and partial mask text; ip masks inet; \
             generalize masks dates and timestamps; null and none fit any type.",
        ));
    }
    if !CLASSIFICATIONS.contains(&classification) {
        return Err(error::invalid_parameter(format!(
            "unknown classification \"{classification}\""
        ))
        .set_hint(format!(
            "A classification is one of: {}.",
            CLASSIFICATIONS.join(", ")
        )));
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.masking_rules (tbl, col, rule, classification) VALUES ($1, $2::text::name, $3, $4)
             ON CONFLICT (tbl, col) DO UPDATE
                SET rule = EXCLUDED.rule, classification = EXCLUDED.classification, set_at = pg_catalog.now()",
            &[tbl.into(), column.name.as_str().into(), rule.text().as_str().into(), classification.into()],
        )
    })
    .expect("saving the masking rule failed");
    Ok(())
}

/// Removes a column's masking rule and classification.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_masking_rule(tbl: Option<RegClass>, col: Option<SqlName>) -> Result<()> {
    let tbl = required(tbl, "tbl")?;
    let col = required(col, "col")?;
    let table = Relation::owned_table(tbl)?;
    let removed: Option<bool> = as_extension_owner(|| {
        write_returning(
            "DELETE FROM tenancy.masking_rules WHERE tbl = $1 AND col = $2::text::name RETURNING true",
            &[tbl.into(), col.as_str().into()],
        )
    });
    if removed.is_none() {
        error::notice(format!(
            "column \"{}\" of {} has no masking rule",
            col.as_str(),
            table.qualified_name()
        ));
    }
    Ok(())
}

/// How many non-NULL values `detect_pii` samples per column.
const SAMPLE: i64 = 200;

/// Suggests masking rules for the columns of `tbl` (default: every table the
/// caller can read outside system schemas), from column names and a sample
/// of up to 200 values per text column, read with the caller's own rights:
/// emails, phone numbers, payment card numbers (Luhn), IP addresses, names,
/// dates of birth, secrets. Only suggestions: nothing is changed.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(volatile, parallel_unsafe)]
fn detect_pii(
    tbl: default!(Option<RegClass>, "NULL"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(table_name, RegClass),
            name!(column_name, SqlName),
            name!(suggested_rule, String),
            name!(reason, String),
            name!(current_rule, Option<String>),
        ),
    >,
> {
    let tables: Vec<Relation> = match tbl {
        Some(tbl) => vec![Relation::lookup_table(tbl)?],
        None => {
            let oids: Vec<pg_sys::Oid> = Spi::connect(|client| {
                client
                    .select(
                        "SELECT c.oid FROM pg_catalog.pg_class c
                           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                            AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenancy', 'pg_toast')
                            AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
                            AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                          ORDER BY n.nspname, c.relname",
                        None,
                        &[],
                    )?
                    .map(|row| row.get::<pg_sys::Oid>(1).map(|o| o.unwrap_or_default()))
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .expect("listing tables failed");
            oids.into_iter()
                .filter_map(|oid| Relation::lookup(RegClass(oid)).ok())
                .collect()
        }
    };
    let mut found = Vec::new();
    for table in tables {
        let current = rules_of(&table);
        for column in columns(&table) {
            let by_name = detect::from_name(&column.name, column.kind);
            let by_values = if column.kind == ColumnKind::Text && by_name.is_none() {
                sample(&table, &column.name)
                    .and_then(|values| detect::from_values(values.iter().map(String::as_str)))
            } else {
                None
            };
            if let Some(suggestion) = by_name.or(by_values) {
                let current_rule = current
                    .iter()
                    .find(|(c, _)| *c == column.name)
                    .map(|(_, r)| r.text());
                found.push((
                    RegClass(table.oid),
                    SqlName(column.name.clone()),
                    suggestion.rule.text(),
                    suggestion.reason,
                    current_rule,
                ));
            }
        }
    }
    Ok(TableIterator::new(found))
}

/// Up to SAMPLE non-NULL values of a column, as text, read as the caller
/// (None when the caller may not read it).
fn sample(table: &Relation, column: &str) -> Option<Vec<String>> {
    let sql = format!(
        "SELECT {column}::text FROM {} WHERE {column} IS NOT NULL LIMIT {SAMPLE}",
        table.qualified_name(),
        column = quote_identifier(column)
    );
    subxact::attempt(|| {
        Spi::connect(|client| {
            client
                .select(&sql, None, &[])?
                .map(|row| row.get::<String>(1).map(|v| v.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("sampling failed")
    })
    .ok()
}

/// The view of `table` with each rule's expression in place of its column,
/// and, for an isolated table, its isolation predicate as the view's own
/// filter (a view runs with its owner's rights, and an owner who is a
/// superuser would otherwise bypass row-level security).
///
/// On a Citus table the predicate calls `current_tenant()` directly: the
/// query runs on the shards, each with the tenant the statement brought.
fn view_definition(table: &Relation, on_citus: bool) -> String {
    let rules = rules_of(table);
    let select: Vec<String> = columns(table)
        .iter()
        .map(|column| {
            let quoted = quote_identifier(&column.name);
            match rules.iter().find(|(c, _)| *c == column.name) {
                Some((_, rule)) if *rule != Rule::None => {
                    format!("{} AS {quoted}", rule.expression(&quoted, &column.type_sql))
                }
                _ => quoted,
            }
        })
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        table.qualified_name()
    );
    if let Some(registration) = crate::tenant::registry::registration(table) {
        if registration.isolated {
            let current = if on_citus {
                "tenancy.current_tenant()"
            } else {
                "(SELECT tenancy.current_tenant())"
            };
            sql.push_str(&format!(
                " WHERE {} OPERATOR(pg_catalog.=) {current}",
                quote_identifier(&registration.tenant_column)
            ));
        }
    }
    sql
}

/// Roles given masked access so far.
fn masked_roles() -> Vec<String> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT role_name::text FROM tenancy.masked_roles ORDER BY 1",
                    None,
                    &[],
                )?
                .map(|row| row.get::<String>(1).map(|r| r.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .expect("reading masked roles failed")
    })
}

/// Creates (or replaces) `view_schema.<table name>`: the same columns with
/// the same names and types, masked where a rule says so, as a
/// security_barrier view (no function in a reader's WHERE sees a row before
/// the view's own filter ran). Tenant isolation still applies: an isolated
/// table's view shows only `current_tenant()`'s rows. Run it again after
/// changing rules. Roles given masked access can read it.
///
/// ```sql
/// SELECT tenancy.create_masked_view('customers');   -- tenancy_masked.customers
/// ```
#[pg_extern(volatile, parallel_unsafe)]
fn create_masked_view(
    tbl: Option<RegClass>,
    view_schema: default!(Option<SqlName>, "'tenancy_masked'"),
) -> Result<RegClass> {
    let tbl = required(tbl, "tbl")?;
    let view_schema = required(view_schema, "view_schema")?;
    let table = Relation::owned_table(tbl)?;
    crate::common::citus::ensure_replicated("tenancy.create_masked_view()")?;
    if view_schema.as_str() == table.schema {
        return Err(error::invalid_parameter(format!(
            "the masked view of {} cannot live in the table's own schema",
            table.qualified_name()
        ))
        .set_hint("Masked views keep the table's name: use a schema of their own, such as tenancy_masked."));
    }
    let schema = quote_identifier(view_schema.as_str());
    let view = format!("{schema}.{}", quote_identifier(&table.name));
    // Created (and commented) the first time only: IF NOT EXISTS would
    // print a NOTICE on every later call.
    let schema_exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        &[view_schema.as_str().into()],
    )
    .expect("schema lookup failed")
    .unwrap_or(false);
    if !schema_exists {
        crate::common::sql::run_each(&[
            format!("CREATE SCHEMA {schema}"),
            format!(
                "COMMENT ON SCHEMA {schema} IS {}",
                literal("Masked views made by tenancy.create_masked_view: what masked roles read.")
            ),
        ]);
    }
    let on_citus = crate::common::citus::table_kind(table.oid).is_some();
    let body = view_definition(&table, on_citus);
    let mut create = vec![format!(
        "CREATE OR REPLACE VIEW {view} WITH (security_barrier) AS {}",
        if on_citus {
            format!("SELECT * FROM {view}()")
        } else {
            body.clone()
        }
    )];
    if on_citus {
        create.insert(0, masked_rows_function(&table, &view, &body));
        create.insert(
            1,
            format!("REVOKE EXECUTE ON FUNCTION {view}() FROM PUBLIC"),
        );
    }
    // A column dropped or retyped since the last time cannot be replaced in
    // place: then the view is created afresh (its grants are re-applied below).
    if subxact::attempt(|| crate::common::sql::run_each(&create)).is_err() {
        Spi::run(&format!("DROP VIEW {view}")).expect("dropping the old masked view failed");
        if on_citus {
            Spi::run(&format!("DROP FUNCTION IF EXISTS {view}()"))
                .expect("dropping the old masked rows function failed");
        }
        crate::common::sql::run_each(&create);
    }
    Spi::run(&format!(
        "COMMENT ON VIEW {view} IS {}",
        literal(&format!(
            "Masked view of {} (tenancy.create_masked_view): masking rules applied, tenant isolation kept.",
            table.qualified_name()
        ))
    ))
    .expect("commenting the view failed");
    let oid: pg_sys::Oid =
        Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regclass::oid", &[view.as_str().into()])
            .expect("view lookup failed")
            .expect("the view was just created");
    for role in masked_roles() {
        grant_view(&schema, &view, &role);
    }
    if on_citus {
        Spi::run(&format!(
            "COMMENT ON FUNCTION {view}() IS {}",
            literal(&format!(
                "The rows of masked view {view}, read with the table owner's rights (Citus checks a view's reader's own privileges on the shards)."
            ))
        ))
        .expect("commenting the masked rows function failed");
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.masked_views (view, tbl) VALUES ($1, $2)
             ON CONFLICT (view) DO UPDATE SET tbl = EXCLUDED.tbl, created_at = pg_catalog.now()",
            &[RegClass(oid).into(), tbl.into()],
        )
    })
    .expect("recording the masked view failed");
    Ok(RegClass(oid))
}

fn grant_view(schema: &str, view: &str, role: &str) {
    let role = quote_identifier(role);
    Spi::run(&format!("GRANT USAGE ON SCHEMA {schema} TO {role}"))
        .expect("granting schema usage failed");
    Spi::run(&format!("GRANT SELECT ON {view} TO {role}")).expect("granting the view failed");
    // The view of a Citus table reads through its rows function.
    let has_rows_function = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
        &[format!("{view}()").into()],
    )
    .expect("function lookup failed")
    .unwrap_or(false);
    if has_rows_function {
        Spi::run(&format!("GRANT EXECUTE ON FUNCTION {view}() TO {role}"))
            .expect("granting the masked rows function failed");
    }
}

/// A Citus table's masked view reads its rows through this function, which
/// runs the masked query with its owner's (the table owner's) rights. Citus
/// runs a view's query on the shards as the reader, who must not hold
/// privileges on the table; PostgreSQL never inlines a SECURITY DEFINER
/// function, so the reader cannot reach the query's inside.
fn masked_rows_function(table: &Relation, view: &str, body: &str) -> String {
    let columns: Vec<String> = columns(table)
        .iter()
        .map(|c| format!("{} {}", quote_identifier(&c.name), c.type_sql))
        .collect();
    format!(
        "CREATE OR REPLACE FUNCTION {view}() RETURNS TABLE ({})
         LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
         AS $masked$ {body} $masked$",
        columns.join(", ")
    )
}

/// Relations that show masked data raw: every table with masking rules,
/// its partitions, and views or materialized views built on any of those at
/// any depth (a view reads with its owner's rights), except our masked views.
/// A `WITH` clause defining `exposed(rel)`.
const EXPOSED_RELATIONS: &str = "WITH RECURSIVE masked AS (
                     SELECT DISTINCT p.relid AS rel
                       FROM (SELECT DISTINCT tbl FROM tenancy.masking_rules WHERE rule <> 'none') m
                       CROSS JOIN LATERAL (SELECT m.tbl::pg_catalog.regclass AS relid
                                           UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(m.tbl) t) p
                 ), exposed(rel) AS (
                     SELECT rel FROM masked
                     UNION
                     SELECT w.ev_class::pg_catalog.regclass
                       FROM exposed e
                       JOIN pg_catalog.pg_depend d
                         ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = e.rel
                        AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                       JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
                      WHERE w.ev_class <> e.rel
                        AND w.ev_class NOT IN (SELECT v.view FROM tenancy.masked_views v)
                 )";

/// Lets `role` read every masked view (and those created later) and makes
/// sure it can read nothing underneath: its own grants on tables with masking
/// rules, their partitions and views built on them are revoked, and it is
/// refused (55000) if it can still read one of those or the key through
/// PUBLIC or another role, or if it is a superuser or bypasses
/// row-level security. Without SELECT on a table, `pg_stats` shows the role
/// none of its statistics; the pseudonymization key is readable by the
/// extension owner only.
#[pg_extern(volatile, parallel_unsafe)]
fn grant_masked_access(role: Option<SqlName>) -> Result<()> {
    let role = required(role, "role")?;
    let role = role.as_str();
    let attributes: Option<Vec<bool>> = select_value(
        "SELECT ARRAY[rolsuper, rolbypassrls] FROM pg_catalog.pg_roles WHERE rolname = $1",
        &[role.into()],
    );
    let Some(attributes) = attributes else {
        return Err(error::invalid_parameter(format!(
            "role \"{role}\" does not exist"
        )));
    };
    if attributes[0] || attributes[1] {
        return Err(error::not_in_prerequisite_state(format!(
            "role \"{role}\" is a superuser or bypasses row-level security: masking cannot restrict it"
        )));
    }
    // Its own grants on what exposes masked data go: the masked tables, their
    // partitions, and views or materialized views built on any of those.
    let exposed: Vec<String> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    &format!("{EXPOSED_RELATIONS} SELECT rel::text FROM exposed ORDER BY 1"),
                    None,
                    &[],
                )?
                .map(|row| row.get::<String>(1).map(|t| t.unwrap_or_default()))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .expect("reading masked tables failed")
    });
    for relation in &exposed {
        Spi::run(&format!(
            "REVOKE ALL ON {relation} FROM {}",
            quote_identifier(role)
        ))
        .expect("revoking table privileges failed");
    }
    // What it can still reach of those, or the key: through PUBLIC, a role it
    // belongs to, or SET ROLE.
    let leaks: Vec<(String, String)> = Spi::connect(|client| {
        client
            .select(
                &format!(
                    "{EXPOSED_RELATIONS}
                 SELECT r.rolname::text, t.tbl::text
                   FROM (SELECT rel AS tbl FROM exposed
                         UNION ALL SELECT 'tenancy.masking_key'::regclass) t
                   CROSS JOIN pg_catalog.pg_roles r
                  WHERE pg_catalog.pg_has_role($1, r.oid, 'MEMBER')
                    AND (pg_catalog.has_any_column_privilege(r.oid, t.tbl, 'SELECT')
                         OR r.rolsuper OR r.rolbypassrls)
                  ORDER BY 2, 1"
                ),
                None,
                &[role.into()],
            )?
            .map(|row| {
                Ok((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                ))
            })
            .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .expect("checking privileges failed");
    if let Some((via, table)) = leaks.first() {
        let (path, fix) = if via == role {
            (
                "through PUBLIC".to_string(),
                format!("REVOKE SELECT ON {table} FROM PUBLIC"),
            )
        } else {
            (
                format!("as a member of role \"{via}\""),
                format!(
                    "REVOKE \"{via}\" FROM \"{role}\", or revoke that role's access to {table}"
                ),
            )
        };
        return Err(error::not_in_prerequisite_state(format!(
            "role \"{role}\" can still read {table} {path}"
        ))
        .set_hint(format!("{fix}, then try again.")));
    }
    let views: Vec<(String, String)> = as_extension_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT pg_catalog.quote_ident(n.nspname), v.view::text
                       FROM tenancy.masked_views v
                       JOIN pg_catalog.pg_class c ON c.oid = v.view
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      ORDER BY 2",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get::<String>(1)?.unwrap_or_default(),
                        row.get::<String>(2)?.unwrap_or_default(),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
        })
        .expect("reading masked views failed")
    });
    for (schema, view) in &views {
        grant_view(schema, view, role);
    }
    as_extension_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.masked_roles (role_name) VALUES ($1::text::name) ON CONFLICT DO NOTHING",
            &[role.into()],
        )
    })
    .expect("recording the masked role failed");
    Ok(())
}

/// Rewrites the rows of `tbl` (only `tenant`'s, if given) in place with the
/// table's masking rules, in batches of `batch_size` rows in primary-key
/// order, and returns how many rows it rewrote. Irreversible: for a copy
/// that masks without changing the data, use a masked view.
#[pg_extern(volatile, parallel_unsafe)]
fn anonymize_table(
    tbl: Option<RegClass>,
    tenant: default!(Option<pgrx::Uuid>, "NULL"),
    batch_size: default!(Option<i32>, "10000"),
) -> Result<i64> {
    let tbl = required(tbl, "tbl")?;
    let batch_size = required(batch_size, "batch_size")?;
    if batch_size <= 0 {
        return Err(error::invalid_parameter(format!(
            "batch_size must be positive (got {batch_size})"
        )));
    }
    let table = Relation::owned_table(tbl)?;
    let filter = match tenant {
        None => RowFilter::all(),
        Some(tenant) => {
            let registration = crate::tenant::registry::registration(&table).ok_or_else(|| {
                error::not_in_prerequisite_state(format!(
                    "table {} is not registered, so its rows have no tenant",
                    table.qualified_name()
                ))
                .set_hint("Call tenancy.register_table() first, or leave tenant NULL.")
            })?;
            RowFilter::all().equal(&registration.tenant_column, Value::Uuid(tenant))
        }
    };
    super::anonymize::run(&table, &filter, batch_size as i64)
}
