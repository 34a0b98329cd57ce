//! The verifier's index: keys by SHA-256 of their secret, built once per load, read lock-free.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::compact::compact_json;
use crate::{hash_secret, parse_timestamp, Error, Outcome, SecretHash, UnixMillis, Warning};

/// One verifiable key, holding only what `/verify` returns and needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    id: Box<str>,
    name: Box<str>,
    /// Compact JSON text of the metadata (`{}` when absent or null).
    metadata: Box<str>,
    expiry: Expiry,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    Never,
    At(UnixMillis),
    /// `expires_at` could not be parsed: fail closed.
    Unparseable,
}

impl Key {
    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key's metadata as compact JSON text.
    pub fn metadata_json(&self) -> &str {
        &self.metadata
    }
    /// Whether the key has expired at `now`. A key is valid up to and including `expires_at`.
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        match self.expiry {
            Expiry::Never => false,
            Expiry::At(t) => now > t,
            Expiry::Unparseable => true,
        }
    }
}

/// All keys of a file, indexed by secret hash. Immutable once built.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    by_hash: HashMap<SecretHash, u32, BuildHasherDefault<PrefixHasher>>,
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

#[derive(Deserialize)]
struct RawFile<'a> {
    #[serde(borrow)]
    keys: Vec<RawKey<'a>>,
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
        let file: RawFile = serde_json::from_slice(bytes)?;
        let count = file.keys.len();
        let mut set = KeySet {
            keys: Vec::with_capacity(count),
            by_hash: HashMap::with_capacity_and_hasher(count, Default::default()),
        };
        let mut ids: HashSet<&str> = HashSet::with_capacity(count);
        let mut warnings = Vec::new();
        for (index, raw) in file.keys.iter().enumerate() {
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
            if !ids.insert(id) {
                return Err(Error::DuplicateId { id: id.into() });
            }
            let hash = secret_hash_of(id, raw)?;
            let expiry = match raw.expires_at.as_deref() {
                None => Expiry::Never,
                Some(s) => match parse_timestamp(s) {
                    Ok(t) => Expiry::At(t),
                    Err(_) => {
                        warnings.push(Warning::UnparseableExpiry {
                            id: id.into(),
                            value: s.into(),
                        });
                        Expiry::Unparseable
                    }
                },
            };
            let slot = set.keys.len() as u32;
            match set.by_hash.entry(hash) {
                Entry::Occupied(e) => {
                    return Err(Error::DuplicateSecret {
                        first: set.keys[*e.get() as usize].id.to_string(),
                        second: id.into(),
                    })
                }
                Entry::Vacant(e) => e.insert(slot),
            };
            let metadata = match raw.metadata.map(RawValue::get) {
                None | Some("null") => "{}".into(),
                Some(text) => compact_json(text).into_boxed_str(),
            };
            set.keys.push(Key {
                id: id.into(),
                name: raw.name.as_deref().unwrap_or_default().into(),
                metadata,
                expiry,
            });
        }
        Ok((set, warnings))
    }

    /// Verifies a presented secret at `now`: one SHA-256 and one hash-map lookup.
    pub fn verify(&self, secret: &str, now: UnixMillis) -> Outcome<'_> {
        if secret.is_empty() {
            return Outcome::NotFound;
        }
        match self.by_hash.get(&hash_secret(secret)) {
            None => Outcome::NotFound,
            Some(&i) => {
                let key = &self.keys[i as usize];
                if key.is_expired(now) {
                    Outcome::Expired(key)
                } else {
                    Outcome::Valid(key)
                }
            }
        }
    }

    /// Number of keys loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// Every key with the hash of its secret (in no particular order), to compare two sets.
    pub fn entries(&self) -> impl Iterator<Item = (&SecretHash, &Key)> {
        self.by_hash
            .iter()
            .map(|(h, &i)| (h, &self.keys[i as usize]))
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

/// SHA-256 output is already uniformly distributed, so its first 8 bytes are a good hash.
/// Callers cannot steer it: they choose secrets, not hashes.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes (no length prefix); fold whatever arrives.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

#[cfg(test)]
mod tests;
