//! The key set being served: an `Arc` of the keys, their rate limits and credits behind a
//! `RwLock`, which requests read and reloads replace whole.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use heare_auth_core::{KeySet, UnixMillis};

use crate::catalog::Catalog;
use crate::counts::{CreditCell, RateCell};

/// Keys handled between two calls of a reload's `pace` (see [`crate::pace`]).
pub const PACE_EVERY: usize = 64;

/// The key set requests verify against.
pub struct Live {
    current: RwLock<Arc<Served>>,
}

/// One loaded key set, and the count of each rate limit and credits of its keys.
pub struct Served {
    set: KeySet,
    /// By key id: one lock per key, never one for all.
    limits: HashMap<Box<str>, Arc<RateCell>>,
    /// By key id.
    credits: HashMap<Box<str>, Arc<CreditCell>>,
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
    /// `set` with full buckets and nothing spent, but for the keys that `before` had, whose
    /// counts are kept (a bucket at most full under its new limit).
    fn new(
        set: KeySet,
        catalog: Option<Catalog>,
        before: Option<&Served>,
        now: UnixMillis,
        pace: &mut dyn FnMut(),
    ) -> Served {
        let mut limits = HashMap::new();
        let mut credits = HashMap::new();
        for (i, key) in set.keys().enumerate() {
            if i.is_multiple_of(PACE_EVERY) {
                pace();
            }
            if let Some(limit) = key.rate_limit() {
                let kept = before.and_then(|b| b.limits.get(key.id()));
                let cell = RateCell::new(key.id(), limit, kept, now);
                limits.insert(Box::from(key.id()), cell);
            }
            if let Some(c) = key.credits() {
                let kept = before.and_then(|b| b.credits.get(key.id()));
                credits.insert(Box::from(key.id()), CreditCell::new(key.id(), c, kept, now));
            }
        }
        Served {
            set,
            limits,
            credits,
            catalog,
        }
    }

    /// The keys as the management API reads them; `None` when it is off.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    /// The rate limit's count of key `id`, when it has one.
    pub fn limit_of(&self, id: &str) -> Option<&Arc<RateCell>> {
        self.limits.get(id)
    }

    /// The credits' count of key `id`, when it has some.
    pub fn credits_of(&self, id: &str) -> Option<&Arc<CreditCell>> {
        self.credits.get(id)
    }
}

#[cfg(test)]
impl Served {
    /// The ids of the keys that have a rate limit counted, sorted.
    pub(crate) fn bucket_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.limits.keys().map(|id| &**id).collect();
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
