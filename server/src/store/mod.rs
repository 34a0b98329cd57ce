//! Where the keys file lives: a local file by default (S3 comes later), behind one small trait.

mod file;

pub use file::FileStore;

use heare_auth_core::KeyFile;

use crate::Error;

/// One read of the keys file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The file's bytes, or `None` when it does not exist yet (which means zero keys).
    pub bytes: Option<Vec<u8>>,
}

impl Snapshot {
    /// The bytes, with a missing file read as an empty key list.
    pub fn bytes_or_empty(&self) -> &[u8] {
        self.bytes.as_deref().unwrap_or(EMPTY_FILE)
    }
}

/// The contents of a keys file with no keys.
pub const EMPTY_FILE: &[u8] = br#"{"keys": []}"#;

/// A keys-file store.
pub trait Store: Send + Sync {
    /// Where the file is, for messages: `./keys.json`.
    fn location(&self) -> String;

    /// Reads the current file.
    fn load(&self) -> Result<Snapshot, Error>;

    /// Reads the file, applies `edit`, and writes the result atomically, so that concurrent
    /// writers never drop each other's changes. `edit` may run more than once (after a
    /// conflict, on the newer file). Returns the file as written. Nothing is written when `edit`
    /// fails or the result would not load.
    fn update(
        &self,
        edit: &mut dyn FnMut(&mut KeyFile) -> Result<(), Error>,
    ) -> Result<KeyFile, Error>;
}

/// Which store to use, as chosen by the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// A local file (`KEYS_FILE`, default `./keys.json`).
    File(String),
}

/// Default path of the local keys file.
pub const DEFAULT_KEYS_FILE: &str = "./keys.json";

impl StoreConfig {
    /// Chooses the store from environment variables, read through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> StoreConfig {
        StoreConfig::File(env("KEYS_FILE").unwrap_or_else(|| DEFAULT_KEYS_FILE.to_string()))
    }

    /// Opens the store.
    pub fn open(&self) -> Result<Box<dyn Store>, Error> {
        match self {
            StoreConfig::File(path) => Ok(Box::new(FileStore::new(path))),
        }
    }
}
