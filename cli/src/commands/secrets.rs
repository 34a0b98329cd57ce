//! `migrate --hash-secrets`, `export` and `import`: whole-file commands after which no plaintext
//! secret is left, each a pure edit of a [`Document`] that, applied twice, finds nothing to do.

use heare_auth_core::{check_name, hash_secret, stamp, Document, KeyRecord, KeySet, UnixMillis};
use heare_auth_store::{Store, EMPTY_FILE};

use super::read;
use crate::check::error_message;
use crate::CliError;

/// A key a command changed or added, or would: its id and name, never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The key's id.
    pub id: String,
    /// The key's name.
    pub name: String,
}

impl Named {
    fn of(record: &KeyRecord) -> Named {
        Named {
            id: record.id.clone(),
            name: record.name.clone(),
        }
    }
}

/// The keys of a file to import, plaintext secrets replaced by their hashes.
#[derive(Debug)]
pub struct Incoming {
    /// The keys, in file order.
    pub records: Vec<KeyRecord>,
    /// How many of them had a plaintext secret.
    pub hashed: usize,
}

/// `record` with its plaintext `secret` replaced by its SHA-256 `secret_hash` (a hash it already
/// has, which the verifier made sure agrees, is kept as it is); `None` when it has no plaintext.
fn hashed(record: &KeyRecord) -> Option<KeyRecord> {
    let plain = record.secret.as_deref()?;
    let mut edited = record.clone();
    if edited.secret_hash.is_none() {
        edited.secret_hash = Some(hash_secret(plain).to_hex());
    }
    edited.secret = None;
    Some(edited)
}

/// Replaces every plaintext secret in `file` with its hash, recording who did it and when
/// (`stamped`) if at all; the keys changed.
fn hash_all(
    location: &str,
    file: &mut Document,
    stamped: Option<(UnixMillis, &str)>,
) -> Result<Vec<Named>, CliError> {
    let edited = file
        .records()
        .filter_map(|r| r.map(|r| hashed(&r)).transpose())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::keys(location))?;
    let mut changed = Vec::with_capacity(edited.len());
    for mut record in edited {
        if let Some((now, actor)) = stamped {
            stamp(&mut record, now, actor);
        }
        changed.push(Named::of(&record));
        file.replace(record);
    }
    Ok(changed)
}

/// `migrate --hash-secrets`: replaces every plaintext secret in the store with its hash, or
/// with `write` false only finds them; the keys changed, or that would be.
pub fn hash_secrets(
    store: &Store,
    write: bool,
    now: UnixMillis,
    actor: &str,
) -> Result<Vec<Named>, CliError> {
    let stamped = Some((now, actor));
    if !write {
        let bytes = read(store)?;
        let mut file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
        return hash_all(store.location(), &mut file, stamped);
    }
    let mut changed = Vec::new();
    let written = store.update(|file: &mut Document| {
        let now_changed = hash_all(store.location(), file, stamped)?;
        // Our own write read back has nothing left to change: keep what it changed.
        if !now_changed.is_empty() {
            changed = now_changed;
        }
        Ok::<(), CliError>(())
    })?;
    if !written {
        changed.clear();
    }
    Ok(changed)
}

/// Refuses a keys file the verifier would reject, with every error the checker finds.
fn refuse_invalid(location: &str, bytes: &[u8]) -> Result<(), CliError> {
    let checked = KeySet::check(bytes);
    match checked.errors.is_empty() {
        true => Ok(()),
        false => Err(CliError::Unloadable {
            location: location.to_string(),
            errors: checked.errors.iter().map(error_message).collect(),
        }),
    }
}

/// `export`: the store's keys file, unencrypted, with every plaintext secret replaced by its
/// hash and nothing else changed; and how many keys it holds. The store is not written.
pub fn export(store: &Store) -> Result<(String, usize), CliError> {
    let bytes = store.load()?.bytes.unwrap_or_else(|| EMPTY_FILE.to_vec());
    refuse_invalid(store.location(), &bytes)?;
    let mut file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
    hash_all(store.location(), &mut file, None)?;
    let text = file.to_json().map_err(CliError::keys(store.location()))?;
    Ok((text, file.len()))
}

/// The keys of a file to import (its plaintext, read from `location`), plaintext secrets
/// replaced by their hashes; refuses a file the verifier would reject, and ids or names holding
/// a control character.
pub fn read_import(location: &str, bytes: &[u8]) -> Result<Incoming, CliError> {
    refuse_invalid(location, bytes)?;
    let file = Document::parse(bytes).map_err(CliError::keys(location))?;
    let mut incoming = Incoming {
        records: Vec::with_capacity(file.len()),
        hashed: 0,
    };
    for record in file.records() {
        let record = record.map_err(CliError::keys(location))?;
        // The same rule as `create --name`: nothing that steers a terminal or a log.
        check_name("id", &record.id)
            .and_then(|()| check_name("name", &record.name))
            .map_err(|error| CliError::ImportedName {
                location: location.to_string(),
                id: record.id.clone(),
                error,
            })?;
        incoming.records.push(match hashed(&record) {
            Some(edited) => {
                incoming.hashed += 1;
                edited
            }
            None => record,
        });
    }
    Ok(incoming)
}

/// `import`: adds `incoming` to the store, or with `write` false only makes sure it could;
/// the keys added, or that would be. Refuses, writing nothing, when any of their ids or
/// secrets (previous ones included) is already in the store.
pub fn import(store: &Store, incoming: &[KeyRecord], write: bool) -> Result<Vec<Named>, CliError> {
    if write {
        let mut added = false;
        store
            .update(|file: &mut Document| add_all(store.location(), file, incoming, &mut added))?;
    } else {
        let bytes = read(store)?;
        let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
        refuse_clashes(store.location(), &file, incoming)?;
    }
    Ok(incoming.iter().map(Named::of).collect())
}

/// Adds `incoming` to `file` unless it clashes; `added` says that an earlier application did,
/// so that finding them all there again is our own write read back, not a clash.
fn add_all(
    location: &str,
    file: &mut Document,
    incoming: &[KeyRecord],
    added: &mut bool,
) -> Result<(), CliError> {
    let present = |r: &KeyRecord| matches!(file.get(&r.id), Some(Ok(stored)) if stored == *r);
    if *added && incoming.iter().all(present) {
        return Ok(());
    }
    refuse_clashes(location, file, incoming)?;
    for record in incoming {
        file.push(record.clone());
    }
    *added = true;
    Ok(())
}

/// Refuses keys whose ids or secrets are already in `file`, naming them as the verifier would
/// in a file holding both.
fn refuse_clashes(location: &str, file: &Document, incoming: &[KeyRecord]) -> Result<(), CliError> {
    let unwritable = |e: serde_json::Error| CliError::KeyJson(e.to_string());
    let mut both = String::from("{\"keys\": [");
    for record in file.records() {
        let record = record.map_err(CliError::keys(location))?;
        both.push_str(&serde_json::to_string(&record).map_err(unwritable)?);
        both.push(',');
    }
    for record in incoming {
        both.push_str(&serde_json::to_string(record).map_err(unwritable)?);
        both.push(',');
    }
    if both.ends_with(',') {
        both.pop();
    }
    both.push_str("]}");
    let checked = KeySet::check(both.as_bytes());
    match checked.errors.is_empty() {
        true => Ok(()),
        false => Err(CliError::Clash {
            location: location.to_string(),
            errors: checked.errors.iter().map(error_message).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::{args, list, store, ACTOR, NOW};
    use crate::commands::{create, show};
    use heare_auth_core::{Code, Prefixes};
    use heare_auth_store::{Error, StoreConfig};
    use rand_core::OsRng;

    /// A file of three keys: two with plaintext secrets (one with an agreeing hash too), one
    /// hashed and laid out its own way.
    fn legacy() -> String {
        format!(
            r#"{{"version": 2, "keys": [
  {{"id": "key_a", "secret": "sec_TOPSECRET_a", "name": "Legacy A", "custom": [1, 2]}},
  {{"id": "key_b", "secret": "sec_TOPSECRET_b", "secret_hash": "{}", "name": "Legacy B"}},
  {{"id": "key_c",   "secret_hash": "{}", "name": "Hashed"}}
]}}"#,
            hash_secret("sec_TOPSECRET_b").to_hex().to_uppercase(),
            hash_secret("sec_c").to_hex()
        )
    }

    fn code(bytes: &[u8], secret: &str) -> Code {
        let (set, _) = KeySet::from_json(bytes).unwrap();
        set.verify(secret, NOW, &[] as &[&str]).code()
    }

    fn named(pairs: &[(&str, &str)]) -> Vec<Named> {
        pairs
            .iter()
            .map(|(id, name)| Named {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect()
    }

    #[test]
    fn migrate_dry_run_writes_nothing_and_yes_leaves_no_plaintext() {
        let (store, path, _dir) = store();
        std::fs::write(&path, legacy()).unwrap();
        let want = named(&[("key_a", "Legacy A"), ("key_b", "Legacy B")]);

        assert_eq!(hash_secrets(&store, false, NOW, ACTOR).unwrap(), want);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), legacy());

        assert_eq!(hash_secrets(&store, true, NOW, ACTOR).unwrap(), want);
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("TOPSECRET"), "{text}");
        for (secret, id) in [("sec_TOPSECRET_a", "key_a"), ("sec_TOPSECRET_b", "key_b")] {
            assert_eq!(code(&bytes, secret), Code::Valid, "{id}");
        }
        assert_eq!(code(&bytes, "sec_c"), Code::Valid);
        // The hashed key, unknown fields and the top level are as they were.
        assert!(text.contains(&format!(
            r#"{{"id": "key_c",   "secret_hash": "{}", "name": "Hashed"}}"#,
            hash_secret("sec_c").to_hex()
        )));
        assert!(text.contains("\"version\": 2"), "{text}");
        let a = show(&store, "key_a").unwrap();
        assert_eq!(a.extra_field("custom").map(|v| v.get()), Some("[1, 2]"));
        assert_eq!((a.updated_by.as_deref(), a.secret), (Some(ACTOR), None));
        // An agreeing hash is kept as it was written.
        let b = show(&store, "key_b").unwrap();
        assert_eq!(
            b.secret_hash,
            Some(hash_secret("sec_TOPSECRET_b").to_hex().to_uppercase())
        );

        // Again: nothing to change, nothing written, for a dry run or not.
        assert_eq!(hash_secrets(&store, false, NOW + 1, "bob").unwrap(), []);
        assert_eq!(hash_secrets(&store, true, NOW + 1, "bob").unwrap(), []);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn migrating_an_empty_or_missing_store_changes_nothing() {
        let (store, path, _dir) = store();
        assert_eq!(hash_secrets(&store, true, NOW, ACTOR).unwrap(), []);
        assert!(!path.exists());
        create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(hash_secrets(&store, true, NOW, ACTOR).unwrap(), []);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn export_has_hashes_only_and_leaves_the_store_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let plain = StoreConfig::file(path.to_str().unwrap());
        let encrypted = StoreConfig {
            storage_secret: Some("storage-secret".into()),
            ..plain.clone()
        };
        std::fs::write(&path, legacy()).unwrap();
        // Written once encrypted, so the export has to decrypt it.
        create(
            &encrypted.open().unwrap(),
            &args("New"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let stored = std::fs::read(&path).unwrap();
        assert!(heare_auth_core::is_encrypted(&stored));

        let (text, keys) = export(&encrypted.open().unwrap()).unwrap();
        assert_eq!(keys, 4);
        assert!(text.starts_with("{\n  \"keys\": [\n"), "{text}");
        assert!(
            !text.contains("TOPSECRET") && !text.contains("\"secret\""),
            "{text}"
        );
        assert!(text.contains("\"version\": 2"), "{text}");
        for secret in ["sec_TOPSECRET_a", "sec_TOPSECRET_b", "sec_c"] {
            assert_eq!(code(text.as_bytes(), secret), Code::Valid, "{secret}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), stored);
        let a = Document::parse(text.as_bytes())
            .unwrap()
            .get("key_a")
            .unwrap()
            .unwrap();
        assert_eq!(a.updated_at, None, "an export changes no key");

        let err = export(&plain.open().unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                CliError::Store(Error::Keys {
                    error: heare_auth_core::Error::NoStorageSecret,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn export_and_import_refuse_a_file_the_server_would_refuse_naming_every_error() {
        let (store, path, _dir) = store();
        let broken = r#"{"keys": [{"id": "a", "secret": "x"}, {"secret": "y"}, {"id": "a", "secret": "z"}, {"id": "c"}]}"#;
        std::fs::write(&path, broken).unwrap();
        let want = |location: String| CliError::Unloadable {
            location,
            errors: vec![
                "key keys[1]: missing field `id`".into(),
                "key c: missing field `secret_hash`".into(),
                "duplicate key id a".into(),
            ],
        };
        let err = export(&store).unwrap_err();
        assert_eq!(err, want(path.display().to_string()));
        let err = read_import("backup.json", broken.as_bytes()).unwrap_err();
        assert_eq!(err, want("backup.json".into()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn import_adds_hashed_keys_after_a_dry_run() {
        let (store, path, _dir) = store();
        let existing = create(
            &store,
            &args("Existing"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        let incoming = read_import("backup.json", legacy().as_bytes()).unwrap();
        assert_eq!(incoming.hashed, 2);
        assert!(incoming.records.iter().all(|r| r.secret.is_none()));
        let want = named(&[
            ("key_a", "Legacy A"),
            ("key_b", "Legacy B"),
            ("key_c", "Hashed"),
        ]);

        assert_eq!(import(&store, &incoming.records, false).unwrap(), want);
        assert_eq!(std::fs::read(&path).unwrap(), before);

        assert_eq!(import(&store, &incoming.records, true).unwrap(), want);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("TOPSECRET"));
        for secret in [
            "sec_TOPSECRET_a",
            "sec_TOPSECRET_b",
            "sec_c",
            &existing.secret,
        ] {
            assert_eq!(code(&bytes, secret), Code::Valid, "{secret}");
        }
        let ids: Vec<String> = list(&store).unwrap().into_iter().map(|k| k.id).collect();
        assert_eq!(
            ids,
            [existing.record.id.as_str(), "key_a", "key_b", "key_c"]
        );
        // The imported keys are as they were, but for the secret's form.
        assert_eq!(show(&store, "key_a").unwrap(), incoming.records[0]);
    }

    #[test]
    fn import_refuses_ids_and_secrets_already_there_naming_them() {
        let (store, path, _dir) = store();
        let previous = hash_secret("sec_old").to_hex();
        std::fs::write(
            &path,
            format!(
                r#"{{"keys": [{{"id": "key_a", "secret": "sec_a"}},
                   {{"id": "key_r", "secret": "sec_r", "previous_secret_hash": "{previous}", "previous_expires_at": "2030-01-01"}}]}}"#
            ),
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        let file = r#"{"keys": [{"id": "key_a", "secret": "sec_new"},
                                {"id": "key_x", "secret": "sec_r"},
                                {"id": "key_y", "secret": "sec_old"},
                                {"id": "key_z", "secret": "sec_z"}]}"#;
        let incoming = read_import("backup.json", file.as_bytes()).unwrap();
        let want = CliError::Clash {
            location: path.display().to_string(),
            errors: vec![
                "duplicate key id key_a".into(),
                "keys key_r and key_x have the same secret".into(),
                "keys key_y and key_r have the same secret".into(),
            ],
        };
        assert_eq!(import(&store, &incoming.records, false).unwrap_err(), want);
        assert_eq!(import(&store, &incoming.records, true).unwrap_err(), want);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Importing the same keys twice: the second time they are already there.
        let fresh = &incoming.records[3..];
        import(&store, fresh, true).unwrap();
        let err = import(&store, fresh, true).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "\n  duplicate key id key_z\n  keys key_z and key_z have the same secret"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_import_read_back_is_not_a_clash() {
        // The store applies an edit again to the file it just wrote when it confirms a write:
        // finding its own keys there, the import must change nothing and not fail.
        let (store, path, _dir) = store();
        let incoming = read_import("backup.json", legacy().as_bytes()).unwrap();
        let mut added = false;
        let mut apply = || {
            store.update(|file: &mut Document| {
                add_all(store.location(), file, &incoming.records, &mut added)
            })
        };
        assert_eq!(apply(), Ok(true));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(apply(), Ok(false));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(list(&store).unwrap().len(), 3);
    }

    #[test]
    fn an_import_naming_a_key_with_a_control_character_is_refused() {
        for (record, want) in [
            (
                r#"{"id": "key_a", "secret": "s", "name": "ok\u001b]0;pwned\u0007"}"#,
                "b.json: key key_a: field `name` has a control character (\\x1b) at character 3",
            ),
            (
                r#"{"id": "key_\u202e", "secret": "s", "name": "ok"}"#,
                "b.json: key key_\\u{202e}: field `id` has a control character (\\u{202e}) at character 5",
            ),
        ] {
            let text = format!(r#"{{"keys": [{{"id": "key_b", "secret": "t"}}, {record}]}}"#);
            let err = read_import("b.json", text.as_bytes()).unwrap_err();
            assert!(matches!(err, CliError::ImportedName { .. }), "{err:?}");
            assert_eq!(err.to_string(), want);
        }
    }
}
