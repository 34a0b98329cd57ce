//! The one error type of the core, and the warnings a key file can load with.

use std::fmt;

/// Why a keys file (or a value meant for one) was rejected.
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
    /// An encrypted keys file could not be decrypted.
    Encryption { reason: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json {
                line,
                column,
                message,
            } => write!(f, "invalid JSON at line {line}, column {column}: {message}"),
            Error::MissingField { key, field } => write!(f, "key {key}: missing field `{field}`"),
            Error::InvalidField { key, field, reason } => {
                write!(f, "key {key}: field `{field}` {reason}")
            }
            Error::DuplicateId { id } => write!(f, "duplicate key id {id}"),
            Error::DuplicateSecret { first, second } => {
                write!(f, "keys {first} and {second} have the same secret")
            }
            Error::Timestamp { value } => write!(
                f,
                "expected an RFC 3339 timestamp or a date (2026-01-31T12:00:00Z, 2026-01-31), got '{value}'"
            ),
            Error::Encryption { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        let full = e.to_string();
        // serde_json appends " at line L column C"; we report those as fields instead.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        Error::Json {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// Something wrong with one key that does not stop the file from loading.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// `expires_at` is not a timestamp; the key fails closed and never verifies.
    UnparseableExpiry { id: String, value: String },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnparseableExpiry { id, value } => write!(
                f,
                "key {id}: expires_at '{value}' is not a timestamp; the key is treated as expired"
            ),
        }
    }
}
