//! What the keys loader owns: the store, where the keys served are in it (the snapshot's version
//! and the next change), the record of how reloads fare, and the two ways the [`Live`] set
//! changes: a change applied in place, costing what it changes, on the loader's thread; and a
//! whole load of the snapshot, only when a change cannot tell what changed (another tool
//! rewrote the file, or the changes a reader needs were removed), on a thread of its own at
//! the lowest priority, while changes go on being applied. Requests never wait for either.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use heare_auth_core::KeySet;
use heare_auth_store::{Change, Error, Net, Snapshot, Store};

use crate::catalog::Catalog;
use crate::changes::log_changes;
use crate::clock::now_ms;
use crate::health::{Health, Trigger};
use crate::live::{Live, Served};
use crate::pace::Pacer;

/// The store the keys come from and what has been loaded of it.
pub struct Reloader {
    store: Arc<Store>,
    /// Version of the snapshot the keys served were loaded from.
    version: Option<String>,
    /// The first change not applied.
    next: u64,
    /// Versions of snapshots that hold only changes already applied here (folds noted in the
    /// changes): finding one of them is no reason to load it.
    known: HashSet<String>,
    live: Arc<Live>,
    health: Arc<Health>,
    /// Whether each load keeps a [`Catalog`] for the management API.
    management: bool,
    /// A whole load in progress, on its own thread, and what started it.
    loading: Option<(JoinHandle<Result<Loaded, Error>>, Trigger)>,
}

/// A whole load: the snapshot and the changes after it, ready to be served.
struct Loaded {
    served: Served,
    version: Option<String>,
    next: u64,
    known: HashSet<String>,
}

/// What a look at the store did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Looked {
    /// Changes applied.
    pub changes: usize,
    /// Whether a whole load is running (started now or before).
    pub loading: bool,
}

impl Reloader {
    /// Loads the store, retrying with backoff while it cannot be read (not while its content
    /// is invalid) for up to `timeout`; with `management`, each load keeps a [`Catalog`] too.
    pub fn load_with_retry(
        store: Store,
        timeout: Duration,
        management: bool,
    ) -> Result<Reloader, Error> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            match load(&store, management, None, &mut || {}) {
                Ok(loaded) => {
                    let health = Health::default();
                    health.read(true, now_ms());
                    return Ok(Reloader {
                        live: Arc::new(Live::from(loaded.served)),
                        health: Arc::new(health),
                        version: loaded.version,
                        next: loaded.next,
                        known: loaded.known,
                        store: Arc::new(store),
                        management,
                        loading: None,
                    });
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

    /// The set it loads into, for the handlers.
    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// Its record, for the handlers.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Where the keys come from, for messages.
    pub fn location(&self) -> &str {
        self.store.location()
    }

    /// Whether a whole load is running.
    pub fn loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Looks at the store: applies the changes made since the last look, and starts a whole
    /// load when they cannot tell what changed. On error the keys served stay as they are.
    pub fn look(&mut self, trigger: Trigger) -> Result<Looked, Error> {
        let result = self.look_inner(trigger);
        match &result {
            // The store is read once the whole load it needs has ended ([`Reloader::finish`]):
            // until then, the keys served may lack what it holds.
            Ok(looked) if looked.loading => {}
            Ok(looked) => self.health.read(looked.changes > 0, now_ms()),
            Err(e) => self.health.failed(trigger, e),
        }
        result
    }

    fn look_inner(&mut self, trigger: Trigger) -> Result<Looked, Error> {
        let mut changes = self.catch_up(trigger)?;
        if self.loading.is_none() && !self.holds(&self.store.version()?) {
            // A fold's note may have landed since the changes were read.
            changes += self.catch_up(trigger)?;
            if !self.holds(&self.store.version()?) {
                self.start(trigger);
            }
        }
        Ok(Looked {
            changes,
            loading: self.loading.is_some(),
        })
    }

    /// Looks at the store and, when that needs a whole load, waits for it; returns how many
    /// keys are served.
    pub fn reload(&mut self, trigger: Trigger) -> Result<usize, Error> {
        let looked = self.look(trigger)?;
        if looked.loading {
            if let Some((_, Err(e))) = self.finish(true) {
                return Err(e);
            }
        }
        Ok(self.live.current().len())
    }

    /// Serves the whole load in progress once it has finished (with `wait`, waits for it),
    /// then applies the changes made since it read the store. `None` while it runs (or when
    /// none does); else what started it, and why it failed if it did (counted against what
    /// started it).
    pub fn finish(&mut self, wait: bool) -> Option<(Trigger, Result<(), Error>)> {
        let (loading, trigger) = self.loading.take_if(|(l, _)| wait || l.is_finished())?;
        let loaded = loading
            .join()
            .unwrap_or_else(|_| Err(Error::unavailable(self.location(), "the load panicked")));
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                self.health.failed(trigger, &e);
                return Some((trigger, Err(e)));
            }
        };
        let count = self.live.install(loaded.served);
        self.version = loaded.version;
        self.next = loaded.next;
        self.known = loaded.known;
        self.health.read(true, now_ms());
        log::info!(keys_loaded = count, trigger = trigger.as_str(); "keys_file_loaded");
        if let Err(e) = self.catch_up(trigger) {
            self.health.failed(trigger, &e);
        }
        Some((trigger, Ok(())))
    }

    /// Whether the snapshot at `version` holds nothing the keys served lack.
    fn holds(&self, version: &Option<String>) -> bool {
        *version == self.version || version.as_ref().is_some_and(|v| self.known.contains(v))
    }

    /// Applies the changes made since the last one applied; when some of them were removed
    /// (this replica fell behind a fold), starts a whole load. Returns how many it applied.
    fn catch_up(&mut self, trigger: Trigger) -> Result<usize, Error> {
        match self.store.changes_after(self.next)? {
            Some(changes) if changes.is_empty() => Ok(0),
            Some(changes) => self.apply(&changes),
            None => {
                self.start(trigger);
                Ok(0)
            }
        }
    }

    /// Applies `changes` (in order, none missing) to the keys served.
    fn apply(&mut self, changes: &[Change]) -> Result<usize, Error> {
        let started = Instant::now();
        let old = self.live.current();
        let net = Net::of(changes);
        let (written, deleted) = (net.written(), net.deleted());
        let (set, warnings) = old
            .with_changes(&written, &deleted)
            .map_err(|e| Error::keys(self.store.location(), e))?;
        for w in warnings {
            log::warn!(warning:% = w; "key_warning");
        }
        let catalog = old.catalog().map(|c| c.with_changes(&written, &deleted));
        let ids = net.ids();
        let last = changes.last().map_or(self.next, |c| c.seq);
        let count = self.live.apply(set, catalog, &ids, (now_ms(), last + 1));
        log_applied(&old, &self.live.current(), &ids);
        drop(old);
        for change in changes {
            change.learn(self.version.as_deref(), &mut self.known);
        }
        self.next = last + 1;
        log::info!(
            changes = changes.len(), keys = ids.len(), seq = last, keys_loaded = count,
            apply_us = started.elapsed().as_micros() as u64;
            "changes_applied"
        );
        Ok(changes.len())
    }

    /// Starts a whole load on its own thread at the lowest priority, unless one is running.
    fn start(&mut self, trigger: Trigger) {
        if self.loading.is_some() {
            return;
        }
        let (store, management, live) = (self.store.clone(), self.management, self.live.clone());
        let had = self.version.is_some();
        let spawned = thread::Builder::new()
            .name("keys-reload".into())
            .spawn(move || {
                crate::loader::lower_priority();
                let mut pacer = Pacer::new();
                load(&store, management, Some((&live, had)), &mut || pacer.tick())
            });
        match spawned {
            Ok(handle) => self.loading = Some((handle, trigger)),
            Err(e) => log::error!(error:% = e; "reload_not_started"),
        }
    }
}

/// Loads the snapshot and the changes after it. With `before` (the set served, and whether
/// it came from a snapshot), keeps its counts, logs what changed, and refuses a store that
/// lost the snapshot it had.
fn load(
    store: &Store,
    management: bool,
    before: Option<(&Live, bool)>,
    pace: &mut dyn FnMut(),
) -> Result<Loaded, Error> {
    let state = store.read_paced(pace)?;
    let old = before.map(|(live, _)| live.current());
    if let (Some(old), Some((_, true)), None) = (&old, before, &state.snapshot.version) {
        // A store that loses the file is broken, not an order to refuse every key: to
        // remove them all, write a file with none.
        return Err(Error::unavailable(
            store.location(),
            format!(
                "the keys file is gone; still serving the {} keys last loaded",
                old.len()
            ),
        ));
    }
    let next = state.next();
    let mut known = HashSet::new();
    for change in &state.changes {
        change.learn(state.snapshot.version.as_deref(), &mut known);
    }
    // At start-up nothing is served yet: the parse may take every core.
    let mut set = parse(store, &state.snapshot, before.is_some().then_some(pace))?;
    let version = state.snapshot.version.clone();
    let mut catalog = catalog(store, state.snapshot, management, pace)?;
    let net = Net::of(&state.changes);
    let (written, deleted) = (net.written(), net.deleted());
    if !written.is_empty() || !deleted.is_empty() {
        let (changed, warnings) = set
            .with_changes(&written, &deleted)
            .map_err(|e| Error::keys(store.location(), e))?;
        for w in warnings {
            log::warn!(warning:% = w; "key_warning");
        }
        set = changed;
        catalog = catalog.map(|c| c.with_changes(&written, &deleted));
    }
    if let Some(old) = &old {
        log_changes(old, &set, pace);
    }
    let served = Served::new(set, catalog, old.as_deref(), now_ms(), pace).at(next);
    Ok(Loaded {
        served,
        version,
        next,
        known,
    })
}

/// Logs `keys_changed` for keys changed in place: added, removed and changed ids.
fn log_applied(old: &KeySet, new: &KeySet, ids: &[&str]) {
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for &id in ids {
        match (old.get(id), new.get(id)) {
            (None, Some(_)) => added.push(id),
            (Some(_), None) => removed.push(id),
            (Some(a), Some(b)) if a != b => changed.push(id),
            _ => {}
        }
    }
    if added.is_empty() && removed.is_empty() && changed.is_empty() {
        return;
    }
    let [added, removed, changed] = [added, removed, changed].map(|mut ids| {
        ids.sort_unstable();
        ids.join(",")
    });
    log::info!(
        added = added.as_str(), removed = removed.as_str(), changed = changed.as_str(),
        keys_loaded = new.len();
        "keys_changed"
    );
}

/// The snapshot's [`Catalog`], when the management API is on.
fn catalog(
    store: &Store,
    snapshot: Snapshot,
    management: bool,
    pace: &mut dyn FnMut(),
) -> Result<Option<Catalog>, Error> {
    if !management {
        return Ok(None);
    }
    let text = (snapshot.bytes).unwrap_or_else(|| heare_auth_store::EMPTY_FILE.to_vec());
    Catalog::new(text, pace)
        .map(Some)
        .map_err(|e| Error::keys(store.location(), e))
}

/// Parses a snapshot, paced when `pace` is given (else on every core), logging keys that load
/// with warnings.
fn parse(
    store: &Store,
    snapshot: &Snapshot,
    pace: Option<&mut dyn FnMut()>,
) -> Result<KeySet, Error> {
    let bytes = snapshot.bytes_or_empty();
    let (set, warnings) = match pace {
        Some(pace) => KeySet::from_json_paced(bytes, pace),
        None => KeySet::from_json(bytes),
    }
    .map_err(|e| Error::keys(store.location(), e))?;
    for w in warnings {
        log::warn!(warning:% = w; "key_warning");
    }
    Ok(set)
}
