//! The verifier's index: keys by SHA-256 of their secret, built once per load and then changed
//! a few keys at a time, read lock-free.

mod build;
mod check;
mod key;
mod overlay;
mod raw;
mod validate;

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use hashbrown::HashTable;

use crate::{hash_secret, Credits, Error, SecretHash, UnixMillis, Warning};

use build::Builder;
pub use check::{CheckError, Checked};
pub use key::Key;
use key::Stored;
use overlay::Overlay;

/// All keys of a file, indexed by secret hash (previous secrets too): the keys as loaded, and
/// the keys changed since (see [`KeySet::with_changes`]), which share the loaded ones rather
/// than copy them. Immutable once built.
#[derive(Default)]
pub struct KeySet {
    base: Arc<Packed>,
    /// The keys written or deleted since `base` was loaded.
    top: Option<Arc<Overlay>>,
}

/// Keys packed for lookup: their strings in one text, fixed-size entries, and two tables.
#[derive(Default)]
pub(crate) struct Packed {
    /// Every id, name, metadata and scopes text, back to back.
    text: String,
    entries: Vec<Stored>,
    /// The previous secrets of rotated keys.
    previous: Vec<Previous>,
    /// The credits of the keys that have them.
    credits: Vec<Credits>,
    /// Positions in `entries`, or in `previous` or-ed with [`ALIAS`], hashed by the first
    /// bytes of the secret hash.
    by_hash: HashTable<u32>,
    /// Positions in `entries`, hashed by id.
    ids: HashTable<u32>,
}

/// A rotated key's previous secret: it verifies as that key until the key's `previous_until`.
#[derive(Debug)]
struct Previous {
    hash: SecretHash,
    /// Position of the key in `entries`.
    key: u32,
}

/// Marks a position in [`KeySet::previous`] rather than in the entries.
const ALIAS: u32 = 1 << 31;

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("len", &self.len())
            .field("changed", &self.changed_len())
            .finish_non_exhaustive()
    }
}

/// SHA-256 output is already uniformly distributed, so its first 8 bytes are a good hash.
/// Callers cannot steer it: they choose secrets, not hashes.
fn table_hash(hash: &SecretHash) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash.0[..8]);
    u64::from_le_bytes(word)
}

/// Ids come from the operator's own file, so a fixed-key hasher is fine (and needs no OS
/// randomness, which WebAssembly may not have).
fn id_hash(id: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

/// The fewest bytes of a keys file a record takes: `{"id":"a","secret":"b"},`.
const MIN_RECORD: usize = 24;

impl KeySet {
    /// Parses and validates a keys file. Rejects invalid JSON, a missing `id` or secret, a
    /// malformed `secret_hash`, duplicate ids and duplicate secrets, naming the key and field.
    /// Keys whose `expires_at` cannot be parsed load as expired and are reported as warnings.
    pub fn from_json(bytes: &[u8]) -> Result<(KeySet, Vec<Warning>), Error> {
        KeySet::load(bytes, &mut || {}, false)
    }

    /// [`KeySet::from_json`], calling `pace` before each record and every few keys while
    /// indexing: a loader that shares a core with request handlers gives the core up there
    /// (the core itself never waits). It also reserves, before it starts, room for as many
    /// keys as the file could hold, so that no growth of the set copies it in one long step
    /// (memory reserved and never written costs nothing where the OS commits it lazily, as
    /// Linux does; the set is shrunk to its size at the end).
    pub fn from_json_paced(
        bytes: &[u8],
        pace: &mut dyn FnMut(),
    ) -> Result<(KeySet, Vec<Warning>), Error> {
        KeySet::load(bytes, pace, true)
    }

    fn load(
        bytes: &[u8],
        pace: &mut dyn FnMut(),
        reserve: bool,
    ) -> Result<(KeySet, Vec<Warning>), Error> {
        let (base, warnings) = Packed::load(bytes, pace, reserve)?;
        let set = KeySet {
            base: Arc::new(base),
            top: None,
        };
        Ok((set, warnings))
    }

    /// The key whose secret (or previous secret, within its grace) is `secret` at `now`, if
    /// any; [`KeySet::verify`] says what it may do. A key changed since the set was loaded is
    /// found as it now is; a key deleted since, not at all.
    pub(crate) fn find(&self, secret: &str, now: UnixMillis) -> Option<Key<'_>> {
        if secret.is_empty() {
            return None;
        }
        let hash = hash_secret(secret);
        let Some(top) = &self.top else {
            return self.base.find(&hash, now).map(|(_, key)| key);
        };
        if let Some((_, key)) = top.keys.find(&hash, now) {
            return Some(key);
        }
        match self.base.find(&hash, now) {
            Some((i, key)) if !top.hides(i) => Some(key),
            _ => None,
        }
    }

    /// The key with this id, as it now is.
    pub fn get(&self, id: &str) -> Option<Key<'_>> {
        if let Some(top) = &self.top {
            if let Some(i) = top.keys.position(id) {
                return Some(top.keys.key(i));
            }
        }
        let i = self.base.position(id)?;
        match &self.top {
            Some(top) if top.hides(i) => None,
            _ => Some(self.base.key(i)),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        match &self.top {
            None => self.base.entries.len(),
            Some(top) => self.base.entries.len() - top.hidden + top.keys.entries.len(),
        }
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys were written or deleted since the set was loaded: a reloader loads the
    /// whole set again when this grows large.
    pub fn changed_len(&self) -> usize {
        self.top.as_ref().map_or(0, |top| top.len())
    }

    /// The keys: those loaded, in file order, less the ones changed or deleted since, then
    /// the ones changed or added since, in the order of their changes.
    pub fn keys(&self) -> impl Iterator<Item = Key<'_>> {
        let top = self.top.as_deref();
        let loaded = (self.base.keys().enumerate())
            .filter(move |(i, _)| top.is_none_or(|top| !top.hides(*i as u32)))
            .map(|(_, key)| key);
        loaded.chain(top.into_iter().flat_map(|top| top.keys.keys()))
    }
}

impl Packed {
    fn load(
        bytes: &[u8],
        pace: &mut dyn FnMut(),
        reserve: bool,
    ) -> Result<(Packed, Vec<Warning>), Error> {
        // One UTF-8 check of the whole file, rather than one per string.
        let text = crate::error::json_text(bytes)?;
        let mut builder = Builder {
            set: Packed::default(),
            warnings: Vec::new(),
            error: None,
        };
        if reserve {
            // Every text the set keeps comes from the file, no longer than it was there, and
            // each record takes at least `{"id":"a","secret":"b"},` of it.
            builder.set.text.reserve(bytes.len());
            builder.set.entries.reserve(bytes.len() / MIN_RECORD);
        }
        // A paced load shares its core with requests; an unpaced one may take two.
        let parsed = build::walk(text, &mut builder, pace, !reserve);
        if let Some(e) = builder.error {
            return Err(e);
        }
        parsed?;
        builder.finish(pace)
    }

    /// The key whose secret (or previous secret, within its grace) hashes to `hash` at `now`,
    /// and its position in `entries`.
    fn find(&self, hash: &SecretHash, now: UnixMillis) -> Option<(u32, Key<'_>)> {
        let &slot = self
            .by_hash
            .find(table_hash(hash), |&s| self.hash_at(s) == hash)?;
        let i = self.key_of(slot);
        let key = self.key(i);
        let previous_over = key
            .state()
            .previous
            .is_none_or(|until| until.has_passed(now));
        if slot & ALIAS != 0 && previous_over {
            return None;
        }
        Some((i, key))
    }

    /// The position in `entries` of the key whose secret or previous secret hashes to `hash`,
    /// whatever the time.
    fn holder(&self, hash: &SecretHash) -> Option<u32> {
        let &slot = self
            .by_hash
            .find(table_hash(hash), |&s| self.hash_at(s) == hash)?;
        Some(self.key_of(slot))
    }

    /// The position in `entries` of the key with this id.
    fn position(&self, id: &str) -> Option<u32> {
        self.ids
            .find(id_hash(id), |&i| self.key(i).id() == id)
            .copied()
    }

    /// The secret hash at a position of the index.
    fn hash_at(&self, slot: u32) -> &SecretHash {
        match slot & ALIAS {
            0 => &self.entries[slot as usize].hash,
            _ => &self.previous[(slot & !ALIAS) as usize].hash,
        }
    }

    /// The key a position of the index belongs to.
    fn key_of(&self, slot: u32) -> u32 {
        match slot & ALIAS {
            0 => slot,
            _ => self.previous[(slot & !ALIAS) as usize].key,
        }
    }

    fn key(&self, i: u32) -> Key<'_> {
        Key {
            text: &self.text,
            entry: &self.entries[i as usize],
            credits: &self.credits,
        }
    }

    /// The keys in file order.
    fn keys(&self) -> impl Iterator<Item = Key<'_>> {
        self.entries.iter().map(|entry| Key {
            text: &self.text,
            entry,
            credits: &self.credits,
        })
    }
}

#[cfg(test)]
mod tests;
