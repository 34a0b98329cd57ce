//! One key of a [`KeySet`](super::KeySet): how it is stored (a fixed-size entry whose strings are
//! ranges of the set's text), and the view handed out to callers.

use crate::{Expiry, SecretHash, UnixMillis};

/// One verifiable key: a view into its set, holding only what `/verify` returns and needs.
/// Two keys are equal when their secret, id, name, metadata and expiry are.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub(super) text: &'a str,
    pub(super) entry: &'a Entry,
}

/// A key as stored: its secret's hash, its strings as ranges of the set's text, its expiry.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) hash: SecretHash,
    pub(super) id: Span,
    pub(super) name: Span,
    /// Compact JSON text of the metadata (`{}` when absent or null).
    pub(super) metadata: Span,
    /// Unix ms; [`NEVER`] for no expiry, [`UNREADABLE`] when `expires_at` could not be read.
    pub(super) expires_at: UnixMillis,
}

/// No `expires_at`.
const NEVER: UnixMillis = UnixMillis::MAX;
/// An `expires_at` that could not be read.
const UNREADABLE: UnixMillis = UnixMillis::MIN;

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

    /// When the key expires.
    pub fn expiry(self) -> Expiry {
        match self.entry.expires_at {
            NEVER => Expiry::Never,
            UNREADABLE => Expiry::Unreadable,
            t => Expiry::At(t),
        }
    }
}

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.entry, other.entry);
        (a.hash, a.expires_at) == (b.hash, b.expires_at)
            && (self.id(), self.name(), self.metadata_json())
                == (other.id(), other.name(), other.metadata_json())
    }
}

impl Eq for Key<'_> {}
