//! The streaming loader: each record of the `keys` array is validated and folded into the set
//! as soon as it is parsed, its strings appended to one text arena, so a million keys cost one
//! allocation per table rather than several per key.

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use serde::de;

use super::key::{stored_expiry, Key, Span, Stored, NO_CREDITS, NO_PREVIOUS};
use super::raw::RecordFields;
use super::validate::{
    credits_of, expiry_of, id_of, limit_of, metadata_of, previous_of, scopes_of, secret_hash_of,
};
use super::{id_hash, table_hash, Packed, Previous, ALIAS};
use crate::compact::push_compact_json;
use crate::walk::Walker;
use crate::{Error, Warning};

// WebAssembly runs one thread: the split read is for the server and the CLI.
#[cfg(not(target_arch = "wasm32"))]
mod split;

/// The set being built, and the first validation error (serde only carries strings).
pub(super) struct Builder {
    pub(super) set: Packed,
    pub(super) warnings: Vec<Warning>,
    pub(super) error: Option<Error>,
}

impl Builder {
    fn push_str(&mut self, s: &str) -> Result<Span, Error> {
        let start = self.set.text.len();
        self.set.text.push_str(s);
        span(start, self.set.text.len())
    }

    /// Validates the `index`th record and adds it to the set.
    pub(super) fn add(&mut self, index: usize, raw: RecordFields) -> Result<(), Error> {
        let id = id_of(index, &raw)?;
        let hash = secret_hash_of(id, &raw)?;
        let expires_at = stored_expiry(expiry_of(id, &raw, &mut self.warnings));
        let scopes = scopes_of(id, &raw)?;
        let limit = limit_of(id, &raw)?;
        let credits = match credits_of(id, &raw)? {
            None => NO_CREDITS,
            Some(credits) => {
                self.set.credits.push(credits);
                u32::try_from(self.set.credits.len() - 1).unwrap_or(NO_CREDITS)
            }
        };
        let previous = previous_of(id, &raw, &mut self.warnings)?;
        let metadata = metadata_of(id, &raw)?;
        let previous_until = match previous {
            Some((previous_hash, until)) => {
                let key = u32::try_from(self.set.entries.len()).unwrap_or(u32::MAX);
                self.set.previous.push(Previous {
                    hash: previous_hash,
                    key,
                });
                stored_expiry(until)
            }
            None => NO_PREVIOUS,
        };
        let scopes = {
            let start = self.set.text.len();
            for (i, scope) in scopes.iter().enumerate() {
                if i > 0 {
                    self.set.text.push(',');
                }
                self.set.text.push_str(scope);
            }
            span(start, self.set.text.len())?
        };
        let id = self.push_str(id)?;
        let name = self.push_str(raw.name.as_deref().unwrap_or_default())?;
        let metadata = match metadata {
            None => self.push_str("{}")?,
            Some(json) => {
                let start = self.set.text.len();
                push_compact_json(&mut self.set.text, json);
                span(start, self.set.text.len())?
            }
        };
        self.set.entries.push(Stored {
            hash,
            id,
            name,
            metadata,
            scopes,
            expires_at,
            previous_until,
            limit,
            credits,
            disabled: raw.disabled.unwrap_or(false),
        });
        Ok(())
    }

    /// Indexes the parsed keys, rejecting duplicate ids and secrets (previous secrets
    /// included). Done once the count is known, so neither table is ever resized.
    pub(super) fn finish(self, pace: &mut dyn FnMut()) -> Result<(Packed, Vec<Warning>), Error> {
        let Builder {
            mut set, warnings, ..
        } = self;
        // A load on two threads indexes as it joins its halves, when it finds no duplicate.
        if !is_indexed(&set) {
            index(&mut set, pace, |_, e| Err(e))?;
        }
        Ok((set, warnings))
    }
}

/// Whether every key and previous secret of `set` is in its index already.
fn is_indexed(set: &Packed) -> bool {
    !set.by_hash.is_empty() && set.by_hash.len() == set.entries.len() + set.previous.len()
}

/// Keys indexed between two calls of a loader's `pace`.
const PACE_EVERY: u32 = 64;

/// Indexes `set` by secret hash, passing each duplicate id and each duplicate secret (previous
/// secrets included) to `duplicate`, with the position in `entries` of the later key: returning
/// an error stops, returning `Ok` goes on with the duplicate left out of the index. `pace` is
/// called every [`PACE_EVERY`] keys.
pub(super) fn index<E>(
    set: &mut Packed,
    pace: &mut dyn FnMut(),
    mut duplicate: impl FnMut(u32, Error) -> Result<(), E>,
) -> Result<(), E> {
    shrink(set);
    set.ids = check_ids(set, pace, &mut duplicate)?;
    set.by_hash = by_hash(set, pace, &mut duplicate)?;
    Ok(())
}

/// Gives the memory reserved for growth back before the set is indexed and kept.
fn shrink(set: &mut Packed) {
    set.text.shrink_to_fit();
    set.entries.shrink_to_fit();
    set.previous.shrink_to_fit();
}

/// Passes each id that an earlier key of `set` has too to `duplicate`, as [`index`] does.
fn check_ids<E>(
    set: &Packed,
    pace: &mut dyn FnMut(),
    mut duplicate: impl FnMut(u32, Error) -> Result<(), E>,
) -> Result<HashTable<u32>, E> {
    let mut ids: HashTable<u32> = HashTable::with_capacity(set.entries.len());
    let (text, entries, credits) = (&set.text, &set.entries, &set.credits);
    let key = |i: u32| Key {
        text,
        entry: &entries[i as usize],
        credits,
    };
    for slot in 0..u32::try_from(entries.len()).unwrap_or(u32::MAX) {
        if slot.is_multiple_of(PACE_EVERY) {
            pace();
        }
        let id = key(slot).id();
        // One probe of the table for the look-up and the insertion both.
        match ids.entry(
            id_hash(id),
            |&i| key(i).id() == id,
            |&i| id_hash(key(i).id()),
        ) {
            Entry::Occupied(_) => duplicate(slot, Error::DuplicateId { id: id.into() })?,
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
        }
    }
    Ok(ids)
}

/// The index of `set` by secret hash, passing each secret an earlier key has too to
/// `duplicate`, as [`index`] does.
fn by_hash<E>(
    set: &Packed,
    pace: &mut dyn FnMut(),
    mut duplicate: impl FnMut(u32, Error) -> Result<(), E>,
) -> Result<HashTable<u32>, E> {
    let mut by_hash: HashTable<u32> =
        HashTable::with_capacity(set.entries.len() + set.previous.len());
    let slots =
        (0..set.entries.len() as u32).chain((0..set.previous.len() as u32).map(|p| p | ALIAS));
    for slot in slots {
        if slot.is_multiple_of(PACE_EVERY) {
            pace();
        }
        let hash = set.hash_at(slot);
        let same = |&s: &u32| set.hash_at(s) == hash;
        match by_hash.entry(table_hash(hash), same, |&s| table_hash(set.hash_at(s))) {
            Entry::Occupied(first) => {
                let later = set.key_of(slot);
                duplicate(
                    later,
                    Error::DuplicateSecret {
                        first: set.key(set.key_of(*first.get())).id().into(),
                        second: set.key(later).id().into(),
                    },
                )?;
            }
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
            }
        }
    }
    Ok(by_hash)
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

/// Reads the records of the keys file `text` into `builder`: on two threads when `split` and the
/// file is large (see [`split::load`]), else one by one as they are parsed, calling `pace`
/// before each.
pub(super) fn walk(
    text: &str,
    builder: &mut Builder,
    pace: &mut dyn FnMut(),
    split: bool,
) -> Result<(), serde_json::Error> {
    #[cfg(not(target_arch = "wasm32"))]
    if split && split::two_cores() && split::load(text, builder, split::MIN_SPLIT) {
        return Ok(());
    }
    #[cfg(target_arch = "wasm32")]
    let _ = split;
    crate::walk::walk(text, &mut Loading { builder, pace })
}

/// The loader's walk of a keys file: each record of `keys` is validated and indexed as soon as
/// it is parsed, and `pace` is called before each.
struct Loading<'b, 'p> {
    builder: &'b mut Builder,
    pace: &'p mut dyn FnMut(),
}

impl<'de> Walker<'de> for Loading<'_, '_> {
    type Record = RecordFields<'de>;

    fn before_record(&mut self) {
        (self.pace)();
    }

    fn record<E: de::Error>(&mut self, index: usize, raw: RecordFields<'de>) -> Result<(), E> {
        self.builder.add(index, raw).map_err(|e| {
            self.builder.error = Some(e);
            de::Error::custom("invalid key")
        })
    }
}
