//! The keys file as the management API reads it: each key's text, found by id or by position in
//! file order, read into a [`KeyRecord`] only when asked for. Kept beside the served set only
//! when the management API is on.

use std::borrow::Cow;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::thread;

use hashbrown::HashTable;
use heare_auth_core::{record_id, Document, Error, KeyRecord};

use crate::live::PACE_EVERY;
use crate::loader::lower_priority;
use crate::pace::Pacer;

/// Every key of one version of the keys file, as text.
#[derive(Debug)]
pub struct Catalog(Arc<Shared>);

/// The file, and where its keys are once they have been found.
#[derive(Debug)]
struct Shared {
    /// The file's plaintext.
    text: Vec<u8>,
    index: OnceLock<Index>,
}

/// Where each key of a file is.
#[derive(Debug, Default)]
struct Index {
    /// Where each key's text is in the file, in file order.
    records: Vec<Range<usize>>,
    /// Each key's position in `records`, hashed by its id: the id is read from the key's text
    /// to compare it, rather than kept a second time.
    by_id: HashTable<usize>,
}

/// Ids come from the operator's own file: a fixed-key hasher is fine.
fn id_hash(id: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

impl Index {
    /// Finds every key of the file `text` (one the verifier loaded: every key has an id, and no
    /// id is there twice), calling `pace` between pieces of the work.
    fn new(text: &[u8], pace: &mut dyn FnMut()) -> Result<Index, Error> {
        let document = Document::parse(text)?;
        let base = text.as_ptr() as usize;
        let mut records: Vec<Range<usize>> = Vec::with_capacity(document.len());
        let mut by_id = HashTable::with_capacity(document.len());
        for (i, record) in document.texts().enumerate() {
            if i % PACE_EVERY == 0 {
                pace();
            }
            // Just parsed, so every key is as read.
            let record = record.unwrap_or_default();
            let start = record.as_ptr() as usize - base;
            if let Some(id) = record_id(record) {
                // Never called: the table has room for every key.
                let rehash = |&p: &usize| id_hash(&id_at(text, &records[p]).unwrap_or_default());
                by_id.insert_unique(id_hash(&id), records.len(), rehash);
            }
            records.push(start..start + record.len());
        }
        Ok(Index { records, by_id })
    }
}

/// The id of the key whose text is `range` of `text`.
fn id_at<'t>(text: &'t [u8], range: &Range<usize>) -> Option<Cow<'t, str>> {
    record_id(std::str::from_utf8(text.get(range.clone())?).ok()?)
}

impl Shared {
    /// The index, found now (calling `pace` between pieces of the work) unless it was already;
    /// while another thread finds it, this one waits.
    fn index(&self, pace: &mut dyn FnMut()) -> &Index {
        self.index.get_or_init(|| {
            Index::new(&self.text, pace).unwrap_or_else(|e| {
                // Not for a file the verifier loaded: every such file parses.
                log::error!(error:% = e; "catalog_unreadable");
                Index::default()
            })
        })
    }
}

impl Catalog {
    /// The catalog of a keys file's plaintext (one the verifier loaded: every key has an id, and
    /// no id is there twice); `pace` is called between pieces of the work.
    pub fn new(text: Vec<u8>, pace: &mut dyn FnMut()) -> Result<Catalog, Error> {
        let index = Index::new(&text, pace)?;
        Ok(Catalog(Arc::new(Shared {
            text,
            index: OnceLock::from(index),
        })))
    }

    /// [`Catalog::new`] without waiting: the keys are found on a thread of its own, paced and at
    /// the loader's priority, so that start-up serves `/verify` first; a read that comes before
    /// they are found waits for them.
    pub fn in_background(text: Vec<u8>) -> Catalog {
        let catalog = Catalog(Arc::new(Shared {
            text,
            index: OnceLock::new(),
        }));
        let shared = catalog.0.clone();
        let started = thread::Builder::new()
            .name("keys-catalog".into())
            .spawn(move || {
                lower_priority();
                let mut pacer = Pacer::new();
                shared.index(&mut || pacer.tick());
            });
        if let Err(e) = started {
            // The first read finds them instead.
            log::warn!(error:% = e; "catalog_thread_not_started");
        }
        catalog
    }

    fn index(&self) -> &Index {
        self.0.index(&mut || {})
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.index().records.len()
    }

    /// The position of the key with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        let index = self.index();
        let text = &self.0.text;
        let same = |&p: &usize| id_at(text, &index.records[p]).as_deref() == Some(id);
        index.by_id.find(id_hash(id), same).copied()
    }

    /// The key at `position` in file order.
    pub fn get(&self, position: usize) -> Option<KeyRecord> {
        let range = self.index().records.get(position)?.clone();
        let text = std::str::from_utf8(&self.0.text[range]).ok()?;
        serde_json::from_str(text).ok()
    }

    /// The key with this id.
    pub fn find(&self, id: &str) -> Option<KeyRecord> {
        self.get(self.position(id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_key_by_id_and_by_position() {
        let text = r#"{"keys": [
            {"id": "key_a", "secret": "sec_a", "name": "A"},
            {"id": "key_\u0062", "secret": "sec_b", "name": "B", "metadata": {"n": 1.50}}
        ]}"#;
        let now = Catalog::new(text.as_bytes().to_vec(), &mut || {}).unwrap();
        let later = Catalog::in_background(text.as_bytes().to_vec());
        for catalog in [now, later] {
            finds_each_key(&catalog);
        }
        let empty = Catalog::new(b"{\"keys\": []}".to_vec(), &mut || {}).unwrap();
        assert_eq!(empty.len(), 0);
        assert_eq!(Catalog::in_background(b"{\"keys\": []}".to_vec()).len(), 0);
    }

    fn finds_each_key(catalog: &Catalog) {
        assert_eq!(catalog.len(), 2);
        assert_eq!(catalog.find("key_a").unwrap().name, "A");
        let b = catalog.find("key_b").unwrap();
        assert_eq!((b.name.as_str(), b.metadata.get()), ("B", r#"{"n": 1.50}"#));
        assert_eq!(catalog.position("key_b"), Some(1));
        assert_eq!(catalog.get(0).unwrap().id, "key_a");
        assert!(catalog.get(2).is_none() && catalog.find("key_c").is_none());
        assert!(catalog.position("").is_none() && catalog.position("key_").is_none());
    }

    #[test]
    fn many_keys_are_each_found_by_id() {
        let records: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"id": "key_{i}", "secret": "s{i}", "name": "n{i}"}}"#))
            .collect();
        let text = format!(r#"{{"keys": [{}]}}"#, records.join(",")).into_bytes();
        let catalog = Catalog::in_background(text);
        for i in (0..1000).rev() {
            assert_eq!(catalog.position(&format!("key_{i}")), Some(i));
        }
        assert_eq!(catalog.find("key_7").unwrap().name, "n7");
        assert_eq!(catalog.position("key_1000"), None);
    }
}
