//! heare-auth's key store: the keys file in a local file or an S3 object, read, polled for
//! changes, and changed without losing a concurrent writer's keys, encrypted at rest when
//! `STORAGE_SECRET` is set. The server and the admin CLI share it.

mod backend;
mod changes;
mod config;
mod counters;
mod error;
mod file;
mod index;
mod s3;
mod store;

pub use backend::{Backend, Object, Parts, Put};
pub use changes::{next_change, Change, Net};
pub use config::{Location, StoreConfig, DEFAULT_KEYS_FILE};
pub use counters::{Answers, Counters, CountersConfig, Exchange, Op, DEFAULT_PREFIX, USAGE_DAYS};
pub use error::{Error, InvalidSetting};
pub use file::FileBackend;
pub use s3::{S3Backend, S3Config};
pub use store::{Base, Snapshot, State, Store, COMPACT_AFTER, EMPTY_FILE, FOLD_BELOW};

#[cfg(test)]
mod tests;
