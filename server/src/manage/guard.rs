//! Who is asking: the management API's bearer key, checked as `/verify` checks any key, and a
//! brake on addresses that keep presenting wrong ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use heare_auth_core::{Outcome, UnixMillis};

use super::problem::Problem;
use crate::counts::Counts;
use crate::live::Served;

/// Failed authentications an address may make in [`WINDOW`] before it is refused (429).
pub const MAX_FAILURES: u32 = 10;
/// How long failures count against an address.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most: past it, those whose window is over are forgotten first, then
/// the one that failed least recently.
const MAX_TRACKED: usize = 16_384;

/// The key a management request was made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Its id: changes are stored as made by `key:<id>`.
    pub id: String,
    /// Its scopes.
    pub scopes: Vec<String>,
}

impl Actor {
    /// Who made a change, as `created_by` and `updated_by` record it.
    pub fn name(&self) -> String {
        format!("key:{}", self.id)
    }

    /// Its scopes, borrowed.
    pub fn scope_list(&self) -> Vec<&str> {
        self.scopes.iter().map(String::as_str).collect()
    }
}

/// Failed authentications by address.
#[derive(Default)]
pub struct Guard {
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    /// When the first failure of the window was.
    since: Instant,
    last: Instant,
}

impl Guard {
    /// Refuses an address that failed [`MAX_FAILURES`] times in the last [`WINDOW`], saying
    /// when it may try again; a right key changes nothing until then.
    pub fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Problem> {
        let failures = self.failures.lock();
        match failures.get(&bucket(peer)) {
            Some(f) if f.count >= MAX_FAILURES && now < f.since + WINDOW => {
                let wait = (f.since + WINDOW).saturating_duration_since(now);
                Err(Problem::throttled(wait.as_secs_f64().ceil().max(1.0) as u64))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication from `peer`.
    pub fn failed(&self, peer: IpAddr, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&bucket(peer)) {
            failures.retain(|_, f| now < f.since + WINDOW);
            if failures.len() >= MAX_TRACKED {
                let oldest = failures.iter().min_by_key(|(_, f)| f.last).map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(bucket(peer)).or_insert(Failures {
            count: 0,
            since: now,
            last: now,
        });
        if now >= entry.since + WINDOW {
            *entry = Failures {
                count: 0,
                since: now,
                last: now,
            };
        }
        entry.count += 1;
        entry.last = now;
    }
}

/// The address failures count against: an IPv4 address, or an IPv6 address's /64 (one host
/// commonly holds a whole /64).
fn bucket(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

/// The key in an `Authorization: Bearer <key>` header; `Err(())` when there is none, or the
/// header is not a bearer token.
pub fn bearer(authorization: Option<&str>) -> Result<&str, ()> {
    let value = authorization.ok_or(())?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(())?;
    let token = token.trim();
    match scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ') {
        true => Ok(token),
        false => Err(()),
    }
}

/// The actor a bearer key `secret` is: a valid key (enabled, unexpired, under its rate limit).
/// `Err(None)` for a wrong key (a failed authentication); `Err(Some(problem))` for a right key
/// that may not go on now.
pub fn authenticate(
    keys: &Served,
    counts: &Counts,
    secret: &str,
    now: UnixMillis,
) -> Result<Actor, Option<Problem>> {
    match keys.verify(secret, now, &[] as &[&str]) {
        Outcome::Valid(key) => {
            counts
                .take_key(keys, key, now)
                .map_err(|wait_ms| Some(Problem::rate_limited(wait_ms.div_ceil(1000).max(1))))?;
            Ok(Actor {
                id: key.id().to_string(),
                scopes: key.scope_list().map(str::to_string).collect(),
            })
        }
        _ => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_ten_failures_until_the_window_ends() {
        let guard = Guard::default();
        let (peer, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(guard.check(peer, start), Ok(()), "{i}");
            guard.failed(peer, start + Duration::from_secs(u64::from(i)));
        }
        let refused = guard
            .check(peer, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!((refused.status, refused.code), (429, "TOO_MANY_ATTEMPTS"));
        assert_eq!(refused.headers, [("retry-after", "50".to_string())]);
        assert_eq!(guard.check(other, start), Ok(()));
        assert_eq!(guard.check(peer, start + WINDOW), Ok(()));
        // A new window starts afresh.
        guard.failed(peer, start + WINDOW);
        assert_eq!(guard.check(peer, start + WINDOW), Ok(()));
    }

    #[test]
    fn ipv6_failures_count_per_64_and_the_table_stays_bounded() {
        let guard = Guard::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            let peer: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            guard.failed(peer, now);
        }
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(guard.check(neighbour, now).is_err());
        assert!(guard.check("2001:db8:0:1::1".parse().unwrap(), now).is_ok());
        for i in 0..(MAX_TRACKED as u32 + 100) {
            guard.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(guard.failures.lock().len() <= MAX_TRACKED);
    }

    #[test]
    fn only_a_bearer_token_is_a_key() {
        assert_eq!(bearer(Some("Bearer sec_x")), Ok("sec_x"));
        assert_eq!(bearer(Some("bearer   sec_x ")), Ok("sec_x"));
        for bad in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("Bearer"),
            Some("Bearer a b"),
        ] {
            assert_eq!(bearer(bad), Err(()), "{bad:?}");
        }
    }
}
