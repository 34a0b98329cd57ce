//! `GET /keys/{id}/usage`: when a key was last used and how much, from the shared counts when
//! there are some (read on the counts thread; 503 while they do not answer), else as this
//! replica counted.

use std::sync::Arc;

use heare_auth_core::{day_of, usage_json, Balance, Credits, DayCount, KeyRecord, UnixMillis};
use heare_auth_store::{Counters, USAGE_DAYS};

use crate::app::{App, Handled};
use crate::counts::Counts;
use crate::live::Live;
use crate::manage::Problem;
use crate::reply::Reply;

/// The answer for `key` at `now`.
pub fn usage(app: &App, key: &KeyRecord, now: UnixMillis) -> Handled {
    let (counts, live) = (app.counts.clone(), app.keys.clone());
    let (id, credits) = (key.id.clone(), key.credits);
    match counts.shared() {
        None => Handled::Reply(this_replica(&counts, &live, &id, credits, now)),
        Some(false) => Handled::Reply(down()),
        Some(true) => Handled::Count(Box::new(move |counters| {
            let shared = counters.and_then(|c| all_replicas(c, &id, credits, now).ok());
            shared.unwrap_or_else(down)
        })),
    }
}

/// The answer while the shared counts do not answer.
fn down() -> Reply {
    Problem::unavailable("the shared counts (REDIS_URL) do not answer; usage cannot be read now")
        .reply()
}

/// The usage every replica counted, from the shared counts.
fn all_replicas(
    counters: &mut Counters,
    id: &str,
    credits: Option<Credits>,
    now: UnixMillis,
) -> Result<Reply, heare_auth_store::Error> {
    let today = day_of(now);
    let days: Vec<i64> = (today - USAGE_DAYS + 1..=today).collect();
    let counted = counters.usage(id, &days)?;
    let days: Vec<DayCount> = days
        .iter()
        .zip(counted)
        .map(|(&day, (valid, refused))| DayCount {
            day,
            valid,
            refused,
        })
        .collect();
    let last_used = counters.last_used(&[id])?.first().copied().flatten();
    let balance = match credits {
        None => None,
        Some(credits) => {
            let spent = counters.credits_spent(&credits.pool(id, credits.period(now)))?;
            Some(Balance::of(&credits, now, spent))
        }
    };
    let body = usage_json(id, last_used, &days, now, "all_replicas", balance);
    Ok(Reply::json(200, body))
}

/// The usage this replica counted.
fn this_replica(
    counts: &Counts,
    live: &Arc<Live>,
    id: &str,
    credits: Option<Credits>,
    now: UnixMillis,
) -> Reply {
    let usage = counts.usage.of(id);
    let days: Vec<DayCount> = usage.days.iter().copied().collect();
    let served = live.current();
    let balance = credits.map(|credits| Balance {
        remaining: match served.credits_of(id) {
            Some(cell) => counts.remaining(cell, credits, now),
            None => credits.allowance(credits.period(now)),
        },
        refills_at: credits.period_end(credits.period(now)),
    });
    let body = usage_json(id, usage.last_used, &days, now, "this_replica", balance);
    Reply::json(200, body)
}
