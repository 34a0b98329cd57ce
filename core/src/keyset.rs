//! The verifier's index: keys by SHA-256 of their secret, built once per load, read lock-free.
//!
//! Built in one streaming pass over the file: each record is validated and folded in as it is
//! parsed, its strings appended to one arena, so a million keys cost one allocation per table
//! rather than several per key.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use hashbrown::HashTable;

use crate::compact::push_compact_json;
use crate::{hash_secret, parse_timestamp, Error, Outcome, SecretHash, UnixMillis, Warning};

/// One verifiable key: a view into its [`KeySet`], holding only what `/verify` returns and needs.
/// Two keys are equal when their secret, id, name, metadata and expiry are.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    text: &'a str,
    entry: &'a Entry,
}

/// A key as stored: its secret's hash, its strings as ranges of the set's arena, its expiry.
#[derive(Debug)]
struct Entry {
    hash: SecretHash,
    id: Span,
    name: Span,
    /// Compact JSON text of the metadata (`{}` when absent or null).
    metadata: Span,
    /// Unix ms; [`NEVER`] for no expiry, [`UNPARSEABLE`] when `expires_at` could not be read.
    expires_at: UnixMillis,
}

/// No `expires_at`.
const NEVER: UnixMillis = UnixMillis::MAX;
/// An `expires_at` that could not be parsed: fail closed, the key has always expired.
const UNPARSEABLE: UnixMillis = UnixMillis::MIN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
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
    /// Whether the key has expired at `now`. A key is valid up to and including `expires_at`.
    pub fn is_expired(self, now: UnixMillis) -> bool {
        match self.entry.expires_at {
            NEVER => false,
            UNPARSEABLE => true,
            t => now > t,
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

/// All keys of a file, indexed by secret hash. Immutable once built.
#[derive(Default)]
pub struct KeySet {
    /// Every id, name and metadata text, back to back.
    text: String,
    entries: Vec<Entry>,
    /// Positions in `entries`, hashed by the first bytes of the secret hash.
    by_hash: HashTable<u32>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The verifier's view of one record: unknown fields are skipped, strings borrowed when possible.
#[derive(Deserialize)]
struct RawKey<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    secret: Option<Cow<'a, str>>,
    #[serde(borrow)]
    secret_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expires_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
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

/// The set being built, and the first validation error (serde only carries strings).
struct Builder {
    set: KeySet,
    warnings: Vec<Warning>,
    error: Option<Error>,
}

impl Builder {
    fn push_str(&mut self, s: &str) -> Result<Span, Error> {
        let start = self.set.text.len();
        self.set.text.push_str(s);
        span(start, self.set.text.len())
    }

    fn add(&mut self, index: usize, raw: RawKey) -> Result<(), Error> {
        let id = match raw.id.as_deref() {
            Some(id) if !id.is_empty() => id,
            Some(_) => {
                return Err(Error::InvalidField {
                    key: format!("keys[{index}]"),
                    field: "id",
                    reason: "is empty".into(),
                })
            }
            None => {
                return Err(Error::MissingField {
                    key: format!("keys[{index}]"),
                    field: "id",
                })
            }
        };
        let hash = secret_hash_of(id, &raw)?;
        let expires_at = match raw.expires_at.as_deref() {
            None => NEVER,
            Some(s) => parse_timestamp(s).unwrap_or_else(|_| {
                self.warnings.push(Warning::UnparseableExpiry {
                    id: id.into(),
                    value: s.into(),
                });
                UNPARSEABLE
            }),
        };
        let id = self.push_str(id)?;
        let name = self.push_str(raw.name.as_deref().unwrap_or_default())?;
        let metadata = match raw.metadata.map(RawValue::get) {
            None | Some("null") => self.push_str("{}")?,
            Some(json) => {
                let start = self.set.text.len();
                push_compact_json(&mut self.set.text, json);
                span(start, self.set.text.len())?
            }
        };
        self.set.entries.push(Entry {
            hash,
            id,
            name,
            metadata,
            expires_at,
        });
        Ok(())
    }

    /// Indexes the parsed keys, rejecting duplicate ids and secrets. Done once the count is
    /// known, so neither table is ever resized.
    fn finish(self) -> Result<(KeySet, Vec<Warning>), Error> {
        let Builder {
            mut set, warnings, ..
        } = self;
        set.text.shrink_to_fit();
        set.entries.shrink_to_fit();
        let (text, entries) = (&set.text, &set.entries);
        let key = |i: u32| Key {
            text,
            entry: &entries[i as usize],
        };
        let mut ids: HashTable<u32> = HashTable::with_capacity(entries.len());
        let mut by_hash: HashTable<u32> = HashTable::with_capacity(entries.len());
        for (slot, entry) in (0u32..).zip(entries) {
            let id = key(slot).id();
            let id_hash = id_hash(id);
            if ids.find(id_hash, |&i| key(i).id() == id).is_some() {
                return Err(Error::DuplicateId { id: id.into() });
            }
            ids.insert_unique(id_hash, slot, |&i| self::id_hash(key(i).id()));
            let hash = table_hash(&entry.hash);
            if let Some(&first) = by_hash.find(hash, |&i| entries[i as usize].hash == entry.hash) {
                return Err(Error::DuplicateSecret {
                    first: key(first).id().into(),
                    second: id.into(),
                });
            }
            by_hash.insert_unique(hash, slot, |&i| table_hash(&entries[i as usize].hash));
        }
        set.by_hash = by_hash;
        Ok((set, warnings))
    }
}

fn span(start: usize, end: usize) -> Result<Span, Error> {
    let too_big = || Error::Json {
        line: 1,
        column: 1,
        message: "the keys file is too large (its ids, names and metadata exceed 4 GiB)".into(),
    };
    let start = u32::try_from(start).map_err(|_| too_big())?;
    let end = u32::try_from(end).map_err(|_| too_big())?;
    Ok(Span {
        start,
        len: end - start,
    })
}

/// Visits the top-level object: `keys` is streamed into the builder, other fields ignored.
struct FileVisitor<'b>(&'b mut Builder);

impl<'de> Visitor<'de> for FileVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a `keys` array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(field) = map.next_key::<Cow<'de, str>>()? {
            if field != "keys" {
                map.next_value::<IgnoredAny>()?;
            } else if seen {
                return Err(de::Error::duplicate_field("keys"));
            } else {
                seen = true;
                map.next_value_seed(KeysSeed(&mut *self.0))?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("keys"))
        }
    }
}

/// Streams the `keys` array: each record is validated and indexed as soon as it is parsed.
struct KeysSeed<'b>(&'b mut Builder);

impl<'de> DeserializeSeed<'de> for KeysSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of keys")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(raw) = seq.next_element::<RawKey<'de>>()? {
            if let Err(e) = self.0.add(index, raw) {
                self.0.error = Some(e);
                return Err(de::Error::custom("invalid key"));
            }
            index += 1;
        }
        Ok(())
    }
}

impl KeySet {
    /// Parses and validates a keys file. Rejects invalid JSON, a missing `id` or secret, a
    /// malformed `secret_hash`, duplicate ids and duplicate secrets, naming the key and field.
    /// Keys whose `expires_at` cannot be parsed load as expired and are reported as warnings.
    pub fn from_json(bytes: &[u8]) -> Result<(KeySet, Vec<Warning>), Error> {
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Error::Json {
                line: 1,
                column: 1,
                message: "expected an object with a `keys` array".into(),
            });
        }
        // One UTF-8 check of the whole file, rather than one per string.
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (before, _) = bytes.split_at(e.valid_up_to());
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.len()
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
                + 1;
            Error::Json {
                line,
                column,
                message: "invalid UTF-8".into(),
            }
        })?;
        let mut builder = Builder {
            set: KeySet::default(),
            warnings: Vec::new(),
            error: None,
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed =
            de::Deserializer::deserialize_map(&mut deserializer, FileVisitor(&mut builder))
                .and_then(|()| deserializer.end());
        if let Some(e) = builder.error {
            return Err(e);
        }
        parsed?;
        builder.finish()
    }

    /// Verifies a presented secret at `now`: one SHA-256 and one hash-table lookup.
    pub fn verify(&self, secret: &str, now: UnixMillis) -> Outcome<'_> {
        if secret.is_empty() {
            return Outcome::NotFound;
        }
        let hash = hash_secret(secret);
        let found = self.by_hash.find(table_hash(&hash), |&i| {
            self.entries[i as usize].hash == hash
        });
        match found {
            None => Outcome::NotFound,
            Some(&i) => {
                let key = self.key(i);
                if key.is_expired(now) {
                    Outcome::Expired(key)
                } else {
                    Outcome::Valid(key)
                }
            }
        }
    }

    fn key(&self, i: u32) -> Key<'_> {
        Key {
            text: &self.text,
            entry: &self.entries[i as usize],
        }
    }

    /// Number of keys loaded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = Key<'_>> {
        self.entries.iter().map(|entry| Key {
            text: &self.text,
            entry,
        })
    }
}

fn secret_hash_of(id: &str, raw: &RawKey) -> Result<SecretHash, Error> {
    let invalid = |field, reason: &str| Error::InvalidField {
        key: id.into(),
        field,
        reason: reason.into(),
    };
    let stored = match raw.secret_hash.as_deref() {
        None => None,
        Some(hex) => Some(
            SecretHash::from_hex(hex)
                .ok_or_else(|| invalid("secret_hash", "is not 64 hex digits (SHA-256)"))?,
        ),
    };
    match (raw.secret.as_deref(), stored) {
        (Some(""), _) => Err(invalid("secret", "is empty")),
        (Some(secret), Some(hash)) if hash_secret(secret) != hash => {
            Err(invalid("secret_hash", "does not match `secret`"))
        }
        (Some(secret), _) => Ok(hash_secret(secret)),
        (None, Some(hash)) => Ok(hash),
        (None, None) => Err(Error::MissingField {
            key: id.into(),
            field: "secret_hash",
        }),
    }
}

#[cfg(test)]
mod tests;
