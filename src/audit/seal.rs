//! Tamper evidence: a SHA-256 hash chain per tenant over committed audit rows.
//!
//! Sealing runs apart from the write path (the scheduler calls it): writers
//! take no lock and wait for nothing. A seal covers the rows of transactions
//! that had finished when it started: every row whose transaction id is below
//! the snapshot's xmin and is not in a chain yet. Each row's link is
//! `sha256(previous link || sha256(row content))`, so changing, deleting or
//! inserting a sealed row, or removing a link, breaks the chain from there on.

use crate::common::locks::Lock;
use crate::common::privilege::as_extension_owner;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Rows of tables without a tenant are chained under this key.
pub const NO_TENANT: [u8; 16] = [0; 16];
/// Rows read per query while sealing or verifying.
const CHUNK: i64 = 10_000;
/// The canonical bytes of an audit row: each field length-prefixed, NULL marked.
fn content_hash(fields: &[Option<String>]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for field in fields {
        match field {
            None => hasher.update(u32::MAX.to_be_bytes()),
            Some(text) => {
                hasher.update((text.len() as u32).to_be_bytes());
                hasher.update(text.as_bytes());
            }
        }
    }
    hasher.finalize().into()
}

fn link(previous: &[u8], content: &[u8; 32]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(content);
    hasher.finalize().to_vec()
}

/// The audit row fields that the hash covers, as text, in a fixed order.
const CONTENT_SQL: &str = "a.id::text, (extract(epoch from a.logged_at) * 1000000)::bigint::text,
    a.tenant_id::text, a.table_name, a.op, a.record_key::text, a.old_row::text, a.new_row::text,
    a.changed_cols::text, a.actor, a.application_name, a.client_addr::text, a.txid::text,
    a.old_record_key::text";
const CONTENT_FIELDS: usize = 14;

fn read_fields(
    row: &pgrx::spi::SpiHeapTupleData,
    first: usize,
) -> Result<Vec<Option<String>>, pgrx::spi::Error> {
    (first..first + CONTENT_FIELDS)
        .map(|i| row.get::<String>(i))
        .collect()
}

fn system_identifier() -> i64 {
    Spi::connect(|client| {
        client
            .select(
                "SELECT system_identifier FROM pg_catalog.pg_control_system()",
                None,
                &[],
            )?
            .first()
            .get::<i64>(1)
    })
    .expect("pg_control_system failed")
    .unwrap_or(0)
}

/// The chain heads as sealing extends them: tenant key -> (position, link).
type Heads = HashMap<pgrx::Uuid, (i64, Vec<u8>)>;

/// Rows of one node's transactions to seal: those whose transaction id is
/// in `[from, below)` (the previous seal's horizon for that node, and its
/// oldest running transaction now) in `log`, with `only` narrowing them.
struct Window<'a> {
    log: &'a str,
    only: &'a str,
    from: i64,
    below: i64,
}

/// Seals the rows of `window` in chain order (txid, id), extending `heads`;
/// returns how many.
fn seal_window(window: &Window, heads: &mut Heads) -> i64 {
    let mut sealed = 0i64;
    let mut after: (i64, i64) = (window.from - 1, i64::MIN);
    loop {
        // Keyset pages in chain order: (txid, id).
        let page: Vec<(
            i64,
            i64,
            pgrx::Uuid,
            pgrx::datum::TimestampWithTimeZone,
            [u8; 32],
        )> = Spi::connect(|client| {
            let sql = format!(
                "SELECT a.txid, a.id, coalesce(a.tenant_id, $5), a.logged_at, {CONTENT_SQL}
                       FROM {log} a
                      WHERE a.txid >= $1 AND a.txid < $2 AND (a.txid, a.id) > ($3, $4) AND {only}
                      ORDER BY a.txid, a.id
                      LIMIT {CHUNK}",
                log = window.log,
                only = window.only,
            );
            client
                .select(
                    sql.as_str(),
                    None,
                    &[
                        window.from.into(),
                        window.below.into(),
                        after.0.into(),
                        after.1.into(),
                        pgrx::Uuid::from_bytes(NO_TENANT).into(),
                    ],
                )?
                .map(|row| {
                    Ok((
                        row.get::<i64>(1)?.unwrap_or(0),
                        row.get::<i64>(2)?.unwrap_or(0),
                        row.get::<pgrx::Uuid>(3)?.expect("tenant key"),
                        row.get::<pgrx::datum::TimestampWithTimeZone>(4)?
                            .expect("logged_at"),
                        content_hash(&read_fields(&row, 5)?),
                    ))
                })
                .collect::<Result<_, pgrx::spi::Error>>()
        })
        .expect("reading rows to seal failed");
        let Some(last) = page.last() else { break };
        after = (last.0, last.1);
        let mut keys = Vec::with_capacity(page.len());
        let mut positions = Vec::with_capacity(page.len());
        let mut ids = Vec::with_capacity(page.len());
        let mut times = Vec::with_capacity(page.len());
        let mut txids = Vec::with_capacity(page.len());
        let mut links = Vec::with_capacity(page.len());
        for (txid, id, key, logged_at, content) in &page {
            let head = heads.entry(*key).or_insert((0, Vec::new()));
            head.0 += 1;
            head.1 = link(&head.1, content);
            keys.push(*key);
            positions.push(head.0);
            ids.push(*id);
            times.push(*logged_at);
            txids.push(*txid);
            links.push(head.1.clone());
        }
        let args: Vec<DatumWithOid> = vec![
            keys.into(),
            positions.into(),
            ids.into(),
            times.into(),
            txids.into(),
            links.into(),
        ];
        Spi::run_with_args(
            "INSERT INTO tenancy.audit_chain (tenant_key, pos, audit_id, logged_at, txid, link_hash)
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[], $6::bytea[])",
            &args,
        )
        .expect("writing chain links failed");
        sealed += page.len() as i64;
    }
    sealed
}

/// The horizon of the last seal of the node whose system identifier is `system`.
fn last_horizon(system: i64) -> i64 {
    Spi::get_one_with_args(
        "SELECT coalesce(max(below_txid), 0) FROM tenancy.audit_seals WHERE system_identifier = $1",
        &[system.into()],
    )
    .expect("reading the last seal failed")
    .unwrap_or(0)
}

/// Seals what is sealable; returns the number of rows added to the chains,
/// or 0 with a NOTICE when another seal is running.
pub fn seal() -> i64 {
    // The chain tables refuse every writer but the extension (audit::guard).
    crate::common::internal_writes::with_internal_writes(|| {
        as_extension_owner(|| {
            let locked = Spi::get_one_with_args::<bool>(
                "SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
                &[Lock::Seal.key().0.into(), Lock::Seal.key().1.into()],
            )
            .expect("advisory lock failed")
            .unwrap_or(false);
            if !locked {
                crate::common::error::notice("another seal_audit is in progress; nothing sealed");
                return 0;
            }
            let system = system_identifier();
            let below: i64 = Spi::get_one(
                "SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint",
            )
            .expect("snapshot xmin failed")
            .unwrap_or(0);
            // Every horizon is read before any is recorded: the coordinator
            // may hold shards of the cluster log too.
            let here = (system, last_horizon(system), below);
            let nodes: Vec<(i64, i64, i64, i64)> = super::cluster::node_horizons()
                .into_iter()
                .map(|(group, node_system, node_below)| {
                    let node_below = if node_system == system {
                        below
                    } else {
                        node_below
                    };
                    (group, node_system, last_horizon(node_system), node_below)
                })
                .collect();
            let mut heads: Heads = chain_heads(
                "SELECT tenant_key, pos, link_hash FROM tenancy.audit_chain_heads",
                &[],
            )
            .into_iter()
            .map(|(key, pos, hash)| (key, (pos, hash)))
            .collect();
            let mut seals: Vec<(i64, i64, i64)> = Vec::new();
            let local = Window {
                log: "tenancy.audit_log",
                only: "NOT EXISTS (SELECT 1 FROM tenancy.audit_chain c WHERE c.audit_id = a.id)",
                from: here.1,
                below: here.2,
            };
            seals.push((system, below, seal_window(&local, &mut heads)));
            // On Citus, each node's rows of the cluster log, wherever their
            // shard is now: the node that wrote them is in their ids.
            for (group, node_system, from, node_below) in nodes {
                let only = format!(
                    "a.id >= {} AND a.id < {}",
                    super::cluster::id_base(group),
                    super::cluster::id_base(group + 1)
                );
                let window = Window {
                    log: "tenancy.cluster_audit_log",
                    only: &only,
                    from,
                    below: node_below,
                };
                let sealed = seal_window(&window, &mut heads);
                match seals.iter_mut().find(|(s, _, _)| *s == node_system) {
                    Some(seal) => seal.2 += sealed,
                    None => seals.push((node_system, node_below, sealed)),
                }
            }
            let (keys, rest): (Vec<pgrx::Uuid>, Vec<(i64, Vec<u8>)>) = heads.into_iter().unzip();
            let (positions, links): (Vec<i64>, Vec<Vec<u8>>) = rest.into_iter().unzip();
            Spi::run_with_args(
                "INSERT INTO tenancy.audit_chain_heads (tenant_key, pos, link_hash)
                 SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bytea[])
                 ON CONFLICT (tenant_key) DO UPDATE SET pos = EXCLUDED.pos, link_hash = EXCLUDED.link_hash",
                &[keys.into(), positions.into(), links.into()],
            )
            .expect("writing chain heads failed");
            let mut total = 0;
            for (node_system, node_below, sealed) in seals {
                Spi::run_with_args(
                    "INSERT INTO tenancy.audit_seals (system_identifier, below_txid, rows_sealed) VALUES ($1, $2, $3)",
                    &[node_system.into(), node_below.into(), sealed.into()],
                )
                .expect("recording the seal failed");
                total += sealed;
            }
            total
        })
    })
}

/// One tenant's verdict.
pub struct Verdict {
    pub tenant: Option<pgrx::Uuid>,
    pub rows_checked: i64,
    pub ok: bool,
    pub first_bad_id: Option<i64>,
}

/// Chain heads a query selects: (tenant key, position, link hash), a chain
/// not yet headed as (key, 0, empty).
fn chain_heads(sql: &str, args: &[DatumWithOid]) -> Vec<(pgrx::Uuid, i64, Vec<u8>)> {
    Spi::connect(|client| {
        client
            .select(sql, None, args)?
            .map(|row| {
                Ok((
                    row.get::<pgrx::Uuid>(1)?.expect("key"),
                    row.get::<i64>(2)?.unwrap_or(0),
                    row.get::<Vec<u8>>(3)?.unwrap_or_default(),
                ))
            })
            .collect::<Result<_, pgrx::spi::Error>>()
    })
    .expect("reading chain heads failed")
}

/// Walks each chain (or `only`'s) from its first link, recomputing every hash.
pub fn verify(only: Option<pgrx::Uuid>) -> Vec<Verdict> {
    as_extension_owner(|| {
        let no_tenant = pgrx::Uuid::from_bytes(NO_TENANT);
        let only_key = only.map(|t| if t == no_tenant { no_tenant } else { t });
        let heads = chain_heads(
            "SELECT tenant_key, pos, link_hash FROM tenancy.audit_chain_heads
              WHERE $1::uuid IS NULL OR tenant_key = $1
             UNION
             SELECT DISTINCT c.tenant_key, 0::bigint, NULL::bytea FROM tenancy.audit_chain c
              WHERE ($1::uuid IS NULL OR c.tenant_key = $1)
                AND NOT EXISTS (SELECT 1 FROM tenancy.audit_chain_heads h WHERE h.tenant_key = c.tenant_key)
             ORDER BY 1",
            &[only_key.into()],
        );
        // Rows below the sealed horizon that are in no chain were added afterwards.
        let forged: HashMap<pgrx::Uuid, i64> = Spi::connect(|client| {
            client
                .select(
                    "SELECT coalesce(a.tenant_id, $1), min(a.id)
                       FROM tenancy.audit_log a
                      WHERE a.txid < (SELECT coalesce(max(s.below_txid), 0) FROM tenancy.audit_seals s
                                       WHERE s.system_identifier =
                                             (SELECT system_identifier FROM pg_catalog.pg_control_system()))
                        AND NOT EXISTS (SELECT 1 FROM tenancy.audit_chain c WHERE c.audit_id = a.id)
                      GROUP BY 1",
                    None,
                    &[no_tenant.into()],
                )?
                .map(|row| Ok((row.get::<pgrx::Uuid>(1)?.expect("key"), row.get::<i64>(2)?.unwrap_or(0))))
                .collect::<Result<_, pgrx::spi::Error>>()
        })
        .expect("looking for unsealed old rows failed");

        // Links of rows in audit partitions that retention retired (recorded
        // in audit_expiry) are expired: not checked, but the chain continues
        // from their hash. A partition dropped by hand leaves missing links.
        let horizon: Option<pgrx::datum::TimestampWithTimeZone> =
            Spi::get_one("SELECT max(expired_before) FROM tenancy.audit_expiry")
                .expect("reading audit expiry failed");

        let mut verdicts = Vec::new();
        for (key, head_pos, head_link) in heads {
            let mut verdict = Verdict {
                tenant: if key == no_tenant { None } else { Some(key) },
                rows_checked: 0,
                ok: true,
                first_bad_id: None,
            };
            let mut previous: Vec<u8> = Vec::new();
            let mut expected_pos = 1i64;
            let mut after = 0i64;
            'chain: loop {
                let page: Vec<StoredLink> = Spi::connect(|client| {
                    let sql = format!(
                        "SELECT c.pos, c.audit_id, c.link_hash, c.logged_at < $3, a.id IS NOT NULL, {CONTENT_SQL}
                           FROM tenancy.audit_chain c
                           LEFT JOIN tenancy.audit_log a ON a.id = c.audit_id AND a.logged_at = c.logged_at
                          WHERE c.tenant_key = $1 AND c.pos > $2
                          ORDER BY c.pos
                          LIMIT {CHUNK}"
                    );
                    client
                        .select(sql.as_str(), None, &[key.into(), after.into(), horizon.into()])?
                        .map(|row| {
                            let present = row.get::<bool>(5)?.unwrap_or(false);
                            Ok(StoredLink {
                                pos: row.get::<i64>(1)?.unwrap_or(0),
                                audit_id: row.get::<i64>(2)?.unwrap_or(0),
                                stored: row.get::<Vec<u8>>(3)?.unwrap_or_default(),
                                expired: row.get::<bool>(4)?.unwrap_or(false),
                                content: if present {
                                    Some(content_hash(&read_fields(&row, 6)?))
                                } else {
                                    None
                                },
                            })
                        })
                        .collect::<Result<_, pgrx::spi::Error>>()
                })
                .expect("reading the chain failed");
                let Some(last) = page.last() else { break };
                after = last.pos;
                let mut page = page;
                if key != no_tenant {
                    fill_from_cluster_log(key, &mut page);
                }
                for StoredLink {
                    pos,
                    audit_id,
                    stored,
                    expired,
                    content,
                } in page
                {
                    if expired && content.is_none() && pos == expected_pos {
                        previous = stored;
                        expected_pos += 1;
                        continue;
                    }
                    let intact = pos == expected_pos
                        && content.is_some_and(|content| link(&previous, &content) == stored);
                    if !intact {
                        verdict.ok = false;
                        verdict.first_bad_id = Some(audit_id);
                        break 'chain;
                    }
                    previous = stored;
                    expected_pos += 1;
                    verdict.rows_checked += 1;
                }
            }
            // A chain shorter than its recorded head lost its last links.
            if verdict.ok
                && (head_pos != expected_pos - 1 || (head_pos > 0 && head_link != previous))
            {
                verdict.ok = false;
            }
            if let Some(id) = forged.get(&key) {
                if verdict.ok || verdict.first_bad_id.is_none_or(|bad| *id < bad) {
                    verdict.first_bad_id = Some(*id);
                }
                verdict.ok = false;
            }
            verdicts.push(verdict);
        }
        // Tenants with forged rows but no chain at all.
        for (key, id) in forged {
            let tenant = if key == no_tenant { None } else { Some(key) };
            if only.is_some_and(|o| o != key) || verdicts.iter().any(|v| v.tenant == tenant) {
                continue;
            }
            verdicts.push(Verdict {
                tenant,
                rows_checked: 0,
                ok: false,
                first_bad_id: Some(id),
            });
        }
        verdicts
    })
}

/// The content of links whose rows are not in `tenancy.audit_log`, from the
/// cluster log of a Citus cluster (ids of a node group, audit::cluster),
/// read in the one shard that holds `tenant`'s rows, wherever it is now.
fn fill_from_cluster_log(tenant: pgrx::Uuid, page: &mut [StoredLink]) {
    let first_cluster_id = super::cluster::id_base(0);
    let wanted: Vec<i64> = page
        .iter()
        .filter(|l| l.content.is_none() && l.audit_id >= first_cluster_id)
        .map(|l| l.audit_id)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let found: HashMap<i64, [u8; 32]> = Spi::connect(|client| {
        let sql = format!(
            "SELECT a.id, {CONTENT_SQL} FROM tenancy.cluster_audit_log a
              WHERE a.tenant_id = $1 AND a.id = ANY ($2)"
        );
        client
            .select(sql.as_str(), None, &[tenant.into(), wanted.into()])?
            .map(|row| {
                Ok((
                    row.get::<i64>(1)?.unwrap_or(0),
                    content_hash(&read_fields(&row, 2)?),
                ))
            })
            .collect::<Result<_, pgrx::spi::Error>>()
    })
    .expect("reading the cluster audit log failed");
    for link in page.iter_mut() {
        if link.content.is_none() {
            link.content = found.get(&link.audit_id).copied();
        }
    }
}

/// One link of a chain as `verify_audit` reads it back.
struct StoredLink {
    pos: i64,
    audit_id: i64,
    /// The link hash recorded when the row was sealed.
    stored: Vec<u8>,
    /// The row lies before the oldest audit partition (dropped by retention).
    expired: bool,
    /// The content hash recomputed from the audit row, when it still exists.
    content: Option<[u8; 32]>,
}
