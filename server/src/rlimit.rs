//! The open-file limit: raised to its hard maximum at start-up, since every connection is a
//! descriptor.

use rustix::process::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything but client connections: the listener, the runtime's epoll
/// and wakers, the signal pipe, the keys file or S3 connection, stdio, and some slack (an idle
/// server holds 11).
const RESERVED: u64 = 32;

/// The soft and hard `RLIMIT_NOFILE` after raising the soft one to the hard one (`None`:
/// unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoFile {
    /// The limit in force.
    pub soft: Option<u64>,
    /// The most it may be raised to.
    pub hard: Option<u64>,
}

impl NoFile {
    /// How many connections fit beside [`RESERVED`] descriptors, at most `wanted`.
    pub fn connections(&self, wanted: usize) -> usize {
        match self.soft {
            None => wanted,
            Some(soft) => {
                let room = soft.saturating_sub(RESERVED).max(1);
                wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
            }
        }
    }
}

/// Raises the soft limit to the hard one and returns both as they now stand.
pub fn raise_nofile() -> NoFile {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    NoFile {
        soft: limit.current,
        hard: limit.maximum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_reserve() {
        let limit = |soft| NoFile { soft, hard: soft };
        assert_eq!(limit(Some(256)).connections(4096), 224);
        assert_eq!(limit(Some(1_048_576)).connections(4096), 4096);
        assert_eq!(limit(None).connections(4096), 4096);
        assert_eq!(limit(Some(10)).connections(4096), 1);
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let now = raise_nofile();
        assert_eq!(now.soft, now.hard);
    }
}
