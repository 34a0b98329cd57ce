//! The CLI's one error type and its exit codes. Messages never contain a secret.

use std::fmt;

use heare_auth_core::visible;

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// `--metadata` is not JSON: the parser's reason.
    MetadataNotJson(String),
    /// `--metadata` is JSON but not an object: what it is ("an array", "null", ...).
    MetadataNotObject(&'static str),
    /// `--metadata` is past the bounds the loader sets.
    MetadataTooBig(heare_auth_core::Error),
    /// No key has this id.
    NotFound(String),
    /// A keys file named on the command line does not exist.
    NoSuchFile(String),
    /// Reading or writing the keys file failed.
    Store(heare_auth_store::Error),
    /// A keys file the server would refuse (`export`, `import`): where, and every error the
    /// checker found in it, one line each.
    Unloadable {
        /// The file or store.
        location: String,
        /// The checker's errors, each naming its key.
        errors: Vec<String>,
    },
    /// Keys to import whose ids or secrets the store already holds: the checker's errors for
    /// the store's keys and the new ones together.
    Clash {
        /// The store.
        location: String,
        /// The checker's errors, each naming its keys.
        errors: Vec<String>,
    },
    /// A file to import that cannot be read as its format, or with keys the server would
    /// refuse, or that `import` refuses: every error, each naming the key by its place in the
    /// file (`line 3: key key_a: ...`).
    Unimportable {
        /// The file imported.
        location: String,
        /// One line per error.
        errors: Vec<String>,
    },
    /// A key could not be written as JSON to be checked against the store's.
    KeyJson(String),
    /// A file named on the command line could not be written (`export --output`).
    FileUnwritten {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// Standard output could not be written, and not because its reader has gone.
    Output(String),
    /// The only copy of a new secret could not be written to standard output.
    SecretUnwritten {
        /// The system's reason.
        reason: String,
        /// What to do instead ("rotate key_x again").
        remedy: String,
    },
    /// The answer to a confirmation prompt could not be read.
    Answer(String),
    /// The server could not be asked to reload (an error for `refresh`; a warning elsewhere).
    Refresh(String),
    /// The file named by `--admin-key-file` could not be read.
    AdminKeyFile {
        /// The file.
        path: String,
        /// The system's reason.
        reason: String,
    },
    /// The management API refused a request.
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's reason (its `error`), or what the CLI makes of the status.
        message: String,
        /// The `X-Request-Id` the request was sent with, to find it in the server's logs.
        request_id: String,
        /// How long the server asked to wait before trying again (`Retry-After`).
        retry_after_secs: Option<u64>,
    },
    /// The usage counts in Redis (`REDIS_URL`) could not be read: the store's error, naming
    /// the URL without its password.
    Counts(heare_auth_store::Error),
    /// The server could not be reached, or its answer not read to its end: the HTTP client's
    /// reason, naming the URL.
    Unreachable(String),
    /// The server answered something the CLI cannot read.
    Unexpected {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong with the answer.
        reason: String,
        /// The `X-Request-Id` the request was sent with.
        request_id: String,
    },
}

impl CliError {
    /// The process exit code for this error: 2 for a wrong command line, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Turns a keys file's error into the store error that names where the file is: the one
    /// mapping every read of the keys file uses.
    pub fn keys(location: &str) -> impl Fn(heare_auth_core::Error) -> CliError + '_ {
        move |error| CliError::Store(heare_auth_store::Error::keys(location, error))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::MetadataNotJson(reason) => write!(f, "Invalid JSON in metadata: {reason}"),
            CliError::MetadataNotObject(kind) => {
                write!(
                    f,
                    "Invalid JSON in metadata: expected a JSON object, got {kind}"
                )
            }
            CliError::MetadataTooBig(e) => write!(f, "Invalid metadata: --metadata {e}"),
            CliError::NotFound(id) => write!(f, "API key not found: {}", visible(id)),
            CliError::NoSuchFile(path) => write!(f, "{path}: no such file"),
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Unloadable { location, errors } => {
                write!(f, "{location}: not a keys file the server would load:")?;
                lines(f, errors)
            }
            CliError::Clash { location, errors } => {
                write!(
                    f,
                    "{location} already holds some of these ids or secrets; nothing written:"
                )?;
                lines(f, errors)
            }
            CliError::Unimportable { location, errors } => {
                write!(f, "{location}: cannot import these keys; nothing written:")?;
                lines(f, errors)
            }
            CliError::KeyJson(reason) => write!(f, "cannot write a key: {reason}"),
            CliError::FileUnwritten { path, reason } => write!(f, "cannot write {path}: {reason}"),
            CliError::Output(reason) => write!(f, "cannot write the output: {reason}"),
            CliError::SecretUnwritten { reason, remedy } => write!(
                f,
                "cannot write the new secret: {reason}; it is not stored anywhere, so {remedy}"
            ),
            CliError::Answer(reason) => write!(f, "cannot read the answer: {reason}"),
            CliError::Refresh(m) => write!(f, "Failed to refresh: {}", visible(m)),
            CliError::AdminKeyFile { path, reason } => {
                write!(f, "cannot read the admin key file {path}: {reason}")
            }
            CliError::Api {
                status,
                message,
                request_id,
                retry_after_secs,
            } => {
                write!(
                    f,
                    "{} (HTTP {status}, request {request_id})",
                    visible(message)
                )?;
                match retry_after_secs {
                    Some(secs) => write!(f, "; wait {secs} s before trying again"),
                    None => Ok(()),
                }
            }
            CliError::Counts(e) => write!(
                f,
                "cannot read usage counts from REDIS_URL {e}; unset REDIS_URL to work without \
                 usage"
            ),
            CliError::Unreachable(reason) => {
                write!(f, "cannot reach the server: {}", visible(reason))
            }
            CliError::Unexpected {
                url,
                status,
                reason,
                request_id,
            } => write!(
                f,
                "{url} answered HTTP {status}: {} (request {request_id})",
                visible(reason)
            ),
        }
    }
}

/// Each of `errors` on a line of its own, indented.
fn lines(f: &mut fmt::Formatter<'_>, errors: &[String]) -> fmt::Result {
    errors.iter().try_for_each(|e| write!(f, "\n  {e}"))
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
            (CliError::MetadataNotJson("x".into()), 1),
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

    #[test]
    fn each_failure_says_what_failed_first() {
        let lines = || vec!["duplicate key id a".to_string(), "key c: bad".to_string()];
        let cases = [
            (
                CliError::MetadataNotObject("an array"),
                "Invalid JSON in metadata: expected a JSON object, got an array",
            ),
            (CliError::NoSuchFile("b.json".into()), "b.json: no such file"),
            (
                CliError::Unloadable {
                    location: "b.json".into(),
                    errors: lines(),
                },
                "b.json: not a keys file the server would load:\n  duplicate key id a\n  key c: bad",
            ),
            (
                CliError::Clash {
                    location: "./keys.json".into(),
                    errors: lines(),
                },
                "./keys.json already holds some of these ids or secrets; nothing written:\n  \
                 duplicate key id a\n  key c: bad",
            ),
            (
                CliError::Unimportable {
                    location: "b.csv".into(),
                    errors: vec!["line 3: missing field `id`".into()],
                },
                "b.csv: cannot import these keys; nothing written:\n  line 3: missing field `id`",
            ),
            (
                CliError::FileUnwritten {
                    path: "/x/out.json".into(),
                    reason: "No such file or directory (os error 2)".into(),
                },
                "cannot write /x/out.json: No such file or directory (os error 2)",
            ),
            (
                CliError::Output("Bad file descriptor (os error 9)".into()),
                "cannot write the output: Bad file descriptor (os error 9)",
            ),
            (
                CliError::SecretUnwritten {
                    reason: "Broken pipe (os error 32)".into(),
                    remedy: "rotate key_x again".into(),
                },
                "cannot write the new secret: Broken pipe (os error 32); it is not stored \
                 anywhere, so rotate key_x again",
            ),
            (
                CliError::Answer("stream did not contain valid UTF-8".into()),
                "cannot read the answer: stream did not contain valid UTF-8",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
            assert_eq!(error.exit_code(), 1, "{want}");
        }
    }

    #[test]
    fn a_server_refusal_names_the_status_and_the_request() {
        let refused = |status, retry_after_secs| CliError::Api {
            status,
            message: "Too many attempts\x1b[2J".into(),
            request_id: "0123456789abcdef01234567".into(),
            retry_after_secs,
        };
        assert_eq!(
            refused(429, Some(30)).to_string(),
            "Too many attempts\\x1b[2J (HTTP 429, request 0123456789abcdef01234567); wait \
             30 s before trying again"
        );
        assert_eq!(
            refused(401, None).to_string(),
            "Too many attempts\\x1b[2J (HTTP 401, request 0123456789abcdef01234567)"
        );
        let cases = [
            (
                CliError::Unreachable("http://h/keys: Connection Failed".into()),
                "cannot reach the server: http://h/keys: Connection Failed",
            ),
            (
                CliError::Unexpected {
                    url: "http://h/keys".into(),
                    status: 200,
                    reason: "missing field `keys`".into(),
                    request_id: "ab".into(),
                },
                "http://h/keys answered HTTP 200: missing field `keys` (request ab)",
            ),
            (
                CliError::AdminKeyFile {
                    path: "/k".into(),
                    reason: "Permission denied (os error 13)".into(),
                },
                "cannot read the admin key file /k: Permission denied (os error 13)",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
            assert_eq!(error.exit_code(), 1, "{want}");
        }
        assert_eq!(refused(503, None).exit_code(), 1);
    }

    #[test]
    fn a_keys_file_error_names_where_the_file_is() {
        let error = heare_auth_core::Error::DuplicateId { id: "a".into() };
        assert_eq!(
            CliError::keys("./keys.json")(error.clone()),
            CliError::Store(heare_auth_store::Error::keys("./keys.json", error))
        );
    }
}
