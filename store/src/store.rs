//! The store: a backend plus the storage secret, read whole, polled by version, and updated by
//! one read, one edit and one conditional write, retried only when another writer got there
//! first.

use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};

use heare_auth_core::{decrypt_file, encrypt_file, Document};

use crate::backend::{Backend, Put};
use crate::Error;

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
/// How many writes that failed (maybe landing, maybe not) an update makes before giving up.
const MAX_FAILED_WRITES: u32 = 3;
/// How many reads that returned damaged content an update makes before giving up.
const MAX_DAMAGED_READS: u32 = 4;

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
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    /// Whether writes are encrypted (`STORAGE_SECRET` is set).
    pub fn encrypts(&self) -> bool {
        self.storage_secret.is_some()
    }

    /// The backend, for what only it can tell (see `heare-auth doctor`).
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Reads and decrypts the current file.
    pub fn load(&self) -> Result<Snapshot, Error> {
        self.load_paced(&mut || {})
    }

    /// [`Store::load`], calling `pace` between pieces of the reading (see
    /// [`Backend::get_paced`]).
    pub fn load_paced(&self, pace: &mut dyn FnMut()) -> Result<Snapshot, Error> {
        match self.backend.get_paced(pace)? {
            None => Ok(Snapshot {
                bytes: None,
                version: None,
            }),
            Some(object) => {
                let plain = match self.decrypt(&object.bytes)? {
                    Cow::Owned(plain) => plain,
                    Cow::Borrowed(_) => object.bytes,
                };
                Ok(Snapshot {
                    bytes: Some(plain),
                    version: Some(object.version),
                })
            }
        }
    }

    /// Reads the file only if its version differs from `known` (`Ok(None)`: unchanged),
    /// calling `pace` as [`Store::load_paced`] does.
    pub fn load_if_changed(
        &self,
        known: Option<&str>,
        pace: &mut dyn FnMut(),
    ) -> Result<Option<Snapshot>, Error> {
        if self.backend.version()?.as_deref() == known {
            return Ok(None);
        }
        let snapshot = self.load_paced(pace)?;
        Ok((snapshot.version.as_deref() != known).then_some(snapshot))
    }

    /// Applies `edit` to the stored file: one read, the edit, and, if it changed anything, one
    /// write conditional on nobody having written in between. When someone did, the file is
    /// read again and the edit applied again, so `edit` must be idempotent ("ensure the key
    /// exists"). The same covers a write whose outcome is unknown (a timeout, a cut
    /// connection, a 5xx: it may have landed): the file is read again, and finding nothing to
    /// change shows that it did. Where the store's conditional writes may not be atomic
    /// (S3-compatible stores differ), the file is read once more after the write, and the edit
    /// applied to it again: finding nothing to change confirms the write. Nothing is written
    /// when `edit` fails or the result would not load. Returns whether the change is now in
    /// the file because of this call (`false`: there was nothing to change). After three
    /// failed writes it gives up; if one of them got no answer, it may land yet, and the error
    /// says so.
    pub fn update<E: From<Error>>(
        &self,
        mut edit: impl FnMut(&mut Document<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.backend.check_writes()?;
        let mut written = false;
        // The last write whose outcome is unknown, how many there were, and whether one got no
        // answer (and so may land later still).
        let mut unknown: Option<Error> = None;
        let mut failed_writes = 0;
        let mut unanswered = false;
        let mut damaged_reads = 0;
        // Whether a read of this update found the file: if a later one does not, it was
        // deleted meanwhile, and writing the edit to an empty file would drop every key.
        let mut existed = false;
        for attempt in 0..MAX_ATTEMPTS {
            let current = match self.backend.get() {
                Ok(current) => current,
                // Writes landing as we read (in a store that keeps an object's content and
                // checksum apart) look like this; so does damage in transfer, for a while.
                Err(Error::Damaged { .. }) if damaged_reads + 1 < MAX_DAMAGED_READS => {
                    damaged_reads += 1;
                    backoff(attempt);
                    continue;
                }
                Err(e) => {
                    return Err(match &unknown {
                        Some(write) => self.outcome_unknown(write, &e),
                        None => e,
                    }
                    .into())
                }
            };
            match (&current, existed) {
                (Some(_), _) => existed = true,
                (None, true) => return Err(self.vanished().into()),
                (None, false) => {}
            }
            let plain = match &current {
                Some(object) => Some(self.decrypt(&object.bytes)?),
                None => None,
            };
            let mut file = match &plain {
                Some(plain) => Document::parse(plain).map_err(|e| self.invalid(e))?,
                None => Document::empty(),
            };
            edit(&mut file)?;
            if !file.is_changed() {
                return Ok(written || unknown.is_some());
            }
            if let Some(write) = unknown.take() {
                if failed_writes == MAX_FAILED_WRITES {
                    // Read back and not there: none has landed yet. One that got no answer may
                    // still be on its way.
                    return Err(match unanswered {
                        true => self.may_land_yet(&write),
                        false => write,
                    }
                    .into());
                }
                backoff(attempt + 4);
            }
            let text = file.to_json().map_err(|e| self.invalid(e))?;
            drop(file);
            let bytes = self.encrypt(text.into_bytes());
            let started = Instant::now();
            let expected = current.as_ref().map(|o| o.version.as_str());
            match self.backend.put(&bytes, expected) {
                Ok(Put::Conflict) => backoff(attempt),
                Ok(Put::Written) => {
                    written = true;
                    if !self.backend.settle(started.elapsed()) {
                        return Ok(true);
                    }
                }
                Err(e @ (Error::Unavailable { .. } | Error::Unanswered { .. })) => {
                    failed_writes += 1;
                    unanswered |= matches!(e, Error::Unanswered { .. });
                    unknown = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended {
            location: self.location().to_string(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The file was there when this update read it, and gone when it read it again.
    fn vanished(&self) -> Error {
        Error::unavailable(
            self.location(),
            "the keys file was deleted while this change was being made; nothing was written \
             (restore the file, or write an empty one to start afresh)",
        )
    }

    /// A write failed without saying whether it landed, and reading the file back failed too.
    fn outcome_unknown(&self, write: &Error, read: &Error) -> Error {
        Error::unavailable(
            self.location(),
            format!(
                "{}; reading the file back then failed too ({}), so whether the change was \
                 saved is unknown: check before trying again",
                message(write),
                message(read)
            ),
        )
    }

    /// Writes failed, the last as `write`, and each was read back and not found; but one got
    /// no answer, and a write in flight can land after the reads.
    fn may_land_yet(&self, write: &Error) -> Error {
        Error::unavailable(
            self.location(),
            format!(
                "{}; the change was not in the file read back after each of {MAX_FAILED_WRITES} \
                 writes, but a write that got no answer may land yet, so whether the change \
                 was saved is unknown: check before trying again",
                message(write)
            ),
        )
    }

    fn invalid(&self, e: heare_auth_core::Error) -> Error {
        Error::keys(self.location(), e)
    }

    fn decrypt<'b>(&self, bytes: &'b [u8]) -> Result<Cow<'b, [u8]>, Error> {
        decrypt_file(bytes, self.storage_secret.as_deref()).map_err(|e| self.invalid(e))
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

/// An error's message without its location.
fn message(e: &Error) -> String {
    match e {
        Error::Unavailable { message, .. }
        | Error::Unanswered { message, .. }
        | Error::Damaged { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Sleeps a random time that grows with the attempt, so racing writers spread out.
fn backoff(attempt: u32) {
    let ceiling_ms = 5u64 << attempt.min(6); // 5 ms .. 320 ms
    let jitter = u64::from(OsRng.next_u32()) % ceiling_ms;
    std::thread::sleep(Duration::from_millis(1 + jitter));
}
