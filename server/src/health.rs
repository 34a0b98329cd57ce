//! How the keys loader fares: when the store was last read and loaded, the reloads that
//! failed by what asked for them, and the last error, for `/ready` and `/metrics`.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use heare_auth_core::UnixMillis;

use crate::clock::now_ms;

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The periodic check of the store (`REFRESH_INTERVAL`).
    Poll,
    /// `POST /refresh`.
    Refresh,
}

impl Trigger {
    /// Every trigger, in the order of [`Health::failures`].
    pub const ALL: [Trigger; 2] = [Trigger::Poll, Trigger::Refresh];

    /// The name in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Refresh => "refresh",
        }
    }
}

/// The loader's record, written by it and read by the handlers.
#[derive(Default)]
pub struct Health {
    last_read_ms: AtomicI64,
    last_load_ms: AtomicI64,
    /// Failed reloads, by [`Trigger`] in the order of [`Trigger::ALL`].
    failures: [AtomicU64; 2],
    last_error: Mutex<Option<String>>,
}

impl Health {
    /// The store was read at `now`; `loaded` when a new set was loaded from it.
    pub fn read(&self, loaded: bool, now: UnixMillis) {
        self.last_read_ms.store(now, Ordering::Relaxed);
        if loaded {
            self.last_load_ms.store(now, Ordering::Relaxed);
        }
        *self.last_error.lock() = None;
    }

    /// A reload asked for by `trigger` failed with `error`.
    pub fn failed(&self, trigger: Trigger, error: &impl std::fmt::Display) {
        self.failures[trigger as usize].fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error.to_string());
    }

    /// How long ago the store was last read successfully.
    pub fn read_age(&self) -> Duration {
        let age = now_ms() - self.last_read_ms.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(age).unwrap_or(0))
    }

    /// Unix milliseconds of the last successful load of a key set.
    pub fn last_load_ms(&self) -> UnixMillis {
        self.last_load_ms.load(Ordering::Relaxed)
    }

    /// Failed reloads, by trigger in the order of [`Trigger::ALL`].
    pub fn failures(&self) -> [(Trigger, u64); 2] {
        Trigger::ALL.map(|t| (t, self.failures[t as usize].load(Ordering::Relaxed)))
    }

    /// Why the last read failed, if it did and none succeeded since.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_by_trigger_and_a_read_clears_the_error() {
        let health = Health::default();
        health.failed(Trigger::Refresh, &"gone");
        health.failed(Trigger::Refresh, &"gone again");
        health.failed(Trigger::Poll, &"late");
        assert_eq!(
            health.failures(),
            [(Trigger::Poll, 1), (Trigger::Refresh, 2)]
        );
        assert_eq!(health.last_error().as_deref(), Some("late"));
        health.read(false, 1_000);
        assert_eq!((health.last_error(), health.last_load_ms()), (None, 0));
        health.read(true, 2_000);
        assert_eq!(health.last_load_ms(), 2_000);
    }
}
