//! Scale-out on Citus (docs/citus.md): the same SQL and the same guarantees
//! on distributed, co-located and reference tables.
//!
//! - `context`: the session's tenant reaches every worker a statement touches.
//! - `prune`: a tenant's queries go to the one shard that holds its rows.
//! - `carried`: an autocommit SELECT carries the tenant in its shard queries,
//!   saving the transaction block `context` would need.
//! - `policy`: the policy compares with the tenant as a constant, checked
//!   once per query instead of once per row.
//!
//! What capabilities need of Citus themselves (is this a worker, where is my
//! copy of a replicated catalog, making the catalogs workers read reference
//! tables) is in `common::citus`, below them.

mod carried;
mod context;
mod policy;
mod prune;

pgrx::extension_sql_file!(
    "../../sql/cluster_catalog.sql",
    name = "cluster_catalog",
    requires = [
        "tenant_catalog",
        "tenant_api",
        "mask_catalog",
        "mask_api",
        tenant::bindings::_cluster_copy_changed,
        mask::key::_masking_key_changed,
        citus::carried::_tenant_carried
    ]
);

/// Installs the hooks that carry the tenant to the workers; called from `_PG_init`.
pub fn init() {
    crate::common::citus::init();
    context::init();
    prune::init();
    carried::init();
}
