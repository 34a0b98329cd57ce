//! When a key expires, and what state it is in at a given time: the one rule the verifier, the
//! CLI and the WebAssembly package share.

use std::fmt;

use crate::{parse_timestamp, UnixMillis};

/// A key's `expires_at` (or a previous secret's `previous_expires_at`), read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No `expires_at` (or `null`).
    Never,
    /// Valid up to and including this instant.
    At(UnixMillis),
    /// A value that is not a timestamp: fails closed, as if long expired.
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

    /// Whether this has passed at `now`: valid up to and including the instant, as the
    /// original compared (`now > expires_at`).
    pub fn has_passed(self, now: UnixMillis) -> bool {
        match self {
            Expiry::Never => false,
            Expiry::At(t) => now > t,
            Expiry::Unreadable => true,
        }
    }
}

/// What decides a key's status, read from its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// When the key expires.
    pub expiry: Expiry,
    /// Whether an admin disabled it.
    pub disabled: bool,
    /// When the grace period of its previous secret ends, if it was rotated.
    pub previous: Option<Expiry>,
}

/// What a key is at a given time.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It verifies.
    Active,
    /// It verifies, and so does its previous secret until the grace period ends.
    Rotating,
    /// Past its `expires_at`.
    Expired,
    /// Its `expires_at` cannot be read, so it never verifies.
    Unreadable,
    /// Disabled by an admin: kept, but it never verifies.
    Disabled,
}

impl Status {
    /// The status of a key in `state` at `now`. Disabled comes first, then expiry.
    pub fn of(state: State, now: UnixMillis) -> Status {
        if state.disabled {
            return Status::Disabled;
        }
        match state.expiry {
            Expiry::Unreadable => Status::Unreadable,
            e if e.has_passed(now) => Status::Expired,
            _ if state.previous.is_some_and(|p| !p.has_passed(now)) => Status::Rotating,
            _ => Status::Active,
        }
    }

    /// Whether the key verifies.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Active | Status::Rotating)
    }
}

/// The word `list` and `show` print: `active`, `rotating`, `expired`, `disabled`, ...
impl Status {
    /// The status in one word, as `list` and the management API show it: `active`,
    /// `rotating`, `expired` (an unreadable `expires_at` too) or `disabled`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Rotating => "rotating",
            Status::Expired | Status::Unreadable => "expired",
            Status::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Active => "active",
            Status::Rotating => "rotating",
            Status::Expired => "expired",
            Status::Unreadable => "expired (unreadable expires_at)",
            Status::Disabled => "disabled",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z

    fn state(expiry: Expiry) -> State {
        State {
            expiry,
            disabled: false,
            previous: None,
        }
    }

    #[test]
    fn valid_up_to_and_including_the_instant() {
        let at = Expiry::parse(Some("2026-11-25T01:17:14.316Z"));
        assert_eq!(at, Expiry::At(T));
        assert_eq!(Status::of(state(at), T), Status::Active);
        assert_eq!(Status::of(state(at), T + 1), Status::Expired);
        assert_eq!(
            Status::of(state(Expiry::parse(None)), i64::MAX),
            Status::Active
        );
    }

    #[test]
    fn unreadable_fails_closed_even_at_the_dawn_of_time() {
        let bad = Expiry::parse(Some("next tuesday"));
        assert_eq!(bad, Expiry::Unreadable);
        assert!(bad.has_passed(i64::MIN));
        let status = Status::of(state(bad), 0);
        assert_eq!(status.to_string(), "expired (unreadable expires_at)");
        assert!(!status.is_active());
    }

    #[test]
    fn disabled_first_then_expiry_then_rotation() {
        let rotating = State {
            expiry: Expiry::Never,
            disabled: false,
            previous: Some(Expiry::At(T)),
        };
        assert_eq!(Status::of(rotating, T), Status::Rotating);
        assert!(Status::of(rotating, T).is_active());
        assert_eq!(Status::of(rotating, T + 1), Status::Active);
        let disabled = State {
            disabled: true,
            expiry: Expiry::At(0),
            ..rotating
        };
        assert_eq!(Status::of(disabled, T).to_string(), "disabled");
        let expired = State {
            expiry: Expiry::At(T - 1),
            ..rotating
        };
        assert_eq!(Status::of(expired, T), Status::Expired);
    }
}
