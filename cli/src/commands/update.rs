//! `update`: a pure edit of a key's name, metadata, scopes, expiry and credits, applied by
//! [`edit_key`]; applied twice, it finds nothing left to do. Everything else about the key is
//! kept.

use heare_auth_core::{with_changes, Changes, KeyRecord, UnixMillis};
use heare_auth_store::Store;

use super::edit::edit_key;
use super::metadata_of;
use crate::cmd::{NewExpiry, UpdateArgs};
use crate::CliError;

/// A key after `update`.
#[derive(Debug)]
pub struct Updated {
    /// The key as it now is.
    pub record: KeyRecord,
    /// The fields this command changed, in the order `name`, `metadata`, `scopes`,
    /// `expires_at`, `credits`; empty: the key already was as asked.
    pub changed: Vec<&'static str>,
}

/// Updates the fields `args` gives of the key `args.id` at `now`. Metadata is checked as
/// `create` checks it before anything is read or written. Credits given are set from `now`,
/// which starts their count again, even when they are the ones the key has.
pub fn update(
    store: &Store,
    args: &UpdateArgs,
    now: UnixMillis,
    actor: &str,
) -> Result<Updated, CliError> {
    let changes = Changes {
        name: args.name.clone(),
        metadata: args.metadata.as_deref().map(metadata_of).transpose()?,
        scopes: args.scopes.clone(),
        expires_at: args.expires.as_ref().map(|e| match e {
            NewExpiry::At(at) => Some(at.timestamp(now)),
            NewExpiry::Never => None,
        }),
        rate_limit: None,
        credits: args.credits.map(|c| c.map(|c| c.at(now))),
    };
    let mut fields = Vec::new();
    let edited = edit_key(store, &args.id, |record| {
        // Applied again to its own write read back, it returns above: `fields` keeps what the
        // write changed.
        let (edited, changed) = with_changes(record, &changes, now, actor)?;
        fields = changed;
        Some(edited)
    })?;
    Ok(Updated {
        record: edited.record,
        changed: if edited.changed { fields } else { Vec::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{CreateArgs, Expiry};
    use crate::commands::tests::{args, store, ACTOR, NOW};
    use crate::commands::{create, show};
    use heare_auth_core::{format_timestamp, Code, KeySet, Prefixes};
    use heare_auth_store::Error;
    use rand_core::OsRng;

    const BOB: &str = "bob@build-02";

    fn nothing(id: &str) -> UpdateArgs {
        UpdateArgs {
            no_refresh: true,
            ..UpdateArgs::of(id)
        }
    }

    #[test]
    fn each_field_changes_alone_and_the_secret_still_verifies() {
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
        let a = UpdateArgs {
            name: Some("Billing service".into()),
            scopes: Some(vec!["admin".into()]),
            ..nothing(id)
        };
        let updated = update(&store, &a, later, BOB).unwrap();
        assert_eq!(updated.changed, ["name", "scopes"]);
        let expected = KeyRecord {
            name: "Billing service".into(),
            scopes: Some(vec!["admin".into()]),
            updated_at: Some(format_timestamp(later)),
            updated_by: Some(BOB.into()),
            ..created.record.clone()
        };
        assert_eq!(updated.record, expected);
        assert_eq!(show(&store, id).unwrap(), expected);

        let a = UpdateArgs {
            metadata: Some(r#"{ "team": "billing", "n": 1.50 }"#.into()),
            expires: Some(NewExpiry::Never),
            ..nothing(id)
        };
        let updated = update(&store, &a, later, BOB).unwrap();
        assert_eq!(updated.changed, ["metadata", "expires_at"]);
        assert_eq!(
            updated.record.metadata.get(),
            r#"{"team":"billing","n":1.50}"#
        );
        assert_eq!(updated.record.expires_at, None);

        let (set, _) = KeySet::from_json(&std::fs::read(&path).unwrap()).unwrap();
        let far = NOW + 10 * 3_600_000;
        let outcome = set.verify(&created.secret, far, &["admin"]);
        let key = outcome.valid_key().unwrap();
        assert_eq!(
            (key.name(), key.metadata_json()),
            ("Billing service", r#"{"team":"billing","n":1.50}"#)
        );
        assert_eq!(
            set.verify(&created.secret, far, &["read"]).code(),
            Code::InsufficientScope
        );
    }

    #[test]
    fn an_expiry_is_set_from_now_or_at_an_instant() {
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
        let ttl = UpdateArgs {
            expires: Some(NewExpiry::At(Expiry::After(7_200_000))),
            ..nothing(id)
        };
        let later = NOW + 5000;
        let updated = update(&store, &ttl, later, BOB).unwrap();
        assert_eq!(
            updated.record.expires_at,
            Some(format_timestamp(later + 7_200_000))
        );
        let at = UpdateArgs {
            expires: Some(NewExpiry::At(Expiry::At(1_801_353_600_000))),
            ..nothing(id)
        };
        let updated = update(&store, &at, later, BOB).unwrap();
        assert_eq!(
            updated.record.expires_at.as_deref(),
            Some("2027-01-31T00:00:00.000000Z")
        );
    }

    #[test]
    fn credits_are_set_from_now_set_again_restart_and_are_removed() {
        use crate::cmd::NewCredits;
        use heare_auth_core::{Credits, Refill};
        let (store, path, _dir) = store();
        let daily = NewCredits {
            amount: 1000,
            refill: Refill::parse("1000/day").ok(),
        };
        let created = create(
            &store,
            &CreateArgs {
                credits: Some(daily),
                ..args("A")
            },
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let id = &created.record.id;
        assert_eq!(created.record.credits, Some(daily.at(NOW)));
        let text = std::fs::read_to_string(&path).unwrap();
        let stored = format!(
            "\"credits\": {{\n        \"amount\": 1000,\n        \"refill\": {{\n          \"amount\": 1000,\n          \"every\": \"day\"\n        }},\n        \"since\": \"{}\"\n      }}",
            format_timestamp(NOW)
        );
        assert!(text.contains(&stored), "{text}");
        let (set, _) = KeySet::from_json(text.as_bytes()).unwrap();
        assert_eq!(set.keys().next().unwrap().credits(), Some(daily.at(NOW)));

        // The same credits again are set all the same: from now, a new count.
        let again = UpdateArgs {
            credits: Some(Some(daily)),
            ..nothing(id)
        };
        let later = NOW + 60_000;
        let updated = update(&store, &again, later, BOB).unwrap();
        assert_eq!(updated.changed, ["credits"]);
        assert_eq!(updated.record.credits, Some(daily.at(later)));
        let once = NewCredits {
            amount: 5,
            refill: None,
        };
        let a = UpdateArgs {
            name: Some("B".into()),
            credits: Some(Some(once)),
            ..nothing(id)
        };
        let updated = update(&store, &a, later + 1, BOB).unwrap();
        assert_eq!(updated.changed, ["name", "credits"]);
        assert_eq!(
            show(&store, id).unwrap().credits,
            Some(Credits {
                amount: 5,
                refill: None,
                since: later + 1
            })
        );

        let remove = UpdateArgs {
            credits: Some(None),
            ..nothing(id)
        };
        let updated = update(&store, &remove, later + 2, BOB).unwrap();
        assert_eq!(
            (updated.changed, updated.record.credits),
            (vec!["credits"], None)
        );
        assert!(!std::fs::read_to_string(&path).unwrap().contains("credits"));
        let bytes = std::fs::read(&path).unwrap();
        let updated = update(&store, &remove, later + 3, BOB).unwrap();
        assert!(updated.changed.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn the_values_a_key_already_has_write_nothing() {
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
        let bytes = std::fs::read(&path).unwrap();
        let same = UpdateArgs {
            name: Some("A".into()),
            metadata: Some(r#"{"team":  "core"}"#.into()),
            scopes: Some(vec!["read".into(), "write".into()]),
            ..nothing(id)
        };
        let updated = update(&store, &same, NOW + 1, BOB).unwrap();
        assert!(updated.changed.is_empty());
        assert_eq!(updated.record, created.record);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn everything_else_is_kept_unknown_fields_included() {
        let (store, path, _dir) = store();
        let original = r#"{"keys": [{"id": "key_a", "secret_hash": "00000000000000000000000000000000000000000000000000000000000000aa", "name": "Old", "rate_limit": {"requests": 5, "per_seconds": 60}, "disabled": true, "created_by": "ann", "future": {"x": [1, 2]}}]}"#;
        std::fs::write(&path, original).unwrap();
        let before = show(&store, "key_a").unwrap();
        let a = UpdateArgs {
            name: Some("New".into()),
            ..nothing("key_a")
        };
        let updated = update(&store, &a, NOW, BOB).unwrap();
        assert_eq!(
            updated.record,
            KeyRecord {
                name: "New".into(),
                updated_at: Some(format_timestamp(NOW)),
                updated_by: Some(BOB.into()),
                ..before
            }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""future": {"x": [1, 2]}"#), "{text}");
    }

    #[test]
    fn bad_metadata_an_unknown_id_or_a_duplicate_write_nothing() {
        let (store, path, _dir) = store();
        let gone = CliError::NotFound("key_nope".into());
        let rename = |id: &str| UpdateArgs {
            name: Some("X".into()),
            ..nothing(id)
        };
        assert_eq!(
            update(&store, &rename("key_nope"), NOW, BOB).unwrap_err(),
            gone
        );
        assert!(!path.exists());
        let created = create(
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
            update(&store, &rename("key_nope"), NOW, BOB).unwrap_err(),
            gone
        );
        for (bad, want) in [
            ("[1]", CliError::MetadataNotObject("an array")),
            ("null", CliError::MetadataNotObject("null")),
        ] {
            let a = UpdateArgs {
                metadata: Some(bad.into()),
                ..nothing(&created.record.id)
            };
            assert_eq!(update(&store, &a, NOW, BOB).unwrap_err(), want);
        }
        let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
        let a = UpdateArgs {
            metadata: Some(deep),
            ..nothing(&created.record.id)
        };
        assert!(matches!(
            update(&store, &a, NOW, BOB).unwrap_err(),
            CliError::MetadataTooBig(_)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        let twice = r#"{"keys": [{"id": "key_t", "secret": "sec_first", "name": "First"},
  {"id": "key_t", "secret": "sec_second", "name": "Second"}]}"#;
        std::fs::write(&path, twice).unwrap();
        assert_eq!(
            update(&store, &rename("key_t"), NOW, BOB).unwrap_err(),
            CliError::Store(Error::keys(
                &path.display().to_string(),
                heare_auth_core::Error::DuplicateId { id: "key_t".into() },
            ))
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), twice);
    }
}
