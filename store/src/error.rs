//! The one error type of the store, and the settings error it shares with the server.

use std::fmt;

/// What went wrong reading or changing the keys file. Messages never contain a secret.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The store could not be reached, read or written (I/O, permissions, network, an S3 error
    /// status); trying again later may work.
    Unavailable {
        /// Where the keys file is.
        location: String,
        /// What failed and why.
        message: String,
    },
    /// A write got no answer (a timeout, a connection that failed or closed): it may have been
    /// sent, and may have landed or land yet.
    Unanswered {
        /// Where the keys file is.
        location: String,
        /// What failed and why.
        message: String,
    },
    /// The store answered a read with content that is not what it holds: cut short, or not
    /// matching the checksum stored with it (damaged in transfer, or read while writes were
    /// landing); reading again may work.
    Damaged {
        /// Where the keys file is.
        location: String,
        /// What was wrong with it.
        message: String,
    },
    /// The keys file was read but is not valid (or cannot be decrypted).
    Keys {
        /// Where the keys file is.
        location: String,
        /// What is wrong with it.
        error: heare_auth_core::Error,
    },
    /// Other writers changed the file every time this one tried; nothing was written.
    Contended {
        /// Where the keys file is.
        location: String,
        /// How many times it tried.
        attempts: u32,
    },
    /// The store accepts conditional writes but does not honour them, so concurrent changes
    /// could be lost; nothing was written.
    ConditionsIgnored {
        /// Where the keys file is.
        location: String,
    },
    /// The store refuses conditional writes.
    ConditionsRejected {
        /// Where the keys file is.
        location: String,
        /// The HTTP status it answered.
        status: u16,
    },
    /// The shared counts (Redis) could not be reached or answered with an error.
    Counters {
        /// The Redis URL, without its password.
        location: String,
        /// What failed and why.
        message: String,
    },
    /// The shared counts answered a change with an error of their own (not an outage): sending
    /// it again would fail again.
    CountersRefused {
        /// The Redis URL, without its password.
        location: String,
        /// What Redis answered.
        message: String,
    },
    /// A setting is unusable.
    Setting(InvalidSetting),
}

impl Error {
    /// An [`Error::Unavailable`].
    pub fn unavailable(location: &str, message: impl fmt::Display) -> Error {
        Error::Unavailable {
            location: location.to_string(),
            message: message.to_string(),
        }
    }

    /// An [`Error::Keys`].
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
            Error::Unavailable { location, message }
            | Error::Unanswered { location, message }
            | Error::Damaged { location, message }
            | Error::Counters { location, message }
            | Error::CountersRefused { location, message } => write!(f, "{location}: {message}"),
            Error::Keys { location, error } => write!(f, "{location}: {error}"),
            Error::Contended { location, attempts } => write!(
                f,
                "{location}: gave up after {attempts} conflicting concurrent writes; try again"
            ),
            Error::ConditionsIgnored { location } => write!(
                f,
                "{location}: this S3 store accepts conditional writes (If-Match, If-None-Match) \
                 but ignores their conditions, so two admins writing at once could drop each \
                 other's keys; nothing was written. To write anyway, without that protection, \
                 set S3_UNSAFE_WRITES=1 and make sure only one admin writes at a time"
            ),
            Error::ConditionsRejected { location, status } => write!(
                f,
                "{location}: this S3 store rejects conditional writes (HTTP {status}); heare-auth \
                 needs them so that concurrent admins cannot drop each other's keys. To write \
                 anyway, without that protection, set S3_UNSAFE_WRITES=1"
            ),
            Error::Setting(setting) => setting.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<InvalidSetting> for Error {
    fn from(e: InvalidSetting) -> Error {
        Error::Setting(e)
    }
}

/// A setting (a flag or an environment variable) whose value cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The flag or variable.
    pub name: String,
    /// What it should be.
    pub expected: &'static str,
    /// What it was.
    pub got: String,
}

impl InvalidSetting {
    /// `name` should be `expected` but was `got`.
    pub fn new(name: &str, expected: &'static str, got: &str) -> InvalidSetting {
        InvalidSetting {
            name: name.to_string(),
            expected,
            got: got.to_string(),
        }
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got '{}'",
            self.name, self.expected, self.got
        )
    }
}

impl std::error::Error for InvalidSetting {}
