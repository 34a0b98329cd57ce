//! Loading and verification tests for [`KeySet`].

use super::*;
use crate::{Outcome, Status};

const NOT_FOUND: &str = r#"{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}"#;
const EXPIRED: &str = r#"{"valid":false,"error":"Invalid API key","code":"EXPIRED"}"#;
/// No scopes demanded.
const ANY: &[&str] = &[];

const NOW: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z
const ABC_HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn load(json: &str) -> Result<(KeySet, Vec<Warning>), Error> {
    KeySet::from_json(json.as_bytes())
}

fn body(set: &KeySet, secret: &str, now: UnixMillis) -> String {
    set.verify(secret, now, ANY).to_json()
}

#[test]
fn verifies_a_legacy_plaintext_file_from_the_original() {
    let (set, warnings) = load(
        r#"{"keys": [
          {"id": "key_0Va1", "secret": "sec_0Va1legacy", "name": "Legacy",
           "created_at": "2025-01-02T03:04:05.123456Z", "metadata": {"team": "core", "n": [1, 2]}},
          {"id": "key_0Va2", "secret": "sec_0Va2legacy", "name": "Old", "created_at": "2025-01-02T03:04:05"}
        ]}"#,
    )
    .unwrap();
    assert!(warnings.is_empty());
    assert_eq!(set.len(), 2);
    assert_eq!(
        body(&set, "sec_0Va1legacy", NOW),
        r#"{"valid":true,"key_id":"key_0Va1","name":"Legacy","metadata":{"team":"core","n":[1,2]},"code":"VALID","scopes":[],"expires_at":null}"#
    );
    assert_eq!(
        body(&set, "sec_0Va2legacy", NOW),
        r#"{"valid":true,"key_id":"key_0Va2","name":"Old","metadata":{},"code":"VALID","scopes":[],"expires_at":null}"#
    );
    assert_eq!(body(&set, "sec_0Va1legac", NOW), NOT_FOUND);
    assert_eq!(body(&set, "", NOW), NOT_FOUND);
}

#[test]
fn hashed_and_mixed_entries_verify() {
    let (set, _) = load(&format!(
        r#"{{"keys": [{{"id": "h", "secret_hash": "{ABC_HASH}", "name": "Hashed", "metadata": null}},
                     {{"id": "p", "secret": "plain", "name": "Plain", "expires_at": null}}]}}"#
    ))
    .unwrap();
    assert_eq!(
        set.verify("abc", NOW, ANY).valid_key().map(Key::id),
        Some("h")
    );
    assert_eq!(
        set.verify("plain", NOW, ANY).valid_key().map(Key::id),
        Some("p")
    );
    assert_eq!(
        set.verify(ABC_HASH, NOW, ANY).valid_key().map(Key::id),
        None
    );
}

#[test]
fn expiry_edges() {
    let (set, warnings) = load(
        r#"{"keys": [
          {"id": "z", "secret": "s-z", "expires_at": "2026-11-25T01:17:14.316Z"},
          {"id": "o", "secret": "s-o", "expires_at": "2026-11-25T03:17:14.316+02:00"},
          {"id": "d", "secret": "s-d", "expires_at": "2026-11-26"},
          {"id": "n", "secret": "s-n", "expires_at": "2026-11-25T01:17:14.315"},
          {"id": "bad", "secret": "s-bad", "expires_at": "next tuesday"}
        ]}"#,
    )
    .unwrap();
    // Valid up to and including the instant of expiry, as the original compared (now > expiry).
    assert!(set.verify("s-z", NOW, ANY).valid_key().is_some());
    assert!(matches!(set.verify("s-z", NOW + 1, ANY), Outcome::Expired(k) if k.id() == "z"));
    assert!(set.verify("s-o", NOW, ANY).valid_key().is_some());
    assert!(set.verify("s-o", NOW + 1, ANY).valid_key().is_none());
    assert!(set.verify("s-d", NOW, ANY).valid_key().is_some());
    assert!(set
        .verify("s-d", 1_795_651_200_001, ANY)
        .valid_key()
        .is_none());
    assert!(matches!(set.verify("s-n", NOW, ANY), Outcome::Expired(_)));
    // Unparseable expiry fails closed, even at the dawn of time, and is reported.
    assert!(matches!(set.verify("s-bad", 0, ANY), Outcome::Expired(_)));
    assert_eq!(body(&set, "s-bad", 0), EXPIRED);
    assert_eq!(
        warnings,
        vec![Warning::UnparseableExpiry {
            id: "bad".into(),
            value: "next tuesday".into()
        }]
    );
}

#[test]
fn unicode_and_escapes_round_trip_in_the_body() {
    let (set, _) = load(
        r#"{"keys": [{"id": "k\"1", "secret": "s", "name": "Zoë \\ ✓ 🔑",
                      "metadata": {"note": "line\nbreak", "emoji": "🔑", "sp ace": " a  b "}}]}"#,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body(&set, "s", NOW)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"valid": true, "key_id": "k\"1", "name": "Zoë \\ ✓ 🔑",
            "metadata": {"note": "line\nbreak", "emoji": "🔑", "sp ace": " a  b "},
            "code": "VALID", "scopes": [], "expires_at": null})
    );
}

#[test]
fn rejections_name_the_key_and_field() {
    let cases = [
        (
            r#"{"keys": [{"id": "a", "secret": "x"},]}"#,
            "invalid JSON at line 1, column 38: trailing comma",
        ),
        (
            r#"{"kees": []}"#,
            "invalid JSON at line 1, column 12: missing field `keys`",
        ),
        (
            "",
            "invalid JSON at line 1, column 1: expected an object with a `keys` array",
        ),
        (
            r#"[]"#,
            "invalid JSON at line 1, column 1: expected an object with a `keys` array",
        ),
        (
            r#"{"keys": [{"secret": "x"}]}"#,
            "key keys[0]: missing field `id`",
        ),
        (
            r#"{"keys": [{"id": "", "secret": "x"}]}"#,
            "key keys[0]: field `id` is empty",
        ),
        (
            r#"{"keys": [{"id": "a", "name": "A"}]}"#,
            "key a: missing field `secret_hash`",
        ),
        (
            r#"{"keys": [{"id": "a", "secret": ""}]}"#,
            "key a: field `secret` is empty",
        ),
        (
            r#"{"keys": [{"id": "a", "secret_hash": "abc"}]}"#,
            "key a: field `secret_hash` is not 64 hex digits (SHA-256)",
        ),
        (
            r#"{"keys": [{"id": "a", "secret": "x", "secret_hash": "00000000000000000000000000000000000000000000000000000000000000ff"}]}"#,
            "key a: field `secret_hash` does not match `secret`",
        ),
        (
            r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}"#,
            "duplicate key id a",
        ),
        (
            r#"{"keys": [{"id": "a", "secret": "abc"}, {"id": "b", "secret_hash": "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}]}"#,
            "keys a and b have the same secret",
        ),
        (
            r#"{"keys": [{"id": 7, "secret": "x"}]}"#,
            "invalid JSON at line 1, column 18: invalid type: integer `7`, expected a string",
        ),
    ];
    for (json, want) in cases {
        match load(json) {
            Ok(_) => panic!("accepted {json}"),
            Err(e) => assert_eq!(e.to_string(), want, "{json}"),
        }
    }
    assert_eq!(
        load(r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}"#).err(),
        Some(Error::DuplicateId { id: "a".into() })
    );
}

#[test]
fn errors_never_contain_the_secret() {
    let secret = "sec_0VbwYMJgTOPSECRET";
    for json in [
        format!(
            r#"{{"keys": [{{"id": "a", "secret": "{secret}"}}, {{"id": "b", "secret": "{secret}"}}]}}"#
        ),
        format!(
            r#"{{"keys": [{{"id": "a", "secret": "{secret}", "secret_hash": "{ABC_HASH}"}}]}}"#
        ),
        format!(r#"{{"keys": [{{"secret": "{secret}"}}]}}"#),
    ] {
        let e = load(&json).err().unwrap();
        assert!(!e.to_string().contains("TOPSECRET"), "{e}");
        assert!(!format!("{e:?}").contains("TOPSECRET"), "{e:?}");
    }
}

#[test]
fn empty_file_has_no_keys() {
    let (set, _) = load(r#"{"keys": []}"#).unwrap();
    assert!(set.is_empty());
    assert_eq!(body(&set, "anything", NOW), NOT_FOUND);
}

#[test]
fn many_keys_all_verify() {
    let mut json = String::from(r#"{"keys": ["#);
    for i in 0..5000 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            r#"{{"id": "key_{i}", "secret_hash": "{}", "name": "n{i}"}}"#,
            hash_secret(&format!("sec_{i}"))
        ));
    }
    json.push_str("]}");
    let (set, _) = load(&json).unwrap();
    for i in (0..5000).step_by(7) {
        assert_eq!(
            set.verify(&format!("sec_{i}"), NOW, ANY)
                .valid_key()
                .map(Key::id),
            Some(format!("key_{i}").as_str())
        );
    }
    assert_eq!(set.keys().count(), 5000);
}

#[test]
fn scopes_are_all_of_and_in_the_body() {
    let (set, _) = load(
        r#"{"keys": [{"id": "k", "secret": "s", "scopes": ["read", "keys:write"], "expires_at": "2999-12-31"}]}"#,
    )
    .unwrap();
    assert_eq!(
        set.verify("s", NOW, &["keys:write", "read"]).to_json(),
        r#"{"valid":true,"key_id":"k","name":"","metadata":{},"code":"VALID","scopes":["read","keys:write"],"expires_at":"2999-12-31T00:00:00.000000Z"}"#
    );
    let lacking = set.verify("s", NOW, &["read", "admin"]);
    assert!(matches!(lacking, Outcome::InsufficientScope(k) if k.id() == "k"));
    assert_eq!(
        lacking.to_json(),
        r#"{"valid":false,"error":"Insufficient scope","code":"INSUFFICIENT_SCOPE"}"#
    );
    for bad in [r#""read""#, r#"[1]"#, r#"["a b"]"#, r#"[""]"#, r#"["x,y"]"#] {
        let json = format!(r#"{{"keys": [{{"id": "k", "secret": "s", "scopes": {bad}}}]}}"#);
        let err = load(&json).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidField { key, field: "scopes", .. } if key == "k"),
            "{bad}: {err}"
        );
    }
    let (set, _) = load(r#"{"keys": [{"id": "k", "secret": "s", "scopes": null}]}"#).unwrap();
    assert!(set.verify("s", NOW, ANY).valid_key().is_some());
    assert!(matches!(
        set.verify("s", NOW, &["read"]),
        Outcome::InsufficientScope(_)
    ));
}

#[test]
fn a_disabled_key_is_refused_first() {
    let (set, _) = load(
        r#"{"keys": [{"id": "d", "secret": "s", "disabled": true, "expires_at": "2020-01-01", "scopes": []},
                     {"id": "e", "secret": "t", "disabled": false}]}"#,
    )
    .unwrap();
    let outcome = set.verify("s", NOW, &["read"]);
    assert!(matches!(outcome, Outcome::Disabled(k) if k.id() == "d"));
    assert_eq!(
        outcome.to_json(),
        r#"{"valid":false,"error":"Invalid API key","code":"DISABLED"}"#
    );
    assert!(set.verify("t", NOW, ANY).valid_key().is_some());
}

#[test]
fn a_previous_secret_verifies_until_its_grace_ends_to_the_millisecond() {
    let new = hash_secret("sec_new").to_hex();
    let old = hash_secret("sec_old").to_hex();
    let (set, warnings) = load(&format!(
        r#"{{"keys": [{{"id": "k", "secret_hash": "{new}", "name": "K", "scopes": ["read"],
                        "previous_secret_hash": "{old}", "previous_expires_at": "2026-11-25T01:17:14.316Z"}}]}}"#
    ))
    .unwrap();
    assert!(warnings.is_empty());
    let id = |o: Outcome| o.valid_key().map(|k| k.id().to_string());
    assert_eq!(id(set.verify("sec_old", NOW, &["read"])), Some("k".into()));
    assert_eq!(
        set.verify("sec_old", NOW, ANY).to_json(),
        set.verify("sec_new", NOW, ANY).to_json()
    );
    assert!(matches!(
        set.verify("sec_old", NOW + 1, ANY),
        Outcome::NotFound
    ));
    assert_eq!(id(set.verify("sec_new", NOW + 1, ANY)), Some("k".into()));
    assert!(matches!(
        set.verify("sec_old", NOW, &["write"]),
        Outcome::InsufficientScope(_)
    ));
    assert_eq!(set.keys().next().unwrap().status(NOW), Status::Rotating);
    assert_eq!(set.keys().next().unwrap().status(NOW + 1), Status::Active);
}

#[test]
fn previous_secrets_are_checked_like_secrets() {
    let a = hash_secret("a").to_hex();
    let b = hash_secret("b").to_hex();
    let file = |previous: &str, until: &str| {
        format!(
            r#"{{"keys": [{{"id": "one", "secret_hash": "{a}"}},
                         {{"id": "two", "secret_hash": "{b}", "previous_secret_hash": "{previous}"{until}}}]}}"#
        )
    };
    let until = r#", "previous_expires_at": "2030-01-01""#;
    assert_eq!(
        load(&file(&a, until)).err(),
        Some(Error::DuplicateSecret {
            first: "one".into(),
            second: "two".into()
        })
    );
    assert_eq!(
        load(&file(&b, until)).err(),
        Some(Error::DuplicateSecret {
            first: "two".into(),
            second: "two".into()
        })
    );
    assert_eq!(
        load(&file(&hash_secret("c").to_hex(), "")).err(),
        Some(Error::MissingField {
            key: "two".into(),
            field: "previous_expires_at"
        })
    );
    assert!(matches!(
        load(&file("nothex", until)).err(),
        Some(Error::InvalidField {
            field: "previous_secret_hash",
            ..
        })
    ));
    let (set, warnings) = load(&file(
        &hash_secret("c").to_hex(),
        r#", "previous_expires_at": "later""#,
    ))
    .unwrap();
    assert_eq!(
        warnings,
        [Warning::UnparseablePreviousExpiry {
            id: "two".into(),
            value: "later".into()
        }]
    );
    assert!(matches!(set.verify("c", 0, ANY), Outcome::NotFound));
}

#[test]
fn a_paced_load_calls_its_pace_throughout_and_loads_the_same_set() {
    let records: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"id": "k{i}", "secret": "s{i}", "metadata": {{"n": {i}}}}}"#))
        .collect();
    let json = format!(r#"{{"keys": [{}]}}"#, records.join(","));
    let mut paces = 0;
    let (paced, _) = KeySet::from_json_paced(json.as_bytes(), &mut || paces += 1).unwrap();
    let (plain, _) = load(&json).unwrap();
    // Before each of the 300 records and the array's end, and every 64 keys of each of the
    // two indexes.
    assert_eq!(paces, 301 + 2 * 5);
    assert!(paced.keys().eq(plain.keys()));
    assert_eq!(body(&paced, "s7", NOW), body(&plain, "s7", NOW));
    // An error is the same too.
    let broken = json.replace(r#""id": "k7", "#, "");
    assert_eq!(
        KeySet::from_json_paced(broken.as_bytes(), &mut || {}).err(),
        load(&broken).err()
    );
}

/// A record whose `field` holds `value` (JSON text), with whatever else it needs to load.
fn with_field(field: &str, value: &str) -> String {
    let rest = match field {
        "secret" => String::new(),
        "previous_secret_hash" => {
            r#", "secret": "s", "previous_expires_at": "2030-01-01T00:00:00Z""#.into()
        }
        _ => r#", "secret": "s""#.into(),
    };
    format!(r#"{{"keys": [{{"id": "a", "{field}": {value}{rest}}}]}}"#)
}

#[test]
fn a_secret_or_hash_of_another_type_is_refused_without_its_value() {
    let values = [
        "98765432101234",
        "-98765432101234",
        "98765432101234.5",
        "98765432101234567890123456789",
        "[98765432101234, \"98765TOPSECRET\"]",
        r#"{"98765": "98765TOPSECRET"}"#,
        "true",
    ];
    for field in ["secret", "secret_hash", "previous_secret_hash"] {
        for value in values {
            let json = with_field(field, value);
            let e = load(&json).err().unwrap();
            let Error::Json { message, .. } = &e else {
                panic!("{json}: {e:?}");
            };
            assert_eq!(
                message,
                &format!("invalid type for field `{field}`: expected a string"),
                "{json}"
            );
            let checked = KeySet::check(json.as_bytes());
            assert_eq!(checked.errors.first().map(|c| &c.error), Some(&e));
            let record = serde_json::from_str::<crate::KeyRecord>(&json[10..json.len() - 2]);
            let shown = format!("{e} {e:?} {checked:?} {:?}", record.map(|r| r.id));
            assert!(
                !shown.contains("98765") && !shown.contains("true"),
                "{shown}"
            );
        }
    }
}

#[test]
fn a_long_hash_that_is_not_one_is_refused_without_its_value() {
    let long = format!("\"{}\"", "98765".repeat(2_000));
    for field in ["secret_hash", "previous_secret_hash"] {
        let e = load(&with_field(field, &long)).err().unwrap();
        assert_eq!(
            e,
            Error::InvalidField {
                key: "a".into(),
                field: if field == "secret_hash" {
                    "secret_hash"
                } else {
                    "previous_secret_hash"
                },
                reason: "is not 64 hex digits (SHA-256)".into()
            }
        );
        assert!(!format!("{e} {e:?}").contains("98765"));
    }
}

#[test]
fn metadata_past_its_bounds_is_refused_naming_key_field_bound_and_size() {
    let nested = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
    let file = |metadata: &str| {
        format!(r#"{{"keys": [{{"id": "k", "secret": "s", "metadata": {metadata}}}]}}"#)
    };
    assert!(load(&file(&nested(crate::MAX_METADATA_DEPTH))).is_ok());
    let deep = load(&file(&nested(100_000))).err().unwrap();
    assert_eq!(
        deep,
        Error::MetadataTooLarge {
            key: "k".into(),
            field: "metadata",
            bound: crate::MetadataBound::Depth,
            limit: 32,
            found: 100_000
        }
    );
    assert_eq!(
        deep.to_string(),
        "key k: field `metadata` is nested 100000 levels deep; at most 32 levels are allowed"
    );
    let big = format!(r#"{{"a": "{}"}}"#, "x".repeat(crate::MAX_METADATA_BYTES));
    let e = load(&file(&big)).err().unwrap();
    assert_eq!(
        e,
        Error::MetadataTooLarge {
            key: "k".into(),
            field: "metadata",
            bound: crate::MetadataBound::Bytes,
            limit: 16_384,
            found: 16_392
        }
    );
    assert_eq!(
        KeySet::check(file(&big).as_bytes()).errors[0].error,
        e,
        "the checker reports it as the loader does"
    );
}

#[test]
fn ids_and_values_in_errors_and_warnings_show_their_control_characters() {
    let twice = "{\"keys\": [{\"id\": \"a\\u001b[2J\", \"secret\": \"x\"}, {\"id\": \"a\\u001b[2J\", \"secret\": \"y\"}]}";
    assert_eq!(
        load(twice).err().unwrap().to_string(),
        "duplicate key id a\\x1b[2J"
    );
    let (_, warnings) =
        load("{\"keys\": [{\"id\": \"b\\n\", \"secret\": \"x\", \"expires_at\": \"\\u202e1\"}]}")
            .unwrap();
    assert_eq!(
        warnings[0].to_string(),
        "key b\\n: expires_at '\\u{202e}1' is not a timestamp; the key is treated as expired"
    );
}

#[test]
fn a_wrong_checksum_is_refused_before_lookup_as_an_unknown_key_is() {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let own = crate::Prefix::parse("SECRET_PREFIX", "amp_live_").unwrap();
    let new = crate::generate_secret(&crate::Prefix::secret(), &mut rng, NOW);
    let theirs = crate::generate_secret(&own, &mut rng, NOW);
    let earlier = "sec_00VbwYMJgq7M3AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlM";
    let legacy = "sec_N3J8dNcKZqg-7bXk_Tr2f3fQh4Gf9t2vQxk3oXa1vQ0";
    let hash = |s: &str| hash_secret(s).to_hex();
    let (set, _) = load(&format!(
        r#"{{"keys": [{{"id": "new", "secret_hash": "{}"}}, {{"id": "theirs", "secret_hash": "{}"}},
                     {{"id": "earlier", "secret_hash": "{}"}}, {{"id": "legacy", "secret": "{legacy}"}}]}}"#,
        hash(&new),
        hash(&theirs),
        hash(earlier)
    ))
    .unwrap();
    let id = |s: &str| {
        set.verify(s, NOW, ANY)
            .valid_key()
            .map(|k| k.id().to_string())
    };
    assert_eq!(id(&new).as_deref(), Some("new"));
    assert_eq!(id(&theirs).as_deref(), Some("theirs"));
    assert_eq!(id(earlier).as_deref(), Some("earlier"));
    assert_eq!(id(legacy).as_deref(), Some("legacy"));

    let last = new.len() - 1;
    let typo = format!(
        "{}{}",
        &new[..last],
        if new.ends_with('x') { 'y' } else { 'x' }
    );
    let digit = new.replacen("sec_10", "sec_11", 1);
    let unknown = crate::generate_secret(&own, &mut rng, NOW);
    for wrong in [typo.as_str(), &digit] {
        let outcome = set.verify(wrong, NOW, ANY);
        assert!(matches!(outcome, Outcome::BadChecksum), "{wrong}");
        assert_eq!(outcome.reason(), Some("checksum"));
        assert_eq!(outcome.code(), crate::Code::NotFound);
        assert!(outcome.key().is_none());
        // The answer is an unknown key's, byte for byte.
        assert_eq!(outcome.to_json(), NOT_FOUND);
    }
    let outcome = set.verify(&unknown, NOW, ANY);
    assert!(matches!(outcome, Outcome::NotFound));
    assert_eq!(outcome.reason(), Some("not_found"));
    assert_eq!(outcome.to_json(), NOT_FOUND);
}
