//! Usage per key as a replica counts it: when the key was last used, and its valid and refused
//! verifications per UTC day for the last 90 days; and what is still to be sent to the shared
//! counts.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use heare_auth_core::{day_of, DayCount as Day, UnixMillis};
use heare_auth_store::USAGE_DAYS;

/// One key's usage, as this replica saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// When the key was last presented (valid or not), here or, with shared counts, anywhere.
    pub last_used: Option<UnixMillis>,
    /// Days with verifications here, oldest first, at most [`USAGE_DAYS`]; kept only when this
    /// replica counts alone (shared counts keep them otherwise).
    pub days: VecDeque<Day>,
    /// Counted here, not yet sent.
    unsent: VecDeque<Day>,
    /// `last_used` as last sent.
    sent_last_used: Option<UnixMillis>,
    /// Whether the key is on its shard's list of keys with something to send.
    listed: bool,
}

/// Shards of the map, so that requests for different keys rarely wait for one another.
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    keys: HashMap<Box<str>, KeyUsage>,
    /// Keys with something to send.
    listed: Vec<Box<str>>,
}

/// Every key's usage on this replica.
pub struct Usage {
    shards: Box<[Mutex<Shard>]>,
    /// Whether what is counted is sent to shared counts (else nothing is kept to send).
    shared: bool,
}

/// What one key has to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// The key's id.
    pub id: Box<str>,
    /// Days counted.
    pub days: Vec<Day>,
    /// When it was last used, if later than last sent.
    pub last_used: Option<UnixMillis>,
}

impl Usage {
    /// Counts for one replica; `shared`: keeps what is to be sent to the shared counts.
    pub fn new(shared: bool) -> Usage {
        Usage {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shared,
        }
    }

    fn shard(&self, id: &str) -> &Mutex<Shard> {
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    /// Counts a verification of key `id` at `now`.
    pub fn record(&self, id: &str, valid: bool, now: UnixMillis) {
        let mut shard = self.shard(id).lock();
        let shard = &mut *shard;
        let usage = match shard.keys.get_mut(id) {
            Some(usage) => usage,
            None => shard.keys.entry(Box::from(id)).or_default(),
        };
        let day = day_of(now);
        usage.last_used = Some(usage.last_used.map_or(now, |t| t.max(now)));
        if !self.shared {
            count(&mut usage.days, day, valid);
            while usage
                .days
                .front()
                .is_some_and(|d| d.day <= day - USAGE_DAYS)
            {
                usage.days.pop_front();
            }
        } else {
            count(&mut usage.unsent, day, valid);
            if !usage.listed {
                usage.listed = true;
                shard.listed.push(Box::from(id));
            }
        }
    }

    /// Takes what every key has to send.
    pub fn take_unsent(&self) -> Vec<Unsent> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let shard = &mut *shard;
            for id in std::mem::take(&mut shard.listed) {
                let Some(usage) = shard.keys.get_mut(&id) else {
                    continue;
                };
                usage.listed = false;
                let last_used = usage.last_used.filter(|&t| Some(t) > usage.sent_last_used);
                usage.sent_last_used = usage.last_used;
                out.push(Unsent {
                    id,
                    days: std::mem::take(&mut usage.unsent).into(),
                    last_used,
                });
            }
        }
        out
    }

    /// Key `id`'s usage as this replica knows it.
    pub fn of(&self, id: &str) -> KeyUsage {
        self.shard(id)
            .lock()
            .keys
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// When key `id` was last used, as this replica knows.
    pub fn last_used(&self, id: &str) -> Option<UnixMillis> {
        self.shard(id).lock().keys.get(id).and_then(|u| u.last_used)
    }

    /// Learns that key `id` was used at `at` (by any replica).
    pub fn heard_used(&self, id: &str, at: UnixMillis) {
        let mut shard = self.shard(id).lock();
        let usage = shard.keys.entry(Box::from(id)).or_default();
        if usage.last_used.is_none_or(|t| t < at) {
            usage.last_used = Some(at);
            usage.sent_last_used = usage.sent_last_used.max(Some(at));
        }
    }
}

/// Adds one verification to the day `day` of `days` (kept in order).
fn count(days: &mut VecDeque<Day>, day: i64, valid: bool) {
    let (valid, refused) = if valid { (1, 0) } else { (0, 1) };
    add(
        days,
        Day {
            day,
            valid,
            refused,
        },
    );
}

/// Adds the counts of `d` to its day in `days` (kept in order).
fn add(days: &mut VecDeque<Day>, d: Day) {
    match days.iter().rposition(|x| x.day <= d.day) {
        Some(i) if days[i].day == d.day => {
            days[i].valid += d.valid;
            days[i].refused += d.refused;
        }
        Some(i) => days.insert(i + 1, d),
        None => days.push_front(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: UnixMillis = 86_400_000;

    #[test]
    fn days_are_counted_in_order_and_kept_ninety_days() {
        let usage = Usage::new(false);
        usage.record("k", true, 5);
        usage.record("k", false, 6);
        usage.record("k", true, DAY_MS + 1);
        let k = usage.of("k");
        assert_eq!(k.last_used, Some(DAY_MS + 1));
        assert_eq!(
            Vec::from(k.days),
            [
                Day {
                    day: 0,
                    valid: 1,
                    refused: 1
                },
                Day {
                    day: 1,
                    valid: 1,
                    refused: 0
                }
            ]
        );
        usage.record("k", true, USAGE_DAYS * DAY_MS);
        assert_eq!(usage.of("k").days.front().map(|d| d.day), Some(1));
        // Without shared counts, nothing is kept to send.
        assert!(usage.take_unsent().is_empty());
        assert_eq!(usage.of("other"), KeyUsage::default());
    }

    #[test]
    fn what_is_sent_is_taken_once() {
        let usage = Usage::new(true);
        usage.record("a", true, 10);
        usage.record("a", true, 20);
        usage.record("b", false, 30);
        let mut unsent = usage.take_unsent();
        unsent.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(unsent.len(), 2);
        assert_eq!(unsent[0].days[0].valid, 2);
        assert_eq!(unsent[0].last_used, Some(20));
        assert!(usage.take_unsent().is_empty());
        usage.record("a", false, 40);
        let again = usage.take_unsent();
        assert_eq!(
            again[0].days,
            [Day {
                day: 0,
                valid: 0,
                refused: 1
            }]
        );
        assert_eq!(again[0].last_used, Some(40));
        // Heard from elsewhere: later uses count, earlier ones do not.
        usage.heard_used("a", 35);
        assert_eq!(usage.last_used("a"), Some(40));
        usage.heard_used("c", 50);
        assert_eq!(usage.last_used("c"), Some(50));
        assert!(usage.take_unsent().is_empty());
    }
}
