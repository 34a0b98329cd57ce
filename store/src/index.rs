//! The index of a snapshot: where each key's record is in it, found by a hash of its id, so
//! that a writer finds the few keys a change touches by reading a few small parts of the index
//! and of the snapshot, not the whole snapshot.
//!
//! It is written beside the changes (`index`) by whoever writes or reads a large snapshot
//! whole, and names the version it indexes: an index of another version is not used. Its
//! layout: one line of JSON ([`Header`]); then `buckets + 1` cumulative counts (u32, little
//! endian), bucket `b` holding the entries whose hash begins with `b`; then one entry per key
//! ([`ENTRY`] bytes: the first 8 bytes of the SHA-256 of its id, big endian, then the
//! record's offset and length in the snapshot, little endian), sorted by hash.

use std::cell::Cell;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use heare_auth_core::{record_id, Document, KeyRecord};

use crate::backend::{Backend, Parts};
use crate::store::Base;
use crate::Error;

/// What the index says of itself and of the snapshot it indexes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Header {
    /// Always [`FORMAT`].
    format: String,
    /// The snapshot's version.
    version: String,
    /// The snapshot's length in bytes.
    len: u64,
    /// The first change the snapshot does not hold.
    next: u64,
    /// How many keys it holds.
    keys: u64,
    /// How many buckets the entries are in (a power of two).
    buckets: u64,
}

const FORMAT: &str = "heare-auth index 1";
/// The size of one entry.
const ENTRY: usize = 20;
/// Entries per bucket, on average at least half this.
const PER_BUCKET: usize = 8;
/// How much is read to find the header line.
const HEAD: usize = 4096;
/// The most of one bucket read: thousands of times what a bucket holds (a few entries), so
/// that an index claiming more is taken as unsound, not read.
const MAX_BUCKET: u64 = 64 * 1024;
/// The most of one record read: many times the largest record a keys file holds (its metadata
/// is at most 16 KiB).
const MAX_RECORD: u64 = 1024 * 1024;

/// The hash an entry is sorted and found by.
fn hash(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The bucket of `hash` among `buckets` (a power of two).
fn bucket(hash: u64, buckets: u64) -> u64 {
    match buckets.trailing_zeros() {
        0 => 0,
        bits => hash >> (64 - bits),
    }
}

/// The index of `text`, a snapshot of `version` holding the changes before `next`, read into
/// `file`; `None` when a key has no id the index can name (the file would not load either).
pub fn build(file: &Document<'_>, text: &[u8], version: &str, next: u64) -> Option<Vec<u8>> {
    let base = text.as_ptr() as usize;
    let mut entries = Vec::with_capacity(file.len());
    for record in file.texts() {
        let record = record?;
        let offset = (record.as_ptr() as usize).checked_sub(base)?;
        if offset + record.len() > text.len() {
            return None;
        }
        let len = u32::try_from(record.len()).ok()?;
        entries.push((hash(&record_id(record)?), offset as u64, len));
    }
    entries.sort_unstable();
    let buckets = (entries.len() / PER_BUCKET).max(1).next_power_of_two() as u64;
    let header = Header {
        format: FORMAT.into(),
        version: version.into(),
        len: text.len() as u64,
        next,
        keys: entries.len() as u64,
        buckets,
    };
    let mut out = serde_json::to_vec(&header).ok()?;
    out.push(b'\n');
    out.reserve((buckets as usize + 1) * 4 + entries.len() * ENTRY);
    let mut counted = 0usize;
    out.extend_from_slice(&0u32.to_le_bytes());
    for b in 0..buckets {
        while counted < entries.len() && bucket(entries[counted].0, buckets) == b {
            counted += 1;
        }
        out.extend_from_slice(&u32::try_from(counted).ok()?.to_le_bytes());
    }
    for (hash, offset, len) in entries {
        out.extend_from_slice(&hash.to_be_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    Some(out)
}

/// A snapshot read through its index: the keys a writer looks up, each read alone.
pub struct Indexed<'b> {
    index: Box<dyn Parts + 'b>,
    snapshot: Box<dyn Parts + 'b>,
    header: Header,
    /// Where the bucket counts begin.
    counts_at: u64,
    location: &'b str,
    /// Whether a read found the index or the snapshot other than the index says: whatever
    /// the update that reads it did is to be done again the long way.
    unsound: Cell<bool>,
}

impl<'b> Indexed<'b> {
    /// The index beside the keys object and the snapshot it indexes, when there is one and
    /// the keys object is still that snapshot.
    pub fn open(backend: &'b dyn Backend) -> Result<Option<Indexed<'b>>, Error> {
        let Some(index) = backend.index_parts()? else {
            return Ok(None);
        };
        let Some(head) = index.read_at(0, HEAD)? else {
            return Ok(None);
        };
        let Some(line) = head.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let header: Header = match serde_json::from_slice(&head[..line]) {
            Ok(header) => header,
            Err(_) => return Ok(None),
        };
        // Counts are 32-bit: an index claiming more is not one this version wrote.
        let bounded = header.buckets <= 1 << 32 && header.keys <= u64::from(u32::MAX);
        if header.format != FORMAT || !header.buckets.is_power_of_two() || !bounded {
            return Ok(None);
        }
        // As long as its header says: its last byte is there, and nothing after it.
        let counts_at = line as u64 + 1;
        let end = counts_at + 4 * (header.buckets + 1) + header.keys * ENTRY as u64;
        if index
            .read_at(end - 1, 2)?
            .is_none_or(|last| last.len() != 1)
        {
            return Ok(None);
        }
        let Some(snapshot) = backend.snapshot_parts(&header.version)? else {
            return Ok(None);
        };
        Ok(Some(Indexed {
            index,
            snapshot,
            header,
            counts_at,
            location: backend.location(),
            unsound: Cell::new(false),
        }))
    }

    /// Whether a read found the index unsound (see [`Indexed::unsound`]'s field).
    pub fn is_unsound(&self) -> bool {
        self.unsound.get()
    }

    fn fail(&self) -> Error {
        self.unsound.set(true);
        Error::unavailable(
            self.location,
            "the index of the keys file is not as it says",
        )
    }

    /// Exactly `len` bytes at `start` of `parts`, or the index is unsound: a part that cannot
    /// be read (an outage, a part cut short) sends the change the long way too, which reads
    /// the file whole, with its own retries, and says what failed if it fails.
    fn exactly(&self, parts: &dyn Parts, start: u64, len: usize) -> Result<Vec<u8>, Error> {
        match parts.read_at(start, len) {
            Ok(Some(bytes)) if bytes.len() == len => Ok(bytes),
            _ => Err(self.fail()),
        }
    }
}

impl Base for Indexed<'_> {
    fn next(&self) -> u64 {
        self.header.next
    }

    fn get(&self, id: &str) -> Result<Option<KeyRecord>, Error> {
        let wanted = hash(id);
        let b = bucket(wanted, self.header.buckets);
        let counts = self.exactly(&*self.index, self.counts_at + 4 * b, 8)?;
        let count =
            |i: usize| u32::from_le_bytes([counts[i], counts[i + 1], counts[i + 2], counts[i + 3]]);
        let (first, end) = (u64::from(count(0)), u64::from(count(4)));
        if first > end || end > self.header.keys {
            return Err(self.fail());
        }
        let entries_at = self.counts_at + 4 * (self.header.buckets + 1);
        // The bucket's entries, and the one either side of them: every entry of the bucket is
        // in it and no other, or the index is unsound.
        let (from, to) = (first.saturating_sub(1), (end + 1).min(self.header.keys));
        let len = (to - from) * ENTRY as u64;
        if len > MAX_BUCKET {
            return Err(self.fail());
        }
        let len = usize::try_from(len).map_err(|_| self.fail())?;
        let entries = self.exactly(&*self.index, entries_at + from * ENTRY as u64, len)?;
        let mut found = None;
        for (i, entry) in (from..).zip(entries.chunks_exact(ENTRY)) {
            let field = |at: usize, n: usize| {
                let mut bytes = [0; 8];
                bytes[..n].copy_from_slice(&entry[at..at + n]);
                bytes
            };
            let hash = u64::from_be_bytes(field(0, 8));
            let belongs = match i {
                i if i < first => Ordering::Less,
                i if i < end => Ordering::Equal,
                _ => Ordering::Greater,
            };
            if bucket(hash, self.header.buckets).cmp(&b) != belongs {
                return Err(self.fail());
            }
            if belongs != Ordering::Equal || hash != wanted {
                continue;
            }
            let (offset, len) = (
                u64::from_le_bytes(field(8, 8)),
                u64::from_le_bytes(field(16, 4)),
            );
            if len > MAX_RECORD || offset.saturating_add(len) > self.header.len {
                return Err(self.fail());
            }
            let text = self.exactly(&*self.snapshot, offset, len as usize)?;
            let text = std::str::from_utf8(&text).map_err(|_| self.fail())?;
            // Another id of the same hash; anything but a record means the index is wrong.
            match record_id(text) {
                Some(other) if other != id => continue,
                Some(_) => {}
                None => return Err(self.fail()),
            }
            if found.is_some() {
                return Err(Error::keys(
                    self.location,
                    heare_auth_core::Error::DuplicateId { id: id.into() },
                ));
            }
            // A record that does not read is reported as a whole read would report it.
            found = Some(serde_json::from_str(text).map_err(|_| self.fail())?);
        }
        Ok(found)
    }
}
