//! The live key set: an `Arc` of the keys and their rate-limit buckets behind a `RwLock`,
//! replaced whole by reloads that read and parse outside the lock.

use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heare_auth_core::{Bucket, Key, KeySet, UnixMillis};

use heare_auth_store::{now_ms, Error, Snapshot, Store};

/// The key set being served and the store it is loaded from.
pub struct Keys {
    current: RwLock<Arc<Loaded>>,
    store: Store,
    /// Version of the file being served. Holding this lock serialises reloads, so an older
    /// read never replaces a newer one; verification never takes it.
    version: Mutex<Option<String>>,
    /// When the store was last read, and what failed since.
    health: Health,
}

/// One loaded key set, and a token bucket for each of its keys that has a rate limit.
pub struct Loaded {
    set: KeySet,
    /// By key id: one lock per key, never one for all.
    buckets: HashMap<Box<str>, Mutex<Bucket>>,
}

impl Deref for Loaded {
    type Target = KeySet;

    fn deref(&self) -> &KeySet {
        &self.set
    }
}

impl Loaded {
    fn new(
        set: KeySet,
        before: Option<&Loaded>,
        now: UnixMillis,
        pace: &mut dyn FnMut(),
    ) -> Loaded {
        let buckets = set
            .keys()
            .enumerate()
            .filter_map(|(i, key)| {
                if i.is_multiple_of(PACE_EVERY) {
                    pace();
                }
                let limit = key.rate_limit()?;
                let kept = before
                    .and_then(|b| b.buckets.get(key.id()))
                    .map(|bucket| bucket.lock().under(limit, now));
                let bucket = kept.unwrap_or_else(|| Bucket::full(now));
                Some((Box::from(key.id()), Mutex::new(bucket)))
            })
            .collect();
        Loaded { set, buckets }
    }

    /// Takes a token for a request with `key` at `now`: `Err` with the milliseconds until one
    /// is there when the key is over its rate limit. A key without a limit always passes.
    pub fn take(&self, key: Key, now: UnixMillis) -> Result<(), u64> {
        let (Some(limit), Some(bucket)) = (key.rate_limit(), self.buckets.get(key.id())) else {
            return Ok(());
        };
        bucket.lock().take(limit, now)
    }
}

#[cfg(test)]
impl Loaded {
    /// The ids of the keys that have a bucket, sorted.
    pub(crate) fn bucket_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.buckets.keys().map(|id| &**id).collect();
        ids.sort_unstable();
        ids
    }
}

/// When the store was last read and loaded, and the reloads that failed.
#[derive(Default)]
struct Health {
    last_read_ms: AtomicI64,
    last_load_ms: AtomicI64,
    /// Failed checks by the poller, then failed `/refresh` reloads.
    failures: [AtomicU64; 2],
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn read(&self, loaded: bool) {
        let now = now_ms();
        self.last_read_ms.store(now, Ordering::Relaxed);
        if loaded {
            self.last_load_ms.store(now, Ordering::Relaxed);
        }
        *self.last_error.lock() = None;
    }

    fn failed(&self, trigger: usize, e: &Error) {
        self.failures[trigger].fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(e.to_string());
    }
}

impl Keys {
    /// Loads the store, retrying with backoff while it cannot be read (not while its content
    /// is invalid) for up to `timeout`.
    pub fn load_with_retry(store: Store, timeout: Duration) -> Result<Keys, Error> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            match store.load() {
                Ok(snapshot) => {
                    let set = parse(&store, &snapshot, &mut || {})?;
                    let keys = Keys {
                        current: RwLock::new(Arc::new(Loaded::new(
                            set,
                            None,
                            now_ms(),
                            &mut || {},
                        ))),
                        store,
                        version: Mutex::new(snapshot.version),
                        health: Health::default(),
                    };
                    keys.health.read(true);
                    return Ok(keys);
                }
                Err(e @ (Error::Unavailable { .. } | Error::Damaged { .. }))
                    if Instant::now() + delay < deadline =>
                {
                    log::warn!(error:% = e, retry_in_ms = delay.as_millis() as u64; "startup_retry");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The set to verify against. The read lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.read().clone()
    }

    /// Re-reads the store and swaps the new set in. On error the old set stays. `pace` is
    /// called between pieces of the work (see [`crate::pace`]).
    pub fn reload(&self, pace: &mut dyn FnMut()) -> Result<usize, Error> {
        let mut version = self.version.lock();
        let result = self
            .store
            .load_paced(pace)
            .and_then(|snapshot| self.swap(&mut version, snapshot, pace));
        match &result {
            Ok(_) => self.health.read(true),
            Err(e) => self.health.failed(1, e),
        }
        result
    }

    /// Reloads only if the stored file changed; `Ok(None)` when it did not. `pace` as for
    /// [`Keys::reload`].
    pub fn poll(&self, pace: &mut dyn FnMut()) -> Result<Option<usize>, Error> {
        let mut version = self.version.lock();
        let result = match self.store.load_if_changed(version.as_deref(), pace) {
            Ok(None) => Ok(None),
            Ok(Some(snapshot)) => self.swap(&mut version, snapshot, pace).map(Some),
            Err(e) => Err(e),
        };
        match &result {
            Ok(loaded) => self.health.read(loaded.is_some()),
            Err(e) => self.health.failed(0, e),
        }
        result
    }

    /// How long ago the store was last read successfully.
    pub fn read_age(&self) -> Duration {
        let age = now_ms() - self.health.last_read_ms.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(age).unwrap_or(0))
    }

    /// Unix milliseconds of the last successful load of a key set.
    pub fn last_load_ms(&self) -> UnixMillis {
        self.health.last_load_ms.load(Ordering::Relaxed)
    }

    /// Failed reloads: by the poller, then by `/refresh`.
    pub fn reload_failures(&self) -> [u64; 2] {
        self.health
            .failures
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed))
    }

    /// Why the last read failed, if it did and none succeeded since.
    pub fn last_error(&self) -> Option<String> {
        self.health.last_error.lock().clone()
    }

    /// Where the keys come from, for messages.
    pub fn location(&self) -> &str {
        self.store.location()
    }

    fn swap(
        &self,
        version: &mut Option<String>,
        snapshot: Snapshot,
        pace: &mut dyn FnMut(),
    ) -> Result<usize, Error> {
        let old = self.current();
        if snapshot.version.is_none() && version.is_some() {
            // A store that loses the file is broken, not an order to refuse every key: to
            // remove them all, write a file with none.
            return Err(Error::unavailable(
                self.store.location(),
                format!(
                    "the keys file is gone; still serving the {} keys last loaded",
                    old.len()
                ),
            ));
        }
        let set = parse(&self.store, &snapshot, pace)?;
        log_changes(&old, &set, pace);
        let new = Arc::new(Loaded::new(set, Some(&old), now_ms(), pace));
        *self.current.write() = new.clone();
        *version = snapshot.version;
        Ok(new.len())
    }
}

/// Keys handled between two calls of a reload's `pace`.
const PACE_EVERY: usize = 64;

/// Parses a snapshot, logging keys that load with warnings.
fn parse(store: &Store, snapshot: &Snapshot, pace: &mut dyn FnMut()) -> Result<KeySet, Error> {
    let (set, warnings) = KeySet::from_json_paced(snapshot.bytes_or_empty(), pace)
        .map_err(|e| Error::keys(store.location(), e))?;
    for w in warnings {
        log::warn!(warning:% = w; "key_warning");
    }
    Ok(set)
}

/// Logs `keys_changed` with the ids added, removed and changed (never secrets or hashes).
fn log_changes(old: &KeySet, new: &KeySet, pace: &mut dyn FnMut()) {
    let diff = diff(old, new, pace);
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
fn diff(old: &KeySet, new: &KeySet, pace: &mut dyn FnMut()) -> [Vec<String>; 3] {
    let mut alike = old.keys().zip(new.keys()).enumerate().map(|(i, (a, b))| {
        if i.is_multiple_of(PACE_EVERY) {
            pace();
        }
        a == b
    });
    if old.len() == new.len() && alike.all(|same| same) {
        return [vec![], vec![], vec![]];
    }
    let mut paced = |i: usize| {
        if i.is_multiple_of(PACE_EVERY) {
            pace();
        }
    };
    let mut before: HashMap<&str, Key> = HashMap::with_capacity(old.len());
    for (i, key) in old.keys().enumerate() {
        paced(i);
        before.insert(key.id(), key);
    }
    let (mut added, mut changed, mut kept) = (Vec::new(), Vec::new(), 0);
    for (i, key) in new.keys().enumerate() {
        paced(i);
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
        let mut after: HashSet<&str> = HashSet::with_capacity(new.len());
        for (i, key) in new.keys().enumerate() {
            paced(i);
            after.insert(key.id());
        }
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
            diff(&old, &new, &mut || {}),
            [
                vec!["e".to_string()],
                vec!["a".to_string()],
                vec!["c".to_string(), "d".to_string()]
            ]
        );
        assert_eq!(
            diff(&new, &new, &mut || {}),
            [Vec::<String>::new(), vec![], vec![]]
        );
    }
}
