//! The HTTP transport: hyper over a small tokio runtime, with every limit in one place.
//!
//! The runtime's worker threads (`http-worker-N`) accept connections and serve each as one task;
//! handlers are plain synchronous calls into [`App`], and nothing here blocks: `/refresh` waits
//! for the keys loader's answer without holding a thread.

mod connection;
mod watch;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::{watch as signal, Semaphore};

use crate::app::App;
use crate::config::{Limits, DEFAULT_MAX_CONNECTIONS};
use crate::loader::LoaderHandle;
use crate::Error;

use self::watch::Phase;

/// Largest request head (request line and headers) accepted; larger ones get 431.
const MAX_HEAD: usize = 32 * 1024;
/// Connections the `METRICS_ADDR` listener serves at once (scrapers; beyond, they wait).
const METRICS_CONNECTIONS: usize = 8;
/// Bounds of the pause after an `accept` that failed for lack of resources.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(200);

/// What the transport counted, for `/metrics`: connections it holds, clients it cut off, and
/// what held back accepting.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections closed for sitting idle past `IDLE_TIMEOUT`.
    pub idle_timeouts: AtomicU64,
    /// Connections cut off because a request's headers took longer than `HEADER_TIMEOUT`
    /// (answered 408 first, unless a response was still unsent).
    pub header_timeouts: AtomicU64,
    /// Requests answered 408 because the body took longer than `BODY_TIMEOUT`.
    pub body_timeouts: AtomicU64,
    /// Times an accept loop found every `MAX_CONNECTIONS` slot taken and paused accepting
    /// until one freed. Not the connections that waited in the backlog meanwhile: the kernel
    /// holds those, unseen.
    pub at_capacity: AtomicU64,
    /// `accept` calls that failed, for whatever reason.
    pub accept_errors: AtomicU64,
}

impl Stats {
    fn timed_out(&self, phase: Phase) {
        let counter = match phase {
            Phase::Head => &self.header_timeouts,
            _ => &self.idle_timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every connection task of one listener shares.
struct Shared {
    /// Whether this is the `METRICS_ADDR` listener, which serves only `/metrics`.
    metrics_only: bool,
    app: Arc<App>,
    loader: LoaderHandle,
    limits: Limits,
    http: http1::Builder,
    slots: Arc<Semaphore>,
    stats: Arc<Stats>,
}

/// A bound listening socket, not yet served.
pub struct Listener {
    socket: std::net::TcpListener,
}

impl Listener {
    /// Binds `host:port` (port 0: any free port) with a listen backlog of `backlog`.
    pub fn bind(host: &str, port: u16, backlog: u32) -> Result<Listener, Error> {
        let fail = |e: io::Error| Error::start(format!("listen on {host}:{port}"), e);
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
        for address in (host, port).to_socket_addrs().map_err(fail)? {
            match bind(address, backlog) {
                Ok(socket) => return Ok(Listener { socket }),
                Err(e) => last = e,
            }
        }
        Err(fail(last))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.socket
            .local_addr()
            .map_err(|e| Error::start("read the listening address", e))
    }
}

fn bind(address: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The transport, serving until [`Running::stop`].
pub struct Running {
    runtime: Runtime,
    stopping: signal::Sender<bool>,
    slots: Arc<Semaphore>,
    max_connections: usize,
    /// Counters for logs and metrics.
    pub stats: Arc<Stats>,
}

/// The sockets to serve: the main one, and optionally one for `/metrics` alone.
pub struct Listeners {
    /// Every route.
    pub main: Listener,
    /// `METRICS_ADDR`: only `/metrics`, to any peer.
    pub metrics: Option<Listener>,
}

/// Starts `threads` worker threads serving `listeners` with `app`, counting into `stats`.
pub fn start(
    listeners: Listeners,
    app: Arc<App>,
    loader: LoaderHandle,
    limits: Limits,
    threads: usize,
    stats: Arc<Stats>,
) -> Result<Running, Error> {
    let next = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(1)
        .thread_name_fn(move || format!("http-worker-{}", next.fetch_add(1, Ordering::Relaxed)))
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::start("start the HTTP workers", e))?;
    let serve = |listener: Listener| {
        let _entered = runtime.enter();
        TcpListener::from_std(listener.socket)
            .map_err(|e| Error::start("serve the listening socket", e))
    };
    let main = serve(listeners.main)?;
    let metrics = listeners.metrics.map(serve).transpose()?;
    let mut http = http1::Builder::new();
    http.header_read_timeout(None)
        .max_buf_size(MAX_HEAD)
        .writev(false);
    let max_connections = limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stopping, stopped) = signal::channel(false);
    let shared = |metrics_only, slots| {
        Arc::new(Shared {
            metrics_only,
            app: app.clone(),
            loader: loader.clone(),
            limits: limits.clone(),
            http: http.clone(),
            slots,
            stats: stats.clone(),
        })
    };
    runtime.spawn(accept_loop(
        main,
        shared(false, slots.clone()),
        stopped.clone(),
    ));
    if let Some(metrics) = metrics {
        // Slots of its own: its accept loop holds one while it waits for a scraper, which
        // must not be one of the main port's MAX_CONNECTIONS.
        let own = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
        runtime.spawn(accept_loop(metrics, shared(true, own), stopped));
    }
    Ok(Running {
        runtime,
        stopping,
        slots,
        max_connections,
        stats,
    })
}

impl Running {
    /// Stops accepting, lets each connection finish the request in flight (closing idle ones at
    /// once), and waits up to `grace` for them.
    pub fn stop(self, grace: Duration) {
        let _ = self.stopping.send(true);
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        let slots = self.slots.clone();
        let drained = self.runtime.block_on(async move {
            tokio::time::timeout(grace, slots.acquire_many_owned(all)).await
        });
        if drained.is_err() {
            let open = self.max_connections - self.slots.available_permits();
            log::warn!(open_connections = open; "shutdown_timeout");
        }
        self.runtime.shutdown_timeout(Duration::from_millis(100));
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: signal::Receiver<bool>,
) {
    let (mut failures, mut backoff, mut full) = (0u64, ACCEPT_BACKOFF_MIN, false);
    loop {
        let slot = match shared.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                full = false;
                slot
            }
            Err(_) => {
                shared.stats.at_capacity.fetch_add(1, Ordering::Relaxed);
                if !full {
                    full = true;
                    log::warn!(open_connections = shared.stats.open.load(Ordering::Relaxed); "connections_at_capacity");
                }
                tokio::select! {
                    slot = shared.slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                if failures > 0 {
                    log::info!(failures = failures; "accept_recovered");
                    (failures, backoff) = (0, ACCEPT_BACKOFF_MIN);
                }
                let _ = stream.set_nodelay(true);
                let open = shared.stats.clone();
                open.open.fetch_add(1, Ordering::Relaxed);
                let (shared, stopped) = (shared.clone(), stopped.clone());
                tokio::spawn(async move {
                    connection::serve(stream, peer, shared, slot, stopped).await;
                    open.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) => {
                shared.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                if failures == 1 {
                    log::error!(error:% = e; "accept_failed");
                }
                if out_of_resources(&e) {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// Whether an `accept` failed for lack of descriptors or memory, which only time can mend;
/// other failures (a client that reset before it was accepted) concern one connection.
fn out_of_resources(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}
