//! The CLI's one error type and its exit codes. Messages never contain a secret.

use std::fmt;

/// Why a command failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// A value given on the command line is unusable (exit 1).
    Invalid(String),
    /// Reading or writing the keys file failed, or no key has the id (exit 1).
    Store(heare_auth_server::Error),
    /// The server could not be asked to reload (exit 1 for `refresh`; a warning elsewhere).
    Refresh(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Invalid(m) => f.write_str(m),
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Refresh(m) => write!(f, "Failed to refresh: {m}"),
        }
    }
}

impl From<heare_auth_server::Error> for CliError {
    fn from(e: heare_auth_server::Error) -> Self {
        CliError::Store(e)
    }
}
