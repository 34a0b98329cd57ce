//! The keys loader: one thread that polls the store and answers `/refresh`, paced so that it
//! never holds a core for long (see [`crate::pace`]); no store I/O or parsing ever runs on an
//! HTTP worker.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::pace::Pacer;
use crate::reload::Reloader;
use crate::Error;

/// A request for a reload: where its result (the number of keys now loaded) goes, and whether
/// it waits for [`REFRESH_SPACING`] (`/refresh` does; the management API's writes, which the
/// writer makes one at a time and which must be served at once, do not).
struct Answer {
    result: oneshot::Sender<Result<usize, Error>>,
    spaced: bool,
}

/// The running loader thread.
pub struct Loader {
    requests: mpsc::Sender<Answer>,
    thread: JoinHandle<()>,
}

/// Asks the loader for reloads; cheap to clone.
#[derive(Clone)]
pub struct LoaderHandle(mpsc::Sender<Answer>);

impl Loader {
    /// Starts the `keys-loader` thread: it checks the store every `interval` (never when `None`)
    /// and reloads on request.
    pub fn start(mut reloader: Reloader, interval: Option<Duration>) -> Result<Loader, Error> {
        let (requests, received) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("keys-loader".into())
            .spawn(move || run(&mut reloader, interval, &received))
            .map_err(|e| Error::start("start the keys loader", e))?;
        Ok(Loader { requests, thread })
    }

    /// A handle for the request path.
    pub fn handle(&self) -> LoaderHandle {
        LoaderHandle(self.requests.clone())
    }

    /// Stops the thread once every handle is dropped, after the reload in progress.
    pub fn stop(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

impl LoaderHandle {
    /// Reloads the keys now (waiting for a reload that started after this call) and returns how
    /// many were loaded.
    pub async fn reload(&self) -> Result<usize, Error> {
        let (answer, result) = oneshot::channel();
        self.send(answer, true)?;
        result.await.map_err(|_| stopped())?
    }

    /// Reloads the keys now, unspaced, blocking this thread (not an HTTP worker's) until done.
    pub fn reload_blocking(&self) -> Result<usize, Error> {
        let (answer, result) = oneshot::channel();
        self.send(answer, false)?;
        result.blocking_recv().map_err(|_| stopped())?
    }

    fn send(
        &self,
        result: oneshot::Sender<Result<usize, Error>>,
        spaced: bool,
    ) -> Result<(), Error> {
        self.0
            .send(Answer { result, spaced })
            .map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::start("reload", "the keys loader has stopped")
}

/// The least pause between the end of one reload asked for by `/refresh` and the start of the
/// next (or the last one's duration, if longer): a flood of `/refresh` costs at most one reload
/// per pause, and the loader never spends more than half its time on them.
pub const REFRESH_SPACING: Duration = Duration::from_millis(250);

fn run(keys: &mut Reloader, interval: Option<Duration>, requests: &mpsc::Receiver<Answer>) {
    lower_priority();
    let mut next_poll = interval.map(|i| Instant::now() + i);
    let mut next_refresh = Instant::now();
    loop {
        let first = match next_poll {
            None => requests.recv().ok(),
            Some(at) => match requests.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(answer) => Some(answer),
                Err(RecvTimeoutError::Timeout) => {
                    poll(keys);
                    next_poll = interval.map(|i| Instant::now() + i);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(first) = first else { return };
        let trigger = match first.spaced {
            true => "refresh",
            false => "write",
        };
        if first.spaced {
            thread::sleep(next_refresh.saturating_duration_since(Instant::now()));
        }
        // Every request waiting now is answered by one reload that starts after all of them.
        let waiting: Vec<Answer> = std::iter::once(first).chain(requests.try_iter()).collect();
        let mut pacer = Pacer::new();
        let started = Instant::now();
        let result = keys.reload(&mut || pacer.tick()).map_err(Error::Store);
        next_refresh = Instant::now() + started.elapsed().max(REFRESH_SPACING);
        match &result {
            Ok(count) => {
                log::info!(keys_loaded = count, trigger = trigger; "refresh_success")
            }
            Err(e) => log::error!(error:% = e, trigger = trigger; "refresh_failed"),
        }
        for answer in waiting {
            let _ = answer.result.send(result.clone());
        }
    }
}

/// Reloads the keys if the stored file changed; a failure keeps the old set.
fn poll(keys: &mut Reloader) {
    let mut pacer = Pacer::new();
    match keys.poll(&mut || pacer.tick()) {
        Ok(None) => {}
        Ok(Some(count)) => log::info!(keys_loaded = count, trigger = "poll"; "refresh_success"),
        Err(e) => log::error!(error:% = e, trigger = "poll"; "refresh_failed"),
    }
}

/// The loader's nice value: the lowest priority of the normal class, so that it takes as little
/// of a busy core as the scheduler allows; unlike the `SCHED_IDLE` class, it still gets a share
/// of one, so a reload always ends.
const NICE: i32 = 19;

/// Gives this thread the nice value [`NICE`] (Linux keeps one per thread).
pub(crate) fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), NICE) {
        log::warn!(error:% = e; "loader_priority_unchanged");
    }
}
