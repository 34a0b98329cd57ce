//! Every limit of the HTTP transport, in one place: those set from the environment
//! ([`Limits`], parsed by the configuration) and the fixed ones. It imports nothing of the
//! server's, so the configuration and the transport both depend on it and not on each other.

use std::time::Duration;

/// Largest request body; a larger one is answered 413 (core's rule, enforced while reading).
pub use heare_auth_core::MAX_BODY;

/// The largest body of a management API write: room for a key's metadata at its largest
/// ([`heare_auth_core::MAX_METADATA_BYTES`]) and every other field.
pub const MAX_MANAGE_BODY: usize = 64 * 1024;

/// The limits the HTTP transport enforces, each set from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From accepting a connection to the first byte of its first request
    /// (`FIRST_REQUEST_TIMEOUT`, 5 s); past it the connection is closed.
    pub first_request_timeout: Duration,
    /// From the first byte of a request to the end of its headers (`HEADER_TIMEOUT`, 10 s);
    /// past it the connection is closed.
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body (`BODY_TIMEOUT`, 10 s); past it the
    /// request is answered 408 and the connection closed.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request, and a response for its
    /// client to read it (`IDLE_TIMEOUT`, 120 s).
    pub idle_timeout: Duration,
    /// Open connections at most (`MAX_CONNECTIONS`); at it, idle and slow connections close
    /// to make room for a waiting client, else it waits in the listen backlog. `None`:
    /// [`DEFAULT_MAX_CONNECTIONS`], or fewer if the descriptor limit leaves less room
    /// ([`Limits::connection_cap`]).
    pub max_connections: Option<usize>,
    /// Open connections one peer address may hold (`MAX_CONNECTIONS_PER_PEER`); further ones
    /// are closed at once. `None` (the default): no cap, as behind a proxy every client is
    /// the proxy.
    pub max_connections_per_peer: Option<usize>,
    /// Connections the kernel queues before they are accepted (`LISTEN_BACKLOG`, 1024).
    pub backlog: u32,
    /// How long SIGTERM/SIGINT waits for requests in flight (`SHUTDOWN_TIMEOUT`, 10 s).
    pub shutdown_timeout: Duration,
}

/// Open connections at most when `MAX_CONNECTIONS` is not set (and descriptors allow).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            first_request_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: None,
            max_connections_per_peer: None,
            backlog: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The connection cap with room for `room` connections: an explicit `MAX_CONNECTIONS` is
    /// the operator's; the default yields to the descriptor limit.
    pub fn connection_cap(&self, room: usize) -> usize {
        self.max_connections
            .unwrap_or_else(|| room.min(DEFAULT_MAX_CONNECTIONS))
    }
}

/// Largest request head (request line, headers and the blank line after them, 32 KiB)
/// accepted; larger ones get 431.
pub const MAX_HEAD: usize = 32 * 1024;
/// hyper's read buffer: room for a whole head and the start of a body.
pub const READ_BUFFER: usize = MAX_HEAD + 16 * 1024;
/// Connections the `METRICS_ADDR` listener serves at once (scrapers; beyond, they wait).
pub const METRICS_CONNECTIONS: usize = 8;
/// How often a listener at its connection cap looks again for a waiting client and for
/// connections it may close to make room.
pub const CAP_RECHECK: Duration = Duration::from_millis(20);
/// Bounds of the pause after an `accept` that failed for lack of resources.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// How often at most the cap being reached is logged (with the times since the last line).
pub const CAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a connection cut off with a 408 is read from (and the reads discarded) after the
/// answer, so that its client sees the answer rather than a reset.
pub const LINGER: Duration = Duration::from_millis(500);

/// How long a request's headers or body must have been arriving before the connection cap may
/// close its connection, in milliseconds.
pub const SLOW: u64 = 500;

/// How long a connection must have been idle before the connection cap may close it, in
/// milliseconds: one accepted a moment ago, or answered a moment ago, may hold a request that
/// has arrived but not yet been read.
pub const GRACE: u64 = 100;

/// Connections closed at most for one waiting client (nginx frees up to 32 at a time), so that a
/// flood of newcomers does not scan every connection for each of them; fewer under a small cap
/// ([`Registry::new`]), where each is a larger share of the connections.
pub const BATCH: usize = 16;
