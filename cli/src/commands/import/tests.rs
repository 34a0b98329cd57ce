//! `import` on real stores in temporary directories: each format, each encoding of a hash,
//! every refusal naming the key by its place, and the clashes with the store.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use heare_auth_core::{hash_secret, Code, Prefixes};
use rand_core::OsRng;

use super::*;
use crate::commands::secrets::tests::{code, legacy, named};
use crate::commands::tests::{args, list, store, ACTOR, NOW};
use crate::commands::{create, show};

/// The keys of `text` read as `format`, from `b.FORMAT`.
fn read(format: ImportFormat, text: &str) -> Result<Incoming, CliError> {
    read_import(&file_of(format), text.as_bytes(), format)
}

fn file_of(format: ImportFormat) -> String {
    match format {
        ImportFormat::Json => "b.json",
        ImportFormat::JsonLines => "b.jsonl",
        ImportFormat::Csv => "b.csv",
    }
    .into()
}

/// The lines of the refusal of `text` read as `format`.
fn refusal(format: ImportFormat, text: &str) -> Vec<String> {
    match read(format, text) {
        Err(CliError::Unimportable { location, errors }) => {
            assert_eq!(location, file_of(format));
            errors
        }
        other => panic!("{text}: {other:?}"),
    }
}

/// The keys of `incoming` from the `from`th on.
fn part(incoming: &Incoming, from: usize) -> Incoming {
    Incoming {
        records: incoming.records[from..].to_vec(),
        places: incoming.places[from..].to_vec(),
        hashed: 0,
    }
}

/// Secrets as other systems issue them, none of them this format's.
const UNKEY: &str = "unkey_3ZbHxdQy9PbKXn1MgkAVfJf1";
const STRIPE: &str = "sk_live_51H8xQzLmNoPqRsTuVwXyZa0b1c2";
const PLAIN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

/// The same three keys in each format, their hashes in a different encoding each: base64
/// (padded, standard), base64 (unpadded, URL-safe) and uppercase hex.
fn three(format: ImportFormat) -> String {
    let (a, b, c) = (
        STANDARD.encode(hash_secret(UNKEY).0),
        URL_SAFE_NO_PAD.encode(hash_secret(STRIPE).0),
        hash_secret(PLAIN).to_hex().to_uppercase(),
    );
    match format {
        ImportFormat::Json => format!(
            r#"{{"keys": [
  {{"id": "key_unkey", "secret_hash": "{a}", "name": "Unkey, moved", "created_at": "2025-03-01T10:00:00Z", "scopes": ["read", "write"], "metadata": {{"team": "ops", "tier": 2}}}},
  {{"id": "key_stripe", "secret_hash": "{b}", "name": "Stripe \"live\"", "expires_at": "2030-01-01"}},
  {{"id": "key_plain", "secret_hash": "{c}"}}
]}}"#
        ),
        ImportFormat::JsonLines => format!(
            "{{\"id\": \"key_unkey\", \"secret_hash\": \"{a}\", \"name\": \"Unkey, moved\", \"created_at\": \"2025-03-01T10:00:00Z\", \"scopes\": [\"read\", \"write\"], \"metadata\": {{\"team\": \"ops\", \"tier\": 2}}}}\r\n\
             \n   \n\
             {{\"id\": \"key_stripe\", \"secret_hash\": \"{b}\", \"name\": \"Stripe \\\"live\\\"\", \"expires_at\": \"2030-01-01\"}}\n\
             {{\"id\": \"key_plain\", \"secret_hash\": \"{c}\"}}"
        ),
        ImportFormat::Csv => format!(
            "name,id,secret_hash,created_at,expires_at,scopes,metadata\r\n\
             \"Unkey, moved\",key_unkey,{a},2025-03-01T10:00:00Z,,\"read, write\",\"{{\"\"team\"\": \"\"ops\"\", \"\"tier\"\": 2}}\"\r\n\
             \"Stripe \"\"live\"\"\",key_stripe,{b},,2030-01-01,,\r\n\
             ,key_plain,{c},,,,\r\n"
        ),
    }
}

const FORMATS: [ImportFormat; 3] = [
    ImportFormat::Json,
    ImportFormat::JsonLines,
    ImportFormat::Csv,
];

#[test]
fn every_format_gives_the_same_keys_with_lowercase_hex_hashes_that_verify() {
    let mut seen: Vec<Vec<KeyRecord>> = Vec::new();
    for format in FORMATS {
        let incoming = read(format, &three(format)).unwrap();
        let records = incoming.records;
        assert_eq!(incoming.hashed, 0);
        let hashes: Vec<Option<String>> = records.iter().map(|r| r.secret_hash.clone()).collect();
        assert_eq!(
            hashes,
            [UNKEY, STRIPE, PLAIN].map(|s| Some(hash_secret(s).to_hex())),
            "{format:?}"
        );
        let a = &records[0];
        assert_eq!(
            (a.id.as_str(), a.name.as_str(), a.scope_list()),
            (
                "key_unkey",
                "Unkey, moved",
                &["read".to_string(), "write".into()][..]
            )
        );
        assert_eq!(a.created_at.as_deref(), Some("2025-03-01T10:00:00Z"));
        assert_eq!(
            a.compact_metadata().get(),
            r#"{"team":"ops","tier":2}"#,
            "{format:?}"
        );
        assert_eq!(records[1].name, "Stripe \"live\"");
        assert_eq!(records[1].expires_at.as_deref(), Some("2030-01-01"));
        assert_eq!(
            (records[2].name.as_str(), records[2].scopes.clone()),
            ("", None)
        );
        let places: Vec<&str> = incoming.places.iter().map(String::as_str).collect();
        assert_eq!(
            places,
            match format {
                ImportFormat::Json => ["keys[0]", "keys[1]", "keys[2]"],
                ImportFormat::JsonLines => ["line 1", "line 4", "line 5"],
                ImportFormat::Csv => ["line 2", "line 3", "line 4"],
            }
        );
        seen.push(records);
    }
    // Imported into a store, each verifies with its original secret, whatever its prefix.
    let (store, path, _dir) = store();
    let incoming = read(ImportFormat::Csv, &three(ImportFormat::Csv)).unwrap();
    import(&store, &incoming, true).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for secret in [UNKEY, STRIPE, PLAIN] {
        assert_eq!(code(&bytes, secret), Code::Valid, "{secret}");
    }
    assert_eq!(
        code(&bytes, "unkey_3ZbHxdQy9PbKXn1MgkAVfJf2"),
        Code::NotFound
    );
    let ids: Vec<String> = list(&store).unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["key_unkey", "key_stripe", "key_plain"]);
    // JSON keeps the metadata as written; the CSV cell was written the same way.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

#[test]
fn a_bare_json_array_is_a_list_of_keys() {
    let text = format!(
        r#"[{{"id": "key_a", "secret_hash": "{}"}}, {{"id": "key_b", "secret": "sec_TOPSECRET_b"}}]"#,
        STANDARD.encode(hash_secret(UNKEY).0)
    );
    let incoming = read(ImportFormat::Json, &text).unwrap();
    assert_eq!(incoming.places, ["[0]", "[1]"]);
    assert_eq!(incoming.hashed, 1);
    assert_eq!(
        incoming.records[0].secret_hash,
        Some(hash_secret(UNKEY).to_hex())
    );
    assert_eq!(
        refusal(
            ImportFormat::Json,
            &format!(r#"[{{"secret_hash": "{}"}}]"#, hash_secret(UNKEY).to_hex())
        ),
        ["[0]: missing field `id`"]
    );
    assert_eq!(
        refusal(ImportFormat::Json, "[{\"id\": \"a\"}\n, ]"),
        ["invalid JSON at line 2, column 3: trailing comma"]
    );
}

#[test]
fn a_secret_hash_that_is_not_a_sha256_is_refused_naming_the_key_and_the_field() {
    let short = STANDARD.encode(&hash_secret(UNKEY).0[..31]);
    let jsonl = format!(
        "{{\"id\": \"key_a\", \"secret_hash\": \"{short}\"}}\n\
         {{\"id\": \"key_b\", \"secret_hash\": \"sha256:abc\"}}\n\
         {{\"id\": \"key_c\", \"secret_hash\": \"\"}}\n\
         {{\"id\": \"key_d\", \"secret_hash\": 7}}\n"
    );
    assert_eq!(
        refusal(ImportFormat::JsonLines, &jsonl),
        [
            "line 1: key key_a: field `secret_hash` is 31 bytes of base64; a SHA-256 is 32 \
             bytes (64 hex digits, or 43 base64 characters and one optional =)"
                .to_string(),
            "line 2: key key_b: field `secret_hash` is neither hex nor base64: expected a \
             SHA-256 as 64 hex digits, or 43 base64 characters and one optional ="
                .into(),
            "line 3: key key_c: field `secret_hash` is empty".into(),
            "line 4: key key_d: invalid JSON at line 4, column 32: invalid type for field \
             `secret_hash`: expected a string"
                .into(),
        ]
    );
    let csv = format!("id,secret_hash\nkey_a,{}\nkey_b,\n", "ab".repeat(33));
    assert_eq!(
        refusal(ImportFormat::Csv, &csv),
        [
            "line 2: key key_a: field `secret_hash` is 33 bytes of hex; a SHA-256 is 32 bytes \
             (64 hex digits, or 43 base64 characters and one optional =)",
            "line 3: key key_b: missing field `secret_hash`",
        ]
    );
    // No message holds the hash.
    let all = refusal(ImportFormat::JsonLines, &jsonl).join("\n");
    assert!(!all.contains(&short) && !all.contains("abc"), "{all}");
}

#[test]
fn every_key_needs_its_id() {
    let hash = hash_secret(UNKEY).to_hex();
    assert_eq!(
        refusal(
            ImportFormat::JsonLines,
            &format!(
                "{{\"secret_hash\": \"{hash}\"}}\n{{\"id\": \"\", \"secret_hash\": \"{hash}\"}}"
            )
        ),
        ["line 1: missing field `id`", "line 2: field `id` is empty"]
    );
    assert_eq!(
        refusal(ImportFormat::Csv, &format!("id,secret_hash\n,{hash}\n")),
        ["line 2: missing field `id`"]
    );
    assert_eq!(
        refusal(ImportFormat::Csv, &format!("name,secret_hash\nA,{hash}\n")),
        ["line 1: no `id` column: every key keeps its id"]
    );
}

#[test]
fn keys_are_checked_by_the_servers_rules_and_named_by_line() {
    let hash = |s: &str| hash_secret(s).to_hex();
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let csv = format!(
        "id,secret_hash,scopes,metadata,expires_at,name\n\
         key_a,{},\"read,wr ite\",,,\n\
         key_b,{},,\"{{\"\"a\"\": {deep}}}\",,\n\
         key_c,{},,\"{{oops\",,\n\
         key_d,{},\"[\"\"read\"\", 5]\",,,\n\
         key_e,{},,,next tuesday,\n\
         key_f,{},,,,\"Bell\u{7}\"\n\
         key_g,{},,,2030-01-01,Fine\n",
        hash("a"),
        hash("b"),
        hash("c"),
        hash("d"),
        hash("e"),
        hash("f"),
        hash("g"),
    );
    assert_eq!(
        refusal(ImportFormat::Csv, &csv),
        [
            "line 2: key key_a: field `scopes` is not valid: scope 'wr ite' contains a space: \
             use letters, digits and ASCII punctuation other than \" \\ ,"
                .to_string(),
            "line 3: key key_b: field `metadata` is nested 41 levels deep; at most 32 levels \
             are allowed"
                .into(),
            "line 4: key key_c: field `metadata` is not JSON: key must be a string at \
             character 2"
                .into(),
            "line 5: key key_d: field `scopes` is not a JSON array of strings: invalid type: \
             integer `5`, expected a string at character 10"
                .into(),
        ]
    );
    // Once the server's rules pass, the import's own: readable timestamps, names that do not
    // steer a terminal.
    let csv = csv
        .lines()
        .enumerate()
        .filter(|(i, _)| ![1, 2, 3, 4].contains(i))
        .map(|(_, l)| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(
        refusal(ImportFormat::Csv, &csv),
        [
            "line 2: key key_e: field `expires_at` is not a timestamp: expected an RFC 3339 \
             timestamp or a date (2026-01-31T12:00:00Z, 2026-01-31), got 'next tuesday'",
            "line 3: key key_f: field `name` has a control character (\\x07) at character 5",
        ]
    );
}

#[test]
fn timestamps_as_databases_write_them_are_read() {
    for at in [
        "2025-03-01T10:00:00Z",
        "2025-03-01T10:00:00.123456+02:00",
        "2025-03-01 10:00:00.123456",
        "2025-03-01 10:00:00+00",
        "2025-03-01",
    ] {
        let csv = format!(
            "id,secret_hash,created_at,expires_at\nkey_a,{},{at},{at}\n",
            hash_secret(UNKEY).to_hex()
        );
        let incoming = read(ImportFormat::Csv, &csv).unwrap();
        assert_eq!(incoming.records[0].expires_at.as_deref(), Some(at));
    }
}

#[test]
fn a_json_error_is_placed_in_the_file_after_a_hash_is_rewritten() {
    let b64 = STANDARD.encode(hash_secret(UNKEY).0);
    // The name's bad value comes after a hash that the staged file writes 20 characters longer.
    let line = format!(r#"{{"id": "key_a", "secret_hash": "{b64}", "name": 7}}"#);
    let column = line.find('7').unwrap() + 1;
    let jsonl = format!("\n{line}\n");
    assert_eq!(
        refusal(ImportFormat::JsonLines, &jsonl),
        [format!(
            "line 2: key key_a: invalid JSON at line 2, column {column}: invalid type: \
             integer `7`, expected a string"
        )]
    );
    let file = format!("{{\"keys\": [\n  {line}\n]}}");
    assert_eq!(
        refusal(ImportFormat::Json, &file),
        [format!(
            "keys[0]: key key_a: invalid JSON at line 2, column {}: invalid type: integer \
             `7`, expected a string",
            column + 2
        )]
    );
    // A line that is not JSON at all.
    assert_eq!(
        refusal(
            ImportFormat::JsonLines,
            "{\"id\": \"a\"}\n{\"id\": \"b\",}\n\n{x"
        ),
        [
            "invalid JSON at line 2, column 12: key must be a string",
            "invalid JSON at line 4, column 2: key must be a string",
        ]
    );
    let err = read_import("b.csv", b"id,secret_hash\nkey_a,\xff\n", ImportFormat::Csv);
    assert_eq!(
        err.unwrap_err().to_string(),
        "b.csv: cannot import these keys; nothing written:\n  invalid UTF-8 at line 2, column 7"
    );
}

#[test]
fn an_id_or_secret_twice_in_the_file_names_both_places() {
    let hash = |s: &str| hash_secret(s).to_hex();
    let csv = format!(
        "id,secret_hash\nkey_a,{}\nkey_b,{}\nkey_a,{}\nkey_c,{}\n",
        hash("a"),
        hash("b"),
        hash("c"),
        STANDARD.encode(hash_secret("b").0),
    );
    assert_eq!(
        refusal(ImportFormat::Csv, &csv),
        [
            "line 4: key key_a: same id as line 2",
            "line 5: key key_c: same secret as key key_b (line 3)",
        ]
    );
}

#[test]
fn a_csv_header_names_known_columns_once() {
    assert_eq!(
        refusal(
            ImportFormat::Csv,
            "id, secret_hash ,hash,id,Name\nkey_a,00,00,key_a,A\n"
        ),
        [
            "line 1: unknown column `hash`: expected id, secret_hash, name, created_at, \
             expires_at, scopes, metadata",
            "line 1: column `id` is given twice",
            "line 1: unknown column `Name`: expected id, secret_hash, name, created_at, \
             expires_at, scopes, metadata",
        ]
    );
    assert_eq!(
        refusal(ImportFormat::Csv, ""),
        [
            "line 1: no header row: expected id, secret_hash, name, created_at, expires_at, \
          scopes, metadata"
        ]
    );
    assert_eq!(
        refusal(ImportFormat::Csv, "id\nkey_a\n"),
        ["line 1: no `secret_hash` column: the SHA-256 of each key's secret"]
    );
    assert_eq!(
        refusal(ImportFormat::Csv, "id,secret_hash\nkey_a\nkey_b,00,x\n"),
        [
            "line 2: 1 fields, but the header row has 2",
            "line 3: 3 fields, but the header row has 2",
        ]
    );
    // A header alone: nothing to import.
    let incoming = read(ImportFormat::Csv, "id,secret_hash\n").unwrap();
    assert!(incoming.records.is_empty());
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
    let incoming = read(ImportFormat::Json, &legacy()).unwrap();
    assert_eq!(incoming.hashed, 2);
    assert!(incoming.records.iter().all(|r| r.secret.is_none()));
    let want = named(&[
        ("key_a", "Legacy A"),
        ("key_b", "Legacy B"),
        ("key_c", "Hashed"),
    ]);

    assert_eq!(import(&store, &incoming, false).unwrap(), want);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    assert_eq!(import(&store, &incoming, true).unwrap(), want);
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
    // The imported keys are as they were, but for the secret's form, and keep fields this
    // version does not know.
    let a = show(&store, "key_a").unwrap();
    assert_eq!(a, incoming.records[0]);
    assert_eq!(a.extra_field("custom").map(|v| v.get()), Some("[1, 2]"));
    // A hash given in uppercase is stored as keys files store it.
    assert_eq!(
        show(&store, "key_b").unwrap().secret_hash,
        Some(hash_secret("sec_TOPSECRET_b").to_hex())
    );
}

#[test]
fn a_keys_file_the_server_would_refuse_is_refused_naming_every_error() {
    let broken = r#"{"keys": [{"id": "a", "secret": "x"}, {"secret": "y"}, {"id": "a", "secret": "z"}, {"id": "c"}]}"#;
    assert_eq!(
        refusal(ImportFormat::Json, broken),
        [
            "keys[1]: missing field `id`",
            "keys[2]: key a: same id as keys[0]",
            "keys[3]: key c: missing field `secret_hash`",
        ]
    );
    // Not a keys file at all: the server's reasons.
    assert_eq!(
        refusal(ImportFormat::Json, r#"{"kees": []}"#),
        [KeySet::check(br#"{"kees": []}"#).errors[0]
            .error
            .to_string()]
    );
}

#[test]
fn a_clash_with_the_store_names_the_imported_key_and_the_stored_one() {
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
    let csv = format!(
        "id,secret_hash\nkey_a,{}\nkey_x,{}\nkey_y,{}\nkey_z,{}\n",
        hash_secret("sec_new").to_hex(),
        STANDARD.encode(hash_secret("sec_r").0),
        URL_SAFE_NO_PAD.encode(hash_secret("sec_old").0),
        hash_secret("sec_z").to_hex(),
    );
    let incoming = read(ImportFormat::Csv, &csv).unwrap();
    let want = CliError::Clash {
        location: path.display().to_string(),
        errors: vec![
            "line 2: key key_a: the store has a key key_a already".into(),
            "line 3: key key_x: same secret as key key_r in the store".into(),
            "line 4: key key_y: same secret as key key_r in the store".into(),
        ],
    };
    assert_eq!(import(&store, &incoming, false).unwrap_err(), want);
    assert_eq!(import(&store, &incoming, true).unwrap_err(), want);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Importing the same keys twice: the second time they are already there.
    let fresh = part(&incoming, 3);
    import(&store, &fresh, true).unwrap();
    let err = import(&store, &fresh, true).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "\n  line 5: key key_z: the store has a key key_z already\
             \n  line 5: key key_z: same secret as key key_z in the store"
        ),
        "{err}"
    );
}

#[test]
fn an_import_read_back_is_not_a_clash() {
    // The store applies an edit again to the file it just wrote when it confirms a write:
    // finding its own keys there, the import must change nothing and not fail.
    let (store, path, _dir) = store();
    let incoming = read(ImportFormat::Json, &legacy()).unwrap();
    let mut added = false;
    let mut apply = || {
        store.update(|file: &mut Document| add_all(store.location(), file, &incoming, &mut added))
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
            "keys[1]: key key_a: field `name` has a control character (\\x1b) at character 3",
        ),
        (
            r#"{"id": "key_\u202e", "secret": "s", "name": "ok"}"#,
            "keys[1]: key key_\\u{202e}: field `id` has a control character (\\u{202e}) at \
             character 5",
        ),
    ] {
        let text = format!(r#"{{"keys": [{{"id": "key_b", "secret": "t"}}, {record}]}}"#);
        assert_eq!(refusal(ImportFormat::Json, &text), [want]);
    }
}
