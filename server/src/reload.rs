//! What the keys loader owns: the store, the version of the file being served, the record
//! of how reloads fare, and the swap of a newly parsed set into the [`Live`] set. Only the
//! loader's thread reloads; requests never wait for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use heare_auth_core::KeySet;
use heare_auth_store::{Error, Snapshot, Store};

use crate::catalog::Catalog;
use crate::changes::log_changes;
use crate::clock::now_ms;
use crate::health::{Health, Trigger};
use crate::live::Live;

/// The store the keys come from and what has been loaded of it.
pub struct Reloader {
    store: Store,
    /// Version of the file being served: a read of an older one never replaces it.
    version: Option<String>,
    live: Arc<Live>,
    health: Arc<Health>,
    /// Whether each load keeps a [`Catalog`] for the management API.
    management: bool,
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
            match store.load() {
                Ok(snapshot) => {
                    // Nothing is served yet: the parse may take every core.
                    let set = parse(&store, &snapshot, None)?;
                    let version = snapshot.version.clone();
                    let catalog = catalog(&store, snapshot, management, None)?;
                    let now = now_ms();
                    let health = Health::default();
                    health.read(true, now);
                    return Ok(Reloader {
                        live: Arc::new(Live::new(set, catalog, now)),
                        health: Arc::new(health),
                        version,
                        store,
                        management,
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

    /// Re-reads the store and swaps the new set in. On error the old set stays. `pace` is
    /// called between pieces of the work (see [`crate::pace`]).
    pub fn reload(&mut self, pace: &mut dyn FnMut()) -> Result<usize, Error> {
        let result = self
            .store
            .load_paced(pace)
            .and_then(|snapshot| self.swap(snapshot, pace));
        match &result {
            Ok(_) => self.health.read(true, now_ms()),
            Err(e) => self.health.failed(Trigger::Refresh, e),
        }
        result
    }

    /// Reloads only if the stored file changed; `Ok(None)` when it did not. `pace` as for
    /// [`Reloader::reload`].
    pub fn poll(&mut self, pace: &mut dyn FnMut()) -> Result<Option<usize>, Error> {
        let result = match self.store.load_if_changed(self.version.as_deref(), pace) {
            Ok(None) => Ok(None),
            Ok(Some(snapshot)) => self.swap(snapshot, pace).map(Some),
            Err(e) => Err(e),
        };
        match &result {
            Ok(loaded) => self.health.read(loaded.is_some(), now_ms()),
            Err(e) => self.health.failed(Trigger::Poll, e),
        }
        result
    }

    fn swap(&mut self, snapshot: Snapshot, pace: &mut dyn FnMut()) -> Result<usize, Error> {
        let old = self.live.current();
        if snapshot.version.is_none() && self.version.is_some() {
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
        let set = parse(&self.store, &snapshot, Some(&mut *pace))?;
        log_changes(&old, &set, pace);
        drop(old);
        let version = snapshot.version.clone();
        let catalog = catalog(&self.store, snapshot, self.management, Some(&mut *pace))?;
        let count = self.live.replace(set, catalog, now_ms(), pace);
        self.version = version;
        Ok(count)
    }
}

/// The snapshot's [`Catalog`], when the management API is on: its keys found now, paced with
/// `pace` (a reload), or else in the background (at start, where `/verify` need not wait).
fn catalog(
    store: &Store,
    snapshot: Snapshot,
    management: bool,
    pace: Option<&mut dyn FnMut()>,
) -> Result<Option<Catalog>, Error> {
    if !management {
        return Ok(None);
    }
    let text = snapshot
        .bytes
        .unwrap_or_else(|| heare_auth_store::EMPTY_FILE.to_vec());
    match pace {
        Some(pace) => Catalog::new(text, pace)
            .map(Some)
            .map_err(|e| Error::keys(store.location(), e)),
        None => Ok(Some(Catalog::in_background(text))),
    }
}

/// Parses a snapshot, logging keys that load with warnings: paced with `pace` (a reload, beside
/// the requests), or else as fast as it can (at start).
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
