//! The tenant from a JWT claim: with `tenancy.tenant_claim` set (say
//! `tenant_id`, or `app_metadata.tenant_id`), a session with no tenant set
//! takes the one named by that claim of `request.jwt.claims`, the setting
//! PostgREST (and Supabase) fill with the verified token's claims in every
//! transaction. The claim is checked like `set_tenant`'s argument: the
//! tenant must exist, be active and be one the session's roles may select
//! (`bindings`), so a role that forges the claims setting still gets no
//! tenant outside its binding.
//!
//! The claims text is read on every call of `current_tenant()` (a pointer to
//! PostgreSQL's copy); it is parsed and checked only when it differs from the
//! last one, or the bindings or tenants changed since.

use super::bindings;
use super::context::TENANT_CLAIM;
use crate::common::error;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;

struct Cached {
    claims: Vec<u8>,
    path: Vec<u8>,
    generation: u64,
    users: (pg_sys::Oid, pg_sys::Oid),
    tenant: Option<[u8; 16]>,
}

thread_local! {
    static LAST: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// The tenant the configured claim names, checked; None when the feature is
/// off or the claim is absent.
pub fn tenant_from_claims() -> Option<[u8; 16]> {
    let path = TENANT_CLAIM.get().filter(|p| !p.as_bytes().is_empty())?;
    // SAFETY: reads a setting's current value; NULL when it does not exist.
    let claims = unsafe { pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false) };
    if claims.is_null() {
        return None;
    }
    // SAFETY: PostgreSQL's NUL-terminated copy of the value.
    let claims = unsafe { CStr::from_ptr(claims) }.to_bytes();
    if claims.is_empty() {
        return None;
    }
    let generation = bindings::generation();
    let users = bindings::acting_roles();
    let hit = LAST.with(|last| {
        last.borrow().as_ref().and_then(|c| {
            (c.claims == claims
                && c.path == path.as_bytes()
                && c.generation == generation
                && c.users == users)
                .then_some(c.tenant)
        })
    });
    if let Some(tenant) = hit {
        return tenant;
    }
    let path_text = path.to_string_lossy().into_owned();
    let tenant = claimed_tenant(claims, &path_text).unwrap_or_else(|e| {
        e.report(PgLogLevel::ERROR);
        unreachable!("an ERROR does not return")
    });
    if let Some(tenant) = &tenant {
        super::registry::require_active(tenant)
            .and_then(|()| bindings::require_allowed(tenant))
            .unwrap_or_else(|e| {
                e.set_hint(format!(
                    "The tenant comes from claim \"{path_text}\" of request.jwt.claims (tenancy.tenant_claim)."
                ))
                .report(PgLogLevel::ERROR);
            });
    }
    LAST.with(|last| {
        *last.borrow_mut() = Some(Cached {
            claims: claims.to_vec(),
            path: path.as_bytes().to_vec(),
            generation,
            users,
            tenant,
        })
    });
    tenant
}

/// The tenant id at `path` (dot-separated keys) of the claims JSON: None when
/// a key is missing or the value is null; 22023 when it is not a uuid string.
pub fn claimed_tenant(claims: &[u8], path: &str) -> crate::common::error::Result<Option<[u8; 16]>> {
    let json: serde_json::Value = serde_json::from_slice(claims)
        .map_err(|e| error::invalid_parameter(format!("request.jwt.claims is not JSON: {e}")))?;
    let mut value = &json;
    for key in path.split('.') {
        match value.get(key) {
            Some(next) => value = next,
            None => return Ok(None),
        }
    }
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) => {
            super::context::parse_tenant_setting(text).map_err(|why| {
                error::invalid_parameter(format!(
                    "claim \"{path}\" of request.jwt.claims is not a tenant id"
                ))
                .set_detail(why)
            })
        }
        other => Err(error::invalid_parameter(format!(
            "claim \"{path}\" of request.jwt.claims is not a tenant id"
        ))
        .set_detail(format!("It holds {other}, not a uuid string."))),
    }
}

#[cfg(test)]
mod unit_tests {
    use super::claimed_tenant;

    const ACME: &str = "6f1c2e1e-8f1a-4a51-9a53-5d0f4f3b2a10";

    #[test]
    fn finds_top_level_and_nested_claims() {
        let top = format!(r#"{{"sub": "u1", "tenant_id": "{ACME}"}}"#);
        let id = claimed_tenant(top.as_bytes(), "tenant_id")
            .unwrap()
            .unwrap();
        assert_eq!(crate::tenant::context::format_tenant(&id), ACME);
        let nested = format!(r#"{{"app_metadata": {{"tenant_id": "{ACME}"}}}}"#);
        assert!(claimed_tenant(nested.as_bytes(), "app_metadata.tenant_id")
            .unwrap()
            .is_some());
    }

    #[test]
    fn absent_or_null_claims_are_no_tenant() {
        assert_eq!(
            claimed_tenant(br#"{"sub": "u1"}"#, "tenant_id").unwrap(),
            None
        );
        assert_eq!(
            claimed_tenant(br#"{"tenant_id": null}"#, "tenant_id").unwrap(),
            None
        );
        assert_eq!(claimed_tenant(br#"{"a": 1}"#, "a.b").unwrap(), None);
    }

    #[test]
    fn wrong_claims_are_errors() {
        assert!(claimed_tenant(br#"{"tenant_id": 42}"#, "tenant_id").is_err());
        assert!(claimed_tenant(br#"{"tenant_id": "acme"}"#, "tenant_id").is_err());
        assert!(claimed_tenant(b"not json", "tenant_id").is_err());
    }
}
