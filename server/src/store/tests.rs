//! Store tests on the local file backend: encryption, change detection, concurrent updates.

use super::*;
use heare_auth_core::KeyRecord;
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heare-auth-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        secret_hash: Some(heare_auth_core::hash_secret(id).to_hex()),
        ..KeyRecord::default()
    }
}

fn file_store(path: &std::path::Path, secret: Option<&str>) -> Store {
    Store::new(Box::new(FileBackend::new(path)), secret.map(String::from))
}

fn add(store: &Store, id: &str) -> Result<KeyFile, Error> {
    store.update(&mut |f| {
        if f.get(id).is_none() {
            f.keys.push(record(id));
        }
        Ok(())
    })
}

#[test]
fn missing_file_is_empty_and_first_write_creates_it() {
    let dir = temp_dir("create");
    let store = file_store(&dir.join("keys.json"), None);
    assert_eq!(
        store.load().unwrap(),
        Snapshot {
            bytes: None,
            version: None
        }
    );
    assert_eq!(store.load_if_changed(None).unwrap(), None);
    add(&store, "a").unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(
        KeyFile::from_json(snapshot.bytes_or_empty()).unwrap().keys[0].id,
        "a"
    );
    // No temp file is left behind: only keys.json and its lock file.
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keys.json", "keys.json.lock"]);
}

#[test]
fn changes_are_detected_by_content() {
    let dir = temp_dir("changes");
    let path = dir.join("keys.json");
    let store = file_store(&path, None);
    add(&store, "a").unwrap();
    let first = store.load_if_changed(None).unwrap().unwrap();
    assert_eq!(
        store.load_if_changed(first.version.as_deref()).unwrap(),
        None
    );
    // Rewriting identical bytes is not a change; different bytes are.
    std::fs::write(&path, first.bytes.clone().unwrap()).unwrap();
    assert_eq!(
        store.load_if_changed(first.version.as_deref()).unwrap(),
        None
    );
    add(&store, "b").unwrap();
    let second = store
        .load_if_changed(first.version.as_deref())
        .unwrap()
        .unwrap();
    assert_ne!(second.version, first.version);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        store.load_if_changed(second.version.as_deref()).unwrap(),
        Some(Snapshot {
            bytes: None,
            version: None
        })
    );
}

#[test]
fn failed_edit_or_invalid_result_writes_nothing() {
    let dir = temp_dir("nowrite");
    let path = dir.join("keys.json");
    std::fs::write(&path, br#"{"keys": [{"id": "a", "secret": "s"}]}"#).unwrap();
    let store = file_store(&path, None);
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
        std::fs::read(&path).unwrap(),
        br#"{"keys": [{"id": "a", "secret": "s"}]}"#
    );
}

#[test]
fn concurrent_updates_keep_every_key() {
    let dir = temp_dir("concurrent");
    let path = dir.join("keys.json");
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
    assert_eq!(KeyFile::from_json(&bytes).unwrap().keys.len(), 80);
}

#[test]
fn storage_secret_encrypts_writes_and_reads_both_forms() {
    let dir = temp_dir("encrypted");
    let path = dir.join("keys.json");
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
    assert_eq!(KeyFile::from_json(&plain).unwrap().keys.len(), 2);

    let err = |secret: Option<&str>| file_store(&path, secret).load().unwrap_err().to_string();
    assert!(
        err(None).ends_with("the keys file is encrypted but STORAGE_SECRET is not set"),
        "{}",
        err(None)
    );
    assert!(err(Some("wrong")).ends_with("wrong STORAGE_SECRET or a damaged file"));
    assert!(!err(Some("wrong")).contains("storage secret"));
}

/// A backend whose conditional writes are not atomic: it reports success but another writer's
/// stale bytes land afterwards (as happens when two writers pass the check at once).
struct LossyBackend {
    inner: FileBackend,
    lose_next: std::sync::atomic::AtomicBool,
}

impl Backend for LossyBackend {
    fn location(&self) -> String {
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
}

#[test]
fn a_write_lost_after_it_succeeded_is_detected_and_redone() {
    let dir = temp_dir("lossy");
    let path = dir.join("keys.json");
    let plain = file_store(&path, None);
    add(&plain, "first").unwrap();
    let lossy = Store::new(
        Box::new(LossyBackend {
            inner: FileBackend::new(&path),
            lose_next: true.into(),
        }),
        None,
    );
    let file = add(&lossy, "second").unwrap();
    assert_eq!(file.keys.len(), 2);
    let stored = KeyFile::from_json(plain.load().unwrap().bytes_or_empty()).unwrap();
    let ids: Vec<_> = stored.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["first", "second"]);
}
