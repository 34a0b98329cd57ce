//! The keys file as the management API reads it: each key's text, found by id or by position in
//! file order, read into a [`KeyRecord`] only when asked for. Kept beside the served set only
//! when the management API is on.

use std::collections::HashMap;
use std::ops::Range;

use heare_auth_core::{record_id, Document, Error, KeyRecord};

use crate::live::PACE_EVERY;

/// Every key of one version of the keys file, as text.
#[derive(Debug, Default)]
pub struct Catalog {
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
        Ok(Catalog {
            text,
            records,
            by_id,
        })
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The position of the key with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The key at `position` in file order.
    pub fn get(&self, position: usize) -> Option<KeyRecord> {
        let range = self.records.get(position)?.clone();
        let text = std::str::from_utf8(&self.text[range]).ok()?;
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
}
