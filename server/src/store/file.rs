//! The local keys file: versions are content digests; writes compare-and-swap under a lock
//! file, then replace atomically (temp file, fsync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use heare_auth_core::SecretHash;
use sha2::{Digest, Sha256};

use super::{Backend, Object, Put};
use crate::Error;

/// A keys file on the local filesystem.
#[derive(Clone, Debug)]
pub struct FileBackend {
    path: PathBuf,
}

impl FileBackend {
    /// A file at `path`. Nothing is touched until it is used.
    pub fn new(path: impl AsRef<Path>) -> FileBackend {
        FileBackend {
            path: path.as_ref().to_path_buf(),
        }
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::Store(format!("cannot {what} {}: {e}", self.path.display()))
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// Writes `bytes` next to the file, flushes them to disk, then renames over the file.
    fn replace(&self, bytes: &[u8]) -> Result<(), Error> {
        let tmp = self.sibling(&format!(".tmp.{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // Make the rename itself durable.
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io_error("write", e)
        })
    }
}

/// A file's version: the SHA-256 of its content, in hex.
fn digest(bytes: &[u8]) -> String {
    SecretHash(Sha256::digest(bytes).into()).to_hex()
}

impl Backend for FileBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn get(&self) -> Result<Option<Object>, Error> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(Object {
                version: digest(&bytes),
                bytes,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("read", e)),
        }
    }

    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error> {
        // Writers serialise on a lock file beside the keys file, held only for the compare and
        // the swap. Readers need no lock: the rename is atomic. Dropping `lock` releases it.
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.sibling(".lock"))
            .map_err(|e| self.io_error("create the lock file beside", e))?;
        lock.lock().map_err(|e| self.io_error("lock", e))?;
        let current = self.get()?.map(|o| o.version);
        if current.as_deref() != expected {
            return Ok(Put::Conflict);
        }
        self.replace(bytes)?;
        drop(lock);
        Ok(Put::Written)
    }
}
