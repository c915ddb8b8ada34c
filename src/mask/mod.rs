//! Masking: fast masking functions, a closed vocabulary of masking rules that
//! doubles as the data classification catalog, masked views, PII detection
//! and static anonymization.

mod anonymize;
mod api;
mod columns;
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

/// Registers the relcache callback that forgets a replaced key, and offers
/// static anonymization to retention and purge; called from `_PG_init`.
pub fn init() {
    key::init();
    crate::common::hooks::provide_anonymizer(crate::common::hooks::Anonymizer {
        covers: anonymize::covers,
        rewrite: anonymize::rewrite,
        run: anonymize::run,
    });
}
