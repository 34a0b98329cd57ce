//! One key of a [`KeySet`](super::KeySet): how it is stored (a fixed-size entry whose strings are
//! ranges of the set's text), and the view handed out to callers.

use crate::{Credits, Expiry, RateLimit, SecretHash, State, Status, UnixMillis};

/// One verifiable key: a view into its set, holding only what `/verify` returns and needs.
/// Two keys are equal when everything they hold is (the previous secret compared by its end).
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub(super) text: &'a str,
    pub(super) entry: &'a Stored,
    pub(super) credits: &'a [Credits],
}

/// A key as stored: its secret's hash, its strings as ranges of the set's text, its expiry,
/// whether it is disabled, and when its previous secret's grace ends (the previous secret's
/// hash is kept beside the entries, only for keys that have one).
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) hash: SecretHash,
    pub(super) id: Span,
    pub(super) name: Span,
    /// Compact JSON text of the metadata (`{}` when absent or null).
    pub(super) metadata: Span,
    /// The scopes, comma-separated (empty when none).
    pub(super) scopes: Span,
    /// Unix ms; [`NEVER`] for no expiry, [`UNREADABLE`] when `expires_at` could not be read.
    pub(super) expires_at: UnixMillis,
    /// Unix ms when the previous secret stops verifying; [`UNREADABLE`] when there is none.
    pub(super) previous_until: UnixMillis,
    /// The rate limit, when the key has one.
    pub(super) limit: Option<RateLimit>,
    /// Where the key's credits are in the set's credits; [`NO_CREDITS`] when it has none.
    pub(super) credits: u32,
    pub(super) disabled: bool,
}

/// A key without credits.
pub(super) const NO_CREDITS: u32 = u32::MAX;

/// No `expires_at`.
const NEVER: UnixMillis = UnixMillis::MAX;
/// An `expires_at` that could not be read.
const UNREADABLE: UnixMillis = UnixMillis::MIN;

/// A previous secret that never verifies (none, or one whose end cannot be read).
pub(super) const NO_PREVIOUS: UnixMillis = UNREADABLE;

/// An [`Expiry`] in the 8 bytes an entry keeps for it.
pub(super) fn stored_expiry(expiry: Expiry) -> UnixMillis {
    match expiry {
        Expiry::Never => NEVER,
        Expiry::At(t) => t.clamp(UNREADABLE + 1, NEVER - 1),
        Expiry::Unreadable => UNREADABLE,
    }
}

/// A range of a set's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) len: u32,
}

impl<'a> Key<'a> {
    fn str(self, span: Span) -> &'a str {
        &self.text[span.start as usize..(span.start + span.len) as usize]
    }

    /// The key's public id.
    pub fn id(self) -> &'a str {
        self.str(self.entry.id)
    }

    /// The key's name.
    pub fn name(self) -> &'a str {
        self.str(self.entry.name)
    }

    /// The key's metadata as compact JSON text.
    pub fn metadata_json(self) -> &'a str {
        self.str(self.entry.metadata)
    }

    /// The key's scopes, comma-separated (empty when it has none).
    pub fn scopes(self) -> &'a str {
        self.str(self.entry.scopes)
    }

    /// The key's scopes, one by one.
    pub fn scope_list(self) -> impl Iterator<Item = &'a str> {
        self.scopes().split(',').filter(|s| !s.is_empty())
    }

    /// When the key expires.
    pub fn expiry(self) -> Expiry {
        read_expiry(self.entry.expires_at)
    }

    /// Whether an admin disabled the key.
    pub fn is_disabled(self) -> bool {
        self.entry.disabled
    }

    /// The key's rate limit, if it has one.
    pub fn rate_limit(self) -> Option<RateLimit> {
        self.entry.limit
    }

    /// The key's credits, if it has any.
    pub fn credits(self) -> Option<Credits> {
        self.credits.get(self.entry.credits as usize).copied()
    }

    /// What decides the key's status.
    pub fn state(self) -> State {
        State {
            expiry: self.expiry(),
            disabled: self.entry.disabled,
            previous: match self.entry.previous_until {
                UNREADABLE => None,
                t => Some(read_expiry(t)),
            },
        }
    }

    /// What the key is at `now`.
    pub fn status(self, now: UnixMillis) -> Status {
        Status::of(self.state(), now)
    }
}

fn read_expiry(stored: UnixMillis) -> Expiry {
    match stored {
        NEVER => Expiry::Never,
        UNREADABLE => Expiry::Unreadable,
        t => Expiry::At(t),
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.entry, other.entry);
        (a.hash, a.expires_at, a.previous_until, a.limit, a.disabled)
            == (b.hash, b.expires_at, b.previous_until, b.limit, b.disabled)
            && self.credits() == other.credits()
            && (self.id(), self.name(), self.metadata_json(), self.scopes())
                == (
                    other.id(),
                    other.name(),
                    other.metadata_json(),
                    other.scopes(),
                )
    }
}

impl Eq for Key<'_> {}
