//! What a command reads from the process: environment variables, the clock, the machine's
//! name, and the store and the usage counts they choose.

use std::time::SystemTime;

use heare_auth_core::{unix_millis, Prefixes, UnixMillis};
use heare_auth_store::{CountersConfig, Location, Store, StoreConfig};

use crate::cmd::Invocation;
use crate::remote::target::{self, Target};
use crate::{actor, CliError};

/// Where a change asks the server to reload when `REFRESH_URL` is not set.
const DEFAULT_REFRESH_URL: &str = "http://localhost:8080/refresh";

/// The process's environment and clock, read once; the store and the actor only when a
/// command asks for them.
pub struct Context {
    /// Where a change asks the server to reload: `REFRESH_URL`, or the default.
    pub refresh_url: String,
    /// When the command started.
    pub now: UnixMillis,
}

impl Context {
    /// This process's.
    pub fn of_process() -> Context {
        Context {
            refresh_url: var("REFRESH_URL")
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_REFRESH_URL.into()),
            now: unix_millis(SystemTime::now()),
        }
    }

    /// Where `inv` runs: on the store, or through the server `--url` or `HEARE_AUTH_URL`
    /// names (see [`target::choose`]).
    pub fn target(&self, inv: &Invocation) -> Result<Target, CliError> {
        target::choose(inv, var)
    }

    /// The store the environment chooses.
    pub fn config(&self) -> Result<StoreConfig, CliError> {
        Ok(StoreConfig::from_env(var)?)
    }

    /// The usage counts the replicas share, `REDIS_URL` and `REDIS_PREFIX`; `None` when
    /// `REDIS_URL` is not set.
    pub fn counters(&self) -> Result<Option<CountersConfig>, CliError> {
        Ok(CountersConfig::from_env(var)?)
    }

    /// The store, opened for a command that only reads.
    pub fn open(&self) -> Result<Store, CliError> {
        Ok(self.config()?.open()?)
    }

    /// The store, opened for a command that writes, saying on stderr when writes are
    /// unprotected.
    pub fn open_for_writing(&self) -> Result<Store, CliError> {
        let config = self.config()?;
        if let Location::S3(s3) = &config.location {
            if s3.unsafe_writes {
                eprintln!(
                    "Warning: S3_UNSAFE_WRITES=1: writing {} without conditional writes; \
                     an admin writing at the same time could drop this change or theirs.",
                    s3.location()
                );
            }
        }
        Ok(config.open()?)
    }

    /// The prefixes of the secrets and ids made on the store: `SECRET_PREFIX` and `ID_PREFIX`,
    /// or the defaults; a bad one is a usage error naming it.
    pub fn prefixes(&self) -> Result<Prefixes, CliError> {
        Prefixes::from_env(var).map_err(|e| CliError::Usage(e.to_string()))
    }

    /// Who makes a change (see [`actor::actor`]).
    pub fn actor(&self) -> String {
        actor::actor(var, hostname)
    }

    /// The plaintext of a keys file named on the command line, decrypted with `STORAGE_SECRET`
    /// when it is encrypted.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let config = StoreConfig {
            location: Location::File(path.to_string()),
            storage_secret: var("STORAGE_SECRET").filter(|s| !s.is_empty()),
        };
        config
            .open()?
            .load()?
            .bytes
            .ok_or_else(|| CliError::NoSuchFile(path.to_string()))
    }
}

/// An environment variable, if set to text.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The machine's name, for the default actor.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
}
