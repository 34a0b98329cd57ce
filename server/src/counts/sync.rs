//! The counts thread: one exchange with the shared counts (Redis) every few milliseconds of
//! what this replica spent and wants of the keys it served, its usage every second, and when
//! other replicas last used keys; and reads of the shared counts for the management API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use tokio::sync::oneshot;

use heare_auth_core::{Credits, Period};
use heare_auth_store::{Counters, CountersConfig, Exchange, Op};

use super::lease::Ask;
use super::tab::credit_cap;
use super::{lease_cap, Counts, CreditCell, Pool, RateCell};
use crate::clock::now_ms;
use crate::live::{Live, Served};
use crate::reply::Reply;
use crate::Error;

/// How often the thread exchanges the leases and credits of the keys used since.
pub const TICK: Duration = Duration::from_millis(5);
/// How often usage is sent, and when keys were last used read.
pub const USAGE_EVERY: Duration = Duration::from_secs(1);
/// The longest wait for a connection or an answer: past it, the shared counts are down.
pub const TIMEOUT: Duration = Duration::from_millis(500);
/// How long after a failure the thread connects again.
pub const RETRY: Duration = Duration::from_secs(1);
/// Reads of the shared counts waiting at most; past it, a read is refused at once.
const QUEUE: usize = 16;
/// A replica is present while it exchanged with the shared counts this recently (it does at
/// least once every [`USAGE_EVERY`]).
pub const PRESENT: Duration = Duration::from_secs(3);
/// Keys read per page when learning when others last used keys.
const PAGE: usize = 5_000;

/// A read of the shared counts (`None` when they are down) and its answer.
pub type Job = Box<dyn FnOnce(Option<&mut Counters>) -> Reply + Send>;

type Queued = Box<dyn FnOnce(Option<&mut Counters>) + Send>;

/// The running counts thread.
pub struct Syncer {
    jobs: mpsc::SyncSender<Queued>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Hands reads to the counts thread; cheap to clone.
#[derive(Clone)]
pub struct SyncHandle(mpsc::SyncSender<Queued>);

impl Syncer {
    /// Starts the `counts` thread, exchanging `counts` with the shared counts at `config`,
    /// once it has read from them the credits left of the keys `live` serves (when they
    /// answer), so that a replica that starts again spends none it no longer has.
    pub fn start(
        counts: Arc<Counts>,
        config: CountersConfig,
        live: &Live,
    ) -> Result<Syncer, Error> {
        if let Ok(mut counters) = config.connect(TIMEOUT) {
            if let Err(e) = learn_credits(&mut counters, &live.current(), now_ms()) {
                log::warn!(error:% = e; "redis_credits_unread");
            }
        }
        let (jobs, received) = mpsc::sync_channel::<Queued>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::Builder::new()
            .name("counts".into())
            .spawn(move || Sync::new(counts, config).run(&received, &stopping))
            .map_err(|e| Error::start("start the counts thread", e))?;
        Ok(Syncer { jobs, stop, thread })
    }

    /// A handle for the request path.
    pub fn handle(&self) -> SyncHandle {
        SyncHandle(self.jobs.clone())
    }

    /// Sends what is counted and not sent yet (one try), then stops the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

impl SyncHandle {
    /// Runs `job` on the counts thread and returns its answer; `busy` answers when too many
    /// reads wait.
    pub async fn run(&self, job: Job, busy: impl FnOnce() -> Reply) -> Reply {
        let (answer, reply) = oneshot::channel();
        let queued: Queued = Box::new(move |counters| {
            let _ = answer.send(job(counters));
        });
        match self.0.try_send(queued) {
            Ok(()) => reply.await.unwrap_or_else(|_| busy()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => busy(),
        }
    }
}

/// How to take in one answer of an exchange.
enum Settle {
    Rate(Arc<RateCell>),
    Credit {
        cell: Arc<CreditCell>,
        credits: Credits,
        period: Period,
    },
    /// Credits of a period that ended: their answer is no tab's.
    Owed,
    /// How many replicas are present.
    Present(Arc<Counts>),
}

/// An exchange sent and not answered yet, and how to take in its answers.
struct Pending {
    exchange: Exchange,
    settle: Vec<Settle>,
}

struct Sync {
    counts: Arc<Counts>,
    config: CountersConfig,
    counters: Option<Counters>,
    sender: String,
    seq: u64,
    pending: Option<Pending>,
    /// Whether the shared counts answered last, once known.
    up: Option<bool>,
    retry_at: Instant,
    usage_at: Instant,
    /// Keys used at or after this instant (Unix ms) are read from the shared counts next.
    heard_since: i64,
}

impl Sync {
    fn new(counts: Arc<Counts>, config: CountersConfig) -> Sync {
        let now = Instant::now();
        Sync {
            counts,
            config,
            counters: None,
            sender: format!("{:016x}", OsRng.next_u64()),
            seq: 0,
            pending: None,
            up: None,
            retry_at: now,
            usage_at: now,
            heard_since: 0,
        }
    }

    fn run(mut self, jobs: &mpsc::Receiver<Queued>, stop: &AtomicBool) {
        self.connect();
        loop {
            if let Ok(job) = jobs.recv_timeout(TICK) {
                let counters = self.counters.as_mut().filter(|_| self.up == Some(true));
                job(counters);
            }
            let stopping = stop.load(Ordering::Relaxed);
            let usage_due = stopping || Instant::now() >= self.usage_at;
            if usage_due {
                self.usage_at = Instant::now() + USAGE_EVERY;
            }
            if self.up != Some(true) {
                self.connect();
            }
            if self.pending.is_none() && self.up == Some(true) {
                self.pending = self.plan(usage_due);
            }
            self.send();
            if usage_due && self.up == Some(true) {
                self.hear();
            }
            if stopping {
                return;
            }
        }
    }

    /// Connects when not connected and a retry is due.
    fn connect(&mut self) {
        if self.counters.is_some() || Instant::now() < self.retry_at {
            return;
        }
        self.retry_at = Instant::now() + RETRY;
        match self.config.connect(TIMEOUT) {
            Ok(counters) => {
                self.counters = Some(counters);
                self.mark(Ok(()));
            }
            Err(e) => self.mark(Err(e)),
        }
    }

    /// Records whether the shared counts answered, logging each change once.
    fn mark(&mut self, answered: Result<(), heare_auth_store::Error>) {
        let up = answered.is_ok();
        if self.up != Some(up) {
            match &answered {
                Ok(()) => log::info!(redis = self.config.to_string().as_str(); "redis_up"),
                Err(e) => log::warn!(
                    redis = self.config.to_string().as_str(), error:% = e;
                    "redis_down"
                ),
            }
        }
        if !up {
            self.counters = None;
        }
        self.up = Some(up);
        self.counts.up.store(up, Ordering::Relaxed);
    }

    /// The next exchange: every key used since the last one, credits owed, and (when
    /// `usage`) what was counted of usage; `None` when there is nothing to send.
    fn plan(&mut self, usage: bool) -> Option<Pending> {
        let now = now_ms();
        let mut ops = Vec::new();
        let mut settle = Vec::new();
        let enlisted = std::mem::take(&mut *self.counts.enlisted.lock());
        let mut kept = Vec::with_capacity(enlisted.len());
        for pool in enlisted {
            match &pool {
                Pool::Rate(cell) => {
                    let mut state = cell.state.lock();
                    let limit = state.limit;
                    let share = self.counts.share(lease_cap(limit), limit.requests.into());
                    match state.lease.plan(share) {
                        Some(Ask { charge, want, give }) => {
                            // At least 1 us, so that no limit divides by zero in Redis.
                            let interval_us = (i64::from(limit.per_ms) * 1000
                                / i64::from(limit.requests).max(1))
                            .max(1);
                            ops.push(Op::Rate {
                                id: cell.id.to_string(),
                                interval_us,
                                burst_us: interval_us * (i64::from(limit.requests) - 1),
                                charge,
                                want,
                                give,
                            });
                            settle.push(Settle::Rate(cell.clone()));
                        }
                        None if state.lease.is_settled() => {
                            state.enlisted = false;
                            continue;
                        }
                        None => {}
                    }
                }
                Pool::Credit(cell) => {
                    let mut state = cell.state.lock();
                    let tab = &mut state.tab;
                    let (credits, period) = (tab.credits, tab.period);
                    match tab.lease.plan(
                        self.counts
                            .share(credit_cap(tab.allowance()), tab.allowance()),
                    ) {
                        Some(ask) => {
                            ops.push(credit_op(&cell.id, credits, period, ask, now));
                            settle.push(Settle::Credit {
                                cell: cell.clone(),
                                credits,
                                period,
                            });
                        }
                        None if tab.lease.is_settled() => {
                            state.enlisted = false;
                            continue;
                        }
                        None => {}
                    }
                }
            }
            kept.push(pool);
        }
        self.counts.enlisted.lock().extend(kept);
        for (id, owed) in std::mem::take(&mut *self.counts.owed.lock()) {
            let ask = Ask {
                charge: owed.spent,
                ..Ask::default()
            };
            ops.push(credit_op(&id, owed.credits, owed.period, ask, now));
            settle.push(Settle::Owed);
        }
        if ops.is_empty() && !usage {
            return None;
        }
        // Every exchange says this replica is present and learns how many are.
        ops.push(Op::Present {
            within_ms: PRESENT.as_millis() as i64,
        });
        settle.push(Settle::Present(self.counts.clone()));
        if usage {
            for unsent in self.counts.usage.take_unsent() {
                for day in unsent.days {
                    ops.push(Op::Usage {
                        id: unsent.id.to_string(),
                        day: day.day,
                        valid: i64::try_from(day.valid).unwrap_or(i64::MAX),
                        refused: i64::try_from(day.refused).unwrap_or(i64::MAX),
                    });
                }
                if let Some(at) = unsent.last_used {
                    ops.push(Op::LastUsed {
                        id: unsent.id.to_string(),
                        at,
                    });
                }
            }
        }
        self.seq += 1;
        Some(Pending {
            exchange: Exchange {
                sender: self.sender.clone(),
                seq: self.seq,
                ops,
            },
            settle,
        })
    }

    /// Sends the pending exchange (again, if it was not answered), connecting first if need be.
    fn send(&mut self) {
        if self.pending.is_none() {
            return;
        }
        self.connect();
        let (Some(counters), Some(pending)) = (self.counters.as_mut(), self.pending.as_ref())
        else {
            return;
        };
        match counters.exchange(&pending.exchange) {
            Ok(answers) => {
                if let Some(pending) = self.pending.take() {
                    take_in(pending.settle, &answers);
                }
                self.mark(Ok(()));
            }
            Err(e @ heare_auth_store::Error::CountersRefused { .. }) => {
                // Redis refused the exchange itself (a key of another type under the prefix,
                // say): sending it again would fail again, so it is dropped, and said so.
                log::error!(error:% = e; "redis_exchange_refused");
                self.pending = None;
            }
            Err(e) => {
                self.retry_at = Instant::now() + RETRY;
                self.mark(Err(e));
            }
        }
    }

    /// Learns when other replicas last used keys: those used since the last time asked.
    fn hear(&mut self) {
        let Some(counters) = self.counters.as_mut() else {
            return;
        };
        let since = self.heard_since;
        let asked_at = now_ms();
        let mut offset = 0;
        loop {
            match counters.used_since(since, offset, PAGE) {
                Ok(found) => {
                    let full = found.len() == PAGE;
                    for (id, at) in found {
                        self.counts.usage.heard_used(&id, at);
                    }
                    if !full {
                        break;
                    }
                    offset += PAGE;
                }
                Err(e) => {
                    self.mark(Err(e));
                    return;
                }
            }
        }
        // Uses sent late (a replica that was cut off) within a few seconds are still heard.
        self.heard_since = asked_at - 5_000;
    }
}

/// Tells every credits count of `served` what its balance has left, from `counters`.
fn learn_credits(
    counters: &mut Counters,
    served: &Served,
    now: i64,
) -> Result<(), heare_auth_store::Error> {
    let cells: Vec<(Arc<CreditCell>, Credits)> = served
        .keys()
        .filter_map(|key| Some((served.credits_of(key.id())?.clone(), key.credits()?)))
        .collect();
    let pools: Vec<String> = cells
        .iter()
        .map(|(cell, credits)| credits.pool(&cell.id, credits.period(now)))
        .collect();
    let spent = counters.credits_spent_in(&pools)?;
    for ((cell, credits), spent) in cells.iter().zip(spent) {
        let mut state = cell.state.lock();
        if state.tab.roll(*credits, now).is_none() {
            let left = state.tab.allowance().saturating_sub(spent);
            state
                .tab
                .lease
                .learn(i64::try_from(left).unwrap_or(i64::MAX));
        }
    }
    Ok(())
}

/// The exchange of `ask` with the balance of key `id`'s `credits` in `period`, which is kept
/// until the period's end and a day after it (for ever without a refill).
fn credit_op(id: &str, credits: Credits, period: Period, ask: Ask, now: i64) -> Op {
    let keep_secs = credits
        .period_end(period)
        .map_or(0, |end| ((end - now).max(0) / 1000) + 86_400);
    Op::Credits {
        pool: credits.pool(id, period),
        allowance: i64::try_from(credits.allowance(period)).unwrap_or(i64::MAX),
        charge: ask.charge,
        want: ask.want,
        give: ask.give,
        keep_secs,
    }
}

/// Takes in the answers of an exchange, in the order of its ops.
fn take_in(settle: Vec<Settle>, answers: &[i64]) {
    let mut answers = answers.iter().copied();
    for item in settle {
        match item {
            Settle::Rate(cell) => {
                let (leased, left) = (answers.next(), answers.next());
                cell.state
                    .lock()
                    .lease
                    .settle(leased.unwrap_or(0), left.unwrap_or(0));
            }
            Settle::Credit {
                cell,
                credits,
                period,
            } => {
                let (leased, left) = (answers.next(), answers.next());
                let mut state = cell.state.lock();
                if (state.tab.credits, state.tab.period) == (credits, period) {
                    state
                        .tab
                        .lease
                        .settle(leased.unwrap_or(0), left.unwrap_or(0));
                }
            }
            Settle::Owed => {
                answers.next();
                answers.next();
            }
            Settle::Present(counts) => {
                let replicas = answers.next().unwrap_or(1).max(1);
                counts.replicas.store(replicas, Ordering::Relaxed);
            }
        }
    }
}
