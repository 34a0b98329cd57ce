//! The key set being served: an `Arc` of the keys, their rate limits and credits behind a
//! `RwLock`, which requests read, and reloads and changes replace (a change sharing all that it
//! does not change).

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
    limits: Cells<RateCell>,
    /// By key id.
    credits: Cells<CreditCell>,
    /// The same file for the management API, when it is on.
    catalog: Option<Catalog>,
    /// The first change of the store these keys do not hold.
    next: u64,
}

/// Counts by key id: those built when the set was loaded, shared by every change after, and
/// those of the keys changed since (`None`: the key has none now).
struct Cells<T> {
    loaded: Arc<HashMap<Box<str>, Arc<T>>>,
    changed: HashMap<Box<str>, Option<Arc<T>>>,
}

impl<T> Cells<T> {
    fn loaded(loaded: HashMap<Box<str>, Arc<T>>) -> Cells<T> {
        Cells {
            loaded: Arc::new(loaded),
            changed: HashMap::new(),
        }
    }

    fn get(&self, id: &str) -> Option<&Arc<T>> {
        match self.changed.get(id) {
            Some(cell) => cell.as_ref(),
            None => self.loaded.get(id),
        }
    }

    /// These cells, with the cell of each of `ids` made by `cell` (from the one it had).
    fn with(
        &self,
        ids: &[&str],
        mut cell: impl FnMut(&str, Option<&Arc<T>>) -> Option<Arc<T>>,
    ) -> Cells<T> {
        let mut changed = self.changed.clone();
        for &id in ids {
            changed.insert(Box::from(id), cell(id, self.get(id)));
        }
        Cells {
            loaded: Arc::clone(&self.loaded),
            changed,
        }
    }
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
    pub fn new(
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
            limits: Cells::loaded(limits),
            credits: Cells::loaded(credits),
            catalog,
            next: 0,
        }
    }

    /// `set`, this set with the keys of `ids` changed, keeping the counts of the others as
    /// they are (shared, not copied) and those of the keys changed as [`Served::new`] does.
    fn changed(
        &self,
        set: KeySet,
        catalog: Option<Catalog>,
        ids: &[&str],
        now: UnixMillis,
    ) -> Served {
        let limits = self.limits.with(ids, |id, kept| {
            let limit = set.get(id)?.rate_limit()?;
            Some(RateCell::new(id, limit, kept, now))
        });
        let credits = self.credits.with(ids, |id, kept| {
            let credits = set.get(id)?.credits()?;
            Some(CreditCell::new(id, credits, kept, now))
        });
        Served {
            set,
            limits,
            credits,
            catalog,
            next: self.next,
        }
    }

    /// The first change of the store these keys do not hold.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// These keys, said to hold every change of the store before `next`.
    pub fn at(mut self, next: u64) -> Served {
        self.next = next;
        self
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
        let loaded =
            (self.limits.loaded.keys()).filter(|id| !self.limits.changed.contains_key(*id));
        let changed =
            (self.limits.changed.iter()).filter_map(|(id, cell)| cell.as_ref().map(|_| id));
        let mut ids: Vec<&str> = loaded.chain(changed).map(|id| &**id).collect();
        ids.sort_unstable();
        ids
    }
}

impl From<Served> for Live {
    fn from(served: Served) -> Live {
        Live {
            current: RwLock::new(Arc::new(served)),
        }
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

    /// Serves `served` instead; returns how many keys it has. The write lock is held only to
    /// swap the `Arc`.
    pub fn install(&self, served: Served) -> usize {
        let count = served.len();
        *self.current.write() = Arc::new(served);
        count
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

    /// Serves `set`, the set being served with the keys of `ids` changed (see
    /// [`KeySet::with_changes`]), and `catalog`; returns how many keys it has. The only
    /// writer of the set, with [`Live::replace`]: the loader's thread.
    pub fn apply(
        &self,
        set: KeySet,
        catalog: Option<Catalog>,
        ids: &[&str],
        (now, next): (UnixMillis, u64),
    ) -> usize {
        let old = self.current();
        let new = Arc::new(old.changed(set, catalog, ids, now).at(next));
        let count = new.len();
        *self.current.write() = new;
        count
    }
}
