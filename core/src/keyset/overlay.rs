//! The keys changed since a set was loaded: written keys packed on their own, and the loaded
//! keys they replace or that were deleted marked hidden, so that a change costs what it
//! changes, not what the set holds.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::{KeySet, Packed, ALIAS};
use crate::{record_id, Error, SecretHash, Warning};

/// What changed since the loaded keys: see [`KeySet::with_changes`].
pub(super) struct Overlay {
    /// The keys written since, as they now are, indexed like a loaded set.
    pub(super) keys: Packed,
    /// The text of each of `keys`, in the same order, to build the next overlay from.
    records: Vec<Box<RawValue>>,
    /// One bit per loaded key: set when it was written or deleted since.
    hidden_bits: Vec<u64>,
    /// How many bits of `hidden_bits` are set.
    pub(super) hidden: usize,
    /// How many keys were deleted since (and not written again).
    pub(super) deleted: usize,
}

impl Overlay {
    /// Whether the loaded key at position `i` was written or deleted since.
    pub(super) fn hides(&self, i: u32) -> bool {
        let (word, bit) = ((i / 64) as usize, i % 64);
        self.hidden_bits
            .get(word)
            .is_some_and(|w| w & (1 << bit) != 0)
    }

    /// The number of keys it holds or deletes.
    pub(super) fn len(&self) -> usize {
        self.records.len() + self.deleted
    }
}

impl KeySet {
    /// This set with `written` (whole key records, as JSON objects) in place of the keys of the
    /// same ids, or added, and the keys of the ids in `deleted` gone (an id no key has is no
    /// change). The keys loaded are shared with this set, not copied: the cost grows with the
    /// keys changed since the set was loaded, not with the set. Fails, leaving this set as it
    /// is, when a written key is invalid or its secret (or previous secret) is another key's,
    /// by the rules of [`KeySet::from_json`]; the warnings are those of the keys written.
    pub fn with_changes(
        &self,
        written: &[&RawValue],
        deleted: &[&str],
    ) -> Result<(KeySet, Vec<Warning>), Error> {
        let base = &self.base;
        let (mut records, mut hidden_bits, mut hidden, mut deleted_count) = match &self.top {
            Some(top) => (
                top.records.clone(),
                top.hidden_bits.clone(),
                top.hidden,
                top.deleted,
            ),
            None => (Vec::new(), vec![0; base.entries.len().div_ceil(64)], 0, 0),
        };
        let mut hide = |i: u32, hidden_bits: &mut Vec<u64>| {
            let (word, bit) = ((i / 64) as usize, i % 64);
            if hidden_bits[word] & (1 << bit) == 0 {
                hidden_bits[word] |= 1 << bit;
                hidden += 1;
            }
        };
        for &id in deleted {
            let before = records.len();
            records.retain(|r| record_id(r.get()).as_deref() != Some(id));
            let was_loaded = base.position(id);
            if let Some(i) = was_loaded {
                hide(i, &mut hidden_bits);
            }
            if records.len() < before || was_loaded.is_some() {
                deleted_count += 1;
            }
        }
        for &text in written {
            let id = record_id(text.get()).ok_or_else(|| Error::Json {
                line: 1,
                column: 1,
                message: "a changed key has no id".into(),
            })?;
            records.retain(|r| record_id(r.get()).as_deref() != Some(&*id));
            if let Some(i) = base.position(&id) {
                hide(i, &mut hidden_bits);
            }
            records.push(text.to_owned());
        }
        let mut json = String::from("{\"keys\": [");
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(record.get());
        }
        json.push_str("]}");
        let (keys, warnings) = Packed::load(json.as_bytes(), &mut || {}, false)?;
        let top = Overlay {
            keys,
            records,
            hidden_bits,
            hidden,
            deleted: deleted_count,
        };
        // A written key's secret must be no other key's: none still loaded, none written.
        let slots = (0..top.keys.entries.len() as u32)
            .chain((0..top.keys.previous.len() as u32).map(|p| p | ALIAS));
        for slot in slots {
            let hash: &SecretHash = top.keys.hash_at(slot);
            let Some(i) = base.holder(hash) else { continue };
            if !top.hides(i) {
                return Err(Error::DuplicateSecret {
                    first: base.key(i).id().into(),
                    second: top.keys.key(top.keys.key_of(slot)).id().into(),
                });
            }
        }
        let set = KeySet {
            base: Arc::clone(base),
            top: Some(Arc::new(top)),
        };
        Ok((set, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, UnixMillis};

    const NOW: UnixMillis = 1_795_569_434_316;

    fn set(json: &str) -> KeySet {
        KeySet::from_json(json.as_bytes()).unwrap().0
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn id_of(set: &KeySet, secret: &str) -> Option<String> {
        match set.verify(secret, NOW, &[] as &[&str]) {
            Outcome::Valid(key) | Outcome::Disabled(key) => Some(key.id().to_string()),
            _ => None,
        }
    }

    fn ids(set: &KeySet) -> Vec<String> {
        set.keys().map(|k| k.id().to_string()).collect()
    }

    const FILE: &str = r#"{"keys": [
        {"id": "a", "secret": "sa"}, {"id": "b", "secret": "sb"}, {"id": "c", "secret": "sc"}
    ]}"#;

    #[test]
    fn a_written_key_replaces_the_loaded_one_and_a_deleted_one_is_gone() {
        let loaded = set(FILE);
        let b2 = raw(r#"{"id": "b", "secret": "sb2", "name": "new"}"#);
        let d = raw(r#"{"id": "d", "secret": "sd"}"#);
        let (changed, warnings) = loaded.with_changes(&[&b2, &d], &["c"]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            id_of(&changed, "sb"),
            None,
            "the old secret of a rewritten key"
        );
        assert_eq!(id_of(&changed, "sb2").as_deref(), Some("b"));
        assert_eq!(id_of(&changed, "sd").as_deref(), Some("d"));
        assert_eq!(id_of(&changed, "sc"), None, "a deleted key");
        assert_eq!(id_of(&changed, "sa").as_deref(), Some("a"));
        assert_eq!(ids(&changed), ["a", "b", "d"]);
        assert_eq!(changed.len(), 3);
        assert_eq!(changed.changed_len(), 3);
        // The set it came from is unchanged.
        assert_eq!(id_of(&loaded, "sc").as_deref(), Some("c"));
        assert_eq!(loaded.len(), 3);
    }

    #[test]
    fn changes_build_on_changes() {
        let (once, _) = set(FILE)
            .with_changes(&[&raw(r#"{"id": "d", "secret": "sd"}"#)], &[])
            .unwrap();
        let disabled = raw(r#"{"id": "d", "secret": "sd", "disabled": true}"#);
        let (twice, _) = once.with_changes(&[&disabled], &["a"]).unwrap();
        assert!(matches!(
            twice.verify("sd", NOW, &[] as &[&str]),
            Outcome::Disabled(_)
        ));
        assert_eq!(id_of(&twice, "sa"), None);
        assert_eq!(ids(&twice), ["b", "c", "d"]);
        let (thrice, _) = twice.with_changes(&[], &["d", "nobody"]).unwrap();
        assert_eq!(ids(&thrice), ["b", "c"]);
        assert_eq!(thrice.len(), 2);
    }

    #[test]
    fn a_secret_another_key_holds_is_refused() {
        let loaded = set(FILE);
        let taken = raw(r#"{"id": "d", "secret": "sa"}"#);
        assert_eq!(
            loaded.with_changes(&[&taken], &[]).unwrap_err(),
            Error::DuplicateSecret {
                first: "a".into(),
                second: "d".into()
            }
        );
        // Free again once its holder is deleted, or given another secret.
        assert!(loaded.with_changes(&[&taken], &["a"]).is_ok());
        let moved = raw(r#"{"id": "a", "secret": "sa2"}"#);
        let (changed, _) = loaded.with_changes(&[&moved, &taken], &[]).unwrap();
        assert_eq!(id_of(&changed, "sa").as_deref(), Some("d"));
        let invalid = raw(r#"{"id": "e"}"#);
        assert!(loaded.with_changes(&[&invalid], &[]).is_err());
    }
}
