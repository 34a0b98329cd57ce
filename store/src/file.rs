//! The local keys file: versions are content hashes; writes compare-and-swap under a lock
//! file, then replace atomically (a temp file created exclusively, fsync, rename), keeping the
//! file's mode and owner.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rand_core::{OsRng, RngCore};
use rustix::fs::OFlags;
use xxhash_rust::xxh3::Xxh3;

use crate::backend::{Backend, Object, Put};
use crate::Error;

/// A keys file on the local filesystem.
#[derive(Debug)]
pub struct FileBackend {
    path: PathBuf,
    location: String,
    /// The file as last read or written here, so that a write need not read it again to know
    /// that it is unchanged.
    last_seen: Mutex<Option<(Stamp, String)>>,
}

/// What identifies one state of the file without reading it: a rewrite (by rename, as every
/// writer here does) gives a new inode; an in-place edit a new size or modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

impl FileBackend {
    /// A file at `path`. Nothing is touched until it is used.
    pub fn new(path: impl AsRef<Path>) -> FileBackend {
        let path = path.as_ref().to_path_buf();
        FileBackend {
            location: path.display().to_string(),
            path,
            last_seen: Mutex::new(None),
        }
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::unavailable(&self.location, format!("cannot {what}: {e}"))
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    fn remember(&self, stamp: Stamp, version: &str) {
        if let Ok(mut seen) = self.last_seen.lock() {
            *seen = Some((stamp, version.to_string()));
        }
    }

    /// The current version, without reading the file when it is as last seen here.
    fn current_version(&self) -> Result<Option<String>, Error> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("read", e)),
        };
        let seen = self.last_seen.lock().ok().and_then(|s| s.clone());
        match seen {
            Some((stamp, version)) if stamp == Stamp::of(&meta) => Ok(Some(version)),
            _ => Ok(self.get()?.map(|o| o.version)),
        }
    }

    /// Writes `bytes` to a new file beside the file, flushes them to disk, then renames it over
    /// the file. The new file is created exclusively under a name nobody can predict, never
    /// through a link planted beside the keys file, and given the file's mode and, where this
    /// process may, its owner and group (a file that does not exist yet is made 0600), so a
    /// write never makes the keys readable to more users than before.
    fn replace(&self, bytes: &[u8]) -> Result<Stamp, Error> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(self.path.file_name().unwrap_or_default());
        prefix.push(".");
        let write = || -> io::Result<Stamp> {
            let mut tmp = tempfile::Builder::new()
                .prefix(&prefix)
                .suffix(".tmp")
                .permissions(fs::Permissions::from_mode(0o600))
                .tempfile_in(dir)?;
            match fs::metadata(&self.path) {
                Ok(old) => keep_access(tmp.as_file(), &old)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            let stamp = Stamp::of(&tmp.as_file().metadata()?);
            tmp.persist(&self.path).map_err(|e| e.error)?;
            // Make the rename itself durable.
            File::open(dir)?.sync_all()?;
            Ok(stamp)
        };
        // A temporary file left by a failure is removed when it is dropped.
        write().map_err(|e| self.io_error("write", e))
    }

    /// Opens (creating it if needed) the lock file beside the file: never through a link, and
    /// only a regular file (a FIFO planted there would block the open).
    fn open_lock(&self) -> io::Result<File> {
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(flags.bits() as i32)
            .open(self.sibling(".lock"))?;
        match lock.metadata()?.is_file() {
            true => Ok(lock),
            false => Err(io::Error::other("it is not a regular file")),
        }
    }
}

/// Gives `new` the owner, group and mode of `old`. A process that may not give a file away (not
/// root) keeps its own owner and group: the error is ignored. The mode is set after the owner,
/// which may clear set-id bits.
fn keep_access(new: &File, old: &fs::Metadata) -> io::Result<()> {
    let own = new.metadata()?;
    if (own.uid(), own.gid()) != (old.uid(), old.gid()) {
        match std::os::unix::fs::fchown(new, Some(old.uid()), Some(old.gid())) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                // Not allowed to give the file away: at least keep the group, where we may.
                let _ = std::os::unix::fs::fchown(new, None, Some(old.gid()));
            }
            other => other?,
        }
    }
    new.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
}

/// How much of a file is read and digested between two calls of a reader's `pace`.
const PIECE: u64 = 128 * 1024;

/// A file's version: a 128-bit XXH3 of its content, in hex. Versions are compared only within
/// this process (what a write expects comes from a read here), so the hash is keyed with a
/// seed drawn at random once per process: nobody who shapes part of the file (a key's name,
/// its metadata) can aim at another version's hash without knowing it. Not SHA-256: on a
/// large file that took as long as reading it, and XXH3 takes a fifth of that.
fn hasher() -> Xxh3 {
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = SEED.get_or_init(|| {
        let mut seed = [0; 8];
        // Were the OS to have no randomness, a fixed seed still tells versions apart.
        let _ = OsRng.try_fill_bytes(&mut seed);
        u64::from_le_bytes(seed)
    });
    Xxh3::with_seed(*seed)
}

/// The version of a file holding `bytes` (see [`hasher`]).
fn digest(bytes: &[u8]) -> String {
    let mut hasher = hasher();
    hasher.update(bytes);
    version(&hasher)
}

fn version(hasher: &Xxh3) -> String {
    format!("{:032x}", hasher.digest128())
}

impl Backend for FileBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self) -> Result<Option<Object>, Error> {
        self.get_paced(&mut || {})
    }

    fn get_paced(&self, pace: &mut dyn FnMut()) -> Result<Option<Object>, Error> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("read", e)),
        };
        let mut read = |file: &mut File| -> io::Result<(Vec<u8>, String, Stamp)> {
            let meta = file.metadata()?;
            let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            let mut digest = hasher();
            loop {
                pace();
                let start = bytes.len();
                let n = Read::take(&mut *file, PIECE).read_to_end(&mut bytes)?;
                digest.update(&bytes[start..]);
                if n == 0 {
                    break;
                }
            }
            let version = version(&digest);
            Ok((bytes, version, Stamp::of(&meta)))
        };
        let (bytes, version, stamp) = read(&mut file).map_err(|e| self.io_error("read", e))?;
        self.remember(stamp, &version);
        Ok(Some(Object {
            bytes,
            version,
            date: None,
        }))
    }

    fn version(&self) -> Result<Option<String>, Error> {
        self.current_version()
    }

    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error> {
        // Writers serialise on a lock file beside the keys file, held only for the compare and
        // the swap. Readers need no lock: the rename is atomic. Dropping `lock` releases it.
        let lock = self
            .open_lock()
            .map_err(|e| self.io_error("create the lock file beside it", e))?;
        lock.lock().map_err(|e| self.io_error("lock", e))?;
        // A file that cannot be read to compare is not known to be at `expected`: nothing is
        // written, and the update's next read says why (an error here would look to it like a
        // write that may have landed).
        match self.current_version() {
            Ok(current) if current.as_deref() == expected => {}
            _ => return Ok(Put::Conflict),
        }
        let stamp = self.replace(bytes)?;
        let version = digest(bytes);
        self.remember(stamp, &version);
        drop(lock);
        Ok(Put::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_the_content_s_hash_read_in_pieces_or_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let content: Vec<u8> = (0..3 * PIECE + 17).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &content).unwrap();
        let read = FileBackend::new(&path).get().unwrap().unwrap();
        assert_eq!(read.bytes, content);
        assert_eq!(read.version, digest(&content));
        assert_eq!(read.version.len(), 32);
        let mut other = content.clone();
        other[2 * PIECE as usize] ^= 1;
        assert_ne!(digest(&other), read.version);
        assert_eq!(digest(b""), digest(b""));
        assert_ne!(digest(b""), digest(b" "));
    }
}
