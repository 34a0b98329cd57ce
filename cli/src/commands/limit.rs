//! `set-rate-limit`: a pure edit of one key's rate limit, applied by [`edit_key`]; applied
//! twice, it finds nothing left to do.

use heare_auth_core::{with_changes, Changes, RateLimit, UnixMillis};
use heare_auth_store::Store;

use super::edit::{edit_key, Toggled};
use crate::CliError;

/// Sets a key's rate limit (`None`: removes it) at `now`; a key that already has it is left as
/// it is.
pub fn set_rate_limit(
    store: &Store,
    id: &str,
    limit: Option<RateLimit>,
    now: UnixMillis,
    actor: &str,
) -> Result<Toggled, CliError> {
    let changes = Changes {
        rate_limit: Some(limit),
        ..Changes::default()
    };
    edit_key(store, id, |record| {
        with_changes(record, &changes, now, actor).map(|(edited, _)| edited)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::{args, store, ACTOR, NOW};
    use crate::commands::{create, show};
    use heare_auth_core::{format_timestamp, KeyRecord, KeySet, Prefixes};
    use rand_core::OsRng;

    fn limit(text: &str) -> Option<RateLimit> {
        Some(RateLimit::parse(text).unwrap())
    }

    #[test]
    fn create_stores_a_limit_the_verifier_reads() {
        let (store, path, _dir) = store();
        let mut a = args("A");
        a.rate_limit = limit("100/60s");
        let created = create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"rate_limit\": {\n        \"requests\": 100,\n        \"per_seconds\": 60\n      },"),
            "{text}"
        );
        let (set, _) = KeySet::from_json(text.as_bytes()).unwrap();
        let key = set.keys().next().unwrap();
        assert_eq!(key.rate_limit(), limit("100/60s"));
        assert_eq!(
            show(&store, &created.record.id).unwrap().rate_limit,
            limit("100/60s")
        );
    }

    #[test]
    fn set_changes_removes_and_is_idempotent() {
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

        let set = set_rate_limit(&store, id, limit("10/500ms"), later, "bob").unwrap();
        assert!(set.changed);
        let expected = KeyRecord {
            rate_limit: limit("10/500ms"),
            updated_at: Some(format_timestamp(later)),
            updated_by: Some("bob".into()),
            ..created.record.clone()
        };
        assert_eq!(set.record, expected);
        assert_eq!(show(&store, id).unwrap(), expected);
        let (keys, _) = KeySet::from_json(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(keys.keys().next().unwrap().rate_limit(), limit("10/500ms"));

        // The same limit again: nothing written, not even who changed it last.
        let bytes = std::fs::read(&path).unwrap();
        let again = set_rate_limit(&store, id, limit("10/500ms"), later + 1, ACTOR).unwrap();
        assert!(!again.changed);
        assert_eq!(again.record, expected);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        let removed = set_rate_limit(&store, id, None, later + 2, ACTOR).unwrap();
        assert!(removed.changed);
        assert_eq!(removed.record.rate_limit, None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("rate_limit"), "{text}");
        let bytes = text.into_bytes();
        assert!(
            !set_rate_limit(&store, id, None, later + 3, "bob")
                .unwrap()
                .changed
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_limit_written_otherwise_is_the_same_limit() {
        let (store, path, _dir) = store();
        let original = r#"{"keys": [{"id": "key_a", "secret": "sec_a", "rate_limit": {"per_seconds": 60.0, "requests": 5}}]}"#;
        std::fs::write(&path, original).unwrap();
        let same = set_rate_limit(&store, "key_a", limit("5/1m"), NOW, ACTOR).unwrap();
        assert!(!same.changed);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    }

    #[test]
    fn an_unknown_id_is_not_found_and_writes_nothing() {
        let (store, path, _dir) = store();
        let gone = CliError::NotFound("key_nope".into());
        assert_eq!(
            set_rate_limit(&store, "key_nope", limit("1/1s"), NOW, ACTOR).unwrap_err(),
            gone
        );
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
            set_rate_limit(&store, "key_nope", None, NOW, ACTOR).unwrap_err(),
            gone
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
