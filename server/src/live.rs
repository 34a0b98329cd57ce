//! The key set being served: an `Arc` of the keys and their rate-limit buckets behind a
//! `RwLock`, which requests read and reloads replace whole.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use heare_auth_core::{Bucket, Key, KeySet, UnixMillis};

use crate::catalog::Catalog;

/// Keys handled between two calls of a reload's `pace` (see [`crate::pace`]).
pub const PACE_EVERY: usize = 64;

/// The key set requests verify against.
pub struct Live {
    current: RwLock<Arc<Served>>,
}

/// One loaded key set, and a token bucket for each of its keys that has a rate limit.
pub struct Served {
    set: KeySet,
    /// By key id: one lock per key, never one for all.
    buckets: HashMap<Box<str>, Mutex<Bucket>>,
    /// The same file for the management API, when it is on.
    catalog: Option<Catalog>,
}

impl Deref for Served {
    type Target = KeySet;

    fn deref(&self) -> &KeySet {
        &self.set
    }
}

impl Served {
    /// `set` with full buckets, but those of keys that `before` had, which are kept (at most
    /// full under the new limit).
    fn new(
        set: KeySet,
        catalog: Option<Catalog>,
        before: Option<&Served>,
        now: UnixMillis,
        pace: &mut dyn FnMut(),
    ) -> Served {
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
        Served {
            set,
            buckets,
            catalog,
        }
    }

    /// The keys as the management API reads them; `None` when it is off.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
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
impl Served {
    /// The ids of the keys that have a bucket, sorted.
    pub(crate) fn bucket_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.buckets.keys().map(|id| &**id).collect();
        ids.sort_unstable();
        ids
    }
}

impl Live {
    /// Serves `set` (and `catalog`, the same file for the management API) from `now`.
    pub fn new(set: KeySet, catalog: Option<Catalog>, now: UnixMillis) -> Live {
        let served = Served::new(set, catalog, None, now, &mut || {});
        Live {
            current: RwLock::new(Arc::new(served)),
        }
    }

    /// The set to verify against. The read lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<Served> {
        self.current.read().clone()
    }

    /// Serves `set` instead, keeping the buckets of the keys that stay; returns how many keys
    /// it has. The buckets are built before the write lock is taken, which is held only to
    /// swap the `Arc`.
    pub fn replace(
        &self,
        set: KeySet,
        catalog: Option<Catalog>,
        now: UnixMillis,
        pace: &mut dyn FnMut(),
    ) -> usize {
        let old = self.current();
        let new = Arc::new(Served::new(set, catalog, Some(&old), now, pace));
        let count = new.len();
        *self.current.write() = new;
        count
    }
}
