//! What each command does to the store and the server, with no printing.

mod edit;
mod hash_encoding;
pub mod identify;
mod import;
mod import_formats;
mod lifecycle;
mod limit;
pub mod scan;
mod secrets;
mod update;

pub use edit::Toggled;
pub use import::{import, read_import, Incoming};
pub use import_formats::ImportFormat;
pub use lifecycle::{rotate, set_disabled, Rotated};
pub use limit::set_rate_limit;
pub use secrets::{export, hash_secrets, Named};
pub use update::{update, Updated};

use rand_core::{CryptoRng, RngCore};
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Duration;

use heare_auth_core::{
    check_metadata, compact_json, format_timestamp, generate_id, generate_secret, hash_secret,
    Document, KeyRecord, KeySet, Prefixes, UnixMillis,
};
use heare_auth_store::Store;

use crate::cmd::CreateArgs;
use crate::CliError;
use edit::find;

/// A key just created, with the only copy of its secret.
#[derive(Debug)]
pub struct Created {
    pub record: KeyRecord,
    pub secret: String,
}

/// Creates a key: validates the input, generates id and secret once (with `prefixes`), then
/// adds the key under the store's lock (re-applied if another writer got there first). `actor`
/// is who creates it.
pub fn create<R: RngCore + CryptoRng>(
    store: &Store,
    args: &CreateArgs,
    now: UnixMillis,
    actor: &str,
    prefixes: &Prefixes,
    rng: &mut R,
) -> Result<Created, CliError> {
    let metadata = match &args.metadata {
        None => KeyRecord::default().metadata,
        Some(text) => metadata_of(text)?,
    };
    let secret = generate_secret(&prefixes.secret, rng, now);
    let record = KeyRecord {
        id: generate_id(&prefixes.id, rng, now),
        secret_hash: Some(hash_secret(&secret).to_hex()),
        name: args.name.clone(),
        created_at: Some(format_timestamp(now)),
        created_by: Some(actor.to_string()),
        updated_at: Some(format_timestamp(now)),
        updated_by: Some(actor.to_string()),
        expires_at: args.expires.as_ref().map(|e| e.timestamp(now)),
        scopes: (!args.scopes.is_empty()).then(|| args.scopes.clone()),
        rate_limit: args.rate_limit,
        credits: args.credits.map(|c| c.at(now)),
        metadata,
        ..KeyRecord::default()
    };
    store.update(|file: &mut Document| {
        if file.get(&record.id).is_none() {
            file.push(record.clone());
        }
        Ok::<(), CliError>(())
    })?;
    Ok(Created { record, secret })
}

/// `--metadata` text as stored: a JSON object within the metadata bounds, compact, every token
/// as given (a number is never respelled, as a round trip through `serde_json::Value` would).
/// Checked so before anything is written, and before anything is sent to a server.
pub fn metadata_of(text: &str) -> Result<Box<RawValue>, CliError> {
    let json: Box<RawValue> =
        serde_json::from_str(text).map_err(|e| CliError::MetadataNotJson(e.to_string()))?;
    match json_kind(json.get()) {
        "an object" => {}
        kind => return Err(CliError::MetadataNotObject(kind)),
    }
    // Bounded here, before anything is written, as the loader bounds it in the file.
    check_metadata(json.get()).map_err(CliError::MetadataTooBig)?;
    Ok(compact_json(&json))
}

/// "an array", "a string", ...: what valid JSON text is, by its first character, for messages.
fn json_kind(json: &str) -> &'static str {
    match json.bytes().next() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The keys file's plaintext, checked to be one the server would load.
pub fn read(store: &Store) -> Result<Vec<u8>, CliError> {
    let bytes = store
        .load()?
        .bytes
        .unwrap_or_else(|| heare_auth_store::EMPTY_FILE.to_vec());
    KeySet::from_json(&bytes).map_err(CliError::keys(store.location()))?;
    Ok(bytes)
}

/// Every key of a file read by [`read`], in file order.
pub fn records<'a>(
    store: &'a Store,
    file: &'a Document,
) -> impl Iterator<Item = Result<KeyRecord, CliError>> + 'a {
    file.records()
        .map(|r| r.map_err(CliError::keys(store.location())))
}

/// One key by id.
pub fn show(store: &Store, id: &str) -> Result<KeyRecord, CliError> {
    let bytes = read(store)?;
    let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
    find(store, &file, id)
}

/// Deletes a key by id; fails if no key had it when the delete began, or if the file holds it
/// more than once (see [`Document::remove`]).
pub fn delete(store: &Store, id: &str) -> Result<KeyRecord, CliError> {
    let mut removed = None;
    store.update(|file: &mut Document| {
        match (file.remove(id), &removed) {
            (Some(key), _) => removed = Some(key.map_err(CliError::keys(store.location()))?),
            // Already gone after our own write: the delete is confirmed.
            (None, Some(_)) => {}
            (None, None) => return Err(CliError::NotFound(id.to_string())),
        }
        Ok(())
    })?;
    removed.ok_or_else(|| CliError::NotFound(id.to_string()))
}

/// POSTs to the server's refresh endpoint; returns how many keys it loaded.
pub fn refresh(url: &str) -> Result<u64, CliError> {
    let failed = |m: String| CliError::Refresh(m);
    let response = match ureq::post(url).timeout(Duration::from_secs(5)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r.into_json().unwrap_or_default();
            let reason = body["error"].as_str().unwrap_or("no reason given");
            return Err(failed(format!("{url} answered {code}: {reason}")));
        }
        // ureq names the URL itself when it got as far as using it.
        Err(ureq::Error::Transport(t)) if t.url().is_some() => return Err(failed(t.to_string())),
        Err(e) => return Err(failed(format!("{url}: {e}"))),
    };
    let body: Value = response
        .into_json()
        .map_err(|e| failed(format!("{url} answered with invalid JSON: {e}")))?;
    match (body["success"].as_bool(), body["keys_loaded"].as_u64()) {
        (Some(true), Some(n)) => Ok(n),
        _ => Err(failed(format!("{url} did not report success: {body}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Expiry;
    use heare_auth_store::StoreConfig;
    use rand_core::OsRng;

    pub(super) const NOW: UnixMillis = 1_795_569_434_316;
    pub(super) const ACTOR: &str = "ann@build-01";

    /// A store on `keys.json` in a temporary directory, removed with the returned guard.
    pub(super) fn store() -> (Store, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let store = StoreConfig::file(path.to_str().unwrap()).open().unwrap();
        (store, path, dir)
    }

    /// Every key, as `list` reads them.
    pub(super) fn list(store: &Store) -> Result<Vec<KeyRecord>, CliError> {
        let bytes = read(store)?;
        let file = Document::parse(&bytes).unwrap();
        records(store, &file).collect()
    }

    pub(super) fn args(name: &str) -> CreateArgs {
        CreateArgs {
            name: name.into(),
            metadata: Some(r#"{"team": "core"}"#.into()),
            scopes: vec!["read".into(), "write".into()],
            expires: Some(Expiry::After(3_600_000)),
            rate_limit: None,
            credits: None,
            no_refresh: true,
            json: false,
        }
    }

    #[test]
    fn create_stores_only_the_hash_and_the_secret_verifies() {
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
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&created.secret[4..]),
            "plaintext secret stored"
        );
        assert!(!text.contains("\"secret\""));
        let (set, _) = KeySet::from_json(text.as_bytes()).unwrap();
        let key = set
            .verify(&created.secret, NOW, &[] as &[&str])
            .valid_key()
            .unwrap();
        assert_eq!(
            (key.id(), key.name(), key.metadata_json()),
            (created.record.id.as_str(), "A", r#"{"team":"core"}"#)
        );
        assert!(set
            .verify(&created.secret, NOW + 3_600_001, &[] as &[&str])
            .valid_key()
            .is_none());
        assert_eq!(
            created.record.expires_at.as_deref(),
            Some("2026-11-25T02:17:14.316000Z")
        );
    }

    #[test]
    fn create_makes_the_secret_and_id_with_the_prefixes_given() {
        let (store, path, _dir) = store();
        let own = Prefixes {
            secret: heare_auth_core::Prefix::parse("SECRET_PREFIX", "amp_live_").unwrap(),
            id: heare_auth_core::Prefix::parse("ID_PREFIX", "amp_").unwrap(),
        };
        let theirs = create(&store, &args("A"), NOW, ACTOR, &own, &mut OsRng).unwrap();
        let ours = create(
            &store,
            &args("B"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        assert!(
            theirs.secret.starts_with("amp_live_1"),
            "{}",
            theirs.record.id
        );
        assert!(
            theirs.record.id.starts_with("amp_0"),
            "{}",
            theirs.record.id
        );
        assert!(ours.secret.starts_with("sec_1") && ours.record.id.starts_with("key_0"));
        let (set, _) = KeySet::from_json(&std::fs::read(&path).unwrap()).unwrap();
        for created in [&theirs, &ours] {
            let key = set.verify(&created.secret, NOW, &[] as &[&str]).valid_key();
            assert_eq!(key.map(|k| k.id()), Some(created.record.id.as_str()));
        }
    }

    #[test]
    fn create_records_scopes_and_who_created_the_key() {
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
        let stored = show(&store, &created.record.id).unwrap();
        assert_eq!(stored, created.record);
        assert_eq!(stored.scope_list(), ["read", "write"]);
        let when = Some("2026-11-25T01:17:14.316000Z".to_string());
        let who = Some(ACTOR.to_string());
        assert_eq!((&stored.created_at, &stored.created_by), (&when, &who));
        assert_eq!((&stored.updated_at, &stored.updated_by), (&when, &who));
        let (set, _) = KeySet::from_json(&std::fs::read(&path).unwrap()).unwrap();
        let verify = |required: &[&str]| set.verify(&created.secret, NOW, required).code();
        assert_eq!(verify(&["write", "read"]), heare_auth_core::Code::Valid);
        assert_eq!(verify(&["admin"]), heare_auth_core::Code::InsufficientScope);
        let mut none = args("B");
        none.scopes.clear();
        let b = create(&store, &none, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap();
        assert_eq!(b.record.scopes, None);
        assert!(!std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"scopes\": []"));
    }

    #[test]
    fn invalid_metadata_writes_nothing() {
        let (store, path, _dir) = store();
        for bad in ["{not json", "[1, 2]", "\"text\""] {
            let mut a = args("A");
            a.metadata = Some(bad.into());
            let err = create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap_err();
            assert!(
                err.to_string().starts_with("Invalid JSON in metadata: "),
                "{err}"
            );
        }
        assert!(!path.exists());
    }

    #[test]
    fn list_show_delete() {
        let (store, _, _dir) = store();
        assert!(list(&store).unwrap().is_empty());
        let a = create(
            &store,
            &args("A"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let b = create(
            &store,
            &args("B"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let names: Vec<_> = list(&store).unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(show(&store, &b.record.id).unwrap().name, "B");
        assert_eq!(delete(&store, &a.record.id).unwrap().name, "A");
        let gone = CliError::NotFound(a.record.id.clone());
        assert_eq!(delete(&store, &a.record.id).unwrap_err(), gone);
        assert_eq!(show(&store, &a.record.id).unwrap_err(), gone);
        assert_eq!(list(&store).unwrap().len(), 1);
    }

    #[test]
    fn listed_json_has_the_new_key_but_never_its_secret() {
        let (store, path, _dir) = store();
        std::fs::write(
            &path,
            r#"{"keys": [{"id": "key_old", "secret": "sec_legacy_plain", "name": "Old"}]}"#,
        )
        .unwrap();
        let created = create(
            &store,
            &args("New"),
            NOW,
            ACTOR,
            &Prefixes::default(),
            &mut OsRng,
        )
        .unwrap();
        let text = crate::output::list_json(&list(&store).unwrap(), NOW);
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(!text.contains(&created.secret) && !text.contains("sec_legacy_plain"));
        let listed: Value = serde_json::from_str(&text).unwrap();
        let keys = listed.as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1]["id"], created.record.id.as_str());
        assert_eq!(keys[1]["name"], "New");
        assert_eq!(keys[1]["metadata"], serde_json::json!({"team": "core"}));
        assert_eq!(keys[1]["expires_at"], "2026-11-25T02:17:14.316000Z");
        for key in keys {
            assert!(key.get("secret").is_none() && key.get("secret_hash").is_none());
        }
        // The legacy key is written back as it was.
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(
            stored.contains(r#""secret": "sec_legacy_plain""#),
            "{stored}"
        );
    }

    #[test]
    fn deleting_an_unknown_id_changes_nothing() {
        let (store, path, _dir) = store();
        assert_eq!(
            delete(&store, "key_nope").unwrap_err().to_string(),
            "API key not found: key_nope"
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
        let before = std::fs::read(&path).unwrap();
        assert_eq!(
            delete(&store, "key_nope").unwrap_err(),
            CliError::NotFound("key_nope".into())
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// Serves one HTTP response on a local port; returns the refresh URL and the request seen.
    fn one_reply(status: &str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/refresh", listener.local_addr().unwrap());
        let status = status.to_string();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn refresh_posts_and_reads_the_key_count() {
        let (url, server) = one_reply("200 OK", r#"{"success": true, "keys_loaded": 3}"#);
        assert_eq!(refresh(&url), Ok(3));
        assert!(server
            .join()
            .unwrap()
            .starts_with("POST /refresh HTTP/1.1\r\n"));
    }

    #[test]
    fn refresh_failures_name_the_status_and_the_servers_reason() {
        let cases = [
            (
                "500 Internal Server Error",
                r#"{"success": false, "error": "keys file is invalid"}"#,
                "answered 500: keys file is invalid",
            ),
            ("404 Not Found", "not json", "answered 404: no reason given"),
            (
                "200 OK",
                r#"{"success": false}"#,
                r#"did not report success: {"success":false}"#,
            ),
            ("200 OK", "<html>", "answered with invalid JSON: "),
        ];
        for (status, body, want) in cases {
            let (url, server) = one_reply(status, body);
            let err = refresh(&url).unwrap_err().to_string();
            server.join().unwrap();
            assert!(
                err.starts_with(&format!("Failed to refresh: {url} {want}")),
                "{status}: {err}"
            );
        }
    }

    #[test]
    fn metadata_past_its_bounds_is_refused_before_anything_is_written() {
        let (store, path, _dir) = store();
        let nested = |levels: usize| {
            format!(
                r#"{{"a":{}1{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        let big = format!(
            r#"{{"a":"{}"}}"#,
            "x".repeat(heare_auth_core::MAX_METADATA_BYTES)
        );
        for (metadata, want) in [
            (
                nested(128),
                "is nested 128 levels deep; at most 32 levels are allowed",
            ),
            (
                nested(33),
                "is nested 33 levels deep; at most 32 levels are allowed",
            ),
            (
                big,
                "is 16392 bytes as compact JSON; at most 16384 bytes are allowed",
            ),
        ] {
            let mut a = args("A");
            a.metadata = Some(metadata);
            let err = create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap_err();
            assert!(matches!(err, CliError::MetadataTooBig(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("Invalid metadata: --metadata {want}")
            );
        }
        assert!(!path.exists());
        let mut a = args("A");
        a.metadata = Some(nested(32));
        let created = create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap();
        let printed = crate::output::created_json(&created);
        assert!(printed.contains(&nested(32)), "{printed}");
    }

    #[test]
    fn metadata_that_is_not_an_object_is_named() {
        let (store, _, _dir) = store();
        for (bad, kind) in [
            ("[1]", "an array"),
            ("\"x\"", "a string"),
            ("null", "null"),
            ("7", "a number"),
        ] {
            let mut a = args("A");
            a.metadata = Some(bad.into());
            assert_eq!(
                create(&store, &a, NOW, ACTOR, &Prefixes::default(), &mut OsRng).unwrap_err(),
                CliError::MetadataNotObject(kind)
            );
        }
    }

    #[test]
    fn refresh_to_a_closed_port_is_an_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/refresh", closed.local_addr().unwrap());
        drop(closed);
        let err = refresh(&url).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("Failed to refresh: {url}: Connection Failed")),
            "{err}"
        );
        assert_eq!(err.matches(&url).count(), 1, "{err}");
        assert_eq!(
            refresh("not a url").unwrap_err().to_string(),
            "Failed to refresh: not a url: Bad URL: failed to parse URL: RelativeUrlWithoutBase: relative URL without a base"
        );
    }
}
