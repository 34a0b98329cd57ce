//! The one error type of the server crate and its stores.

use std::fmt;

/// What went wrong loading, storing or serving keys. Messages never contain a secret.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The store could not be read or written (I/O, permissions, network).
    Store(String),
    /// The keys file was read but is not valid.
    Keys {
        /// Where the file came from.
        location: String,
        /// What is wrong with it.
        error: heare_auth_core::Error,
    },
    /// No key has this id.
    NotFound(String),
    /// Invalid configuration (flags or environment).
    Config(String),
}

impl Error {
    /// A keys-file error at `location`.
    pub fn keys(location: &str, error: heare_auth_core::Error) -> Error {
        Error::Keys {
            location: location.to_string(),
            error,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(msg) | Error::Config(msg) => f.write_str(msg),
            Error::Keys { location, error } => write!(f, "{location}: {error}"),
            Error::NotFound(id) => write!(f, "API key not found: {id}"),
        }
    }
}

impl std::error::Error for Error {}
