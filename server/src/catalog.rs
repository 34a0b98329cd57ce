//! The keys file as the management API reads it: each key's text, found by id or by position in
//! file order, read into a [`KeyRecord`] only when asked for; the keys changed since the file
//! was read are kept apart, after the others, so that a change costs what it changes. Kept
//! beside the served set only when the management API is on.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use serde_json::value::RawValue;

use heare_auth_core::{record_id, Document, Error, KeyRecord};

use crate::live::PACE_EVERY;

/// Every key of the keys file, as text: those read with the file, then those changed since.
#[derive(Debug, Default)]
pub struct Catalog {
    base: Arc<Listed>,
    /// Keys read with the file and written since, by position: each stays where it was.
    replaced: HashMap<usize, Box<RawValue>>,
    /// Positions of keys read with the file and deleted since.
    hidden: HashSet<usize>,
    /// Keys added since, in the order they were added, after the others.
    added: Vec<Box<RawValue>>,
    added_by_id: HashMap<Box<str>, usize>,
}

/// Every key of one version of the keys file, as text.
#[derive(Debug, Default)]
struct Listed {
    /// The file's plaintext.
    text: Vec<u8>,
    /// Where each key's text is in `text`, in file order.
    records: Vec<Range<usize>>,
    /// Each key's position in `records`, by id.
    by_id: HashMap<Box<str>, usize>,
}

impl Catalog {
    /// The catalog of a keys file's plaintext (one the verifier loaded: every key has an id, and
    /// no id is there twice); `pace` is called between pieces of the work.
    pub fn new(text: Vec<u8>, pace: &mut dyn FnMut()) -> Result<Catalog, Error> {
        let (records, by_id) = {
            let document = Document::parse(&text)?;
            let base = text.as_ptr() as usize;
            let mut records = Vec::with_capacity(document.len());
            let mut by_id = HashMap::with_capacity(document.len());
            for (i, record) in document.texts().enumerate() {
                if i % PACE_EVERY == 0 {
                    pace();
                }
                // Just parsed, so every key is as read.
                let record = record.unwrap_or_default();
                let start = record.as_ptr() as usize - base;
                if let Some(id) = record_id(record) {
                    by_id.insert(Box::from(&*id), records.len());
                }
                records.push(start..start + record.len());
            }
            (records, by_id)
        };
        let base = Listed {
            text,
            records,
            by_id,
        };
        Ok(Catalog {
            base: Arc::new(base),
            ..Catalog::default()
        })
    }

    /// This catalog with `written` (whole keys) in place of the keys of their ids (where they
    /// were), or added after the others, and the keys of the ids in `deleted` gone: the order
    /// a keys file with the same changes has. The keys read with the file are shared, not
    /// copied.
    pub fn with_changes(&self, written: &[&RawValue], deleted: &[&str]) -> Catalog {
        let mut next = Catalog {
            base: Arc::clone(&self.base),
            replaced: self.replaced.clone(),
            hidden: self.hidden.clone(),
            added: self.added.clone(),
            added_by_id: HashMap::new(),
        };
        for &id in deleted {
            match self.base.by_id.get(id) {
                Some(&i) => {
                    next.replaced.remove(&i);
                    next.hidden.insert(i);
                }
                None => next
                    .added
                    .retain(|t| record_id(t.get()).as_deref() != Some(id)),
            }
        }
        for &text in written {
            let Some(id) = record_id(text.get()) else {
                continue;
            };
            match self.base.by_id.get(&*id) {
                // A key deleted and then written again is added at the end, as in the file.
                Some(&i) if !next.hidden.contains(&i) => {
                    next.replaced.insert(i, text.to_owned());
                }
                _ => match (next.added.iter()).position(|t| record_id(t.get()) == Some(id.clone()))
                {
                    Some(j) => next.added[j] = text.to_owned(),
                    None => next.added.push(text.to_owned()),
                },
            }
        }
        next.added_by_id = (next.added.iter().enumerate())
            .filter_map(|(i, text)| Some((Box::from(&*record_id(text.get())?), i)))
            .collect();
        next
    }

    /// The size of the keys file it was read from, in bytes.
    pub fn file_len(&self) -> usize {
        self.base.text.len()
    }

    /// The number of positions: those of the keys read with the file (a key deleted since
    /// leaves its position empty), then those of the keys added since.
    pub fn len(&self) -> usize {
        self.base.records.len() + self.added.len()
    }

    /// The position of the key with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        if let Some(&i) = self.added_by_id.get(id) {
            return Some(self.base.records.len() + i);
        }
        let i = *self.base.by_id.get(id)?;
        (!self.hidden.contains(&i)).then_some(i)
    }

    /// The key at `position`; `None` past the end, and at the position of a key read with
    /// the file and deleted since.
    pub fn get(&self, position: usize) -> Option<KeyRecord> {
        let text = match position.checked_sub(self.base.records.len()) {
            Some(i) => self.added.get(i)?.get(),
            None if self.hidden.contains(&position) => return None,
            None => match self.replaced.get(&position) {
                Some(text) => text.get(),
                None => {
                    let range = self.base.records.get(position)?.clone();
                    std::str::from_utf8(&self.base.text[range]).ok()?
                }
            },
        };
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
        let catalog = Catalog::new(text.as_bytes().to_vec(), &mut || {}).unwrap();
        assert_eq!(catalog.len(), 2);
        assert_eq!(catalog.find("key_a").unwrap().name, "A");
        let b = catalog.find("key_b").unwrap();
        assert_eq!((b.name.as_str(), b.metadata.get()), ("B", r#"{"n": 1.50}"#));
        assert_eq!(catalog.position("key_b"), Some(1));
        assert_eq!(catalog.get(0).unwrap().id, "key_a");
        assert!(catalog.get(2).is_none() && catalog.find("key_c").is_none());
        let empty = Catalog::new(b"{\"keys\": []}".to_vec(), &mut || {}).unwrap();
        assert_eq!(empty.len(), 0);
    }

    #[test]
    fn a_key_changed_is_found_as_it_now_is_where_it_was() {
        let text = r#"{"keys": [{"id": "a", "secret": "sa"}, {"id": "b", "secret": "sb"},
            {"id": "c", "secret": "sc"}]}"#;
        let catalog = Catalog::new(text.as_bytes().to_vec(), &mut || {}).unwrap();
        let b2 = RawValue::from_string(r#"{"id":"b","secret":"x","name":"B2"}"#.into()).unwrap();
        let d = RawValue::from_string(r#"{"id":"d","secret":"sd"}"#.into()).unwrap();
        let changed = catalog.with_changes(&[&b2, &d], &["c"]);
        assert_eq!(changed.find("b").unwrap().name, "B2");
        assert_eq!(changed.position("b"), Some(1));
        assert!(changed.get(2).is_none() && changed.find("c").is_none());
        let ids: Vec<String> = (0..changed.len())
            .filter_map(|i| changed.get(i).map(|k| k.id))
            .collect();
        assert_eq!(ids, ["a", "b", "d"]);
        let again = changed.with_changes(&[], &["b"]);
        assert!(again.find("b").is_none() && again.find("d").is_some());
        assert_eq!(catalog.find("c").unwrap().id, "c");
    }
}
