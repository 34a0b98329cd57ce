//! One change of the keys file, as stored beside it: the keys it writes whole and the ids it
//! deletes, or the note that a new snapshot folds every change before it; numbered, and
//! applied in order onto the snapshot that the file's `next_change` field says it follows.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use std::collections::HashMap;

use heare_auth_core::{record_id, Document, Error as KeysError, KeyRecord, NEXT_CHANGE};

/// One stored change.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    /// Its place in the order of changes.
    pub seq: u64,
    /// When it was written, by its writer's clock (Unix ms): a change folded into a snapshot
    /// is removed only once it is old.
    #[serde(default)]
    pub at: u64,
    /// Keys written whole (added, or in place of the key of the same id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Box<RawValue>>,
    /// Ids of keys deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// The version of a snapshot that holds every change before this one: the keys file was
    /// folded, not changed, and a reader holding those changes need not read it again...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// ... if it read the snapshot this one replaced, of this version (`None`: there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

impl Change {
    /// The change that a file read and then edited into `after` made: the keys `after`
    /// touched, as they are in it, or deleted; written at `at`.
    pub fn between(seq: u64, at: u64, after: &Document) -> Result<Change, KeysError> {
        let mut change = Change {
            seq,
            at,
            keys: Vec::new(),
            deleted: Vec::new(),
            snapshot: None,
            replaced: None,
        };
        for id in after.touched() {
            match after.get(id) {
                Some(record) => change.keys.push(raw(&record?)?),
                None => change.deleted.push(id.clone()),
            }
        }
        Ok(change)
    }

    /// The note that the snapshot at `version`, which replaced the one at `replaced`, holds
    /// every change before `seq`; written at `at`.
    pub fn compacted(seq: u64, at: u64, version: String, replaced: Option<String>) -> Change {
        Change {
            seq,
            at,
            keys: Vec::new(),
            deleted: Vec::new(),
            snapshot: Some(version),
            replaced,
        }
    }

    /// Learns from a fold's note which snapshots hold nothing a reader lacks: one that replaced
    /// the snapshot it read (`current`), or one `known` already.
    pub fn learn(&self, current: Option<&str>, known: &mut std::collections::HashSet<String>) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        let from_here = self.replaced.as_deref() == current
            || self.replaced.as_ref().is_some_and(|r| known.contains(r));
        if from_here {
            known.insert(snapshot.clone());
        }
    }

    /// Whether it only notes a fold, changing no key.
    pub fn is_note(&self) -> bool {
        self.keys.is_empty() && self.deleted.is_empty()
    }

    /// Its stored text.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored change.
    pub fn parse(bytes: &[u8]) -> Result<Change, KeysError> {
        serde_json::from_slice(bytes).map_err(KeysError::from)
    }

    /// The keys it writes, borrowed.
    pub fn written(&self) -> Vec<&RawValue> {
        self.keys.iter().map(|k| &**k).collect()
    }

    /// Applies it to `file`: each key written in place of the one of its id (or added at the
    /// end), each id deleted removed (an id no key has is no change).
    pub fn apply_to(&self, file: &mut Document) -> Result<(), KeysError> {
        for id in &self.deleted {
            if let Some(removed) = file.remove(id) {
                removed?;
            }
        }
        for text in &self.keys {
            let record: KeyRecord = serde_json::from_str(text.get())?;
            if !file.replace(record.clone()) {
                file.push(record);
            }
        }
        Ok(())
    }
}

/// The net effect of changes in order: each key's last state, written or deleted.
pub struct Net<'c> {
    /// Ids in the order of their first change.
    order: Vec<String>,
    last: HashMap<String, Option<&'c RawValue>>,
}

impl<'c> Net<'c> {
    /// The net effect of `changes`, in order.
    pub fn of(changes: &'c [Change]) -> Net<'c> {
        let mut net = Net {
            order: Vec::new(),
            last: HashMap::new(),
        };
        for change in changes {
            for id in &change.deleted {
                net.set(id, None);
            }
            for text in &change.keys {
                if let Some(id) = record_id(text.get()) {
                    net.set(&id, Some(text));
                }
            }
        }
        net
    }

    fn set(&mut self, id: &str, state: Option<&'c RawValue>) {
        if self.last.insert(id.to_string(), state).is_none() {
            self.order.push(id.to_string());
        }
    }

    /// The keys written, as they now are.
    pub fn written(&self) -> Vec<&'c RawValue> {
        self.order.iter().filter_map(|id| self.last[id]).collect()
    }

    /// The ids of the keys deleted.
    pub fn deleted(&self) -> Vec<&str> {
        (self.order.iter())
            .filter(|id| self.last[*id].is_none())
            .map(String::as_str)
            .collect()
    }

    /// Every id changed, in the order of its first change.
    pub fn ids(&self) -> Vec<&str> {
        self.order.iter().map(String::as_str).collect()
    }
}

impl Net<'_> {
    /// The state of key `id` after the changes, when one of them touches it: `Some(None)` when
    /// the last one deleted it.
    pub fn get(&self, id: &str) -> Option<Result<Option<KeyRecord>, KeysError>> {
        let text = self.last.get(id)?;
        Some(text.map_or(Ok(None), |t| {
            serde_json::from_str(t.get()).map(Some).map_err(Into::into)
        }))
    }
}

/// A key record as compact JSON.
fn raw(record: &KeyRecord) -> Result<Box<RawValue>, KeysError> {
    let text = serde_json::to_string(record)?;
    RawValue::from_string(text).map_err(KeysError::from)
}

/// The first change a keys file does not hold: its `next_change` field, read from the start of
/// the text where writers here put it, else from anywhere in the file; 0 without one.
pub fn next_change(plain: &[u8]) -> Result<u64, KeysError> {
    if let Some(n) = leading_next_change(plain) {
        return Ok(n);
    }
    let needle = format!("\"{NEXT_CHANGE}\"");
    if memchr::memmem::find(plain, needle.as_bytes()).is_none() {
        return Ok(0);
    }
    let file = Document::parse(plain)?;
    Ok(file
        .field(NEXT_CHANGE)
        .and_then(|v| v.get().parse().ok())
        .unwrap_or(0))
}

/// `{"next_change": N, ...` at the start of the text, with any whitespace between.
fn leading_next_change(plain: &[u8]) -> Option<u64> {
    let head = &plain[..plain.len().min(128)];
    let text = std::str::from_utf8(head).ok().or_else(|| {
        let valid = std::str::from_utf8(head).err()?.valid_up_to();
        std::str::from_utf8(&head[..valid]).ok()
    })?;
    let rest = text.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix(&format!("\"{NEXT_CHANGE}\""))?
        .trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits: &str = &rest[..rest.find(|c: char| !c.is_ascii_digit())?];
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_where_a_file_says_its_changes_begin() {
        assert_eq!(
            next_change(b"{\n  \"next_change\": 42,\n  \"keys\": []}").unwrap(),
            42
        );
        assert_eq!(
            next_change(br#"{"keys": [], "next_change": 7}"#).unwrap(),
            7
        );
        assert_eq!(next_change(br#"{"keys": []}"#).unwrap(), 0);
        assert!(next_change(br#"{"keys": [}"#).is_ok());
    }

    #[test]
    fn a_change_round_trips_and_applies() {
        let text = br#"{"keys": [{"id": "a", "secret": "sa"}, {"id": "b", "secret": "sb"}]}"#;
        let mut file = Document::parse(text).unwrap();
        file.remove("a").unwrap().unwrap();
        let mut c = file.get("b").unwrap().unwrap();
        c.id = "c".into();
        c.secret = Some("sc".into());
        file.push(c);
        let change = Change::between(3, 0, &file).unwrap();
        assert_eq!(change.deleted, ["a"]);
        assert_eq!(change.keys.len(), 1);
        let read = Change::parse(&change.to_json()).unwrap();
        assert_eq!(read.seq, 3);
        let mut again = Document::parse(text).unwrap();
        read.apply_to(&mut again).unwrap();
        assert_eq!(again.to_json().unwrap(), file.to_json().unwrap());
    }
}
