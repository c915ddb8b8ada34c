//! Masking: fast masking functions, a closed vocabulary of masking rules that
//! doubles as the data classification catalog, masked views, PII detection
//! and static anonymization.

mod anonymize;
mod api;
mod detect;
pub mod functions;
mod key;
pub mod rules;
mod sql_functions;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

pgrx::extension_sql_file!(
    "../../sql/mask_catalog.sql",
    name = "mask_catalog",
    requires = ["tenant_catalog"]
);

pgrx::extension_sql_file!(
    "../../sql/mask_api.sql",
    name = "mask_api",
    requires = [
        "mask_catalog",
        sql_functions::mask_ip,
        sql_functions::redact,
        sql_functions::generalize_date,
        api::set_masking_rule,
        api::clear_masking_rule,
        api::detect_pii,
        api::create_masked_view,
        api::grant_masked_access,
        api::anonymize_table,
        key::_masking_key_changed
    ]
);

/// `col = masked(col), ...` for the table's masking rules, or None when no
/// rule changes anything (static anonymization and retention use it).
pub fn anonymize_set_clause(table: &crate::common::relation::Relation) -> Option<String> {
    anonymize::set_clause(table)
}

/// Rewrites the rows of `table` matching `filter` with its masking rules, in
/// primary-key batches; returns how many (purge_tenant uses it).
pub fn anonymize_rows(
    table: &crate::common::relation::Relation,
    filter: &str,
    batch_size: i64,
) -> crate::common::error::Result<i64> {
    anonymize::run(table, Some(filter), batch_size)
}

/// Registers the relcache callback that forgets a replaced key; called from `_PG_init`.
pub fn init() {
    key::init();
}
