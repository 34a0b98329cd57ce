//! The local keys file: versions are what identifies a state of the file without reading it
//! (device, inode, size, modification time); writes compare-and-swap under a lock
//! file, then replace atomically (a temp file created exclusively, fsync, rename), keeping the
//! file's mode and owner. Changes are files of a sibling directory (`keys.json.changes/`), each
//! created whole and exclusively (written beside, then hard-linked to its name), and so is
//! the index of the snapshot (`keys.json.changes/index`, written beside and renamed).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use crate::backend::{change_name, change_seq, Backend, Object, Parts, Put, INDEX_NAME};
use crate::Error;

/// A keys file on the local filesystem.
#[derive(Debug)]
pub struct FileBackend {
    path: PathBuf,
    location: String,
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
    /// The version it stands for.
    fn version(&self) -> String {
        let (seconds, nanos) = self.mtime;
        format!(
            "{:x}-{:x}-{:x}-{seconds}.{nanos:09}",
            self.dev, self.ino, self.len
        )
    }

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
        }
    }

    fn io_error(&self, what: &str, e: io::Error) -> Error {
        Error::unavailable(&self.location, format!("cannot {what}: {e}"))
    }

    /// The directory of changes beside the file.
    fn changes_dir(&self) -> PathBuf {
        self.sibling(".changes")
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// The current version: a `stat`, never a read.
    fn current_version(&self) -> Result<Option<String>, Error> {
        match fs::metadata(&self.path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta).version())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("read", e)),
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

/// How much of a file is read between two calls of a reader's `pace`.
const PIECE: u64 = 128 * 1024;

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
        let mut read = |file: &mut File| -> io::Result<(Vec<u8>, Stamp)> {
            let meta = file.metadata()?;
            let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            loop {
                pace();
                if Read::take(&mut *file, PIECE).read_to_end(&mut bytes)? == 0 {
                    break;
                }
            }
            Ok((bytes, Stamp::of(&meta)))
        };
        let (bytes, stamp) = read(&mut file).map_err(|e| self.io_error("read", e))?;
        Ok(Some(Object {
            bytes,
            version: stamp.version(),
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
        drop(lock);
        Ok(Put::Written(Some(stamp.version())))
    }

    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error> {
        let entries = match fs::read_dir(self.changes_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("list the changes", e)),
        };
        let mut seqs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error("list the changes", e))?;
            let seq = entry.file_name().to_str().and_then(change_seq);
            seqs.extend(seq.filter(|&seq| seq >= from));
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(self.changes_dir().join(change_name(seq))) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("read a change", e)),
        }
    }

    fn create_change(&self, seq: u64, bytes: &[u8]) -> Result<Put, Error> {
        let dir = self.changes_dir();
        let create = || -> io::Result<bool> {
            let tmp = self.written_beside(&dir, ".change.", bytes)?;
            // A hard link fails when the name is taken: the change appears whole, or not at all.
            let created = match fs::hard_link(tmp.path(), dir.join(change_name(seq))) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            };
            File::open(&dir)?.sync_all()?;
            Ok(created)
        };
        match create().map_err(|e| self.io_error("write a change", e))? {
            true => Ok(Put::Written(None)),
            false => Ok(Put::Conflict),
        }
    }

    fn snapshot_parts(&self, version: &str) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("read", e)),
        };
        // The open file stays this version whatever replaces the path meanwhile.
        let meta = file.metadata().map_err(|e| self.io_error("read", e))?;
        match Stamp::of(&meta).version() == version {
            true => Ok(Some(Box::new(FileParts {
                file,
                backend: self,
            }))),
            false => Ok(None),
        }
    }

    fn index_parts(&self) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        // Never through a link, and only a regular file (a FIFO planted there would block).
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(self.changes_dir().join(INDEX_NAME));
        match opened {
            Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => {
                Ok(Some(Box::new(FileParts {
                    file,
                    backend: self,
                })))
            }
            // Not a regular file, or a link (refused by `O_NOFOLLOW`): no index.
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => Ok(None),
            Err(e) => Err(self.io_error("read the index", e)),
        }
    }

    fn put_index(&self, bytes: &[u8]) -> Result<(), Error> {
        let dir = self.changes_dir();
        let write = || -> io::Result<()> {
            let tmp = self.written_beside(&dir, ".index.", bytes)?;
            tmp.persist(dir.join(INDEX_NAME)).map_err(|e| e.error)?;
            Ok(())
        };
        write().map_err(|e| self.io_error("write the index", e))
    }

    fn delete_change(&self, seq: u64) -> Result<(), Error> {
        match fs::remove_file(self.changes_dir().join(change_name(seq))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(self.io_error("delete a change", e))
            }
            _ => Ok(()),
        }
    }
}

impl FileBackend {
    /// A new file in `dir` (the directory of changes, made if need be) holding `bytes` on disk,
    /// with the keys file's owner and mode: whoever may read the keys file may read what is
    /// beside it, and nobody else.
    fn written_beside(
        &self,
        dir: &Path,
        prefix: &str,
        bytes: &[u8],
    ) -> io::Result<tempfile::NamedTempFile> {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if let Ok(meta) = fs::metadata(&self.path) {
            keep_dir_access(dir, &meta)?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)?;
        if let Ok(meta) = fs::metadata(&self.path) {
            keep_access(tmp.as_file(), &meta)?;
        }
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        Ok(tmp)
    }
}

/// An open local file, read in parts.
struct FileParts<'b> {
    file: File,
    backend: &'b FileBackend,
}

impl Parts for FileParts<'_> {
    fn read_at(&self, start: u64, len: usize) -> Result<Option<Vec<u8>>, Error> {
        let mut bytes = vec![0; len];
        let mut filled = 0;
        while filled < len {
            match self
                .file
                .read_at(&mut bytes[filled..], start + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.backend.io_error("read", e)),
            }
        }
        bytes.truncate(filled);
        Ok(Some(bytes))
    }
}

/// Gives the directory of changes the owner and group of the keys file, where this process
/// may (as [`keep_access`] does), and its mode with search permission wherever it grants
/// reading (always for the owner, who keeps the write permission the directory has); touches
/// nothing when they already agree.
fn keep_dir_access(dir: &Path, file: &fs::Metadata) -> io::Result<()> {
    let meta = fs::metadata(dir)?;
    if (meta.uid(), meta.gid()) != (file.uid(), file.gid()) {
        let _ = std::os::unix::fs::chown(dir, Some(file.uid()), Some(file.gid()));
    }
    // The owner's write permission stays as it is: a directory made read-only stays so, and
    // the write fails, as it does in a read-only directory of the keys file.
    let mode = file.mode() & 0o577;
    let mode = mode | ((mode & 0o444) >> 2) | 0o500 | (meta.mode() & 0o200);
    match meta.mode() & 0o777 == mode {
        true => Ok(()),
        false => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
    }
}
