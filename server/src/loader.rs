//! The keys loader: one thread that polls the store and answers `/refresh`, applying each change
//! as it comes (a change costs what it changes, so this thread keeps the normal priority and a
//! revocation lands whatever else the host runs); a whole load of the keys file runs on a
//! thread of its own, paced and at the lowest priority (see [`crate::pace`]). No store I/O or
//! parsing ever runs on an HTTP worker.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::health::Trigger;
use crate::reload::Reloader;
use crate::Error;

/// A request for a reload: where its result (the number of keys now served) goes, and whether
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

/// The least pause between the end of one look at the store asked for by `/refresh` and the
/// start of the next: a flood of `/refresh` costs at most one look per pause.
pub const REFRESH_SPACING: Duration = Duration::from_millis(50);

/// How often the loader checks whether a whole load has finished.
const LOADING_CHECK: Duration = Duration::from_millis(20);

fn run(keys: &mut Reloader, interval: Option<Duration>, requests: &mpsc::Receiver<Answer>) {
    let mut next_poll = interval.map(|i| Instant::now() + i);
    let mut next_refresh = Instant::now();
    // Requests answered once the whole load running ends.
    let mut waiting: Vec<Answer> = Vec::new();
    loop {
        let wake = match (next_poll, keys.loading()) {
            (_, true) => Some(Instant::now() + LOADING_CHECK),
            (at, false) => at,
        };
        let first = match wake {
            None => requests.recv().ok(),
            Some(at) => match requests.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(answer) => Some(answer),
                Err(RecvTimeoutError::Timeout) => {
                    finish(keys, &mut waiting);
                    if next_poll.is_some_and(|at| at <= Instant::now()) {
                        poll(keys);
                        next_poll = interval.map(|i| Instant::now() + i);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(first) = first else { return };
        if first.spaced {
            thread::sleep(next_refresh.saturating_duration_since(Instant::now()));
        }
        // Every request waiting now is answered by one look that starts after all of them.
        let mut asked: Vec<Answer> = std::iter::once(first).chain(requests.try_iter()).collect();
        let trigger = match asked.iter().all(|a| a.spaced) {
            true => "refresh",
            false => "write",
        };
        finish(keys, &mut waiting);
        let looked = keys.look(Trigger::Refresh);
        next_refresh = Instant::now() + REFRESH_SPACING;
        match looked {
            Ok(looked) if looked.loading => waiting.append(&mut asked),
            Ok(_) => answer(keys, &mut asked, Ok(()), trigger),
            Err(e) => answer(keys, &mut asked, Err(e), trigger),
        }
    }
}

/// Looks at the store for changes; a failure keeps the keys served.
fn poll(keys: &mut Reloader) {
    match keys.look(Trigger::Poll) {
        Ok(looked) if looked.changes > 0 => {
            let count = keys.live().current().len();
            log::info!(keys_loaded = count, trigger = "poll"; "refresh_success");
        }
        Ok(_) => {}
        Err(e) => log::error!(error:% = e, trigger = "poll"; "refresh_failed"),
    }
}

/// Serves the whole load running if it has ended, and answers the requests that waited for it.
fn finish(keys: &mut Reloader, waiting: &mut Vec<Answer>) {
    match keys.finish(false) {
        None => {}
        Some((Trigger::Poll, Ok(()))) if waiting.is_empty() => {
            let count = keys.live().current().len();
            log::info!(keys_loaded = count, trigger = "poll"; "refresh_success");
        }
        Some((_, Ok(()))) => answer(keys, waiting, Ok(()), "refresh"),
        Some((trigger, Err(e))) => {
            if trigger == Trigger::Poll {
                log::error!(error:% = e, trigger = "poll"; "refresh_failed");
                if !waiting.is_empty() {
                    // The requests that waited for it failed too, and count as such.
                    keys.health().failed(Trigger::Refresh, &e);
                }
            }
            answer(keys, waiting, Err(e), "refresh");
        }
    }
}

/// Answers every request in `asked` with the number of keys served, or `result`'s error, and
/// logs the answer once.
fn answer(
    keys: &Reloader,
    asked: &mut Vec<Answer>,
    result: Result<(), heare_auth_store::Error>,
    trigger: &str,
) {
    if asked.is_empty() {
        return;
    }
    let result = result.map(|()| keys.live().current().len());
    match &result {
        Ok(count) => log::info!(keys_loaded = count, trigger = trigger; "refresh_success"),
        Err(e) => log::error!(error:% = e, trigger = trigger; "refresh_failed"),
    }
    let result = result.map_err(Error::Store);
    for answer in asked.drain(..) {
        let _ = answer.result.send(result.clone());
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
