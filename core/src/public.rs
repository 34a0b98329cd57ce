//! A key as it is shown (`list --json`, `show --json`, the management API): every field but its
//! secret and hashes; and a new key with its secret, the one time that is shown.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::{format_timestamp, Credits, KeyRecord, UnixMillis};

/// A key as shown: never its secret or hash.
#[derive(Serialize)]
struct Public<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    scopes: &'a [String],
    rate_limit: Option<String>,
    credits: Option<Shown>,
    created_at: &'a Option<String>,
    created_by: &'a Option<String>,
    updated_at: &'a Option<String>,
    updated_by: &'a Option<String>,
    expires_at: &'a Option<String>,
    expired: bool,
    disabled: bool,
    disabled_at: &'a Option<String>,
    previous_expires_at: Option<&'a String>,
    /// How the secret is kept: `sha256` (its hash) or `plaintext` (a legacy file's).
    stored_as: &'static str,
    metadata: Box<RawValue>,
}

/// One key as shown at `now`, on one line of JSON: never its secret or hash.
pub fn public_json(r: &KeyRecord, now: UnixMillis) -> String {
    let public = Public {
        id: &r.id,
        name: &r.name,
        status: r.status(now).word(),
        scopes: r.scope_list(),
        rate_limit: r.rate_limit.map(|l| l.to_string()),
        credits: r.credits.map(Shown::of),
        created_at: &r.created_at,
        created_by: &r.created_by,
        updated_at: &r.updated_at,
        updated_by: &r.updated_by,
        expires_at: &r.expires_at,
        expired: r.expiry().has_passed(now),
        disabled: r.disabled == Some(true),
        disabled_at: &r.disabled_at,
        previous_expires_at: r
            .previous_secret_hash
            .as_ref()
            .and(r.previous_expires_at.as_ref()),
        stored_as: match r.secret {
            Some(_) => "plaintext",
            None => "sha256",
        },
        metadata: r.compact_metadata(),
    };
    serde_json::to_string(&public).unwrap_or_default()
}

/// A key just created, with its `secret`, on one line of JSON (`create --json`, `POST /keys`).
/// The metadata text is written as it is: read into a `serde_json::Value`, metadata past
/// serde_json's nesting limit would fail after the key was saved.
pub fn created_json(r: &KeyRecord, secret: &str) -> String {
    #[derive(Serialize)]
    struct New<'a> {
        id: &'a str,
        secret: &'a str,
        name: &'a str,
        scopes: &'a [String],
        rate_limit: Option<String>,
        credits: Option<Shown>,
        created_at: &'a Option<String>,
        expires_at: &'a Option<String>,
        metadata: &'a RawValue,
    }
    let new = New {
        id: &r.id,
        secret,
        name: &r.name,
        scopes: r.scope_list(),
        rate_limit: r.rate_limit.map(|l| l.to_string()),
        credits: r.credits.map(Shown::of),
        created_at: &r.created_at,
        expires_at: &r.expires_at,
        metadata: &r.metadata,
    };
    serde_json::to_string(&new).unwrap_or_default()
}

/// A key's credits as shown: `{"amount", "refill" ("1000/day" or null), "since"}`.
#[derive(Serialize)]
struct Shown {
    amount: u64,
    refill: Option<String>,
    since: String,
}

impl Shown {
    fn of(credits: Credits) -> Shown {
        Shown {
            amount: credits.amount,
            refill: credits.refill.map(|r| r.to_string()),
            since: format_timestamp(credits.since),
        }
    }
}
