//! The CLI's one error type and its exit codes. Messages never contain a secret.

use std::fmt;

use heare_auth_core::visible;

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// A value given on the command line is unusable (exit 1).
    Invalid(String),
    /// No key has this id (exit 1).
    NotFound(String),
    /// Reading or writing the keys file failed (exit 1).
    Store(heare_auth_store::Error),
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
            CliError::NotFound(id) => write!(f, "API key not found: {}", visible(id)),
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Refresh(m) => write!(f, "Failed to refresh: {}", visible(m)),
        }
    }
}

impl From<heare_auth_store::Error> for CliError {
    fn from(e: heare_auth_store::Error) -> Self {
        CliError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_everything_else_1() {
        let cases = [
            (CliError::Usage("create: unknown flag --nme".into()), 2),
            (CliError::Invalid("Invalid JSON in metadata: x".into()), 1),
            (CliError::NotFound("key_x".into()), 1),
            (
                CliError::Store(heare_auth_store::Error::unavailable("./keys.json", "gone")),
                1,
            ),
            (CliError::Refresh("http://h/refresh answered 500".into()), 1),
        ];
        let codes: Vec<u8> = cases.iter().map(|(e, _)| e.exit_code()).collect();
        assert_eq!(codes, cases.iter().map(|(_, c)| *c).collect::<Vec<u8>>());
    }

    #[test]
    fn messages_are_what_main_prints_after_error() {
        assert_eq!(
            CliError::NotFound("key_x".into()).to_string(),
            "API key not found: key_x"
        );
        assert_eq!(
            CliError::Refresh("http://h/refresh answered 500: boom".into()).to_string(),
            "Failed to refresh: http://h/refresh answered 500: boom"
        );
        assert_eq!(
            CliError::Usage("show: missing the key ID".into()).to_string(),
            "show: missing the key ID"
        );
    }
}
