//! The live key set: an `Arc<KeySet>` behind a `RwLock`, replaced whole by reloads that read
//! and parse outside the lock.

use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heare_auth_core::{Key, KeySet};

use heare_auth_store::{Error, Snapshot, Store};

/// The key set being served and the store it is loaded from.
pub struct Keys {
    current: RwLock<Arc<KeySet>>,
    store: Store,
    /// Version of the file being served. Holding this lock serialises reloads, so an older
    /// read never replaces a newer one; verification never takes it.
    version: Mutex<Option<String>>,
}

impl Keys {
    /// Loads the store once.
    pub fn load(store: Store) -> Result<Keys, Error> {
        Keys::load_with_retry(store, Duration::ZERO)
    }

    /// Loads the store, retrying with backoff while it cannot be read (not while its content
    /// is invalid) for up to `timeout`.
    pub fn load_with_retry(store: Store, timeout: Duration) -> Result<Keys, Error> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            match store.load() {
                Ok(snapshot) => {
                    let set = parse(&store, &snapshot)?;
                    return Ok(Keys {
                        current: RwLock::new(Arc::new(set)),
                        store,
                        version: Mutex::new(snapshot.version),
                    });
                }
                Err(e @ Error::Unavailable { .. }) if Instant::now() + delay < deadline => {
                    log::warn!(error:% = e, retry_in_ms = delay.as_millis() as u64; "startup_retry");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The set to verify against. The read lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().clone()
    }

    /// Re-reads the store and swaps the new set in. On error the old set stays.
    pub fn reload(&self) -> Result<usize, Error> {
        let mut version = self.version.lock();
        let snapshot = self.store.load()?;
        self.swap(&mut version, snapshot)
    }

    /// Reloads only if the stored file changed; `Ok(None)` when it did not.
    pub fn poll(&self) -> Result<Option<usize>, Error> {
        let mut version = self.version.lock();
        match self.store.load_if_changed(version.as_deref())? {
            None => Ok(None),
            Some(snapshot) => self.swap(&mut version, snapshot).map(Some),
        }
    }

    /// Where the keys come from, for messages.
    pub fn location(&self) -> &str {
        self.store.location()
    }

    fn swap(&self, version: &mut Option<String>, snapshot: Snapshot) -> Result<usize, Error> {
        let new = Arc::new(parse(&self.store, &snapshot)?);
        let old = self.current();
        log_changes(&old, &new);
        *self.current.write() = new.clone();
        *version = snapshot.version;
        Ok(new.len())
    }
}

/// Parses a snapshot, logging keys that load with warnings.
fn parse(store: &Store, snapshot: &Snapshot) -> Result<KeySet, Error> {
    let (set, warnings) = KeySet::from_json(snapshot.bytes_or_empty())
        .map_err(|e| Error::keys(store.location(), e))?;
    for w in warnings {
        log::warn!(warning:% = w; "key_warning");
    }
    Ok(set)
}

/// Logs `keys_changed` with the ids added, removed and changed (never secrets or hashes).
fn log_changes(old: &KeySet, new: &KeySet) {
    let diff = diff(old, new);
    if diff.iter().all(Vec::is_empty) {
        return;
    }
    let [added, removed, changed] = diff.map(|ids| ids.join(","));
    log::info!(
        added = added.as_str(), removed = removed.as_str(), changed = changed.as_str(),
        keys_loaded = new.len();
        "keys_changed"
    );
}

/// Ids added, removed and changed (secret, name, metadata or expiry) from `old` to `new`,
/// each sorted. A file rewritten with the same keys in the same order (the usual reload) costs
/// one pass and no hashing.
fn diff(old: &KeySet, new: &KeySet) -> [Vec<String>; 3] {
    if old.len() == new.len() && old.keys().zip(new.keys()).all(|(a, b)| a == b) {
        return [vec![], vec![], vec![]];
    }
    let before: HashMap<&str, Key> = old.keys().map(|k| (k.id(), k)).collect();
    let (mut added, mut changed, mut kept) = (Vec::new(), Vec::new(), 0);
    for key in new.keys() {
        match before.get(key.id()) {
            None => added.push(key.id().to_string()),
            Some(was) => {
                kept += 1;
                if *was != key {
                    changed.push(key.id().to_string());
                }
            }
        }
    }
    let mut removed = Vec::new();
    if kept < before.len() {
        let after: HashSet<&str> = new.keys().map(|k| k.id()).collect();
        removed = before
            .keys()
            .filter(|id| !after.contains(*id))
            .map(|id| id.to_string())
            .collect();
    }
    for ids in [&mut added, &mut removed, &mut changed] {
        ids.sort();
    }
    [added, removed, changed]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> KeySet {
        KeySet::from_json(json.as_bytes()).unwrap().0
    }

    #[test]
    fn diff_names_ids_only() {
        let old = set(
            r#"{"keys": [{"id": "a", "secret": "1"}, {"id": "b", "secret": "2"}, {"id": "c", "secret": "3", "name": "C"},
                                   {"id": "d", "secret": "4"}]}"#,
        );
        let new = set(
            r#"{"keys": [{"id": "b", "secret": "2"}, {"id": "c", "secret": "3", "name": "C2"},
                                   {"id": "d", "secret": "5"}, {"id": "e", "secret": "6"}]}"#,
        );
        assert_eq!(
            diff(&old, &new),
            [
                vec!["e".to_string()],
                vec!["a".to_string()],
                vec!["c".to_string(), "d".to_string()]
            ]
        );
        assert_eq!(diff(&new, &new), [Vec::<String>::new(), vec![], vec![]]);
    }
}
