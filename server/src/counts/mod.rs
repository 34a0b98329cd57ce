//! What is counted per key: rate limits, credits and usage, in each replica's memory, or shared
//! by every replica through Redis when `REDIS_URL` is set, without a request ever waiting on it.

pub mod lease;
pub mod sync;
pub mod tab;
pub mod usage;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use heare_auth_core::{Bucket, Credits, Key, RateLimit, UnixMillis};

use crate::live::Served;

use lease::{Lease, Share};
use tab::{credit_cap, Owed, Tab};
use usage::Usage;

/// Every count of this replica, and what it has to exchange with the shared counts.
pub struct Counts {
    /// Usage per key.
    pub usage: Usage,
    /// Whether counts are shared (`REDIS_URL` is set).
    shared: bool,
    /// Whether the shared counts answered the last exchange.
    up: AtomicBool,
    /// Replicas that exchanged with the shared counts in the last few seconds, this one
    /// included.
    replicas: AtomicI64,
    /// Rate limits and credits used since their last exchange.
    enlisted: Mutex<Vec<Pool>>,
    /// Credits spent in periods that ended before they were sent.
    owed: Mutex<Vec<(Box<str>, Owed)>>,
}

/// A key's rate limit or credits, as exchanged with the shared counts.
#[derive(Clone)]
pub enum Pool {
    /// A rate limit.
    Rate(Arc<RateCell>),
    /// Credits.
    Credit(Arc<CreditCell>),
}

/// One key's rate limit on this replica: its own bucket, used alone or when the shared counts
/// are down, and its lease of the shared bucket.
pub struct RateCell {
    id: Box<str>,
    state: Mutex<RateState>,
}

struct RateState {
    limit: RateLimit,
    bucket: Bucket,
    lease: Lease,
    enlisted: bool,
}

/// One key's credits on this replica.
pub struct CreditCell {
    id: Box<str>,
    state: Mutex<CreditState>,
}

struct CreditState {
    tab: Tab,
    enlisted: bool,
}

/// Tokens a replica may spend on credit from a shared bucket of `limit`: a fortieth of the
/// limit (at least 1), so that three replicas together overshoot it by at most 7.5%.
pub fn lease_cap(limit: RateLimit) -> i64 {
    (i64::from(limit.requests) / 40).max(1)
}

/// Milliseconds to earn one token of `limit`, rounded up.
fn token_ms(limit: RateLimit) -> u64 {
    u64::from(limit.per_ms).div_ceil(u64::from(limit.requests))
}

impl RateCell {
    /// Key `id`'s rate limit at `now`, carrying over `before` (the same key in the set being
    /// replaced), at most full under `limit`.
    pub fn new(
        id: &str,
        limit: RateLimit,
        before: Option<&Arc<RateCell>>,
        now: UnixMillis,
    ) -> Arc<RateCell> {
        if let Some(before) = before {
            let mut state = before.state.lock();
            state.bucket = state.bucket.under(limit, now);
            state.limit = limit;
            return before.clone();
        }
        Arc::new(RateCell {
            id: Box::from(id),
            state: Mutex::new(RateState {
                limit,
                bucket: Bucket::full(now),
                lease: Lease::default(),
                enlisted: false,
            }),
        })
    }
}

impl CreditCell {
    /// Key `id`'s credits at `now`, carrying over `before`'s count.
    pub fn new(
        id: &str,
        credits: Credits,
        before: Option<&Arc<CreditCell>>,
        now: UnixMillis,
    ) -> Arc<CreditCell> {
        match before {
            Some(before) => before.clone(),
            None => Arc::new(CreditCell {
                id: Box::from(id),
                state: Mutex::new(CreditState {
                    tab: Tab::new(credits, now),
                    enlisted: false,
                }),
            }),
        }
    }
}

impl Counts {
    /// Counts for one replica; `shared`: exchanged with shared counts.
    pub fn new(shared: bool) -> Counts {
        Counts {
            usage: Usage::new(shared),
            shared,
            up: AtomicBool::new(false),
            replicas: AtomicI64::new(1),
            enlisted: Mutex::default(),
            owed: Mutex::default(),
        }
    }

    /// How many replicas share the counts, this one included, as last heard.
    pub fn replicas(&self) -> i64 {
        self.replicas.load(Ordering::Relaxed)
    }

    /// Whether counts are exchanged with shared counts, and whether they answer.
    pub fn shared(&self) -> Option<bool> {
        self.shared.then(|| self.up.load(Ordering::Relaxed))
    }

    /// How a pool whose lease is `cap` and that holds `full` when full is shared now.
    fn share(&self, cap: i64, full: u64) -> Share {
        Share {
            cap,
            replicas: self.replicas.load(Ordering::Relaxed).max(1),
            full: i64::try_from(full).unwrap_or(i64::MAX),
        }
    }

    fn enlist(&self, pool: Pool) {
        self.enlisted.lock().push(pool);
    }

    /// Takes a token of `cell`'s rate limit at `now`: `Err` with the milliseconds until one
    /// is there. Shared and up: from this replica's lease of the shared bucket; otherwise
    /// from this replica's own bucket.
    pub fn take(&self, cell: &Arc<RateCell>, now: UnixMillis) -> Result<(), u64> {
        let mut state = cell.state.lock();
        let limit = state.limit;
        if !(self.shared && self.up.load(Ordering::Relaxed)) {
            return state.bucket.take(limit, now);
        }
        let taken = state.lease.take(
            1,
            Some(self.share(lease_cap(limit), limit.requests.into())),
            i64::MAX,
        );
        if !state.enlisted {
            state.enlisted = true;
            self.enlist(Pool::Rate(cell.clone()));
        }
        match taken {
            true => Ok(()),
            false => Err(token_ms(limit)),
        }
    }

    /// Takes a token of `key`'s rate limit in `keys` at `now` (a key without one always
    /// passes): `Err` with the milliseconds until one is there.
    pub fn take_key(&self, keys: &Served, key: Key, now: UnixMillis) -> Result<(), u64> {
        match keys.limit_of(key.id()) {
            Some(cell) => self.take(cell, now),
            None => Ok(()),
        }
    }

    /// Spends `cost` of `cell`'s `credits` at `now`: `Ok` with what is left, `Err` with what
    /// is left when it does not cover the cost.
    pub fn spend(
        &self,
        cell: &Arc<CreditCell>,
        credits: Credits,
        cost: u64,
        now: UnixMillis,
    ) -> Result<u64, u64> {
        let mut state = cell.state.lock();
        if let Some(owed) = state.tab.roll(credits, now) {
            if self.shared {
                self.owed.lock().push((cell.id.clone(), owed));
            }
        }
        let up = self.shared && self.up.load(Ordering::Relaxed);
        let allowance = state.tab.allowance();
        let share = up.then(|| self.share(credit_cap(allowance), allowance));
        let spent = state.tab.spend(cost, share);
        if self.shared && cost > 0 && !state.enlisted {
            state.enlisted = true;
            self.enlist(Pool::Credit(cell.clone()));
        }
        spent
    }

    /// What is left of `cell`'s `credits` at `now`, as this replica knows.
    pub fn remaining(&self, cell: &CreditCell, credits: Credits, now: UnixMillis) -> u64 {
        let mut tab = cell.state.lock().tab.clone();
        tab.roll(credits, now);
        tab.remaining()
    }
}
