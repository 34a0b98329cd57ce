//! The collecting checker: the loader's own rules run over every record, and every error kept,
//! for tools that must name all of them rather than stop at the first.

use std::convert::Infallible;

use serde_json::value::RawValue;

use super::build::{index, Builder};
use super::raw::RecordFields;
use super::{KeySet, Packed};
use crate::error::{json_error_at, json_text};
use crate::walk::walk;
use crate::{record_id, Error, Warning};

/// What [`KeySet::check`] found in a keys file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Records in the `keys` array, or read before the file stops being JSON (0 when it is not a
    /// keys file at all).
    pub records: usize,
    /// Every reason the loader has to reject the file; empty when it loads.
    pub errors: Vec<CheckError>,
    /// What the loader warns about: expiries that cannot be read.
    pub warnings: Vec<Warning>,
}

/// One reason to reject a keys file, and the key it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    /// The record's position in the `keys` array (for a duplicate, the later one's); `None` when
    /// the whole file is at fault.
    pub index: Option<usize>,
    /// The key's id, or `keys[N]` when it has none; `None` when the whole file is at fault.
    pub key: Option<String>,
    /// What is wrong, as the loader says it.
    pub error: Error,
}

impl KeySet {
    /// Checks a keys file by the rules of [`KeySet::from_json`], reporting every error instead
    /// of the first: each record's own, in file order, then every duplicate id and every
    /// duplicate secret among the records that pass (a record rejected for its own fields takes
    /// no part in the duplicate checks). A file that stops being JSON is checked up to there:
    /// the records before, then where it breaks. A file that loads has no errors, and the
    /// loader's warnings; for one that does not, the first error is the loader's.
    pub fn check(bytes: &[u8]) -> Checked {
        let mut checked = Checked::default();
        let whole = |error| CheckError {
            index: None,
            key: None,
            error,
        };
        let text = match json_text(bytes) {
            Ok(text) => text,
            Err(e) => {
                checked.errors.push(whole(e));
                return checked;
            }
        };
        let (records, read) = records(text);
        checked.records = records.len();
        let mut builder = Builder {
            set: Packed::default(),
            warnings: Vec::new(),
            error: None,
        };
        // The position of each record that passed: entry `n` of the set is record `passed[n]`.
        let mut passed = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let raw = match serde_json::from_str::<RecordFields>(record.get()) {
                Ok(raw) => raw,
                Err(e) => {
                    // Positions within the record, made positions within the file.
                    let offset = record.get().as_ptr() as usize - text.as_ptr() as usize;
                    checked.errors.push(CheckError {
                        index: Some(i),
                        key: Some(label(i, record.get())),
                        error: json_error_at(text, offset, &e),
                    });
                    continue;
                }
            };
            let key = match raw.id.as_deref() {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("keys[{i}]"),
            };
            match builder.add(i, raw) {
                Ok(()) => passed.push(i),
                // Only a file too large to index fails so; nothing after it can be checked.
                Err(e @ Error::Json { .. }) => {
                    checked.errors.push(whole(e));
                    checked.warnings = builder.warnings;
                    return checked;
                }
                Err(error) => checked.errors.push(CheckError {
                    index: Some(i),
                    key: Some(key),
                    error,
                }),
            }
        }
        if let Err(broken) = read {
            checked.errors.push(whole(broken));
            first_as_loaded(&mut checked.errors, bytes);
        }
        let Ok(()) = index(&mut builder.set, &mut || {}, |later, error| {
            let key = match &error {
                Error::DuplicateId { id } => id.clone(),
                Error::DuplicateSecret { second, .. } => second.clone(),
                _ => String::new(),
            };
            checked.errors.push(CheckError {
                index: passed.get(later as usize).copied(),
                key: Some(key),
                error,
            });
            Ok::<(), Infallible>(())
        });
        checked.warnings = builder.warnings;
        checked
    }
}

/// Makes the loader's error the first of a file that is not JSON. The checker reads each
/// record whole before it checks it, and the loader checks each as it reads it, so where a
/// record breaks off the loader may stop earlier (at a field of the wrong type) or say it in
/// other words (`{"id": "a",}`): its error comes first, and replaces the checker's at the
/// same position. (A record error before the break is already the loader's.)
fn first_as_loaded(errors: &mut Vec<CheckError>, bytes: &[u8]) {
    let Err(loaded) = KeySet::from_json(bytes) else {
        return;
    };
    if errors.first().map(|e| &e.error) == Some(&loaded) {
        return;
    }
    if let Error::Json { line, column, .. } = loaded {
        errors.retain(|e| {
            !matches!(e, CheckError { index: None, error: Error::Json { line: l, column: c, .. }, .. }
                if (*l, *c) == (line, column))
        });
    }
    errors.insert(
        0,
        CheckError {
            index: None,
            key: None,
            error: loaded,
        },
    );
}

/// How an error names a record that could not be read: its id if that much can be read, else
/// its position.
fn label(index: usize, record: &str) -> String {
    match record_id(record) {
        Some(id) if !id.is_empty() => id.into_owned(),
        _ => format!("keys[{index}]"),
    }
}

/// The texts of the `keys` array's records, the file's structure read as the loader reads it,
/// and why the reading stopped early: the records before that point are there.
fn records(text: &str) -> (Vec<&RawValue>, Result<(), Error>) {
    let mut records = Vec::new();
    let read = walk(text, &mut records);
    (records, read.map_err(Error::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_secret;

    fn found(json: &str) -> Vec<(Option<String>, String)> {
        KeySet::check(json.as_bytes())
            .errors
            .into_iter()
            .map(|e| (e.key, e.error.to_string()))
            .collect()
    }

    fn key(id: &str, message: &str) -> (Option<String>, String) {
        (Some(id.into()), message.into())
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let a = hash_secret("a").to_hex();
        let json = format!(
            r#"{{"keys": [
  {{"secret": "s0"}},
  {{"id": "", "secret": "s1"}},
  {{"id": "nosecret", "name": "N"}},
  {{"id": "shorthash", "secret_hash": "abc"}},
  {{"id": "disagree", "secret": "s4", "secret_hash": "{a}"}},
  {{"id": "badscope", "secret": "s5", "scopes": ["a b"]}},
  {{"id": "badlimit", "secret": "s6", "rate_limit": {{"requests": 0, "per_seconds": 1}}}},
  {{"id": "noend", "secret": "s7", "previous_secret_hash": "{a}"}},
  {{"id": "typed", "secret": "s8", "name": 7}},
  5,
  {{"id": "twice", "secret": "a"}},
  {{"id": "twice", "secret": "s11"}},
  {{"id": "same", "secret": "s11"}},
  {{"id": "rotated", "secret": "s13", "previous_secret_hash": "{a}", "previous_expires_at": "2030-01-01"}}
]}}"#
        );
        assert_eq!(
            found(&json),
            [
                key("keys[0]", "key keys[0]: missing field `id`"),
                key("keys[1]", "key keys[1]: field `id` is empty"),
                key("nosecret", "key nosecret: missing field `secret_hash`"),
                key(
                    "shorthash",
                    "key shorthash: field `secret_hash` is not 64 hex digits (SHA-256)"
                ),
                key(
                    "disagree",
                    "key disagree: field `secret_hash` does not match `secret`"
                ),
                key(
                    "badscope",
                    "key badscope: field `scopes` is not valid: scope 'a b' contains a space: \
                     use letters, digits and ASCII punctuation other than \" \\ ,"
                ),
                key(
                    "badlimit",
                    "key badlimit: field `rate_limit` is not valid: expected 1 to 4294967295 \
                     requests, got 0"
                ),
                key("noend", "key noend: missing field `previous_expires_at`"),
                key(
                    "typed",
                    "invalid JSON at line 10, column 43: invalid type: integer `7`, expected a \
                     string"
                ),
                key(
                    "keys[9]",
                    "invalid JSON at line 11, column 3: invalid type: integer `5`, expected \
                     a key (a JSON object)"
                ),
                key("twice", "duplicate key id twice"),
                key("same", "keys twice and same have the same secret"),
                key("rotated", "keys twice and rotated have the same secret"),
            ]
        );
        let indices: Vec<Option<usize>> = KeySet::check(json.as_bytes())
            .errors
            .iter()
            .map(|e| e.index)
            .collect();
        let want: Vec<Option<usize>> = (0..10).chain(11..14).map(Some).collect();
        assert_eq!(indices, want);
    }

    #[test]
    fn the_first_error_is_the_loaders() {
        let a = hash_secret("a").to_hex();
        for json in [
            r#"{"keys": [{"id": "a", "secret": "x"},]}"#.to_string(),
            r#"{"kees": []}"#.into(),
            "".into(),
            "[]".into(),
            r#"{"keys": 5}"#.into(),
            r#"{"keys": [], "keys": []}"#.into(),
            r#"{"keys": []} x"#.into(),
            r#"{"keys": [{"id": "a", "secret": "x"}, {"secret": "y"}, {"id": "b"}]}"#.into(),
            r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "x"}]}"#.into(),
            r#"{"keys": [{"id": 7, "secret": "x"}, {"id": "b"}]}"#.into(),
            "{\"keys\": [\n {\"id\": \"a\", \"secret\": \"x\", \"scopes\": {}},\n {\"id\": \"b\", \"name\": 7}]}".into(),
            format!(
                r#"{{"keys": [{{"id": "a", "secret": "a"}}, {{"id": "b", "secret": "b", "previous_secret_hash": "{a}", "previous_expires_at": "2030-01-01"}}]}}"#
            ),
        ] {
            let checked = KeySet::check(json.as_bytes());
            let loaded = KeySet::from_json(json.as_bytes()).err();
            assert_eq!(
                checked.errors.first().map(|e| &e.error),
                loaded.as_ref(),
                "{json}"
            );
        }
    }

    #[test]
    fn a_file_that_loads_has_no_errors_and_the_loaders_warnings() {
        let json = format!(
            r#"{{"keys": [{{"id": "a", "secret": "x", "expires_at": "soon"}},
                         {{"id": "b", "secret": "y", "previous_secret_hash": "{}", "previous_expires_at": "later"}},
                         {{"id": "c", "secret_hash": "{}", "rate_limit": {{"requests": 5, "per_seconds": 1}}}}]}}"#,
            hash_secret("z").to_hex(),
            hash_secret("w").to_hex()
        );
        let checked = KeySet::check(json.as_bytes());
        let (_, warnings) = KeySet::from_json(json.as_bytes()).unwrap();
        assert_eq!(
            checked,
            Checked {
                records: 3,
                errors: Vec::new(),
                warnings
            }
        );
        assert_eq!(checked.warnings.len(), 2);
    }

    #[test]
    fn warnings_are_kept_beside_errors_and_a_broken_file_is_checked_up_to_the_break() {
        let checked = KeySet::check(
            br#"{"keys": [{"id": "a", "secret": "x", "expires_at": "soon"}, {"id": "b"}]}"#,
        );
        assert_eq!(checked.records, 2);
        assert_eq!(
            checked.warnings,
            [Warning::UnparseableExpiry {
                id: "a".into(),
                value: "soon".into()
            }]
        );
        assert_eq!(
            checked.errors,
            [CheckError {
                index: Some(1),
                key: Some("b".into()),
                error: Error::MissingField {
                    key: "b".into(),
                    field: "secret_hash"
                }
            }]
        );
        let broken = KeySet::check(br#"{"keys": [{"id": "a", "secret": "x"}"#);
        assert_eq!(broken.records, 1);
        assert_eq!(
            broken.errors,
            [CheckError {
                index: None,
                key: None,
                error: Error::Json {
                    line: 1,
                    column: 36,
                    message: "EOF while parsing a list".into()
                }
            }]
        );
    }

    #[test]
    fn the_records_before_a_break_are_checked_and_the_loaders_error_is_first() {
        let text = "{\"keys\": [\n{\"id\": \"a\"},\n{\"id\": \"b\", \"secret\": \"x\", \"expires_at\": \"soon\"},\n{\"id\": \"b\", \"secret\": \"y\"}, x]}";
        let checked = KeySet::check(text.as_bytes());
        let json = |line, column, message: &str| Error::Json {
            line,
            column,
            message: message.into(),
        };
        let whole = |error| CheckError {
            index: None,
            key: None,
            error,
        };
        assert_eq!(checked.records, 3);
        assert_eq!(
            checked.errors,
            [
                CheckError {
                    index: Some(0),
                    key: Some("a".into()),
                    error: Error::MissingField {
                        key: "a".into(),
                        field: "secret_hash"
                    }
                },
                whole(json(4, 29, "expected value")),
                CheckError {
                    index: Some(2),
                    key: Some("b".into()),
                    error: Error::DuplicateId { id: "b".into() }
                },
            ]
        );
        assert_eq!(checked.warnings.len(), 1);
        // Where the loader stops inside the broken record, or words the break otherwise, its
        // error is the one reported there.
        let checked = KeySet::check(br#"{"keys": [{"id": 5, "secret": x}]}"#);
        assert_eq!(
            checked.errors,
            [
                whole(json(1, 18, "invalid type: integer `5`, expected a string")),
                whole(json(1, 31, "expected value")),
            ]
        );
        let checked = KeySet::check(b"{\"keys\": [\n  {\"id\": \"a\",}\n]}");
        assert_eq!(checked.errors, [whole(json(2, 14, "trailing comma"))]);
    }

    #[test]
    fn errors_never_contain_a_secret() {
        let checked = KeySet::check(
            br#"{"keys": [{"id": "a", "secret": "TOPSECRET"}, {"id": "b", "secret": "TOPSECRET"},
                         {"id": "c", "secret": "TOPSECRET", "secret_hash": "00"}]}"#,
        );
        assert_eq!(checked.errors.len(), 2);
        let all = format!("{checked:?}")
            + &checked
                .errors
                .iter()
                .map(|e| e.error.to_string())
                .collect::<String>();
        assert!(!all.contains("TOPSECRET"), "{all}");
    }
}
