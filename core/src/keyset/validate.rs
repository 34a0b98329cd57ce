//! The rules one record must meet to be loaded: an id, a secret (plaintext or hashed) that
//! agree, and an expiry that is read or reported.

use super::loader::RawKey;
use crate::{hash_secret, Error, Expiry, SecretHash, Warning};

/// The record's id: present and not empty. `index` names the record when it has none.
pub(super) fn id_of<'r>(index: usize, raw: &'r RawKey) -> Result<&'r str, Error> {
    match raw.id.as_deref() {
        Some(id) if !id.is_empty() => Ok(id),
        Some(_) => Err(Error::InvalidField {
            key: format!("keys[{index}]"),
            field: "id",
            reason: "is empty".into(),
        }),
        None => Err(Error::MissingField {
            key: format!("keys[{index}]"),
            field: "id",
        }),
    }
}

/// The record's expiry; one that cannot be read is kept (the key never verifies) and reported.
pub(super) fn expiry_of(id: &str, raw: &RawKey, warnings: &mut Vec<Warning>) -> Expiry {
    let expiry = Expiry::parse(raw.expires_at.as_deref());
    if let (Expiry::Unreadable, Some(value)) = (expiry, raw.expires_at.as_deref()) {
        warnings.push(Warning::UnparseableExpiry {
            id: id.into(),
            value: value.into(),
        });
    }
    expiry
}

/// The hash of the record's secret, from `secret` or `secret_hash` (which must agree).
pub(super) fn secret_hash_of(id: &str, raw: &RawKey) -> Result<SecretHash, Error> {
    let invalid = |field, reason: &str| Error::InvalidField {
        key: id.into(),
        field,
        reason: reason.into(),
    };
    let stored = match raw.secret_hash.as_deref() {
        None => None,
        Some(hex) => Some(
            SecretHash::from_hex(hex)
                .ok_or_else(|| invalid("secret_hash", "is not 64 hex digits (SHA-256)"))?,
        ),
    };
    match (raw.secret.as_deref(), stored) {
        (Some(""), _) => Err(invalid("secret", "is empty")),
        (Some(secret), Some(hash)) if hash_secret(secret) != hash => {
            Err(invalid("secret_hash", "does not match `secret`"))
        }
        (Some(secret), _) => Ok(hash_secret(secret)),
        (None, Some(hash)) => Ok(hash),
        (None, None) => Err(Error::MissingField {
            key: id.into(),
            field: "secret_hash",
        }),
    }
}
