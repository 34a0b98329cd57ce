//! The pure edits of one key that the CLI and the management API apply under the store's
//! update: each returns the key changed, or `None` when it already is as asked, so that applied
//! again (to a fresh file, or to its own write read back) it finds nothing left to do.

use serde_json::value::RawValue;

use crate::{format_timestamp, hash_secret, Credits, KeyRecord, RateLimit, SecretHash, UnixMillis};

/// Records who changed the key, and when.
pub fn stamp(record: &mut KeyRecord, now: UnixMillis, actor: &str) {
    record.updated_at = Some(format_timestamp(now));
    record.updated_by = Some(actor.to_string());
}

/// `record` disabled (`disabled_at` now) or enabled (both fields removed); `None` when it
/// already is.
pub fn with_disabled(
    record: &KeyRecord,
    disabled: bool,
    now: UnixMillis,
    actor: &str,
) -> Option<KeyRecord> {
    if (record.disabled == Some(true)) == disabled {
        return None;
    }
    let mut edited = record.clone();
    (edited.disabled, edited.disabled_at) = match disabled {
        true => (Some(true), Some(format_timestamp(now))),
        false => (None, None),
    };
    stamp(&mut edited, now, actor);
    Some(edited)
}

/// `record` with `new_hash` as its secret and the secret it replaces kept until
/// `now + grace_ms` (not kept when 0), and whether an older previous secret still in its grace
/// period was dropped; `None` when `new_hash` already is its secret.
pub fn with_new_secret(
    record: &KeyRecord,
    new_hash: &str,
    grace_ms: u64,
    now: UnixMillis,
    actor: &str,
) -> Option<(KeyRecord, bool)> {
    if record.secret_hash.as_deref() == Some(new_hash) {
        return None;
    }
    let old = match (&record.secret, &record.secret_hash) {
        (Some(plain), _) => Some(hash_secret(plain).to_hex()),
        (None, Some(hex)) => {
            Some(SecretHash::from_hex(hex).map_or_else(|| hex.clone(), |h| h.to_hex()))
        }
        (None, None) => None,
    };
    let replaced = record
        .state()
        .previous
        .is_some_and(|until| !until.has_passed(now));
    let mut edited = record.clone();
    edited.secret = None;
    edited.secret_hash = Some(new_hash.to_string());
    (edited.previous_secret_hash, edited.previous_expires_at) = match old {
        Some(old) if grace_ms > 0 => {
            let until = now.saturating_add(i64::try_from(grace_ms).unwrap_or(i64::MAX));
            (Some(old), Some(format_timestamp(until)))
        }
        _ => (None, None),
    };
    stamp(&mut edited, now, actor);
    Some((edited, replaced))
}

/// New values for the fields a key's owner may change; `None`: kept.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// The name.
    pub name: Option<String>,
    /// Compact JSON text of an object, already checked (see [`crate::check_metadata`]).
    pub metadata: Option<Box<RawValue>>,
    /// The scopes, each already checked (see [`crate::check_scope`]).
    pub scopes: Option<Vec<String>>,
    /// `Some(None)`: the key never expires.
    pub expires_at: Option<Option<String>>,
    /// `Some(None)`: no rate limit.
    pub rate_limit: Option<Option<RateLimit>>,
    /// `Some(None)`: no credits; `Some(Some(_))` sets them (from their `since`), which starts
    /// their count again.
    pub credits: Option<Option<Credits>>,
}

impl Changes {
    /// Whether it changes nothing whatever the key.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.metadata.is_none()
            && self.scopes.is_none()
            && self.expires_at.is_none()
            && self.rate_limit.is_none()
            && self.credits.is_none()
    }
}

/// `record` with `changes`, and the fields that differ, in the order `name`, `metadata`,
/// `scopes`, `expires_at`, `rate_limit`, `credits`; `None` when it already has them.
pub fn with_changes(
    record: &KeyRecord,
    changes: &Changes,
    now: UnixMillis,
    actor: &str,
) -> Option<(KeyRecord, Vec<&'static str>)> {
    let mut edited = record.clone();
    let mut changed = Vec::new();
    if let Some(name) = changes.name.as_ref().filter(|&n| *n != record.name) {
        edited.name = name.clone();
        changed.push("name");
    }
    let metadata = changes.metadata.as_ref();
    if let Some(metadata) = metadata.filter(|m| m.get() != record.compact_metadata().get()) {
        edited.metadata = metadata.clone();
        changed.push("metadata");
    }
    if let Some(scopes) = changes
        .scopes
        .as_ref()
        .filter(|&s| record.scope_list() != s.as_slice())
    {
        edited.scopes = Some(scopes.clone());
        changed.push("scopes");
    }
    if let Some(expires_at) = changes
        .expires_at
        .as_ref()
        .filter(|&e| *e != record.expires_at)
    {
        edited.expires_at = expires_at.clone();
        changed.push("expires_at");
    }
    if let Some(limit) = changes
        .rate_limit
        .filter(|&limit| limit != record.rate_limit)
    {
        edited.rate_limit = limit;
        changed.push("rate_limit");
    }
    if let Some(credits) = changes.credits.filter(|&c| c != record.credits) {
        edited.credits = credits;
        changed.push("credits");
    }
    if changed.is_empty() {
        return None;
    }
    stamp(&mut edited, now, actor);
    Some((edited, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn key() -> KeyRecord {
        KeyRecord {
            id: "key_a".into(),
            name: "A".into(),
            secret_hash: Some(hash_secret("sec_a").to_hex()),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn each_edit_applied_twice_finds_nothing_left_to_do() {
        let off = with_disabled(&key(), true, NOW, "bob").unwrap();
        assert_eq!(off.disabled, Some(true));
        assert_eq!(off.updated_by.as_deref(), Some("bob"));
        assert_eq!(with_disabled(&off, true, NOW + 1, "ann"), None);

        let hash = hash_secret("sec_b").to_hex();
        let (rotated, replaced) = with_new_secret(&key(), &hash, 1000, NOW, "bob").unwrap();
        assert!(!replaced);
        assert_eq!(
            rotated.previous_secret_hash,
            Some(hash_secret("sec_a").to_hex())
        );
        assert_eq!(
            rotated.previous_expires_at,
            Some(format_timestamp(NOW + 1000))
        );
        assert_eq!(with_new_secret(&rotated, &hash, 1000, NOW, "bob"), None);

        let changes = Changes {
            name: Some("B".into()),
            rate_limit: Some(Some(RateLimit::parse("5/1s").unwrap())),
            ..Changes::default()
        };
        let (changed, fields) = with_changes(&key(), &changes, NOW, "bob").unwrap();
        assert_eq!(fields, ["name", "rate_limit"]);
        assert_eq!(changed.name, "B");
        assert_eq!(with_changes(&changed, &changes, NOW, "bob"), None);
        assert!(Changes::default().is_empty() && !changes.is_empty());
    }
}
