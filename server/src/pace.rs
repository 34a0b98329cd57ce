//! Pacing for the keys loader. A reload of a large file is a lot of work for one thread (100,000
//! keys: about 0.2 s of CPU), and a thread that has a core keeps it for a scheduler's slice of a
//! few milliseconds, even at the lowest priority: every verification that arrives meanwhile
//! waits. So a reload works in slices of [`SLICE`] and sleeps for [`REST`] between them, leaving
//! the core to any request handler that wants it; the loader also runs at the lowest priority
//! of the normal class (see `loader.rs`). A reload therefore delays a verification by little
//! more than a slice; when handlers keep every core busy, it takes longer instead (it gets the
//! small share the scheduler gives the lowest priority), but it is never starved, as a thread of
//! the `SCHED_IDLE` class would be by any other work on the machine.

use std::time::{Duration, Instant};

/// The most a reload works before it gives the core up.
const SLICE: Duration = Duration::from_micros(250);
/// How long it sleeps then. A sleep, not a `sched_yield`: a thread that yields keeps the core
/// if the scheduler still owes it time, which it does after waiting.
const REST: Duration = Duration::from_micros(50);

/// Tells a reload when to give the core up: call [`Pacer::tick`] between small pieces of work.
pub struct Pacer {
    since: Instant,
    /// Times it gave the core up.
    rests: u64,
}

impl Pacer {
    /// A pacer whose first slice starts now.
    pub fn new() -> Pacer {
        Pacer {
            since: Instant::now(),
            rests: 0,
        }
    }

    /// Sleeps for [`REST`] if this slice has lasted [`SLICE`].
    pub fn tick(&mut self) {
        if self.since.elapsed() < SLICE {
            return;
        }
        std::thread::sleep(REST);
        self.rests += 1;
        self.since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_is_given_up_once_a_slice() {
        let mut pacer = Pacer::new();
        let start = Instant::now();
        while start.elapsed() < SLICE * 8 {
            pacer.tick();
        }
        // Eight slices of wall time, rests included: fewer rests than that, and at least one.
        assert!((1..8).contains(&pacer.rests), "{}", pacer.rests);
        let mut idle = Pacer::new();
        idle.tick();
        assert_eq!(idle.rests, 0);
    }
}
