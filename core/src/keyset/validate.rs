//! The rules one record must meet to be loaded: an id, a secret (plaintext or hashed) that
//! agree, an expiry that is read or reported, and metadata within its bounds.

use std::borrow::Cow;

use super::raw::RecordFields;
use crate::{
    check_metadata, check_scope, hash_secret, Credits, Error, Expiry, RateLimit, SecretHash,
    Warning,
};

/// The record's id: present and not empty. `index` names the record when it has none.
pub(super) fn id_of<'r>(index: usize, raw: &'r RecordFields) -> Result<&'r str, Error> {
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
pub(super) fn expiry_of(id: &str, raw: &RecordFields, warnings: &mut Vec<Warning>) -> Expiry {
    let expiry = Expiry::parse(raw.expires_at.as_deref());
    if let (Expiry::Unreadable, Some(value)) = (expiry, raw.expires_at.as_deref()) {
        warnings.push(Warning::UnparseableExpiry {
            id: id.into(),
            value: value.into(),
        });
    }
    expiry
}

/// The record's scopes: an array of scope names (absent or `null`: none).
pub(super) fn scopes_of<'r>(id: &str, raw: &RecordFields<'r>) -> Result<Vec<Cow<'r, str>>, Error> {
    let invalid = |reason: String| Error::InvalidField {
        key: id.into(),
        field: "scopes",
        reason,
    };
    let Some(json) = raw.scopes.map(|r| r.get()).filter(|j| *j != "null") else {
        return Ok(Vec::new());
    };
    let scopes: Vec<Cow<'r, str>> =
        serde_json::from_str(json).map_err(|_| invalid("is not an array of strings".into()))?;
    if let Err(problem) = scopes.iter().try_for_each(|s| check_scope(s)) {
        return Err(invalid(format!("is not valid: {problem}")));
    }
    Ok(scopes)
}

/// The record's rate limit, `{"requests": N, "per_seconds": S}` (absent or `null`: none).
pub(super) fn limit_of(id: &str, raw: &RecordFields) -> Result<Option<RateLimit>, Error> {
    let Some(json) = raw.rate_limit.map(|r| r.get()).filter(|j| *j != "null") else {
        return Ok(None);
    };
    RateLimit::from_stored(json)
        .map(Some)
        .map_err(|reason| Error::InvalidField {
            key: id.into(),
            field: "rate_limit",
            reason,
        })
}

/// The record's credits (absent or `null`: none).
pub(super) fn credits_of(id: &str, raw: &RecordFields) -> Result<Option<Credits>, Error> {
    let Some(json) = raw.credits.map(|r| r.get()).filter(|j| *j != "null") else {
        return Ok(None);
    };
    Credits::from_stored(json)
        .map(Some)
        .map_err(|reason| Error::InvalidField {
            key: id.into(),
            field: "credits",
            reason,
        })
}

/// The record's previous secret, kept for a grace period after a rotation: its hash and when
/// the grace ends (one that cannot be read ends at once, and is reported).
pub(super) fn previous_of(
    id: &str,
    raw: &RecordFields,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(SecretHash, Expiry)>, Error> {
    let Some(hex) = raw.previous_secret_hash.as_deref() else {
        return Ok(None);
    };
    let hash = SecretHash::from_hex(hex).ok_or_else(|| Error::InvalidField {
        key: id.into(),
        field: "previous_secret_hash",
        reason: "is not 64 hex digits (SHA-256)".into(),
    })?;
    let Some(value) = raw.previous_expires_at.as_deref() else {
        return Err(Error::MissingField {
            key: id.into(),
            field: "previous_expires_at",
        });
    };
    let until = Expiry::parse(Some(value));
    if until == Expiry::Unreadable {
        warnings.push(Warning::UnparseablePreviousExpiry {
            id: id.into(),
            value: value.into(),
        });
    }
    Ok(Some((hash, until)))
}

/// The hash of the record's secret, from `secret` or `secret_hash` (which must agree).
pub(super) fn secret_hash_of(id: &str, raw: &RecordFields) -> Result<SecretHash, Error> {
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

/// The record's metadata as JSON text, within its bounds (absent or `null`: none).
pub(super) fn metadata_of<'r>(id: &str, raw: &RecordFields<'r>) -> Result<Option<&'r str>, Error> {
    let Some(json) = raw.metadata.map(|r| r.get()).filter(|j| *j != "null") else {
        return Ok(None);
    };
    match check_metadata(json) {
        Err(Error::OversizedMetadata {
            bound,
            limit,
            found,
        }) => Err(Error::MetadataTooLarge {
            key: id.into(),
            field: "metadata",
            bound,
            limit,
            found,
        }),
        checked => checked.map(|()| Some(json)),
    }
}
