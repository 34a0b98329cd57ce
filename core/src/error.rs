//! The one error type of the core, and the warnings a key file can load with.

use std::fmt;

use crate::{visible, MetadataBound};

/// Why a keys file, or a value meant for one (a timestamp, a rate limit, a scope, metadata, a
/// name), was rejected. A malformed `/verify` request is not an error of this kind but an
/// answer: see [`crate::Rejection`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The file is not valid JSON, or not of the keys-file shape.
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A required field is absent. `key` is the key id, or `keys[N]` when the id itself is missing.
    MissingField { key: String, field: &'static str },
    /// A field is present but unusable.
    InvalidField {
        key: String,
        field: &'static str,
        reason: String,
    },
    /// Two keys share an id.
    DuplicateId { id: String },
    /// Two keys share a secret (`first` and `second` are their ids, never the secret).
    DuplicateSecret { first: String, second: String },
    /// A timestamp given by a user (not read from the file) could not be parsed.
    Timestamp { value: String },
    /// The keys file is encrypted and no `STORAGE_SECRET` was given.
    NoStorageSecret,
    /// The keys file is encrypted and could not be decrypted: a wrong `STORAGE_SECRET`, or a
    /// damaged file (the two cannot be told apart, by design).
    CannotDecrypt,
    /// A key's metadata passes one of its bounds ([`crate::MAX_METADATA_DEPTH`],
    /// [`crate::MAX_METADATA_BYTES`]).
    MetadataTooLarge {
        /// The key's id.
        key: String,
        /// The field (`metadata`).
        field: &'static str,
        /// Which bound.
        bound: MetadataBound,
        /// The bound: most levels, or most bytes of compact JSON.
        limit: usize,
        /// The depth or size found.
        found: usize,
    },
    /// Text that names a key (see [`crate::check_name`]) holds a control character.
    ControlCharacter {
        /// The field: `name` or `id`.
        field: &'static str,
        /// Where the first one is, in characters from 1.
        position: usize,
        /// The character.
        character: char,
    },
    /// Text that names a key (see [`crate::check_name`]) is longer than
    /// [`crate::MAX_NAME_CHARS`].
    NameTooLong {
        /// The field: `name` or `id`.
        field: &'static str,
        /// Its length, in characters.
        chars: usize,
    },
    /// Metadata checked on its own ([`crate::check_metadata`]), before it is any key's, passes
    /// one of its bounds. Its message reads after the name of what was checked
    /// (`--metadata is nested 33 levels deep; ...`).
    OversizedMetadata {
        /// Which bound.
        bound: MetadataBound,
        /// The bound: most levels, or most bytes of compact JSON.
        limit: usize,
        /// The depth or size found.
        found: usize,
    },
    /// A rate limit is not written `REQUESTS/PERIOD` ([`crate::RateLimit::parse`]).
    RateLimitFormat {
        /// The text given.
        text: String,
    },
    /// A refill is not written `AMOUNT/day` or `AMOUNT/month` ([`crate::Refill::parse`]).
    CreditsFormat {
        /// The text given.
        text: String,
    },
    /// A secret or id prefix (`SECRET_PREFIX`, `ID_PREFIX`) that is not a short run of lowercase
    /// letters, digits and `_`, beginning with a letter and ending in `_`.
    Prefix {
        /// The setting.
        setting: &'static str,
        /// The text given.
        text: String,
    },
    /// A rate limit allows no requests, or more than can be counted.
    RateLimitRequests {
        /// The number of requests given.
        requests: u64,
        /// The most allowed (the least is 1).
        max: u64,
    },
    /// A rate limit's period is empty or too long.
    RateLimitPeriod {
        /// The period given, in milliseconds.
        per_ms: u64,
        /// The longest allowed, in milliseconds (the shortest is 1).
        max_ms: u64,
    },
    /// A scope name is empty.
    EmptyScope,
    /// A scope name is too long.
    ScopeTooLong {
        /// Its length in bytes.
        length: usize,
        /// The most allowed.
        max: usize,
    },
    /// A scope name holds a character scopes may not: not visible ASCII, or `"`, `\` or `,`.
    ScopeCharacter {
        /// The scope.
        scope: String,
        /// The first such character.
        character: char,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json {
                line,
                column,
                message,
            } => write!(
                f,
                "invalid JSON at line {line}, column {column}: {}",
                visible(message)
            ),
            Error::MissingField { key, field } => {
                write!(f, "key {}: missing field `{field}`", visible(key))
            }
            Error::InvalidField { key, field, reason } => {
                write!(f, "key {}: field `{field}` {}", visible(key), visible(reason))
            }
            Error::DuplicateId { id } => write!(f, "duplicate key id {}", visible(id)),
            Error::DuplicateSecret { first, second } => write!(
                f,
                "keys {} and {} have the same secret",
                visible(first),
                visible(second)
            ),
            Error::Timestamp { value } => write!(
                f,
                "expected an RFC 3339 timestamp or a date (2026-01-31T12:00:00Z, 2026-01-31), got '{}'",
                visible(value)
            ),
            Error::NoStorageSecret => {
                f.write_str("the keys file is encrypted but STORAGE_SECRET is not set")
            }
            Error::CannotDecrypt => f.write_str(
                "cannot decrypt the keys file: wrong STORAGE_SECRET or a damaged file",
            ),
            Error::MetadataTooLarge {
                key,
                field,
                bound,
                limit,
                found,
            } => {
                write!(f, "key {}: field `{field}` ", visible(key))?;
                oversized(f, *bound, *limit, *found)
            }
            Error::NameTooLong { field, chars } => write!(
                f,
                "field `{field}` is {chars} characters long; at most {} are allowed",
                crate::MAX_NAME_CHARS
            ),
            Error::ControlCharacter {
                field,
                position,
                character,
            } => write!(
                f,
                "field `{field}` has a control character ({}) at character {position}",
                visible(character.encode_utf8(&mut [0; 4]))
            ),
            Error::OversizedMetadata {
                bound,
                limit,
                found,
            } => oversized(f, *bound, *limit, *found),
            Error::Prefix { setting, text } => write!(
                f,
                "{setting}: expected 2 to {} lowercase letters, digits and _, beginning with a \
                 letter and ending in _ (like acme_sk_), got '{}'",
                crate::MAX_PREFIX_LEN,
                visible(text)
            ),
            Error::RateLimitFormat { text } => write!(
                f,
                "expected REQUESTS/PERIOD like 100/60s or 5/1m, got '{text}'"
            ),
            Error::CreditsFormat { text } => write!(
                f,
                "expected AMOUNT/day or AMOUNT/month like 1000/day, got '{}'",
                visible(text)
            ),
            Error::RateLimitRequests { requests, max } => {
                write!(f, "expected 1 to {max} requests, got {requests}")
            }
            Error::RateLimitPeriod { per_ms, max_ms } => write!(
                f,
                "expected a period of 1 ms to {} days, got {per_ms} ms",
                max_ms / 86_400_000
            ),
            Error::EmptyScope => f.write_str("a scope must not be empty"),
            Error::ScopeTooLong { max, .. } => write!(f, "a scope has at most {max} characters"),
            Error::ScopeCharacter { scope, character } => write!(
                f,
                "scope '{}' contains {}: use letters, digits and ASCII punctuation other than \" \\ ,",
                scope.escape_debug(),
                match character {
                    ' ' => "a space".to_string(),
                    c => format!("'{}'", c.escape_debug()),
                }
            ),
        }
    }
}

/// What metadata past a bound is, said after what names it.
fn oversized(
    f: &mut fmt::Formatter<'_>,
    bound: MetadataBound,
    limit: usize,
    found: usize,
) -> fmt::Result {
    match bound {
        MetadataBound::Depth => write!(
            f,
            "is nested {found} levels deep; at most {limit} levels are allowed"
        ),
        MetadataBound::Bytes => write!(
            f,
            "is {found} bytes as compact JSON; at most {limit} bytes are allowed"
        ),
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json {
            line: e.line(),
            // serde_json says column 0 just after it reads a newline (at the end of the text):
            // that is the first column of the new line.
            column: e.column().max(1),
            message: message_of(&e),
        }
    }
}

/// The text of a keys file: an object (`{` first), in UTF-8. Errors give the position.
pub(crate) fn json_text(bytes: &[u8]) -> Result<&str, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Json {
            line: 1,
            column: 1,
            message: "expected an object with a `keys` array".into(),
        });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(&bytes[..e.valid_up_to()]);
        Error::Json {
            line,
            column,
            message: "invalid UTF-8".into(),
        }
    })
}

/// 1-based line and column of the byte just after `before`.
fn position(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, before.len() - line_start + 1)
}

/// A parse error in a part of `source` that starts at byte `offset`, placed in `source`.
pub(crate) fn json_error_at(source: &str, offset: usize, e: &serde_json::Error) -> Error {
    let part = &source.as_bytes()[offset..];
    // Where serde_json's line and column (1-based, in the part) fall, as a byte index.
    let mut at = 0;
    for _ in 1..e.line() {
        at += part[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(part.len() - at, |i| i + 1);
    }
    at = (at + e.column().saturating_sub(1)).min(part.len());
    let (line, column) = position(&source.as_bytes()[..offset + at]);
    Error::Json {
        line,
        column,
        message: message_of(e),
    }
}

/// serde_json's message without the " at line L column C" it appends (reported as fields).
fn message_of(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

/// Something wrong with one key that does not stop the file from loading.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// `expires_at` is not a timestamp; the key fails closed and never verifies.
    UnparseableExpiry { id: String, value: String },
    /// `previous_expires_at` is not a timestamp; the previous secret never verifies.
    UnparseablePreviousExpiry { id: String, value: String },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnparseableExpiry { id, value } => write!(
                f,
                "key {}: expires_at '{}' is not a timestamp; the key is treated as expired",
                visible(id),
                visible(value)
            ),
            Warning::UnparseablePreviousExpiry { id, value } => write!(
                f,
                "key {}: previous_expires_at '{}' is not a timestamp; the previous secret no longer verifies",
                visible(id),
                visible(value)
            ),
        }
    }
}
