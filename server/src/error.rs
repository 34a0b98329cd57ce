//! The one error type of the server crate.

use std::fmt;

use heare_auth_store::InvalidSetting;

/// Why the server could not start, or a reload failed. Messages never contain a secret.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The keys could not be read, or are not valid.
    Store(heare_auth_store::Error),
    /// A flag or environment variable is unusable.
    Setting(InvalidSetting),
    /// `SECRET_PREFIX` or `ID_PREFIX` is not a prefix: core's error names the setting.
    Prefix(heare_auth_core::Error),
    /// An argument that is not a flag of the server.
    Argument(String),
    /// Something the server needs could not be set up: the listening socket, threads, signals.
    Start {
        /// What could not be done: "listen on 0.0.0.0:8080".
        what: String,
        /// The operating system's reason.
        cause: String,
    },
}

impl Error {
    /// An [`Error::Start`]: could not `what` because of `cause`.
    pub fn start(what: impl Into<String>, cause: impl fmt::Display) -> Error {
        Error::Start {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::Setting(e) => e.fmt(f),
            Error::Prefix(e) => e.fmt(f),
            Error::Argument(arg) => write!(f, "unexpected argument '{arg}' (see --help)"),
            Error::Start { what, cause } => write!(f, "cannot {what}: {cause}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<heare_auth_store::Error> for Error {
    fn from(e: heare_auth_store::Error) -> Error {
        Error::Store(e)
    }
}

impl From<InvalidSetting> for Error {
    fn from(e: InvalidSetting) -> Error {
        Error::Setting(e)
    }
}
