//! When a key expires, and what state it is in at a given time: the one rule the verifier, the
//! CLI and the WebAssembly package share.

use std::fmt;

use crate::{parse_timestamp, UnixMillis};

/// A key's `expires_at`, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No `expires_at` (or `null`).
    Never,
    /// Valid up to and including this instant.
    At(UnixMillis),
    /// An `expires_at` that is not a timestamp: the key fails closed, as if long expired.
    Unreadable,
}

impl Expiry {
    /// Reads an `expires_at` value.
    pub fn parse(expires_at: Option<&str>) -> Expiry {
        match expires_at.map(parse_timestamp) {
            None => Expiry::Never,
            Some(Ok(t)) => Expiry::At(t),
            Some(Err(_)) => Expiry::Unreadable,
        }
    }

    /// Whether a key with this expiry has expired at `now`: valid up to and including the
    /// instant, as the original compared (`now > expires_at`).
    pub fn has_passed(self, now: UnixMillis) -> bool {
        match self {
            Expiry::Never => false,
            Expiry::At(t) => now > t,
            Expiry::Unreadable => true,
        }
    }
}

/// What a key is at a given time.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It verifies.
    Active,
    /// Past its `expires_at`.
    Expired,
    /// Its `expires_at` cannot be read, so it never verifies.
    Unreadable,
}

impl Status {
    /// The status of a key with `expiry` at `now`.
    pub fn of(expiry: Expiry, now: UnixMillis) -> Status {
        match expiry {
            Expiry::Unreadable => Status::Unreadable,
            e if e.has_passed(now) => Status::Expired,
            _ => Status::Active,
        }
    }

    /// Whether the key verifies.
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}

/// The word `list` and `show` print: `active`, `expired`, `expired (unreadable expires_at)`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Unreadable => "expired (unreadable expires_at)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z

    #[test]
    fn valid_up_to_and_including_the_instant() {
        let at = Expiry::parse(Some("2026-11-25T01:17:14.316Z"));
        assert_eq!(at, Expiry::At(T));
        assert_eq!(Status::of(at, T), Status::Active);
        assert_eq!(Status::of(at, T + 1), Status::Expired);
        assert_eq!(Status::of(Expiry::parse(None), i64::MAX), Status::Active);
    }

    #[test]
    fn unreadable_fails_closed_even_at_the_dawn_of_time() {
        let bad = Expiry::parse(Some("next tuesday"));
        assert_eq!(bad, Expiry::Unreadable);
        assert!(bad.has_passed(i64::MIN));
        assert_eq!(
            Status::of(bad, 0).to_string(),
            "expired (unreadable expires_at)"
        );
        assert!(!Status::of(bad, 0).is_active());
    }
}
