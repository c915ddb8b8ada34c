//! The SQL behind the usage counters, as plans prepared once per session
//! (a first touch of a counter costs two executions of kept plans, no parsing
//! or planning). Every statement runs as the extension owner: application
//! roles have no direct access to `tenancy.quota_usage`.

use super::ledger::Key;
use super::period::Period;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{PgBuiltInOids, PgOid};
use std::cell::OnceCell;

/// The period and limit that apply to one tenant's use of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub period: Period,
    /// None: unlimited.
    pub limit: Option<i64>,
}

/// What the terms lookup found.
pub enum TermsLookup {
    Found(Terms),
    UnknownTenant,
    UnknownResource,
}

// Every statement below is kept for the session and runs as the extension
// owner with the caller's search_path (see `as_extension_owner_qualified`):
// each table, function, type and operator is schema-qualified, so nothing the
// caller defines can be picked up.

/// The limit in force for tenant `t` and resource `r` (aliases of the
/// enclosing query): the tenant's own quota, else its plan's limit (a JSON
/// number in plans.limits under the resource's name), else NULL (none).
macro_rules! limit_sql {
    () => {
        "COALESCE(
           (SELECT o.quota_limit FROM tenancy.tenant_quotas o
             WHERE o.tenant_id OPERATOR(pg_catalog.=) t.id AND o.resource OPERATOR(pg_catalog.=) r.name),
           (SELECT CASE WHEN pg_catalog.jsonb_typeof(p.limits OPERATOR(pg_catalog.->) r.name) OPERATOR(pg_catalog.=) 'number'
                        THEN pg_catalog.floor((p.limits OPERATOR(pg_catalog.->>) r.name)::pg_catalog.numeric)::pg_catalog.int8 END
              FROM tenancy.plans p WHERE p.name OPERATOR(pg_catalog.=) t.plan))"
    };
}

/// The terms of `$1` (tenant) and `$2` (resource): the period and the limit.
/// Third column: whether the tenant exists (no row: the resource does not).
const TERMS_SQL: &str = concat!(
    "SELECT r.period, ",
    limit_sql!(),
    ", t.id IS NOT NULL
       FROM tenancy.quota_resources r
       LEFT JOIN tenancy.tenants t ON t.id OPERATOR(pg_catalog.=) $1
      WHERE r.name OPERATOR(pg_catalog.=) $2"
);

/// Every tenant's (or tenant `$1`'s) counters and limits, for quota_status:
/// the resources a tenant has a limit for or has used.
pub const STATUS_SQL: &str = concat!(
    "SELECT t.id, r.name, r.period, r.unit, q.quota_limit, u.period_start, u.used
       FROM tenancy.tenants t
      CROSS JOIN tenancy.quota_resources r
      CROSS JOIN LATERAL (SELECT ",
    limit_sql!(),
    " AS quota_limit) q
       LEFT JOIN tenancy.quota_usage u
              ON u.tenant_id OPERATOR(pg_catalog.=) t.id AND u.resource OPERATOR(pg_catalog.=) r.name
      WHERE ($1::pg_catalog.uuid IS NULL OR t.id OPERATOR(pg_catalog.=) $1)
        AND (u.used IS NOT NULL OR q.quota_limit IS NOT NULL)
      ORDER BY t.slug, r.name"
);

/// First touch of a counter in a transaction: takes `$4` units in the period
/// starting at `$3` if they fit under limit `$5` (NULL: unlimited); a counter
/// from an earlier period counts as zero. The UPDATE locks the row, and under
/// READ COMMITTED a concurrent change makes PostgreSQL re-check the condition
/// on the newest version: exact. No row back: no counter yet, or no room.
const BUMP_SQL: &str = "
UPDATE tenancy.quota_usage
   SET used = CASE WHEN period_start OPERATOR(pg_catalog.=) $3 THEN used ELSE 0 END OPERATOR(pg_catalog.+) $4,
       period_start = $3
 WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND resource OPERATOR(pg_catalog.=) $2
   AND ($5 IS NULL
        OR CASE WHEN period_start OPERATOR(pg_catalog.=) $3 THEN used ELSE 0 END
           OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.<=) $5)
RETURNING used";

// Creates the counter if missing and locks it, in one statement: its row comes
// back either way. (An INSERT ... DO NOTHING followed by a SELECT ... FOR
// UPDATE left a window in which another transaction could delete the row it
// had just seen: a purge, drop_resource, a tenant deleted.) ON CONFLICT DO
// UPDATE locks the existing row as FOR UPDATE would, retries when the
// conflicting row goes away, and in REPEATABLE READ raises 40001 for a row
// its snapshot cannot see. The no-op update only runs on this slow path:
// the first touch of a counter that is missing or whose units do not fit.
const LOCK_OR_CREATE_SQL: &str = "
INSERT INTO tenancy.quota_usage AS u (tenant_id, resource, period_start, used)
VALUES ($1, $2, $3, 0)
ON CONFLICT (tenant_id, resource) DO UPDATE SET used = u.used
RETURNING period_start, used";

const LOCK_SQL: &str = "
SELECT period_start, used FROM tenancy.quota_usage
 WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND resource OPERATOR(pg_catalog.=) $2
   FOR NO KEY UPDATE";

const PEEK_SQL: &str = "
SELECT period_start, used FROM tenancy.quota_usage
 WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND resource OPERATOR(pg_catalog.=) $2";

const WRITE_SQL: &str = "
UPDATE tenancy.quota_usage SET period_start = $3, used = $4
 WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND resource OPERATOR(pg_catalog.=) $2";

struct Plans {
    terms: OwnedPreparedStatement,
    bump: OwnedPreparedStatement,
    lock_or_create: OwnedPreparedStatement,
    lock: OwnedPreparedStatement,
    write: OwnedPreparedStatement,
    peek: OwnedPreparedStatement,
}

thread_local! {
    static PLANS: OnceCell<Plans> = const { OnceCell::new() };
}

fn prepare(
    client: &SpiClient<'_>,
    sql: &str,
    mutating: bool,
    args: &[PgBuiltInOids],
) -> OwnedPreparedStatement {
    let args: Vec<PgOid> = args.iter().map(|oid| PgOid::BuiltIn(*oid)).collect();
    let statement = if mutating {
        client.prepare_mut(sql, &args)
    } else {
        client.prepare(sql, &args)
    };
    statement
        .unwrap_or_else(|e| panic!("preparing quota statement failed: {e}"))
        .keep()
}

fn with_plans<R>(work: impl FnOnce(&mut SpiClient<'_>, &Plans) -> R) -> R {
    Spi::connect_mut(|client| {
        PLANS.with(|cell| {
            let plans = cell.get_or_init(|| Plans {
                terms: prepare(
                    client,
                    TERMS_SQL,
                    false,
                    &[PgBuiltInOids::UUIDOID, PgBuiltInOids::TEXTOID],
                ),
                bump: prepare(
                    client,
                    BUMP_SQL,
                    true,
                    &[
                        PgBuiltInOids::UUIDOID,
                        PgBuiltInOids::TEXTOID,
                        PgBuiltInOids::TIMESTAMPTZOID,
                        PgBuiltInOids::INT8OID,
                        PgBuiltInOids::INT8OID,
                    ],
                ),
                lock_or_create: prepare(
                    client,
                    LOCK_OR_CREATE_SQL,
                    true,
                    &[
                        PgBuiltInOids::UUIDOID,
                        PgBuiltInOids::TEXTOID,
                        PgBuiltInOids::TIMESTAMPTZOID,
                    ],
                ),
                lock: prepare(
                    client,
                    LOCK_SQL,
                    true,
                    &[PgBuiltInOids::UUIDOID, PgBuiltInOids::TEXTOID],
                ),
                peek: prepare(
                    client,
                    PEEK_SQL,
                    false,
                    &[PgBuiltInOids::UUIDOID, PgBuiltInOids::TEXTOID],
                ),
                write: prepare(
                    client,
                    WRITE_SQL,
                    true,
                    &[
                        PgBuiltInOids::UUIDOID,
                        PgBuiltInOids::TEXTOID,
                        PgBuiltInOids::TIMESTAMPTZOID,
                        PgBuiltInOids::INT8OID,
                    ],
                ),
            });
            work(client, plans)
        })
    })
}

fn timestamptz(stored: i64) -> pgrx::datum::TimestampWithTimeZone {
    pgrx::datum::TimestampWithTimeZone::try_from(stored).expect("a stored period start")
}

fn uuid(key: &Key) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(key.tenant)
}

pub fn terms(key: &Key) -> TermsLookup {
    with_plans(|client, plans| {
        let rows = client
            .select(
                &plans.terms,
                Some(1),
                &[uuid(key).into(), key.resource.as_str().into()],
            )
            .expect("reading quota terms failed");
        if rows.is_empty() {
            return TermsLookup::UnknownResource;
        }
        let row = rows.first();
        if !row.get::<bool>(3).ok().flatten().unwrap_or(false) {
            return TermsLookup::UnknownTenant;
        }
        let period: String = row.get(1).ok().flatten().unwrap_or_default();
        TermsLookup::Found(Terms {
            period: Period::parse(&period).expect("quota_resources.period is checked"),
            limit: row.get::<i64>(2).ok().flatten(),
        })
    })
}

/// Takes `amount` in the period starting at `period_start` if it fits; the
/// counter's new value when it did (the row is then locked by us).
pub fn bump(key: &Key, period_start: i64, amount: i64, limit: Option<i64>) -> Option<i64> {
    with_plans(|client, plans| {
        let rows = client
            .update(
                &plans.bump,
                None,
                &[
                    uuid(key).into(),
                    key.resource.as_str().into(),
                    timestamptz(period_start).into(),
                    amount.into(),
                    limit.into(),
                ],
            )
            .expect("taking quota failed");
        if rows.is_empty() {
            None
        } else {
            rows.first().get::<i64>(1).ok().flatten()
        }
    })
}

/// Locks the counter (creating it at zero first if it has never been used)
/// and returns its stored period start and value.
pub fn lock(key: &Key, period_start: i64, create: bool) -> Option<(i64, i64)> {
    with_plans(|client, plans| {
        let rows = if create {
            client
                .update(
                    &plans.lock_or_create,
                    None,
                    &[
                        uuid(key).into(),
                        key.resource.as_str().into(),
                        timestamptz(period_start).into(),
                    ],
                )
                .expect("creating or locking the usage counter failed")
        } else {
            client
                .update(
                    &plans.lock,
                    None,
                    &[uuid(key).into(), key.resource.as_str().into()],
                )
                .expect("locking the usage counter failed")
        };
        if rows.is_empty() {
            return None;
        }
        let row = rows.first();
        let start: pgrx::datum::TimestampWithTimeZone = row.get(1).ok().flatten()?;
        let used: i64 = row.get(2).ok().flatten()?;
        Some((start.into(), used))
    })
}

/// Writes a counter's final value (the row is already locked by us).
pub fn write(key: &Key, period_start: i64, used: i64) {
    with_plans(|client, plans| {
        client
            .update(
                &plans.write,
                None,
                &[
                    uuid(key).into(),
                    key.resource.as_str().into(),
                    timestamptz(period_start).into(),
                    used.into(),
                ],
            )
            .expect("writing the usage counter failed");
    })
}

/// A counter's committed period start and value, without locking it.
pub fn peek(key: &Key) -> Option<(i64, i64)> {
    with_plans(|client, plans| {
        let rows = client
            .select(
                &plans.peek,
                Some(1),
                &[uuid(key).into(), key.resource.as_str().into()],
            )
            .expect("reading the usage counter failed");
        if rows.is_empty() {
            return None;
        }
        let row = rows.first();
        let start: pgrx::datum::TimestampWithTimeZone = row.get(1).ok().flatten()?;
        Some((start.into(), row.get::<i64>(2).ok().flatten()?))
    })
}
