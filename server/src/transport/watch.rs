//! Per-connection deadlines and what the connection cap may take back: how long a new
//! connection may wait for its first request, a keep-alive one for its next, and a request's
//! headers once their first byte has arrived; and how long each has been in its phase.
//!
//! hyper has one header-read timer that also runs while a keep-alive connection is idle, so the
//! limits could not differ; the connection's reads are watched here instead. The request path
//! stores its phase and the time it began (a monotonic clock read); the watchdog wakes every
//! eighth of the shortest limit, so each limit is enforced to within an eighth.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

use crate::limits::Limits;

/// What a connection is doing, and so which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, and no byte of a first request yet: `first_request_timeout`.
    New = 0,
    /// Waiting for the first byte of a next request, or for its client to read a response:
    /// `idle_timeout`.
    Idle = 1,
    /// Reading a request's headers: `header_timeout` from their first byte.
    Head = 2,
    /// Reading a request's body: the body's own timeout applies.
    Body = 3,
    /// A request is being answered.
    Busy = 4,
}

impl Phase {
    fn of(bits: u64) -> Phase {
        match bits & PHASE_MASK {
            0 => Phase::New,
            1 => Phase::Idle,
            2 => Phase::Head,
            3 => Phase::Body,
            _ => Phase::Busy,
        }
    }

    /// Whether the connection waits on its client with no request under way.
    pub fn is_idle(self) -> bool {
        matches!(self, Phase::New | Phase::Idle)
    }
}

const PHASE_BITS: u32 = 3;
const PHASE_MASK: u64 = (1 << PHASE_BITS) - 1;

/// Watchdog wake-ups per shortest limit.
const TICKS_PER_LIMIT: u32 = 8;

/// Milliseconds on the runtime's monotonic clock (which tests can pause), from a point an hour
/// before the first call, so that runtimes started a little earlier read no time before it.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| {
        let now = std::time::Instant::now();
        Instant::from_std(now.checked_sub(Duration::from_secs(3600)).unwrap_or(now))
    });
    Instant::now().saturating_duration_since(epoch).as_millis() as u64
}

/// A connection's phase and when it began, shared by its reads, its handler, its watchdog and
/// the connection cap, which may ask an idle or slow connection to close.
pub struct Watch {
    /// The millisecond ([`now_ms`]) the phase began, shifted left by [`PHASE_BITS`], or-ed
    /// with the [`Phase`].
    state: AtomicU64,
    /// Set when the connection cap takes this connection back.
    evicted: AtomicBool,
    /// Wakes the connection's task once `evicted` is set.
    wake: Notify,
}

impl Watch {
    /// A new connection, from now.
    pub fn new() -> Watch {
        let watch = Watch {
            state: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        };
        watch.set(Phase::New);
        watch
    }

    /// Enters `phase`, from now.
    pub fn set(&self, phase: Phase) {
        self.state
            .store((now_ms() << PHASE_BITS) | phase as u64, Ordering::Relaxed);
    }

    /// Enters `phase` of the same request, timed from when the request began (its first byte):
    /// a request whose body is slow has been under way as long as its body has, and the time
    /// a request is answered is never asked. Saves the request path a clock read.
    pub fn then(&self, phase: Phase) {
        let began = self.state.load(Ordering::Relaxed) & !PHASE_MASK;
        self.state.store(began | phase as u64, Ordering::Relaxed);
    }

    /// The phase now, and for how many milliseconds it has lasted at `now` ([`now_ms`]).
    pub fn phase(&self, now: u64) -> (Phase, u64) {
        let state = self.state.load(Ordering::Relaxed);
        (Phase::of(state), now.saturating_sub(state >> PHASE_BITS))
    }

    fn on_read(&self) {
        if Phase::of(self.state.load(Ordering::Relaxed)).is_idle() {
            self.set(Phase::Head);
        }
    }

    /// Asks the connection to close (the connection cap needs its slot).
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether [`Watch::evict`] was called.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Resolves once [`Watch::evict`] was called.
    pub async fn evicted(&self) {
        while !self.is_evicted() {
            self.wake.notified().await;
        }
    }

    /// Resolves with the phase whose limit passed; never while a request's body is read or the
    /// request answered.
    pub async fn expired(&self, limits: &Limits) -> Phase {
        let shortest = limits
            .header_timeout
            .min(limits.idle_timeout)
            .min(limits.first_request_timeout);
        let tick = (shortest / TICKS_PER_LIMIT).max(Duration::from_millis(1));
        let ms = |limit: Duration| limit.as_millis() as u64;
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            let (phase, lasted) = self.phase(now_ms());
            let limit = match phase {
                Phase::New => limits.first_request_timeout,
                Phase::Idle => limits.idle_timeout,
                Phase::Head => limits.header_timeout,
                Phase::Body | Phase::Busy => continue,
            };
            if lasted >= ms(limit) {
                return phase;
            }
        }
    }
}

/// A TCP stream whose reads tell its [`Watch`] when a request begins, and whose writes tell
/// whether everything written so far has left.
pub struct Watched {
    /// The client's connection.
    pub stream: TcpStream,
    /// Its phases.
    pub watch: std::sync::Arc<Watch>,
    /// Whether the last write left bytes behind (the client is not reading its responses).
    pub unsent: bool,
}

impl Watched {
    /// A connection watched by `watch`.
    pub fn new(stream: TcpStream, watch: std::sync::Arc<Watch>) -> Watched {
        Watched {
            stream,
            watch,
            unsent: false,
        }
    }

    fn wrote(
        &mut self,
        offered: usize,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        self.unsent = !matches!(polled, Poll::Ready(Ok(n)) if n == offered);
        polled
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.on_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(buf.len(), polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(bufs.iter().map(|b| b.len()).sum(), polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limits() -> Limits {
        Limits {
            first_request_timeout: Duration::from_secs(3),
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    /// A limit passes between itself and an eighth of the shortest limit (0.25 s here) later.
    fn within_a_tick(took: Duration, limit: Duration) -> bool {
        took >= limit && took <= limit + Duration::from_millis(250)
    }

    #[tokio::test(start_paused = true)]
    async fn first_request_idle_and_head_deadlines() {
        let watch = Watch::new();
        let start = Instant::now();
        assert_eq!(watch.expired(&limits()).await, Phase::New);
        assert!(within_a_tick(start.elapsed(), Duration::from_secs(3)));

        // After a request: the keep-alive limit.
        watch.set(Phase::Idle);
        let start = Instant::now();
        assert_eq!(watch.expired(&limits()).await, Phase::Idle);
        assert!(within_a_tick(start.elapsed(), Duration::from_secs(5)));

        // New for 1 s, then the first byte of a request: 2 s more for its headers.
        let watch = Arc::new(Watch::new());
        let reader = watch.clone();
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            reader.on_read();
        });
        assert_eq!(watch.expired(&limits()).await, Phase::Head);
        assert!(within_a_tick(start.elapsed(), Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_while_the_body_is_read_or_the_request_answered() {
        for phase in [Phase::Body, Phase::Busy] {
            let watch = Arc::new(Watch::new());
            watch.set(phase);
            let handler = watch.clone();
            let start = Instant::now();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                handler.set(Phase::Idle);
            });
            assert_eq!(watch.expired(&limits()).await, Phase::Idle);
            assert!(within_a_tick(start.elapsed(), Duration::from_secs(65)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_phase_knows_how_long_it_has_lasted_and_eviction_wakes_the_connection() {
        let watch = Arc::new(Watch::new());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(watch.phase(now_ms()), (Phase::New, 1500));
        watch.on_read();
        assert_eq!(watch.phase(now_ms()), (Phase::Head, 0));
        // The body and the answer are timed from the request's first byte.
        tokio::time::sleep(Duration::from_millis(700)).await;
        watch.then(Phase::Body);
        assert_eq!(watch.phase(now_ms()), (Phase::Body, 700));
        watch.then(Phase::Busy);
        assert_eq!(watch.phase(now_ms()), (Phase::Busy, 700));
        let waiter = tokio::spawn({
            let watch = watch.clone();
            async move { watch.evicted().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        watch.evict();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
