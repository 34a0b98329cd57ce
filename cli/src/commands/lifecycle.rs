//! `disable`, `enable` and `rotate`: each a pure edit of one key from core, applied by
//! [`edit_key`]; applied twice, an edit finds nothing left to do.

use rand_core::{CryptoRng, RngCore};

use heare_auth_core::{
    generate_secret, hash_secret, with_disabled, with_new_secret, KeyRecord, Prefix, UnixMillis,
};
use heare_auth_store::Store;

use super::edit::{edit_key, Toggled};
use crate::CliError;

/// A key after `rotate`, with the only copy of its new secret.
#[derive(Debug)]
pub struct Rotated {
    /// The key as it now is.
    pub record: KeyRecord,
    /// The new secret.
    pub secret: String,
    /// Whether an older previous secret, still in its grace period, stopped working.
    pub replaced_previous: bool,
}

/// Disables a key (`disabled` true) or enables it (false) at `now`; a key that already is as
/// asked is left as it is.
pub fn set_disabled(
    store: &Store,
    id: &str,
    disabled: bool,
    now: UnixMillis,
    actor: &str,
) -> Result<Toggled, CliError> {
    edit_key(store, id, |record| {
        with_disabled(record, disabled, now, actor)
    })
}

/// Gives a key a new secret, generated once from `rng` with `prefix`; the old one keeps
/// verifying for `grace_ms` (not at all when 0).
pub fn rotate<R: RngCore + CryptoRng>(
    store: &Store,
    id: &str,
    grace_ms: u64,
    now: UnixMillis,
    actor: &str,
    prefix: &Prefix,
    rng: &mut R,
) -> Result<Rotated, CliError> {
    let secret = generate_secret(prefix, rng, now);
    let hash = hash_secret(&secret).to_hex();
    // Our own rotation read back changes nothing: what it replaced was seen when it was made.
    let mut replaced_previous = false;
    let rotated = edit_key(store, id, |record| {
        let (rotated, replaced) = with_new_secret(record, &hash, grace_ms, now, actor)?;
        replaced_previous = replaced;
        Some(rotated)
    })?;
    Ok(Rotated {
        record: rotated.record,
        secret,
        replaced_previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::edit::find;
    use crate::commands::tests::{args, list, store, ACTOR, NOW};
    use crate::commands::{create, show};
    use heare_auth_core::{form, format_timestamp, Code, Document, Form, KeySet, Prefixes};
    use heare_auth_store::Error;
    use rand_core::OsRng;

    const HOUR: u64 = 3_600_000;
    const BOB: &str = "bob@build-02";

    /// What the server would answer for `secret` at `now`, from the file as stored.
    fn code(path: &std::path::Path, secret: &str, now: UnixMillis) -> Code {
        let (set, _) = KeySet::from_json(&std::fs::read(path).unwrap()).unwrap();
        set.verify(secret, now, &[] as &[&str]).code()
    }

    #[test]
    fn rotate_keeps_everything_but_the_secret() {
        let (store, path, _dir) = store();
        let mut a = args("A");
        a.expires = None;
        let created = create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap();
        let before = created.record.clone();
        let later = NOW + 1000;
        let rotated = rotate(
            &store,
            &before.id,
            HOUR,
            later,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap();
        let after = show(&store, &before.id).unwrap();
        assert_eq!(after, rotated.record);
        assert_ne!(rotated.secret, created.secret);
        assert!(rotated.secret.starts_with("sec_1"), "{}", rotated.record.id);
        assert_eq!(form(&rotated.secret), Form::Checksummed);
        assert!(!rotated.replaced_previous);
        // Only the secret, its predecessor and who changed the key when are different.
        let old_hash = hash_secret(&created.secret).to_hex();
        let expected = KeyRecord {
            secret_hash: Some(hash_secret(&rotated.secret).to_hex()),
            previous_secret_hash: Some(old_hash),
            previous_expires_at: Some(format_timestamp(later + HOUR as i64)),
            updated_at: Some(format_timestamp(later)),
            updated_by: Some(BOB.into()),
            ..before
        };
        assert_eq!(after, expected);
        assert_eq!(after.created_by.as_deref(), Some(ACTOR));
        assert_eq!(after.status(later).to_string(), "rotating");
        // Both secrets verify until the grace period ends, then only the new one.
        let end = later + HOUR as i64;
        assert_eq!(code(&path, &created.secret, end), Code::Valid);
        assert_eq!(code(&path, &rotated.secret, end), Code::Valid);
        assert_eq!(code(&path, &created.secret, end + 1), Code::NotFound);
        assert_eq!(code(&path, &rotated.secret, end + 1), Code::Valid);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&rotated.secret[5..]) && !text.contains(&created.secret[5..]));
    }

    #[test]
    fn no_grace_keeps_no_previous_secret() {
        let (store, path, _dir) = store();
        let created = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let rotated = rotate(
            &store,
            &created.record.id,
            0,
            NOW,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap();
        let r = &rotated.record;
        assert_eq!(
            (&r.previous_secret_hash, &r.previous_expires_at),
            (&None, &None)
        );
        assert_eq!(code(&path, &created.secret, NOW), Code::NotFound);
        assert_eq!(code(&path, &rotated.secret, NOW), Code::Valid);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("previous"));
    }

    #[test]
    fn a_second_rotation_in_the_grace_period_replaces_the_previous_and_says_so() {
        let (store, path, _dir) = store();
        let first = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let id = &first.record.id;
        let second = rotate(&store, id, HOUR, NOW, BOB, &Prefix::secret(), &mut OsRng).unwrap();
        let third = rotate(
            &store,
            id,
            HOUR,
            NOW + 1,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap();
        assert!(!second.replaced_previous && third.replaced_previous);
        assert_eq!(
            third.record.previous_secret_hash,
            Some(hash_secret(&second.secret).to_hex())
        );
        assert_eq!(code(&path, &first.secret, NOW + 1), Code::NotFound);
        assert_eq!(code(&path, &second.secret, NOW + 1), Code::Valid);
        assert_eq!(code(&path, &third.secret, NOW + 1), Code::Valid);
        // With no grace, the previous secret in its grace period stops too, and that is said.
        let fourth = rotate(&store, id, 0, NOW + 2, BOB, &Prefix::secret(), &mut OsRng).unwrap();
        assert!(fourth.replaced_previous);
        assert_eq!(code(&path, &third.secret, NOW + 2), Code::NotFound);
        // Once the grace period is over there is nothing left to replace.
        rotate(
            &store,
            id,
            HOUR,
            NOW + 3,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap();
        let late = rotate(
            &store,
            id,
            HOUR,
            NOW + 3 + HOUR as i64 + 1,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        );
        assert!(!late.unwrap().replaced_previous);
    }

    #[test]
    fn rotating_a_legacy_key_drops_its_plaintext_secret() {
        let (store, path, _dir) = store();
        std::fs::write(
            &path,
            r#"{"keys": [{"id": "key_old", "secret": "sec_legacy_plain", "name": "Old", "scopes": ["read"], "custom": 5}]}"#,
        )
        .unwrap();
        let rotated = rotate(
            &store,
            "key_old",
            HOUR,
            NOW,
            BOB,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap();
        let r = &rotated.record;
        assert_eq!(r.secret, None);
        assert_eq!(
            r.previous_secret_hash,
            Some(hash_secret("sec_legacy_plain").to_hex())
        );
        assert_eq!(
            (r.name.as_str(), r.scope_list()),
            ("Old", &["read".to_string()][..])
        );
        assert_eq!(r.extra_field("custom").map(|v| v.get()), Some("5"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sec_legacy_plain"), "{text}");
        assert_eq!(code(&path, "sec_legacy_plain", NOW), Code::Valid);
        assert_eq!(code(&path, &rotated.secret, NOW), Code::Valid);
    }

    #[test]
    fn disable_and_enable_change_only_what_they_must() {
        let (store, path, _dir) = store();
        let created = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let id = &created.record.id;
        let later = NOW + 1000;

        let off = set_disabled(&store, id, true, later, BOB).unwrap();
        assert!(off.changed);
        let expected = KeyRecord {
            disabled: Some(true),
            disabled_at: Some(format_timestamp(later)),
            updated_at: Some(format_timestamp(later)),
            updated_by: Some(BOB.into()),
            ..created.record.clone()
        };
        assert_eq!(off.record, expected);
        assert_eq!(show(&store, id).unwrap(), expected);
        assert_eq!(code(&path, &created.secret, later), Code::Disabled);

        // Again: nothing changes, not even who changed it last.
        let bytes = std::fs::read(&path).unwrap();
        let again = set_disabled(&store, id, true, later + 1, ACTOR).unwrap();
        assert!(!again.changed);
        assert_eq!(again.record, expected);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        let on = set_disabled(&store, id, false, later + 2, ACTOR).unwrap();
        assert!(on.changed);
        assert_eq!(
            (&on.record.disabled, &on.record.disabled_at),
            (&None, &None)
        );
        assert_eq!(on.record.updated_at, Some(format_timestamp(later + 2)));
        assert_eq!(code(&path, &created.secret, later + 2), Code::Valid);
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !set_disabled(&store, id, false, later + 3, BOB)
                .unwrap()
                .changed
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert!(!String::from_utf8(bytes).unwrap().contains("disabled"));
    }

    #[test]
    fn a_disabled_key_can_be_rotated_and_stays_disabled() {
        let (store, path, _dir) = store();
        let created = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let id = &created.record.id;
        set_disabled(&store, id, true, NOW, ACTOR).unwrap();
        let rotated = rotate(&store, id, HOUR, NOW, BOB, &Prefix::secret(), &mut OsRng).unwrap();
        assert_eq!(rotated.record.disabled, Some(true));
        assert_eq!(code(&path, &rotated.secret, NOW), Code::Disabled);
        assert_eq!(code(&path, &created.secret, NOW), Code::Disabled);
        set_disabled(&store, id, false, NOW, ACTOR).unwrap();
        assert_eq!(code(&path, &rotated.secret, NOW), Code::Valid);
        assert_eq!(code(&path, &created.secret, NOW), Code::Valid);
    }

    #[test]
    fn an_unknown_id_is_not_found_and_writes_nothing() {
        let (store, path, _dir) = store();
        let gone = CliError::NotFound("key_nope".into());
        assert_eq!(
            set_disabled(&store, "key_nope", true, NOW, ACTOR).unwrap_err(),
            gone
        );
        assert_eq!(
            set_disabled(&store, "key_nope", false, NOW, ACTOR).unwrap_err(),
            gone
        );
        let err = rotate(
            &store,
            "key_nope",
            HOUR,
            NOW,
            ACTOR,
            &Prefix::secret(),
            &mut OsRng,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "API key not found: key_nope");
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
        assert_eq!(
            rotate(
                &store,
                "key_nope",
                0,
                NOW,
                ACTOR,
                &Prefix::secret(),
                &mut OsRng
            )
            .unwrap_err(),
            gone
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(list(&store).unwrap().len(), 1);
    }

    #[test]
    fn each_edit_applied_again_changes_nothing() {
        let record = KeyRecord {
            id: "key_a".into(),
            secret: Some("sec_legacy".into()),
            name: "A".into(),
            previous_secret_hash: Some("ab".repeat(32)),
            previous_expires_at: Some(format_timestamp(NOW + 1)),
            ..KeyRecord::default()
        };
        for disabled in [true, false] {
            let once = with_disabled(&record, disabled, NOW, BOB).unwrap_or(record.clone());
            assert_eq!(with_disabled(&once, disabled, NOW + 5, ACTOR), None);
        }
        let new_hash = hash_secret("sec_new").to_hex();
        for grace in [0, HOUR] {
            let (once, replaced) = with_new_secret(&record, &new_hash, grace, NOW, BOB).unwrap();
            assert!(
                replaced,
                "the previous secret was still in its grace period"
            );
            assert_eq!(
                with_new_secret(&once, &new_hash, grace, NOW + 5, ACTOR),
                None
            );
        }
    }

    #[test]
    fn a_rotation_read_back_keeps_what_it_replaced() {
        // The store re-applies an edit to the file it just wrote when it confirms a write; the
        // rotation must then neither change the file nor forget what it replaced.
        let (store, _path, _dir) = store();
        let created = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let id = &created.record.id;
        rotate(&store, id, HOUR, NOW, ACTOR, &Prefix::secret(), &mut OsRng).unwrap();
        let secret = "sec_fixed";
        let hash = hash_secret(secret).to_hex();
        let mut seen = Vec::new();
        for _ in 0..2 {
            store
                .update(|file: &mut Document| {
                    let record = find(&store, file, id)?;
                    if let Some((rotated, replaced)) =
                        with_new_secret(&record, &hash, HOUR, NOW + 1, BOB)
                    {
                        seen.push(replaced);
                        file.replace(rotated);
                    }
                    Ok::<(), CliError>(())
                })
                .unwrap();
        }
        assert_eq!(seen, [true], "applied once, and once only");
    }

    #[test]
    fn every_edit_by_id_refuses_a_file_holding_the_id_twice() {
        use crate::commands::{delete, set_rate_limit};
        let (store, path, _dir) = store();
        // The same id twice, the second disabled, each with its own secret.
        let text = r#"{"keys": [{"id": "key_t", "secret": "sec_first", "name": "First"},
  {"id": "key_t", "secret": "sec_second", "name": "Second", "disabled": true}]}"#;
        std::fs::write(&path, text).unwrap();
        let twice = CliError::Store(Error::keys(
            &path.display().to_string(),
            heare_auth_core::Error::DuplicateId { id: "key_t".into() },
        ));
        let limit = heare_auth_core::RateLimit::parse("1/1s").ok();
        let edits: [(&str, Result<(), CliError>); 6] = [
            ("delete", delete(&store, "key_t").map(drop)),
            (
                "disable",
                set_disabled(&store, "key_t", true, NOW, BOB).map(drop),
            ),
            (
                "enable",
                set_disabled(&store, "key_t", false, NOW, BOB).map(drop),
            ),
            (
                "rotate",
                rotate(
                    &store,
                    "key_t",
                    HOUR,
                    NOW,
                    BOB,
                    &Prefix::secret(),
                    &mut OsRng,
                )
                .map(drop),
            ),
            (
                "set-rate-limit",
                set_rate_limit(&store, "key_t", limit, NOW, BOB).map(drop),
            ),
            ("show", show(&store, "key_t").map(drop)),
        ];
        for (command, result) in edits {
            assert_eq!(result, Err(twice.clone()), "{command}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{command}");
        }
    }
}
