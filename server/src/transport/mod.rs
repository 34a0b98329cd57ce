//! The HTTP transport: hyper over a small tokio runtime, within the limits of [`crate::limits`].
//!
//! The runtime's worker threads (`http-worker-N`) accept connections and serve each as one task;
//! handlers are plain synchronous calls into [`App`], and nothing here blocks: `/refresh` waits
//! for the keys loader's answer without holding a thread.

mod connection;
mod registry;
mod strict;
mod watch;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::{watch as signal, OwnedSemaphorePermit, Semaphore};

use crate::app::App;
use crate::counts::sync::SyncHandle;
use crate::loader::LoaderHandle;
use crate::manage::writer::WriterHandle;
use crate::metrics::Stats;
use crate::Error;

use self::registry::Registry;
use self::watch::Phase;
use crate::limits::{
    Limits, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, CAP_LOG_INTERVAL, CAP_RECHECK, MAX_HEAD,
    METRICS_CONNECTIONS, READ_BUFFER,
};

/// Counts a connection cut off for outstaying the limit of `phase`.
fn timed_out(stats: &Stats, phase: Phase) {
    let counter = match phase {
        Phase::New => &stats.first_request_timeouts,
        Phase::Head => &stats.header_timeouts,
        _ => &stats.idle_timeouts,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every connection task of one listener shares.
struct Shared {
    /// Whether this is the `METRICS_ADDR` listener, which serves only `/metrics`.
    metrics_only: bool,
    app: Arc<App>,
    loader: LoaderHandle,
    /// The keys writer, when the management API is on.
    writer: Option<WriterHandle>,
    /// The counts thread, when counts are shared.
    counts: Option<SyncHandle>,
    limits: Limits,
    http: http1::Builder,
    slots: Arc<Semaphore>,
    registry: Arc<Registry>,
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

/// Starts `threads` worker threads serving `listeners` with `app`, counting into `stats`;
/// reloads go to `loader`, management writes to `writer`, reads of shared counts to `counts`.
pub fn start(
    listeners: Listeners,
    app: Arc<App>,
    (loader, writer, counts): (LoaderHandle, Option<WriterHandle>, Option<SyncHandle>),
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
        .max_header_size(MAX_HEAD)
        .max_buf_size(READ_BUFFER)
        .writev(false);
    let max_connections = limits.connection_cap(usize::MAX);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stopping, stopped) = signal::channel(false);
    let shared = |metrics_only, slots: Arc<Semaphore>| {
        let cap = slots.available_permits();
        Arc::new(Shared {
            metrics_only,
            app: app.clone(),
            loader: loader.clone(),
            writer: writer.clone(),
            counts: counts.clone(),
            limits: limits.clone(),
            http: http.clone(),
            slots,
            registry: Arc::new(Registry::new(cap, limits.max_connections_per_peer)),
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
    let (mut failures, mut backoff) = (0u64, ACCEPT_BACKOFF_MIN);
    let mut told = Told::default();
    loop {
        // A free slot; or, at the cap, a client waiting to be accepted, for whom room is made.
        let slot = match shared.slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                told.reached(&shared.stats);
                match wait_for_room(&listener, &shared, &mut stopped).await {
                    Room::Slot(slot) => Some(slot),
                    Room::ClientWaiting => None,
                    Room::Stopping => return,
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
                let watch = Arc::new(watch::Watch::new());
                let Some(admitted) = shared.registry.admit(peer.ip(), watch.clone()) else {
                    // Its peer holds MAX_CONNECTIONS_PER_PEER: closed at once.
                    shared.stats.peer_cap.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let slot = match slot {
                    Some(slot) => slot,
                    None => {
                        // Not a connection to close for room while it waits for room itself.
                        watch.set(watch::Phase::Busy);
                        match make_room(&listener, &shared, &admitted, &mut stopped).await {
                            Room::Slot(slot) => {
                                watch.set(watch::Phase::New);
                                slot
                            }
                            // Its peer holds half the connections and others wait behind it.
                            Room::ClientWaiting => continue,
                            Room::Stopping => return,
                        }
                    }
                };
                let _ = stream.set_nodelay(true);
                let open = shared.stats.clone();
                open.open.fetch_add(1, Ordering::Relaxed);
                let (shared, stopped) = (shared.clone(), stopped.clone());
                tokio::spawn(async move {
                    connection::serve(stream, peer, watch, shared, stopped).await;
                    drop((admitted, slot));
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

/// What a listener at its cap waited for.
enum Room {
    /// A slot freed.
    Slot(OwnedSemaphorePermit),
    /// A client waits to be accepted (before accepting); others wait behind one that cannot
    /// be given room now (after).
    ClientWaiting,
    /// The server is stopping.
    Stopping,
}

/// With every `MAX_CONNECTIONS` slot taken: waits for one to free, or for a client to wait in
/// the listen backlog (room is then made for it once accepted, by [`make_room`]).
async fn wait_for_room(
    listener: &TcpListener,
    shared: &Shared,
    stopped: &mut signal::Receiver<bool>,
) -> Room {
    loop {
        if client_waiting(listener) {
            return Room::ClientWaiting;
        }
        tokio::select! {
            slot = shared.slots.clone().acquire_owned() => return slot.map_or(Room::Stopping, Room::Slot),
            _ = tokio::time::sleep(CAP_RECHECK) => {}
            _ = stopped.wait_for(|stop| *stop) => return Room::Stopping,
        }
    }
}

/// Makes room for `newcomer`, accepted with every slot taken: idle and slow connections are
/// closed for it (see [`registry`]), and it gets the first slot to free. When none can be
/// closed now, a newcomer whose address already holds half the connections or more is closed
/// at once if other clients wait behind it, so that one address flooding the listen backlog
/// cannot keep another's connection from being accepted ([`Room::ClientWaiting`]).
async fn make_room(
    listener: &TcpListener,
    shared: &Shared,
    newcomer: &registry::Admitted,
    stopped: &mut signal::Receiver<bool>,
) -> Room {
    let stats = &shared.stats;
    loop {
        let evicted = shared.registry.evict(watch::now_ms());
        stats
            .evicted_idle
            .fetch_add(evicted.idle as u64, Ordering::Relaxed);
        stats
            .evicted_slow
            .fetch_add(evicted.slow as u64, Ordering::Relaxed);
        if evicted.is_none() && newcomer.holds_half() && client_waiting(listener) {
            stats.peer_share.fetch_add(1, Ordering::Relaxed);
            return Room::ClientWaiting;
        }
        tokio::select! {
            slot = shared.slots.clone().acquire_owned() => return slot.map_or(Room::Stopping, Room::Slot),
            _ = tokio::time::sleep(CAP_RECHECK) => {}
            _ = stopped.wait_for(|stop| *stop) => return Room::Stopping,
        }
    }
}

/// When the cap being reached was last logged, and how often it was reached since.
#[derive(Default)]
struct Told {
    at: Option<std::time::Instant>,
    times: u64,
}

impl Told {
    /// Counts the cap being reached, and logs it at most every [`CAP_LOG_INTERVAL`].
    fn reached(&mut self, stats: &Stats) {
        stats.at_capacity.fetch_add(1, Ordering::Relaxed);
        self.times += 1;
        if self.at.is_some_and(|at| at.elapsed() < CAP_LOG_INTERVAL) {
            return;
        }
        log::warn!(
            open_connections = stats.open.load(Ordering::Relaxed), times = self.times,
            evicted_idle = stats.evicted_idle.load(Ordering::Relaxed),
            evicted_slow = stats.evicted_slow.load(Ordering::Relaxed),
            peer_share = stats.peer_share.load(Ordering::Relaxed);
            "connections_at_capacity"
        );
        *self = Told {
            at: Some(std::time::Instant::now()),
            times: 0,
        };
    }
}

/// Whether a connection waits in the listen backlog, without accepting it.
fn client_waiting(listener: &TcpListener) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&Timespec::default())), Ok(n) if n > 0)
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
