//! What a reload changed: the ids added, removed and changed, logged as `keys_changed` (never
//! a secret or a hash).

use std::collections::{HashMap, HashSet};

use heare_auth_core::{Key, KeySet};

use crate::live::PACE_EVERY;

/// Logs `keys_changed` with the ids added, removed and changed (never secrets or hashes).
pub fn log_changes(old: &KeySet, new: &KeySet, pace: &mut dyn FnMut()) {
    let diff = diff(old, new, pace);
    if diff.iter().all(Vec::is_empty) {
        return;
    }
    let [added, removed, changed] = diff.map(|ids| ids.join(","));
    log::info!(
        added = added.as_str(), removed = removed.as_str(), changed = changed.as_str(),
        keys_loaded = new.len();
        "keys_changed"
    );
}

/// Ids added, removed and changed (secret, name, metadata or expiry) from `old` to `new`,
/// each sorted. A file rewritten with the same keys in the same order (the usual reload) costs
/// one pass and no hashing.
fn diff(old: &KeySet, new: &KeySet, pace: &mut dyn FnMut()) -> [Vec<String>; 3] {
    let mut alike = old.keys().zip(new.keys()).enumerate().map(|(i, (a, b))| {
        if i.is_multiple_of(PACE_EVERY) {
            pace();
        }
        a == b
    });
    if old.len() == new.len() && alike.all(|same| same) {
        return [vec![], vec![], vec![]];
    }
    let mut paced = |i: usize| {
        if i.is_multiple_of(PACE_EVERY) {
            pace();
        }
    };
    let mut before: HashMap<&str, Key> = HashMap::with_capacity(old.len());
    for (i, key) in old.keys().enumerate() {
        paced(i);
        before.insert(key.id(), key);
    }
    let (mut added, mut changed, mut kept) = (Vec::new(), Vec::new(), 0);
    for (i, key) in new.keys().enumerate() {
        paced(i);
        match before.get(key.id()) {
            None => added.push(key.id().to_string()),
            Some(was) => {
                kept += 1;
                if *was != key {
                    changed.push(key.id().to_string());
                }
            }
        }
    }
    let mut removed = Vec::new();
    if kept < before.len() {
        let mut after: HashSet<&str> = HashSet::with_capacity(new.len());
        for (i, key) in new.keys().enumerate() {
            paced(i);
            after.insert(key.id());
        }
        removed = before
            .keys()
            .filter(|id| !after.contains(*id))
            .map(|id| id.to_string())
            .collect();
    }
    for ids in [&mut added, &mut removed, &mut changed] {
        ids.sort();
    }
    [added, removed, changed]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(json: &str) -> KeySet {
        KeySet::from_json(json.as_bytes()).unwrap().0
    }

    #[test]
    fn diff_names_ids_only() {
        let old = set(
            r#"{"keys": [{"id": "a", "secret": "1"}, {"id": "b", "secret": "2"}, {"id": "c", "secret": "3", "name": "C"},
                                   {"id": "d", "secret": "4"}]}"#,
        );
        let new = set(
            r#"{"keys": [{"id": "b", "secret": "2"}, {"id": "c", "secret": "3", "name": "C2"},
                                   {"id": "d", "secret": "5"}, {"id": "e", "secret": "6"}]}"#,
        );
        assert_eq!(
            diff(&old, &new, &mut || {}),
            [
                vec!["e".to_string()],
                vec!["a".to_string()],
                vec!["c".to_string(), "d".to_string()]
            ]
        );
        assert_eq!(
            diff(&new, &new, &mut || {}),
            [Vec::<String>::new(), vec![], vec![]]
        );
    }
}
