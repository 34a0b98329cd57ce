//! Store tests on the local file backend: encryption, change detection, concurrent updates,
//! failed writes.

use super::*;
use heare_auth_core::{Document, KeyRecord};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn record(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        secret_hash: Some(heare_auth_core::hash_secret(id).to_hex()),
        ..KeyRecord::default()
    }
}

fn file_store(path: &Path, secret: Option<&str>) -> Store {
    Store::new(Box::new(FileBackend::new(path)), secret.map(String::from))
}

fn add(store: &Store, id: &str) -> Result<bool, Error> {
    store.update(|f: &mut Document| {
        if f.get(id).is_none() {
            f.push(record(id));
        }
        Ok::<(), Error>(())
    })
}

fn ids(bytes: &[u8]) -> Vec<String> {
    Document::parse(bytes)
        .unwrap()
        .records()
        .map(|r| r.unwrap().id)
        .collect()
}

#[test]
fn missing_file_is_empty_and_first_write_creates_it() {
    let dir = temp_dir();
    let store = file_store(&dir.path().join("keys.json"), None);
    assert_eq!(
        store.load().unwrap(),
        Snapshot {
            bytes: None,
            version: None,
            next: 0,
        }
    );
    assert_eq!(add(&store, "a"), Ok(true));
    assert_eq!(add(&store, "a"), Ok(false));
    let snapshot = store.load().unwrap();
    assert_eq!(ids(snapshot.bytes_or_empty()), ["a"]);
    // No temp file is left behind: only keys.json and its lock file.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keys.json", "keys.json.changes", "keys.json.lock"]);
}

#[test]
fn a_paced_read_is_the_same_read_in_pieces() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    let records: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"id": "key_{i:04}", "secret": "s{i}", "name": "{}"}}"#,
                "x".repeat(100)
            )
        })
        .collect();
    std::fs::write(&path, format!(r#"{{"keys": [{}]}}"#, records.join(","))).unwrap();
    let store = file_store(&path, None);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 3 * 128 * 1024, "{size}");
    let mut paces = 0;
    let paced = store.load_paced(&mut || paces += 1).unwrap();
    assert_eq!(paced, store.load().unwrap());
    // Before each piece of 128 KiB, and before the read that finds the end.
    assert_eq!(paces, size.div_ceil(128 * 1024) + 1);
}

/// A keys file too large to fold at every change: `count` keys.
fn large_file(path: &Path, count: usize) {
    let records: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"id": "big_{i:04}", "secret": "s{i}", "name": "{}"}}"#,
                "x".repeat(200)
            )
        })
        .collect();
    std::fs::write(path, format!(r#"{{"keys": [{}]}}"#, records.join(","))).unwrap();
    assert!(std::fs::metadata(path).unwrap().len() as usize > crate::FOLD_BELOW);
}

#[test]
fn a_change_to_a_large_file_is_stored_beside_it_and_folded_later() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, None);
    let before = std::fs::read(&path).unwrap();
    let version = store.version().unwrap();
    assert_eq!(add(&store, "a"), Ok(true));
    // The file is as it was; the change is beside it, and holds only the key added.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(store.version().unwrap(), version);
    let change = std::fs::read(
        dir.path()
            .join("keys.json.changes/00000000000000000000.json"),
    );
    let change = String::from_utf8(change.unwrap()).unwrap();
    assert!(change.len() < 500 && change.contains("\"a\""), "{change}");
    assert_eq!(ids(store.load().unwrap().bytes_or_empty()).len(), 301);
    let removed = store.update(|f: &mut Document| {
        f.remove("big_0007");
        Ok::<(), Error>(())
    });
    assert_eq!(removed, Ok(true));
    let changes = store.changes_after(0).unwrap().unwrap();
    assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(changes[1].deleted, ["big_0007"]);
    assert_eq!(store.changes_after(2).unwrap().unwrap().len(), 0);
    let loaded = store.load().unwrap();
    assert_eq!((ids(loaded.bytes_or_empty()).len(), loaded.next), (300, 2));

    // Folded: the file alone holds every key, says where its changes begin, and a note of
    // the new snapshot follows the changes it holds.
    assert_eq!(store.compact(), Ok(2));
    let whole = std::fs::read(&path).unwrap();
    assert!(whole.starts_with(b"{\n  \"next_change\": 2,"));
    assert_eq!(ids(&whole).len(), 300);
    assert!(ids(&whole).contains(&"a".to_string()));
    let state = store.read().unwrap();
    assert_eq!(state.snapshot.next, 2);
    assert_eq!(state.changes.len(), 1);
    assert_eq!(state.changes[0].snapshot, store.version().unwrap());
    // A reader still at change 0 may go on: the changes the new snapshot holds stay (for ten
    // minutes)...
    assert_eq!(store.changes_after(0).unwrap().unwrap().len(), 3);
    // ... and once they are gone, it is told to read the snapshot again.
    std::fs::remove_file(
        dir.path()
            .join("keys.json.changes/00000000000000000000.json"),
    )
    .unwrap();
    assert!(store.changes_after(0).unwrap().is_none());
    add(&store, "b").unwrap();
    assert_eq!(ids(store.load().unwrap().bytes_or_empty()).len(), 301);
    assert_eq!(store.compact(), Ok(2));
    assert_eq!(store.compact(), Ok(0));
}

#[test]
fn the_version_changes_with_every_write() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    let store = file_store(&path, None);
    assert_eq!(store.version().unwrap(), None);
    add(&store, "a").unwrap();
    let first = store.version().unwrap().unwrap();
    assert_eq!(store.version().unwrap().as_deref(), Some(first.as_str()));
    add(&store, "b").unwrap();
    assert_ne!(store.version().unwrap().unwrap(), first);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(store.version().unwrap(), None);
}

#[test]
fn failed_edit_or_invalid_result_writes_nothing() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, br#"{"keys": [{"id": "a", "secret": "s"}]}"#).unwrap();
    let store = file_store(&path, None);
    // The caller's own error type comes back as it was.
    #[derive(Debug, PartialEq)]
    enum Refused {
        NoSuchKey,
        Store(Error),
    }
    impl From<Error> for Refused {
        fn from(e: Error) -> Refused {
            Refused::Store(e)
        }
    }
    assert_eq!(
        store.update(|_| Err(Refused::NoSuchKey)),
        Err(Refused::NoSuchKey)
    );
    let err = store
        .update(|f: &mut Document| {
            f.push(record("a"));
            Ok::<(), Error>(())
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::Keys {
            location: path.display().to_string(),
            error: heare_auth_core::Error::DuplicateId { id: "a".into() }
        }
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        br#"{"keys": [{"id": "a", "secret": "s"}]}"#
    );
}

#[test]
fn concurrent_updates_keep_every_key() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = file_store(&path, None);
                for i in 0..10 {
                    add(&store, &format!("k{t}-{i}")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let bytes = file_store(&path, None).load().unwrap().bytes.unwrap();
    assert_eq!(ids(&bytes).len(), 80);
}

#[test]
fn storage_secret_encrypts_writes_and_reads_both_forms() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    // A plaintext file from before encryption was turned on is read, then written encrypted.
    std::fs::write(&path, br#"{"keys": [{"id": "old", "secret": "s-old"}]}"#).unwrap();
    let store = file_store(&path, Some("storage secret"));
    add(&store, "new").unwrap();
    let raw = std::fs::read(&path).unwrap();
    assert!(
        raw.starts_with(b"HEARE_ENCRYPTED_V1:gAAAAA"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let plain = store.load().unwrap().bytes.unwrap();
    assert_eq!(ids(&plain), ["old", "new"]);

    let err = |secret: Option<&str>| file_store(&path, secret).load().unwrap_err();
    let location = path.display().to_string();
    assert_eq!(
        err(None),
        Error::Keys {
            location: location.clone(),
            error: heare_auth_core::Error::NoStorageSecret
        }
    );
    assert_eq!(
        err(Some("wrong")),
        Error::Keys {
            location,
            error: heare_auth_core::Error::CannotDecrypt
        }
    );
}

/// A backend whose conditional writes are not atomic: it reports success but another writer's
/// stale bytes land afterwards (as happens when two writers pass the check at once).
struct LossyBackend {
    inner: FileBackend,
    lose_next: std::sync::atomic::AtomicBool,
}

impl Backend for LossyBackend {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self) -> Result<Option<Object>, Error> {
        self.inner.get()
    }
    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error> {
        let before = self.inner.get()?;
        let put = self.inner.put(bytes, expected)?;
        if self
            .lose_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let stale = before.map(|o| o.bytes).unwrap_or_default();
            let now = self.inner.get()?.map(|o| o.version);
            self.inner.put(&stale, now.as_deref())?;
        }
        Ok(put)
    }

    /// Like an S3 store: a write is only trusted once it is read back.
    fn settle(&self, _took: std::time::Duration) -> bool {
        true
    }
    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error> {
        self.inner.list_changes(from)
    }
    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get_change(seq)
    }
    fn create_change(&self, seq: u64, bytes: &[u8]) -> Result<Put, Error> {
        self.inner.create_change(seq, bytes)
    }
    fn delete_change(&self, seq: u64) -> Result<(), Error> {
        self.inner.delete_change(seq)
    }
}

#[test]
fn a_write_lost_after_it_succeeded_is_detected_and_redone() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    let plain = file_store(&path, None);
    add(&plain, "first").unwrap();
    let lossy = Store::new(
        Box::new(LossyBackend {
            inner: FileBackend::new(&path),
            lose_next: true.into(),
        }),
        None,
    );
    assert_eq!(add(&lossy, "second"), Ok(true));
    assert_eq!(
        ids(plain.load().unwrap().bytes_or_empty()),
        ["first", "second"]
    );
}

/// Counts what an update asks of the backend.
struct Counting {
    inner: FileBackend,
    gets: Arc<AtomicUsize>,
    puts: Arc<AtomicUsize>,
}

impl Backend for Counting {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self) -> Result<Option<Object>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get()
    }
    fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<Put, Error> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(bytes, expected)
    }
    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error> {
        self.inner.list_changes(from)
    }
    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get_change(seq)
    }
    fn create_change(&self, seq: u64, bytes: &[u8]) -> Result<Put, Error> {
        self.inner.create_change(seq, bytes)
    }
    fn delete_change(&self, seq: u64) -> Result<(), Error> {
        self.inner.delete_change(seq)
    }
    fn version(&self) -> Result<Option<String>, Error> {
        self.inner.version()
    }
    fn snapshot_parts(&self, version: &str) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        self.inner.snapshot_parts(version)
    }
    fn index_parts(&self) -> Result<Option<Box<dyn Parts + '_>>, Error> {
        self.inner.index_parts()
    }
    fn put_index(&self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.put_index(bytes)
    }
}

/// A store of the file at `path` that counts its reads of the whole keys file.
fn counted_store(path: &Path) -> (Store, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        inner: FileBackend::new(path),
        gets: gets.clone(),
        puts: Arc::new(AtomicUsize::new(0)),
    };
    (Store::new(Box::new(counting), None), gets)
}

#[test]
fn an_update_reads_once_and_writes_once() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    add(&file_store(&path, None), "first").unwrap();
    let (gets, puts) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counting = Counting {
        inner: FileBackend::new(&path),
        gets: gets.clone(),
        puts: puts.clone(),
    };
    let store = Store::new(Box::new(counting), None);
    assert_eq!(add(&store, "second"), Ok(true));
    assert_eq!(
        (gets.load(Ordering::SeqCst), puts.load(Ordering::SeqCst)),
        (1, 1)
    );
}

/// A backend whose writes all fail with `failure` and do not land.
struct Failing {
    inner: FileBackend,
    failure: Error,
}

impl Backend for Failing {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self) -> Result<Option<Object>, Error> {
        self.inner.get()
    }
    fn put(&self, _bytes: &[u8], _expected: Option<&str>) -> Result<Put, Error> {
        Err(self.failure.clone())
    }
    fn list_changes(&self, from: u64) -> Result<Vec<u64>, Error> {
        self.inner.list_changes(from)
    }
    fn get_change(&self, seq: u64) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get_change(seq)
    }
    fn create_change(&self, _seq: u64, _bytes: &[u8]) -> Result<Put, Error> {
        Err(self.failure.clone())
    }
    fn delete_change(&self, seq: u64) -> Result<(), Error> {
        self.inner.delete_change(seq)
    }
}

/// Three failed writes, each read back and not there: the update gives up with the last
/// write's error, and says the change may land yet when a write got no answer.
#[test]
fn an_update_gives_up_saying_whether_a_write_may_land_yet() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    add(&file_store(&path, None), "first").unwrap();
    let location = path.display().to_string();
    let refused = Error::unavailable(&location, "PUT failed: HTTP 503");
    let unanswered = Error::Unanswered {
        location: location.clone(),
        message: "PUT failed: timed out".into(),
    };
    let may_land = Error::unavailable(
        &location,
        "PUT failed: timed out; the change was not in the file read back after each of 3 \
         writes, but a write that got no answer may land yet, so whether the change was saved \
         is unknown: check before trying again",
    );
    for (failure, expected) in [(refused.clone(), refused), (unanswered, may_land)] {
        let failing = Failing {
            inner: FileBackend::new(&path),
            failure,
        };
        let store = Store::new(Box::new(failing), None);
        assert_eq!(add(&store, "second"), Err(expected));
    }
    assert_eq!(ids(&std::fs::read(&path).unwrap()), ["first"]);
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_write_keeps_the_files_mode_and_a_new_file_is_private() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    let store = file_store(&path, None);
    assert_eq!(add(&store, "a"), Ok(true));
    assert_eq!(
        mode(&path),
        0o600,
        "a new keys file is readable by its owner only"
    );
    for kept in [0o600, 0o640, 0o604] {
        set_mode(&path, kept);
        assert_eq!(add(&store, &format!("k{kept:o}")), Ok(true));
        assert_eq!(mode(&path), kept);
    }
}

#[test]
fn a_write_keeps_the_files_owner_and_group_where_it_may() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, EMPTY_FILE).unwrap();
    let ours = std::fs::metadata(&path).unwrap();
    // Only root may give a file away; anyone else keeps it as theirs.
    let (uid, gid) = match ours.uid() {
        0 => (65534, 65534),
        _ => (ours.uid(), ours.gid()),
    };
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    set_mode(&path, 0o640);
    assert_eq!(add(&file_store(&path, None), "a"), Ok(true));
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!((after.uid(), after.gid(), mode(&path)), (uid, gid, 0o640));
}

#[test]
fn a_link_planted_at_a_temporary_name_is_never_written_through() {
    let dir = temp_dir();
    let elsewhere = temp_dir();
    let target = elsewhere.path().join("target");
    std::fs::write(&target, "untouched").unwrap();
    let path = dir.path().join("keys.json");
    // The names the temporary file once had: predictable from the process id.
    let planted = [
        format!("keys.json.tmp.{}", std::process::id()),
        "keys.json.tmp".into(),
    ];
    for name in &planted {
        std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
    }
    let store = file_store(&path, None);
    assert_eq!(add(&store, "a"), Ok(true));
    assert_eq!(add(&store, "b"), Ok(true));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
    assert_eq!(ids(&std::fs::read(&path).unwrap()), ["a", "b"]);
    for name in &planted {
        let link = dir.path().join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), target, "{name}");
    }
}

#[test]
fn a_link_or_fifo_planted_at_the_lock_file_is_refused() {
    let dir = temp_dir();
    let elsewhere = temp_dir();
    let path = dir.path().join("keys.json");
    let store = file_store(&path, None);
    assert_eq!(add(&store, "a"), Ok(true));
    let before = std::fs::read(&path).unwrap();
    let lock = dir.path().join("keys.json.lock");
    let refused = |why: &str| {
        // The change is stored beside the file; folding it in needs the lock.
        add(&store, "b").unwrap();
        let e = store.compact().unwrap_err();
        let Error::Unavailable { location, message } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(location, &path.display().to_string());
        assert!(
            message.starts_with("cannot create the lock file beside it: ") && message.contains(why),
            "{message}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    };
    // A link to a file that does not exist yet: following it would create that file.
    let target = elsewhere.path().join("created");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    refused("symbolic links");
    assert!(!target.exists(), "the lock was created through the link");
    // A link to a file that exists: it is neither changed nor locked.
    std::fs::write(&target, "untouched").unwrap();
    refused("symbolic links");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    // A FIFO would block the open until someone read it.
    std::fs::remove_file(&lock).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&lock)
        .status()
        .unwrap();
    assert!(made.success());
    refused("");
}

/// Renames key `id` to `name` by id, as the CLI's edits do.
fn rename(store: &Store, id: &str, name: &str) -> Result<bool, Error> {
    store.update(|f: &mut Document| {
        let Some(record) = f.get(id) else {
            return Err(Error::unavailable("test", format!("no key {id}")));
        };
        let mut record = record.map_err(|e| Error::keys("test", e))?;
        if record.name != name {
            record.name = name.into();
            f.replace(record);
        }
        Ok(())
    })
}

#[test]
fn an_edit_of_a_large_file_sees_the_keys_it_looks_up_as_they_now_are() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, None);
    assert_eq!(rename(&store, "big_0001", "one"), Ok(true));
    assert_eq!(add(&store, "fresh"), Ok(true));
    assert_eq!(rename(&store, "fresh", "new"), Ok(true));
    assert_eq!(
        rename(&store, "fresh", "new"),
        Ok(false),
        "nothing left to change"
    );
    assert!(rename(&store, "nobody", "x").is_err());
    let removed = store.update(|f: &mut Document| {
        f.remove("big_0001");
        Ok::<(), Error>(())
    });
    assert_eq!(removed, Ok(true));
    // Each change holds only the key it touched.
    let changes = store.changes_after(0).unwrap().unwrap();
    let sizes: Vec<usize> = changes.iter().map(|c| c.to_json().len()).collect();
    assert!(sizes.iter().all(|&n| n < 600), "{sizes:?}");
    assert_eq!(changes.len(), 4);
    let file = store.load().unwrap();
    let all = Document::parse(file.bytes_or_empty()).unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.get("big_0001").is_none());
    assert_eq!(all.get("fresh").unwrap().unwrap().name, "new");
}

#[test]
fn concurrent_edits_of_a_large_file_keep_every_key() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = file_store(&path, None);
                for i in 0..10 {
                    add(&store, &format!("k{t}-{i}")).unwrap();
                    rename(&store, &format!("big_{:04}", t * 10 + i), "renamed").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = file_store(&path, None);
    let file = Document::parse(store.load().unwrap().bytes_or_empty())
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>();
    assert_eq!(file.len(), 360);
    assert_eq!(file.iter().filter(|r| r.name == "renamed").count(), 60);
}

/// Keys a writer knows from elsewhere (a server's served set).
struct Known(std::collections::HashMap<String, KeyRecord>, u64);

impl crate::Base for Known {
    fn next(&self) -> u64 {
        self.1
    }
    fn get(&self, id: &str) -> Result<Option<KeyRecord>, Error> {
        Ok(self.0.get(id).cloned())
    }
}

#[test]
fn a_writer_that_knows_the_keys_reads_only_the_changes_after_them() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, None);
    // What the writer knows: the file as it was, not a change made since by another writer.
    let snapshot = store.load().unwrap();
    let known: std::collections::HashMap<String, KeyRecord> =
        Document::parse(snapshot.bytes_or_empty())
            .unwrap()
            .records()
            .map(|r| r.unwrap())
            .map(|r| (r.id.clone(), r))
            .collect();
    let base = Known(known, snapshot.next);
    assert_eq!(rename(&store, "big_0002", "theirs"), Ok(true));
    // The file may not be read: make it unreadable.
    let hidden = dir.path().join("elsewhere.json");
    std::fs::rename(&path, &hidden).unwrap();
    let written = store.update_on(&base, |f: &mut Document| {
        // Looked up first in a document without it, then with it as it now is.
        let Some(record) = f.get("big_0002") else {
            return Ok(());
        };
        let mut record = record.unwrap();
        assert_eq!(record.name, "theirs", "the change made since is seen");
        record.metadata = serde_json::value::RawValue::from_string(r#"{"n":1}"#.into()).unwrap();
        f.replace(record);
        Ok::<(), Error>(())
    });
    assert_eq!(written, Ok(true));
    std::fs::rename(&hidden, &path).unwrap();
    let file = store.load().unwrap();
    let key = Document::parse(file.bytes_or_empty())
        .unwrap()
        .get("big_0002")
        .unwrap()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.metadata.get()),
        ("theirs", r#"{"n":1}"#)
    );
}

#[test]
fn with_a_storage_secret_each_change_is_encrypted_like_the_file() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, Some("storage secret"));
    assert_eq!(add(&store, "sealed"), Ok(true));
    let change = std::fs::read(
        dir.path()
            .join("keys.json.changes/00000000000000000000.json"),
    );
    let change = change.unwrap();
    assert!(
        change.starts_with(b"HEARE_ENCRYPTED_V1:"),
        "{}",
        String::from_utf8_lossy(&change)
    );
    assert!(!String::from_utf8_lossy(&change).contains("sealed"));
    assert_eq!(ids(store.load().unwrap().bytes_or_empty()).len(), 301);
    // Without the secret, or with another, the change is refused as the file would be.
    let err = file_store(&path, Some("wrong"))
        .changes_after(0)
        .unwrap_err();
    assert!(matches!(err, Error::Keys { .. }), "{err:?}");
    // Folded, the file is encrypted too, and holds the key.
    assert_eq!(store.compact(), Ok(1));
    assert!(std::fs::read(&path)
        .unwrap()
        .starts_with(b"HEARE_ENCRYPTED_V1:"));
    assert!(ids(store.load().unwrap().bytes_or_empty()).contains(&"sealed".to_string()));
}

/// The index beside the keys file at `path`.
fn index_of(path: &Path) -> std::path::PathBuf {
    path.with_file_name("keys.json.changes/index")
}

/// The version the index beside `path` names.
fn indexed_version(path: &Path) -> String {
    let index = std::fs::read(index_of(path)).unwrap();
    let line = index.split(|&b| b == b'\n').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(line).unwrap();
    header["version"].as_str().unwrap().to_string()
}

/// The name of key `id` as the store now holds it.
fn name_of(store: &Store, id: &str) -> Option<String> {
    let file = store.load().unwrap();
    let doc = Document::parse(file.bytes_or_empty()).unwrap();
    doc.get(id).map(|r| r.unwrap().name)
}

#[test]
fn a_large_file_is_changed_through_its_index_without_being_read() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let (store, gets) = counted_store(&path);
    // No index yet: the file is read whole, and its index written beside it.
    assert_eq!(rename(&store, "big_0003", "three"), Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 1);
    assert_eq!(indexed_version(&path), store.version().unwrap().unwrap());
    // Then each change reads only the keys it looks up, from the index and the file.
    assert_eq!(rename(&store, "big_0150", "middle"), Ok(true));
    assert_eq!(rename(&store, "big_0003", "three"), Ok(false));
    assert_eq!(add(&store, "fresh"), Ok(true));
    assert_eq!(rename(&store, "fresh", "new"), Ok(true));
    // An edit of a large file is first shown none of its keys, then those it looked up.
    let mut removed_id = None;
    let removed = store.update(|f: &mut Document| {
        removed_id = f.remove("big_0299").map(|r| r.unwrap().id);
        Ok::<(), Error>(())
    });
    assert_eq!(removed_id.as_deref(), Some("big_0299"));
    assert_eq!(removed, Ok(true));
    let missing = rename(&store, "big_0300", "x").unwrap_err();
    assert!(missing.to_string().contains("no key big_0300"), "{missing}");
    assert_eq!(gets.swap(0, Ordering::SeqCst), 0);
    // Each change holds only its key, and they add up to the file with them applied.
    let changes = store.changes_after(0).unwrap().unwrap();
    assert_eq!(changes.len(), 5);
    assert!(changes.iter().all(|c| c.to_json().len() < 600));
    assert_eq!(name_of(&store, "big_0003").as_deref(), Some("three"));
    assert_eq!(name_of(&store, "big_0150").as_deref(), Some("middle"));
    assert_eq!(name_of(&store, "fresh").as_deref(), Some("new"));
    assert_eq!(name_of(&store, "big_0299"), None);
    assert_eq!(ids(store.load().unwrap().bytes_or_empty()).len(), 300);
    gets.store(0, Ordering::SeqCst);
    // A fold writes the new snapshot's index: the next change reads no more than before.
    assert_eq!(store.compact(), Ok(5));
    assert_eq!(indexed_version(&path), store.version().unwrap().unwrap());
    gets.store(0, Ordering::SeqCst);
    assert_eq!(rename(&store, "fresh", "folded"), Ok(true));
    assert_eq!(rename(&store, "big_0010", "ten"), Ok(true));
    assert_eq!(gets.load(Ordering::SeqCst), 0);
    assert_eq!(name_of(&store, "fresh").as_deref(), Some("folded"));
    assert_eq!(name_of(&store, "big_0010").as_deref(), Some("ten"));
}

#[test]
fn an_index_of_another_version_or_not_as_it_says_is_not_trusted() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let (store, gets) = counted_store(&path);
    assert_eq!(rename(&store, "big_0001", "one"), Ok(true));
    let indexed = indexed_version(&path);
    // The file edited by another tool: the index names a version that is gone.
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(
        r#""secret": "s2", "name": "x"#,
        r#""secret": "s2", "name": "edited-x"#,
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    gets.store(0, Ordering::SeqCst);
    let seen = store.update(|f: &mut Document| {
        let Some(record) = f.get("big_0002") else {
            return Ok(());
        };
        let record = record.unwrap();
        assert!(record.name.starts_with("edited-x"), "{}", record.name);
        let mut record = record;
        record.name = "two".into();
        f.replace(record);
        Ok::<(), Error>(())
    });
    assert_eq!(seen, Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 1);
    assert_ne!(indexed_version(&path), indexed);
    assert_eq!(name_of(&store, "big_0001").as_deref(), Some("one"));
    assert_eq!(name_of(&store, "big_0002").as_deref(), Some("two"));
    // An index whose entries point elsewhere in the file: the update reads the file whole,
    // and writes a sound index again.
    gets.store(0, Ordering::SeqCst);
    let mut index = std::fs::read(index_of(&path)).unwrap();
    let entries_at = index.len() - 300 * 20;
    for entry in index[entries_at..].chunks_exact_mut(20) {
        entry[8] = entry[8].wrapping_add(3);
    }
    std::fs::write(index_of(&path), &index).unwrap();
    assert_eq!(rename(&store, "big_0004", "four"), Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 1);
    assert_eq!(rename(&store, "big_0005", "five"), Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 0);
    // One cut short, or not an index at all, likewise.
    let index = std::fs::read(index_of(&path)).unwrap();
    std::fs::write(index_of(&path), &index[..index.len() - 7]).unwrap();
    assert_eq!(rename(&store, "big_0298", "cut"), Ok(true));
    std::fs::write(index_of(&path), b"{}\n").unwrap();
    assert_eq!(rename(&store, "big_0297", "junk"), Ok(true));
    for (id, name) in [
        ("big_0004", "four"),
        ("big_0005", "five"),
        ("big_0298", "cut"),
        ("big_0297", "junk"),
    ] {
        assert_eq!(name_of(&store, id).as_deref(), Some(name));
    }
    assert_eq!(ids(store.load().unwrap().bytes_or_empty()).len(), 300);
}

#[test]
fn a_key_held_twice_is_refused_through_the_index_as_without_it() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let text = std::fs::read_to_string(&path).unwrap();
    let twice = text.replacen(r#""id": "big_0009""#, r#""id": "big_0008""#, 1);
    std::fs::write(&path, twice).unwrap();
    let store = file_store(&path, None);
    for _ in 0..2 {
        let refused = rename(&store, "big_0008", "which").unwrap_err();
        assert!(refused.to_string().contains("big_0008"), "{refused}");
        assert!(index_of(&path).exists());
    }
    assert_eq!(rename(&store, "big_0010", "ten"), Ok(true));
}

#[test]
fn an_encrypted_file_has_no_index() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, Some("storage secret"));
    assert_eq!(add(&store, "sealed"), Ok(true));
    assert_eq!(store.compact(), Ok(1));
    assert_eq!(add(&store, "sealed too"), Ok(true));
    assert!(!index_of(&path).exists());
}

#[test]
fn every_64th_change_to_a_large_file_makes_a_fold_due_for_the_caller_to_run() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let store = file_store(&path, None);
    let before = std::fs::read(&path).unwrap();
    for i in 0..crate::COMPACT_AFTER - 1 {
        add(&store, &format!("k{i}")).unwrap();
        assert!(!store.take_fold_due(), "after change {i}");
    }
    add(&store, "last").unwrap();
    assert!(store.take_fold_due());
    assert!(!store.take_fold_due(), "said once");
    // Nothing was folded meanwhile: the caller folds.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(store.compact(), Ok(crate::COMPACT_AFTER));
    assert_eq!(
        ids(&std::fs::read(&path).unwrap()).len(),
        300 + crate::COMPACT_AFTER
    );
}

#[test]
fn a_hostile_index_sends_the_change_the_long_way_without_reading_what_it_claims() {
    let dir = temp_dir();
    let path = dir.path().join("keys.json");
    large_file(&path, 300);
    let (store, gets) = counted_store(&path);
    assert_eq!(rename(&store, "big_0001", "one"), Ok(true));
    let index = std::fs::read(index_of(&path)).unwrap();
    let line = index.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut header: serde_json::Value = serde_json::from_slice(&index[..line - 1]).unwrap();
    let buckets = header["buckets"].as_u64().unwrap() as usize;
    // Every bucket claims every key there could be, and every record is 4 GB long.
    let mut huge = index.clone();
    for count in huge[line + 4..line + 4 * (buckets + 1)].chunks_exact_mut(4) {
        count.copy_from_slice(&u32::MAX.to_le_bytes());
    }
    header["keys"] = u32::MAX.into();
    let mut text = serde_json::to_vec(&header).unwrap();
    text.extend_from_slice(&huge[line - 1..]);
    std::fs::write(index_of(&path), &text).unwrap();
    gets.store(0, Ordering::SeqCst);
    assert_eq!(rename(&store, "big_0002", "two"), Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 1);
    let entries_at = index.len() - 300 * 20;
    huge = std::fs::read(index_of(&path)).unwrap();
    assert_eq!(huge.len(), index.len(), "written again, sound");
    for entry in huge[entries_at..].chunks_exact_mut(20) {
        entry[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    std::fs::write(index_of(&path), &huge).unwrap();
    assert_eq!(rename(&store, "big_0003", "three"), Ok(true));
    assert_eq!(gets.swap(0, Ordering::SeqCst), 1);
    // A header claiming more buckets than 32-bit counts can hold is no index.
    header["buckets"] = (1u64 << 40).into();
    let mut text = serde_json::to_vec(&header).unwrap();
    text.push(b'\n');
    std::fs::write(index_of(&path), &text).unwrap();
    assert_eq!(rename(&store, "big_0004", "four"), Ok(true));
    // A FIFO or a link planted at the index's name is not opened.
    std::fs::remove_file(index_of(&path)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        index_of(&path),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(rename(&store, "big_0005", "five"), Ok(true));
    std::fs::remove_file(index_of(&path)).ok();
    std::os::unix::fs::symlink("/dev/zero", index_of(&path)).unwrap();
    assert_eq!(rename(&store, "big_0006", "six"), Ok(true));
    for (id, name) in [
        ("big_0002", "two"),
        ("big_0003", "three"),
        ("big_0004", "four"),
        ("big_0005", "five"),
        ("big_0006", "six"),
    ] {
        assert_eq!(name_of(&store, id).as_deref(), Some(name));
    }
}
