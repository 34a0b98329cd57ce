//! The local keys file: atomic replace (temp file, fsync, rename) under an exclusive lock file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use heare_auth_core::KeyFile;

use super::{Snapshot, Store};
use crate::Error;

/// A keys file on the local filesystem.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path`. Nothing is touched until it is used.
    pub fn new(path: impl AsRef<Path>) -> FileStore {
        FileStore {
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

    /// Writes `text` next to the file, flushes it to disk, then renames it over the file.
    fn replace(&self, text: &str) -> Result<(), Error> {
        let tmp = self.sibling(&format!(".tmp.{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
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

impl Store for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Snapshot, Error> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Snapshot { bytes: Some(bytes) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Snapshot { bytes: None }),
            Err(e) => Err(self.io_error("read", e)),
        }
    }

    fn update(
        &self,
        edit: &mut dyn FnMut(&mut KeyFile) -> Result<(), Error>,
    ) -> Result<KeyFile, Error> {
        // Writers serialise on a lock file beside the keys file; readers need no lock because
        // the rename is atomic. The lock is released when `lock` is dropped (or the process dies).
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.sibling(".lock"))
            .map_err(|e| self.io_error("create the lock file beside", e))?;
        lock.lock().map_err(|e| self.io_error("lock", e))?;
        let mut file = match self.load()?.bytes {
            Some(bytes) => {
                KeyFile::from_json(&bytes).map_err(|e| Error::keys(&self.location(), e))?
            }
            None => KeyFile::default(),
        };
        edit(&mut file)?;
        let text = file
            .to_json()
            .map_err(|e| Error::keys(&self.location(), e))?;
        self.replace(&text)?;
        drop(lock);
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::KeyRecord;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("heare-auth-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn record(id: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some(heare_auth_core::hash_secret(id).to_hex()),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn missing_file_is_empty_and_first_write_creates_it() {
        let dir = temp_dir("create");
        let store = FileStore::new(dir.join("keys.json"));
        assert_eq!(store.load().unwrap(), Snapshot { bytes: None });
        store
            .update(&mut |f| {
                f.keys.push(record("a"));
                Ok(())
            })
            .unwrap();
        let bytes = store.load().unwrap().bytes.unwrap();
        assert_eq!(KeyFile::from_json(&bytes).unwrap().keys[0].id, "a");
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}"); // keys.json and keys.json.lock
    }

    #[test]
    fn failed_edit_or_invalid_result_writes_nothing() {
        let dir = temp_dir("nowrite");
        let path = dir.join("keys.json");
        fs::write(&path, br#"{"keys": [{"id": "a", "secret": "s"}]}"#).unwrap();
        let store = FileStore::new(&path);
        let err = store
            .update(&mut |_| Err(Error::NotFound("b".into())))
            .unwrap_err();
        assert_eq!(err, Error::NotFound("b".into()));
        let err = store
            .update(&mut |f| {
                f.keys.push(record("a"));
                Ok(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("duplicate key id a"), "{err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            br#"{"keys": [{"id": "a", "secret": "s"}]}"#
        );
    }

    #[test]
    fn concurrent_updates_keep_every_key() {
        let dir = temp_dir("concurrent");
        let path = dir.join("keys.json");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = FileStore::new(&path);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        store
                            .update(&mut |f| {
                                f.keys.push(record(&format!("k{t}-{i}")));
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let bytes = FileStore::new(&path).load().unwrap().bytes.unwrap();
        assert_eq!(KeyFile::from_json(&bytes).unwrap().keys.len(), 80);
    }
}
