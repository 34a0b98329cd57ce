//! Per-key rate limits: a token bucket per key, refilled continuously, with time passed in.

use std::fmt;

use crate::{Error, UnixMillis};

/// A key's limit: `requests` every `per_ms` milliseconds, in bursts of up to `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Requests allowed per period (at least 1).
    pub requests: u32,
    /// The period in milliseconds (at least 1).
    pub per_ms: u32,
}

impl RateLimit {
    /// `requests` per `per_ms`, or why not: both must be positive, the period at most 30 days.
    pub fn new(requests: u64, per_ms: u64) -> Result<RateLimit, Error> {
        const MAX_PERIOD_MS: u64 = 30 * 86_400_000;
        let requests =
            u32::try_from(requests)
                .ok()
                .filter(|&r| r > 0)
                .ok_or(Error::RateLimitRequests {
                    requests,
                    max: u64::from(u32::MAX),
                })?;
        let per_ms = u32::try_from(per_ms)
            .ok()
            .filter(|&p| p > 0 && u64::from(p) <= MAX_PERIOD_MS)
            .ok_or(Error::RateLimitPeriod {
                per_ms,
                max_ms: MAX_PERIOD_MS,
            })?;
        Ok(RateLimit { requests, per_ms })
    }

    /// Reads `100/60s`, `5/1m`, `1000/1h`, `10/500ms`: requests, a slash, a period with its
    /// unit (ms, s, m, h, d).
    pub fn parse(text: &str) -> Result<RateLimit, Error> {
        let expected = || Error::RateLimitFormat { text: text.into() };
        let (requests, period) = text.split_once('/').ok_or_else(expected)?;
        let requests: u64 = requests.trim().parse().map_err(|_| expected())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&i| i > 0)
            .ok_or_else(expected)?;
        let (number, unit) = period.split_at(split);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(expected()),
        };
        let number: u64 = number.parse().map_err(|_| expected())?;
        RateLimit::new(requests, number.saturating_mul(unit_ms))
    }
}

/// A limit as a keys file stores it: `{"requests": N, "per_seconds": S}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    requests: u64,
    per_seconds: f64,
}

/// A limit as a keys file is written: whole seconds as an integer, others with milliseconds.
#[derive(serde::Serialize)]
pub(crate) struct StoredOut {
    requests: u32,
    per_seconds: serde_json::Number,
}

impl RateLimit {
    /// Reads a keys file's `rate_limit` value (its JSON text), or says why it is not one: the
    /// `reason` of the loader's [`Error::InvalidField`], which reads after the field's name.
    pub(crate) fn from_stored(json: &str) -> Result<RateLimit, String> {
        let limit: Stored = serde_json::from_str(json)
            .map_err(|_| "is not {\"requests\": N, \"per_seconds\": S}".to_string())?;
        let per_ms = limit.per_seconds * 1000.0;
        if !per_ms.is_finite() || per_ms < 1.0 {
            return Err(format!(
                "per_seconds must be at least 0.001, got {}",
                limit.per_seconds
            ));
        }
        RateLimit::new(limit.requests, per_ms.round() as u64)
            .map_err(|e| format!("is not valid: {e}"))
    }

    /// The limit as a keys file stores it; [`RateLimit::from_stored`] reads it back.
    pub(crate) fn to_stored(self) -> StoredOut {
        let per_seconds = match self.per_ms % 1000 {
            0 => serde_json::Number::from(self.per_ms / 1000),
            _ => serde_json::Number::from_f64(f64::from(self.per_ms) / 1000.0)
                .unwrap_or_else(|| serde_json::Number::from(self.per_ms / 1000)),
        };
        StoredOut {
            requests: self.requests,
            per_seconds,
        }
    }
}

/// `100/60s`: how [`RateLimit::parse`] reads it, in whole seconds when it can be.
impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_ms.is_multiple_of(1000) {
            write!(f, "{}/{}s", self.requests, self.per_ms / 1000)
        } else {
            write!(f, "{}/{}ms", self.requests, self.per_ms)
        }
    }
}

/// A token bucket, kept as the instant it would next be full ("generic cell rate algorithm"):
/// one number, exact, and a refused request changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Nanoseconds since the epoch when every token is back; a request adds one interval.
    full_at: i64,
}

const NANOS_PER_MS: i64 = 1_000_000;

impl RateLimit {
    /// Nanoseconds to earn one token.
    fn interval_ns(self) -> i64 {
        i64::from(self.per_ms) * NANOS_PER_MS / i64::from(self.requests)
    }

    /// How far ahead of now the bucket may be full and still hold a token.
    fn burst_ns(self) -> i64 {
        self.interval_ns() * (i64::from(self.requests) - 1)
    }
}

fn nanos(now: UnixMillis) -> i64 {
    now.saturating_mul(NANOS_PER_MS)
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(now: UnixMillis) -> Bucket {
        Bucket {
            full_at: nanos(now),
        }
    }

    /// Takes one request's token at `now`: `Ok`, or `Err` with the milliseconds until one
    /// will be there. A clock that goes back refills nothing.
    pub fn take(&mut self, limit: RateLimit, now: UnixMillis) -> Result<(), u64> {
        let now = nanos(now);
        let full_at = self.full_at.max(now);
        let ahead = full_at - now;
        if ahead > limit.burst_ns() {
            let wait = u64::try_from(ahead - limit.burst_ns()).unwrap_or(u64::MAX);
            return Err(wait.div_ceil(NANOS_PER_MS as u64));
        }
        self.full_at = full_at + limit.interval_ns();
        Ok(())
    }

    /// Carries a bucket over to a changed limit at `now`: no more tokens than it held, nor
    /// than the new limit allows.
    pub fn under(self, limit: RateLimit, now: UnixMillis) -> Bucket {
        let latest = nanos(now) + limit.burst_ns() + limit.interval_ns();
        Bucket {
            full_at: self.full_at.min(latest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_and_print() {
        assert_eq!(
            RateLimit::parse("100/60s"),
            Ok(RateLimit {
                requests: 100,
                per_ms: 60_000
            })
        );
        assert_eq!(
            RateLimit::parse("5/1m"),
            Ok(RateLimit {
                requests: 5,
                per_ms: 60_000
            })
        );
        assert_eq!(
            RateLimit::parse("10/500ms").unwrap().to_string(),
            "10/500ms"
        );
        assert_eq!(
            RateLimit::parse("1000/1h").unwrap().to_string(),
            "1000/3600s"
        );
        for bad in [
            "", "100", "100/", "/60s", "0/60s", "100/0s", "100/60", "x/60s", "100/60y", "1/31d",
        ] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        let format = |text: &str| Error::RateLimitFormat { text: text.into() };
        assert_eq!(RateLimit::parse("100/minute"), Err(format("100/minute")));
        assert_eq!(
            RateLimit::parse("100/minute").unwrap_err().to_string(),
            "expected REQUESTS/PERIOD like 100/60s or 5/1m, got '100/minute'"
        );
        assert_eq!(
            RateLimit::parse("0/60s"),
            Err(Error::RateLimitRequests {
                requests: 0,
                max: 4_294_967_295
            })
        );
        assert_eq!(
            RateLimit::parse("1/31d"),
            Err(Error::RateLimitPeriod {
                per_ms: 31 * 86_400_000,
                max_ms: 30 * 86_400_000
            })
        );
        assert_eq!(
            RateLimit::parse("1/31d").unwrap_err().to_string(),
            "expected a period of 1 ms to 30 days, got 2678400000 ms"
        );
    }

    #[test]
    fn the_stored_form_reads_back_as_written() {
        for (limit, json) in [
            ("100/60s", r#"{"requests":100,"per_seconds":60}"#),
            ("10/500ms", r#"{"requests":10,"per_seconds":0.5}"#),
            ("3/1500ms", r#"{"requests":3,"per_seconds":1.5}"#),
            ("1/1ms", r#"{"requests":1,"per_seconds":0.001}"#),
        ] {
            let limit = RateLimit::parse(limit).unwrap();
            let written = serde_json::to_string(&limit.to_stored()).unwrap();
            assert_eq!(written, json);
            assert_eq!(RateLimit::from_stored(&written), Ok(limit));
        }
        assert_eq!(
            RateLimit::from_stored(r#"{"per_seconds": 60.0, "requests": 2}"#),
            Ok(RateLimit::parse("2/60s").unwrap())
        );
        for (bad, reason) in [
            (
                r#"{"requests": 2}"#,
                r#"is not {"requests": N, "per_seconds": S}"#,
            ),
            (
                r#"{"requests": 2, "per_seconds": 1, "burst": 3}"#,
                r#"is not {"requests": N, "per_seconds": S}"#,
            ),
            (r#""2/60s""#, r#"is not {"requests": N, "per_seconds": S}"#),
            (
                r#"{"requests": 2, "per_seconds": 0}"#,
                "per_seconds must be at least 0.001, got 0",
            ),
            (
                r#"{"requests": 0, "per_seconds": 1}"#,
                "is not valid: expected 1 to 4294967295 requests, got 0",
            ),
        ] {
            assert_eq!(
                RateLimit::from_stored(bad),
                Err(reason.to_string()),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_burst_then_a_steady_rate() {
        let limit = RateLimit::parse("3/3s").unwrap();
        let mut bucket = Bucket::full(0);
        assert_eq!(
            (0..3).map(|_| bucket.take(limit, 0)).collect::<Vec<_>>(),
            [Ok(()); 3]
        );
        assert_eq!(bucket.take(limit, 0), Err(1000));
        assert_eq!(bucket.take(limit, 999), Err(1));
        assert_eq!(bucket.take(limit, 1000), Ok(()));
        assert_eq!(bucket.take(limit, 1000), Err(1000));
        // Idle for a long time: full again, never more.
        for _ in 0..3 {
            assert_eq!(bucket.take(limit, 1_000_000), Ok(()));
        }
        assert!(bucket.take(limit, 1_000_000).is_err());
        // A clock going back refills nothing.
        assert!(bucket.take(limit, 0).is_err());
    }

    #[test]
    fn slow_refills_are_not_lost_to_rounding() {
        let limit = RateLimit::parse("1/7s").unwrap();
        let mut bucket = Bucket::full(0);
        assert_eq!(bucket.take(limit, 0), Ok(()));
        let mut now = 0;
        while bucket.take(limit, now).is_err() {
            now += 1;
        }
        assert_eq!(now, 7000);
    }

    #[test]
    fn a_lower_limit_caps_what_a_bucket_holds() {
        let mut bucket = Bucket::full(0);
        let lower = RateLimit::parse("1/1s").unwrap();
        bucket = bucket.under(lower, 0);
        assert_eq!(bucket.take(lower, 0), Ok(()));
        assert!(bucket.take(lower, 0).is_err());
    }
}
