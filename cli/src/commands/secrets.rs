//! `migrate --hash-secrets` and `export`: whole-file commands after which no plaintext secret is
//! left, each a pure edit of a [`Document`] that, applied twice, finds nothing to do (`import`,
//! the third, is `import.rs`).

use heare_auth_core::{hash_secret, stamp, Document, KeyRecord, KeySet, UnixMillis};
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
    /// The id and name of `record`.
    pub(super) fn of(record: &KeyRecord) -> Named {
        Named {
            id: record.id.clone(),
            name: record.name.clone(),
        }
    }
}

/// `record` with its plaintext `secret` replaced by its SHA-256 `secret_hash` (a hash it already
/// has, which the verifier made sure agrees, is kept as it is); `None` when it has no plaintext.
pub(super) fn hashed(record: &KeyRecord) -> Option<KeyRecord> {
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
    let written = store.update_whole(|file: &mut Document| {
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
    // A whole file of its own: no changes follow it.
    file.remove_field(heare_auth_core::NEXT_CHANGE);
    let text = file.to_json().map_err(CliError::keys(store.location()))?;
    Ok((text, file.len()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::commands::tests::{args, store, ACTOR, NOW};
    use crate::commands::{create, show};
    use heare_auth_core::{Code, Prefixes};
    use heare_auth_store::{Error, StoreConfig};
    use rand_core::OsRng;

    /// A file of three keys: two with plaintext secrets (one with an agreeing hash too), one
    /// hashed and laid out its own way.
    pub(in crate::commands) fn legacy() -> String {
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

    pub(in crate::commands) fn code(bytes: &[u8], secret: &str) -> Code {
        let (set, _) = KeySet::from_json(bytes).unwrap();
        set.verify(secret, NOW, &[] as &[&str]).code()
    }

    pub(in crate::commands) fn named(pairs: &[(&str, &str)]) -> Vec<Named> {
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
    fn export_refuses_a_file_the_server_would_refuse_naming_every_error() {
        let (store, path, _dir) = store();
        let broken = r#"{"keys": [{"id": "a", "secret": "x"}, {"secret": "y"}, {"id": "a", "secret": "z"}, {"id": "c"}]}"#;
        std::fs::write(&path, broken).unwrap();
        let err = export(&store).unwrap_err();
        assert_eq!(
            err,
            CliError::Unloadable {
                location: path.display().to_string(),
                errors: vec![
                    "key keys[1]: missing field `id`".into(),
                    "key c: missing field `secret_hash`".into(),
                    "duplicate key id a".into(),
                ],
            }
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    }
}
