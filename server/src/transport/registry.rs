//! The open connections of one listener, by peer: whom the connection cap closes to make room
//! for a waiting client (the longest idle, then the slowest), and the per-peer cap.
//!
//! nginx does the same at its limit (it reuses idle keep-alive connections): a connection that
//! sends nothing, or a request's headers or body so slowly that it has taken longer than
//! [`SLOW`], must not keep a well-behaved client waiting. Among equals, the peer that holds the
//! most connections gives one up first, so that a client flooding from one address cannot
//! push out another's keep-alive connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::watch::{Phase, Watch};
use crate::limits::{BATCH, GRACE, SLOW};

/// The order in which connections are closed for room, smallest first: idle (0) before slow
/// (1), the busiest peer's before others', the longest in its phase first.
type Rank = (u8, bool, std::cmp::Reverse<u64>);

/// The connections of one listener.
pub struct Registry {
    /// The connection cap.
    cap: usize,
    /// Connections closed at most by one [`Registry::evict`]: a 64th of the cap, from 1 to
    /// [`BATCH`].
    batch: usize,
    /// Connections one peer may hold (`MAX_CONNECTIONS_PER_PEER`); `None`: no cap.
    per_peer: Option<usize>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: HashMap<u64, Entry>,
    peers: HashMap<IpAddr, usize>,
}

struct Entry {
    peer: IpAddr,
    watch: Arc<Watch>,
}

/// A connection's place in the registry, given up when dropped.
pub struct Admitted {
    registry: Arc<Registry>,
    id: u64,
}

/// What one call of [`Registry::evict`] closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Connections waiting for a request, or for their client to read an answer.
    pub idle: usize,
    /// Connections whose request's headers or body had been arriving for [`SLOW`] or longer.
    pub slow: usize,
    /// Connections asked to close earlier have yet to: none more were asked.
    pub pending: bool,
}

impl Evicted {
    /// Whether no room is on its way: nothing was closed, and nothing is closing.
    pub fn is_none(&self) -> bool {
        self.idle + self.slow == 0 && !self.pending
    }
}

impl Registry {
    /// An empty registry for at most `cap` connections; `per_peer` caps those of one address.
    pub fn new(cap: usize, per_peer: Option<usize>) -> Registry {
        Registry {
            cap,
            batch: (cap / 64).clamp(1, BATCH),
            per_peer,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Registers a connection of `peer`; `None` when that peer already holds its cap.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, watch: Arc<Watch>) -> Option<Admitted> {
        let peer = peer.to_canonical();
        let mut inner = self.inner.lock();
        let held = inner.peers.get(&peer).copied().unwrap_or(0);
        if self.per_peer.is_some_and(|cap| held >= cap) {
            return None;
        }
        inner.peers.insert(peer, held + 1);
        let id = inner.next;
        inner.next += 1;
        inner.open.insert(id, Entry { peer, watch });
        Some(Admitted {
            registry: self.clone(),
            id,
        })
    }

    /// Closes a few connections (up to [`BATCH`]) to make room, at `now` ([`super::watch::now_ms`]):
    /// idle ones first, then slow ones, each kind the longest first, the busiest peer's first
    /// among equals. A request being answered is never cut off.
    pub fn evict(&self, now: u64) -> Evicted {
        let inner = self.inner.lock();
        // Connections asked to close that have not yet: they will make room, and on a busy
        // machine their tasks may take a while to run; asking more to close meanwhile would
        // drain the connections of every peer, not just enough of them.
        if inner.open.values().any(|entry| entry.watch.is_evicted()) {
            return Evicted {
                pending: true,
                ..Evicted::default()
            };
        }
        let busiest = inner
            .peers
            .iter()
            .max_by_key(|(_, &held)| held)
            .map(|(&peer, _)| peer);
        let mut candidates: Vec<(Rank, &Watch)> = inner
            .open
            .values()
            .filter(|entry| !entry.watch.is_evicted())
            .filter_map(|entry| {
                let (phase, lasted) = entry.watch.phase(now);
                let rank = match phase {
                    Phase::New | Phase::Idle if lasted >= GRACE => 0,
                    Phase::Head | Phase::Body if lasted >= SLOW => 1,
                    _ => return None,
                };
                let key = (rank, Some(entry.peer) != busiest, std::cmp::Reverse(lasted));
                Some((key, &*entry.watch))
            })
            .collect();
        if candidates.len() > self.batch {
            candidates.select_nth_unstable_by_key(self.batch, |(key, _)| *key);
            candidates.truncate(self.batch);
        }
        let mut evicted = Evicted::default();
        for ((rank, ..), watch) in candidates {
            watch.evict();
            match rank {
                0 => evicted.idle += 1,
                _ => evicted.slow += 1,
            }
        }
        evicted
    }
}

impl Admitted {
    /// Whether this connection's address holds half the registry's cap or more (itself
    /// included).
    pub fn holds_half(&self) -> bool {
        let inner = self.registry.inner.lock();
        let held = inner
            .open
            .get(&self.id)
            .and_then(|entry| inner.peers.get(&entry.peer))
            .copied()
            .unwrap_or(0);
        held * 2 >= self.registry.cap
    }

    #[cfg(test)]
    fn watch(&self) -> Arc<Watch> {
        self.registry.inner.lock().open[&self.id].watch.clone()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.registry.inner.lock();
        if let Some(entry) = inner.open.remove(&self.id) {
            if let Some(held) = inner.peers.get_mut(&entry.peer) {
                *held -= 1;
                if *held == 0 {
                    inner.peers.remove(&entry.peer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::watch::now_ms;
    use super::*;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_go_first_the_longest_idle_and_the_busiest_peers_first() {
        let registry = Arc::new(Registry::new(4096, None));
        let mut admitted = Vec::new();
        let mut watch = |peer: &str, phase: Phase| {
            let watch = Arc::new(Watch::new());
            watch.set(phase);
            admitted.push(registry.admit(ip(peer), watch.clone()));
            watch
        };
        let old_idle = watch("127.0.0.1", Phase::Idle);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // One peer holding three connections, one of them slow, and another peer's fresh one.
        let flood: Vec<_> = (0..2).map(|_| watch("127.0.0.2", Phase::New)).collect();
        let slow = watch("127.0.0.2", Phase::Head);
        let busy = watch("127.0.0.3", Phase::Busy);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let fresh_head = watch("127.0.0.3", Phase::Head);
        // Accepted a moment ago: its request may have arrived unread.
        let fresh = watch("127.0.0.2", Phase::New);

        // The busiest peer's idle ones first, though another peer's has been idle longer.
        assert_eq!(
            registry.evict(now_ms()),
            Evicted {
                idle: 3,
                slow: 1,
                pending: false
            }
        );
        assert!(flood.iter().all(|w| w.is_evicted()));
        assert!(old_idle.is_evicted() && slow.is_evicted());
        // None more while those have not closed.
        let pending = registry.evict(now_ms());
        assert_eq!(
            (pending.idle, pending.slow, pending.is_none()),
            (0, 0, false)
        );
        admitted.retain(|a| a.as_ref().is_some_and(|a| !a.watch().is_evicted()));
        // Nothing left to take: a request being answered, and headers arriving for < SLOW.
        assert!(!busy.is_evicted() && !fresh_head.is_evicted() && !fresh.is_evicted());
        assert!(registry.evict(now_ms()).is_none());
        tokio::time::sleep(Duration::from_millis(SLOW)).await;
        assert_eq!(
            registry.evict(now_ms()),
            Evicted {
                idle: 1,
                slow: 1,
                pending: false
            }
        );
        assert!(fresh_head.is_evicted() && fresh.is_evicted() && !busy.is_evicted());
        drop(admitted);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_a_batch_at_once() {
        let registry = Arc::new(Registry::new(4096, None));
        let watches: Vec<_> = (0..BATCH * 2 + 1).map(|_| Arc::new(Watch::new())).collect();
        let _admitted: Vec<_> = watches
            .iter()
            .map(|w| registry.admit(ip("::1"), w.clone()))
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut admitted = _admitted;
        for expected in [BATCH, BATCH, 1, 0] {
            assert_eq!(registry.evict(now_ms()).idle, expected);
            // They close.
            admitted.retain(|a| a.as_ref().is_some_and(|a| !a.watch().is_evicted()));
        }
        // Under a cap of 128, two at a time; under a small one, one.
        for (cap, batch) in [(128, 2), (4, 1)] {
            let registry = Arc::new(Registry::new(cap, None));
            let _admitted: Vec<_> = watches
                .iter()
                .map(|_| registry.admit(ip("::1"), Arc::new(Watch::new())))
                .collect();
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(registry.evict(now_ms()).idle, batch);
        }
    }

    #[test]
    fn the_per_peer_cap_counts_each_address_and_frees_with_the_connection() {
        let registry = Arc::new(Registry::new(4096, Some(2)));
        let admit = |peer: &str| registry.admit(ip(peer), Arc::new(Watch::new()));
        let first = admit("127.0.0.2");
        let second = admit("::ffff:127.0.0.2");
        assert!(first.is_some() && second.is_some());
        assert!(admit("127.0.0.2").is_none(), "a third of one peer");
        // Two of a cap of 4096 are not half of it; under a cap of 4 they are.
        assert!(!second.as_ref().is_some_and(Admitted::holds_half));
        let small = Arc::new(Registry::new(4, None));
        let one = small.admit(ip("127.0.0.2"), Arc::new(Watch::new()));
        assert!(!one.as_ref().is_some_and(Admitted::holds_half));
        let two = small.admit(ip("127.0.0.2"), Arc::new(Watch::new()));
        assert!(one.as_ref().is_some_and(Admitted::holds_half));
        assert!(two.as_ref().is_some_and(Admitted::holds_half));
        assert!(admit("127.0.0.1").is_some(), "another peer");
        drop(first);
        assert!(admit("127.0.0.2").is_some(), "after one closed");
        assert!(Arc::new(Registry::new(1, None))
            .admit(ip("::1"), Arc::new(Watch::new()))
            .is_some());
    }
}
