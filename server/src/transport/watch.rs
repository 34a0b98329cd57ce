//! Per-connection deadlines: how long a connection may sit idle, and how long a request's headers
//! may take once its first byte has arrived.
//!
//! hyper has one header-read timer that also runs while a keep-alive connection is idle, so the
//! two limits could not differ; the connection's reads are watched here instead. The request
//! path only stores its phase (no clock read, no wake-up); the watchdog counts ticks of an
//! eighth of the shorter limit, so each limit is enforced to within an eighth.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;

use crate::config::Limits;

/// What a connection is doing, and so which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first byte of a request, or for its client to read a response:
    /// `idle_timeout`.
    Idle = 0,
    /// Reading a request's headers: `header_timeout` from their first byte.
    Head = 1,
    /// A request is being answered; the body's own timeout applies.
    Busy = 2,
}

/// Watchdog ticks per shorter limit.
const TICKS_PER_LIMIT: u32 = 8;

/// A connection's phase and the tick it began in, shared by its reads, its handler and its
/// watchdog (all on the connection's one task).
pub struct Watch {
    /// The tick the phase began in, shifted left by 2, or-ed with the [`Phase`].
    state: AtomicU64,
    /// Ticks counted by the watchdog so far.
    ticks: AtomicU64,
}

impl Watch {
    /// A new connection: idle from now.
    pub fn new() -> Watch {
        Watch {
            state: AtomicU64::new(Phase::Idle as u64),
            ticks: AtomicU64::new(0),
        }
    }

    /// Enters `phase`.
    pub fn set(&self, phase: Phase) {
        let tick = self.ticks.load(Ordering::Relaxed);
        self.state
            .store((tick << 2) | phase as u64, Ordering::Relaxed);
    }

    fn on_read(&self) {
        if self.state.load(Ordering::Relaxed) & 3 == Phase::Idle as u64 {
            self.set(Phase::Head);
        }
    }

    /// Resolves with the phase whose limit passed; never while a request is being answered.
    pub async fn expired(&self, limits: &Limits) -> Phase {
        let tick = (limits.header_timeout.min(limits.idle_timeout) / TICKS_PER_LIMIT)
            .max(Duration::from_millis(1));
        let ticks_of = |limit: Duration| limit.as_nanos().div_ceil(tick.as_nanos()) as u64;
        let (idle, head) = (
            ticks_of(limits.idle_timeout),
            ticks_of(limits.header_timeout),
        );
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            let now = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
            let state = self.state.load(Ordering::Relaxed);
            let elapsed = now - (state >> 2);
            match state & 3 {
                0 if elapsed >= idle => return Phase::Idle,
                1 if elapsed >= head => return Phase::Head,
                _ => {}
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
    /// A connection, idle from now.
    pub fn new(stream: TcpStream) -> Watched {
        Watched {
            stream,
            watch: std::sync::Arc::new(Watch::new()),
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
    use tokio::time::Instant;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    /// A limit passes between itself and an eighth of the shorter limit (0.25 s here) later.
    fn within_a_tick(took: Duration, limit: Duration) -> bool {
        took >= limit && took <= limit + Duration::from_millis(250)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_then_head_deadlines() {
        let watch = Watch::new();
        let start = Instant::now();
        assert_eq!(watch.expired(&limits()).await, Phase::Idle);
        assert!(within_a_tick(start.elapsed(), Duration::from_secs(5)));

        // Idle for 1 s, then the first byte of a request: 2 s more for its headers.
        let watch = std::sync::Arc::new(Watch::new());
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
    async fn no_deadline_while_busy() {
        let watch = std::sync::Arc::new(Watch::new());
        watch.set(Phase::Busy);
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
