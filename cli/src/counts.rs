//! The usage counts replicas share in Redis (`REDIS_URL`), read by `show` and `list` on the
//! store: when keys were last used, their verifications over the last 30 days and their
//! credits left, a batch of keys in a few round trips.

use std::time::Duration;

use heare_auth_core::{is_unused, Balance, Credits, DayCount, KeyRecord, UnixMillis};
use heare_auth_store::{Counters, CountersConfig};

use crate::usage::{days_to_read, KeyUsage};
use crate::CliError;

/// How long to wait for Redis to accept the connection, and for each answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Why `list --unused-since` cannot run on the store.
pub const NEEDS_COUNTS: &str = "list --unused-since needs usage counts: set REDIS_URL to the \
                                replicas' Redis, or run against the server with --url";

/// Connects to the counts `config` names.
pub fn connect(config: &CountersConfig) -> Result<Counters, CliError> {
    config.connect(TIMEOUT).map_err(CliError::Counts)
}

/// The usage of `key` at `now`.
pub fn usage_of(
    counters: &mut Counters,
    key: &KeyRecord,
    now: UnixMillis,
) -> Result<KeyUsage, CliError> {
    let read = read(counters, vec![key.clone()], None, true, now)?;
    Ok(read
        .into_iter()
        .next()
        .and_then(|(_, usage)| usage)
        .unwrap_or_default())
}

/// Of `keys`, those unused since `since` (all of them when it is `None`), each with its usage at
/// `now` when `with_usage`: one read of when they were last used, then, for those kept, one
/// pipeline of their daily counts and one read of their credits spent.
pub fn read(
    counters: &mut Counters,
    keys: Vec<KeyRecord>,
    since: Option<UnixMillis>,
    with_usage: bool,
    now: UnixMillis,
) -> Result<Vec<(KeyRecord, Option<KeyUsage>)>, CliError> {
    let failed = CliError::Counts;
    if since.is_none() && !with_usage {
        return Ok(keys.into_iter().map(|k| (k, None)).collect());
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let last_used = counters.last_used(&ids).map_err(failed)?;
    let kept: Vec<(KeyRecord, Option<UnixMillis>)> = keys
        .into_iter()
        .zip(last_used)
        .filter(|(key, last)| since.is_none_or(|s| is_unused(key.created_at.as_deref(), *last, s)))
        .collect();
    if !with_usage {
        return Ok(kept.into_iter().map(|(k, _)| (k, None)).collect());
    }
    let ids: Vec<&str> = kept.iter().map(|(k, _)| k.id.as_str()).collect();
    let days = days_to_read(now);
    let counted = counters.usage_of_each(&ids, &days).map_err(failed)?;
    let pools: Vec<String> = kept
        .iter()
        .filter_map(|(k, _)| Some(pool(&k.id, k.credits?, now)))
        .collect();
    let mut spent = counters
        .credits_spent_in(&pools)
        .map_err(failed)?
        .into_iter();
    let mut out = Vec::with_capacity(kept.len());
    for ((key, last_used), counts) in kept.into_iter().zip(counted) {
        // In the order of `pools`: one for each key with credits.
        let credits = key
            .credits
            .map(|credits| Balance::of(&credits, now, spent.next().unwrap_or(0)));
        out.push((key, Some(usage(last_used, &days, &counts, credits))));
    }
    Ok(out)
}

/// The count of what key `id` spent of its `credits` in the period of `now`.
fn pool(id: &str, credits: Credits, now: UnixMillis) -> String {
    credits.pool(id, credits.period(now))
}

/// A key's usage from what was read: when it was last used, its counts on each of `days`, and
/// its credits left.
fn usage(
    last_used: Option<UnixMillis>,
    days: &[i64],
    counts: &[(u64, u64)],
    credits: Option<Balance>,
) -> KeyUsage {
    KeyUsage {
        last_used,
        days: days
            .iter()
            .zip(counts)
            .map(|(&day, &(valid, refused))| DayCount {
                day,
                valid,
                refused,
            })
            .collect(),
        credits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_matched_to_their_days() {
        let balance = Balance {
            remaining: 3,
            refills_at: None,
        };
        let read = usage(Some(5), &[10, 11], &[(1, 2), (3, 0)], Some(balance));
        assert_eq!(
            read,
            KeyUsage {
                last_used: Some(5),
                days: vec![
                    DayCount {
                        day: 10,
                        valid: 1,
                        refused: 2
                    },
                    DayCount {
                        day: 11,
                        valid: 3,
                        refused: 0
                    }
                ],
                credits: Some(balance),
            }
        );
    }

    #[test]
    fn an_unreachable_redis_is_named_without_its_password() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://:hunter2@{}", closed.local_addr().unwrap());
        drop(closed);
        let config = CountersConfig::from_env(|name| (name == "REDIS_URL").then(|| url.clone()))
            .unwrap()
            .unwrap();
        let err = connect(&config).err().unwrap();
        assert_eq!(err.exit_code(), 1);
        let message = err.to_string();
        assert!(
            message.starts_with("cannot read usage counts from REDIS_URL redis://:***@127.0.0.1:"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}
