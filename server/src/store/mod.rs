//! Where the keys file lives (a local file or an S3 object) and how it is read and changed:
//! decryption, validation, and conditional writes retried on conflict.

mod config;
mod file;
mod s3;

pub use config::{Location, StoreConfig, DEFAULT_KEYS_FILE};
pub use file::FileBackend;
pub use s3::{S3Backend, S3Config};

use rand_core::{OsRng, RngCore};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heare_auth_core::{decrypt_file, encrypt_file, KeyFile};

use crate::Error;

/// One version of the stored object, as the backend holds it (possibly encrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// An opaque version: the S3 ETag, or a digest of a local file's content.
    pub version: String,
}

/// What a conditional write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was written.
    Written,
    /// The object changed since it was read (or now exists); nothing was written.
    Conflict,
}

/// A place that holds one object and can replace it conditionally.
pub trait Backend: Send + Sync {
    /// Where the object is, for messages: `./keys.json`, `s3://bucket/keys.json`.
    fn location(&self) -> String;
    /// Reads the object; `None` when it does not exist.
    fn get(&self) -> Result<Option<Object>, Error>;
    /// The current version without the content where the backend can do that cheaply.
    fn version(&self) -> Result<Option<String>, Error> {
        Ok(self.get()?.map(|o| o.version))
    }
    /// Writes `bytes` only if the object is still at `expected` (`None`: only if it does not exist).
    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error>;
}

/// The keys file as read: plaintext bytes (decrypted if needed) and the version they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Plaintext JSON, or `None` when the object does not exist yet (zero keys).
    pub bytes: Option<Vec<u8>>,
    /// Version of the stored object; `None` when it does not exist.
    pub version: Option<String>,
}

/// The contents of a keys file with no keys.
pub const EMPTY_FILE: &[u8] = br#"{"keys": []}"#;

impl Snapshot {
    /// The bytes, with a missing object read as an empty key list.
    pub fn bytes_or_empty(&self) -> &[u8] {
        self.bytes.as_deref().unwrap_or(EMPTY_FILE)
    }
}

/// How many times an update re-reads and re-applies its change after a conflicting write.
const MAX_ATTEMPTS: u32 = 64;
/// Bounds on the wait between a write and the read that confirms it.
const SETTLE_MIN: Duration = Duration::from_millis(50);
const SETTLE_MAX: Duration = Duration::from_secs(1);

/// A keys-file store: a backend plus the optional `STORAGE_SECRET` that encrypts it.
pub struct Store {
    backend: Box<dyn Backend>,
    storage_secret: Option<String>,
}

impl Store {
    /// A store over `backend`; with a secret, writes are encrypted and encrypted files readable.
    pub fn new(backend: Box<dyn Backend>, storage_secret: Option<String>) -> Store {
        Store {
            backend,
            storage_secret,
        }
    }

    /// Where the keys file is, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Reads and decrypts the current file.
    pub fn load(&self) -> Result<Snapshot, Error> {
        match self.backend.get()? {
            None => Ok(Snapshot {
                bytes: None,
                version: None,
            }),
            Some(object) => Ok(Snapshot {
                bytes: Some(self.decrypt(&object.bytes)?),
                version: Some(object.version),
            }),
        }
    }

    /// Reads the file only if its version differs from `known` (`Ok(None)`: unchanged).
    pub fn load_if_changed(&self, known: Option<&str>) -> Result<Option<Snapshot>, Error> {
        if self.backend.version()?.as_deref() == known {
            return Ok(None);
        }
        let snapshot = self.load()?;
        Ok((snapshot.version.as_deref() != known).then_some(snapshot))
    }

    /// Applies `edit` to the stored file until its effect is confirmed: read, edit, and if the
    /// edit changed anything, write only if nobody wrote in between (a conditional write), then
    /// read again. `edit` must therefore be idempotent ("ensure the key exists"), and it runs
    /// at least twice. The confirming read also catches a write lost to a store whose
    /// conditional writes are not atomic. Nothing is written when `edit` fails or the result
    /// would not load. Returns the file as confirmed.
    pub fn update(
        &self,
        edit: &mut dyn FnMut(&mut KeyFile) -> Result<(), Error>,
    ) -> Result<KeyFile, Error> {
        for attempt in 0..MAX_ATTEMPTS {
            let current = self.load()?;
            let original = match &current.bytes {
                Some(bytes) => {
                    KeyFile::from_json(bytes).map_err(|e| Error::keys(&self.location(), e))?
                }
                None => KeyFile::default(),
            };
            let mut file = original.clone();
            edit(&mut file)?;
            if file == original && current.bytes.is_some() {
                return Ok(file);
            }
            let text = file
                .to_json()
                .map_err(|e| Error::keys(&self.location(), e))?;
            let bytes = self.encrypt(text.into_bytes());
            let started = Instant::now();
            match self.backend.put(&bytes, current.version.as_deref())? {
                Put::Conflict => backoff(attempt),
                // A write that passed the store's check alongside ours (possible where the check
                // and the write are not one atomic step) is in flight now and lands within about
                // one PUT. Wait that out, so the confirming read sees it.
                Put::Written => {
                    std::thread::sleep((started.elapsed() * 2).clamp(SETTLE_MIN, SETTLE_MAX))
                }
            }
        }
        Err(Error::Store(format!(
            "{}: gave up after {MAX_ATTEMPTS} conflicting concurrent writes; try again",
            self.location()
        )))
    }

    fn decrypt(&self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        decrypt_file(bytes, self.storage_secret.as_deref())
            .map(|b| b.into_owned())
            .map_err(|e| Error::keys(&self.location(), e))
    }

    fn encrypt(&self, plaintext: Vec<u8>) -> Vec<u8> {
        let Some(secret) = &self.storage_secret else {
            return plaintext;
        };
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut iv);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        encrypt_file(&plaintext, secret, iv, now)
    }
}

/// Sleeps a random time that grows with the attempt, so racing writers spread out.
fn backoff(attempt: u32) {
    let ceiling_ms = 5u64 << attempt.min(6); // 5 ms .. 320 ms
    let jitter = u64::from(OsRng.next_u32()) % ceiling_ms;
    std::thread::sleep(Duration::from_millis(1 + jitter));
}

#[cfg(test)]
mod tests;
