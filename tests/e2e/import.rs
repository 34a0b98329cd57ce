//! Moving keys from other systems with the real `heare-auth import`: JSON, JSON Lines and CSV
//! files of keys given only by the SHA-256 of their secrets (hex or base64), a dry run that
//! writes nothing, refusals naming the line and the key clashed with, and a real server
//! started on the store afterwards verifying the original secrets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use heare_auth_tests::{cli, note_presented, stderr, stdout, Server, TempDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Secrets another system issued, in its own forms: the test knows them, as their users do;
/// the files imported hold only their hashes.
const UNKEY: &str = "unkey_3ZbHxdQy9PbKXn1MgkAVfJf1";
const STRIPE: &str = "sk_live_51H8xQzLmNoPqRsTuVwXyZa0b1c2";
const GITHUB: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
const ROW: &str = "rk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A store in a temporary directory, and the CLI run on it.
struct Store {
    dir: TempDir,
    keys: PathBuf,
}

impl Store {
    fn new(name: &str) -> Store {
        let dir = TempDir::new(name);
        let keys = dir.path("keys.json");
        Store { dir, keys }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        cli(args, &[("KEYS_FILE", self.keys.to_str().unwrap())])
    }

    /// Runs the CLI, expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs the CLI, expecting exit 1; its stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        stderr(&out)
    }

    /// Writes `text` to `name` beside the store; its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn stored(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.keys).ok()
    }
}

/// `POST /verify` with a secret the tests present: (status, body).
fn verify(server: &Server, secret: &str) -> (u16, Value) {
    note_presented(secret);
    server.verify(secret)
}

#[test]
fn keys_from_csv_json_and_json_lines_verify_with_their_original_secrets() {
    let s = Store::new("import-formats");
    // A Postgres export: `encode(hash, 'base64')`, scopes as a JSON array, metadata as JSON.
    let csv = s.file(
        "unkey.csv",
        &format!(
            "id,name,secret_hash,scopes,metadata,created_at,expires_at\n\
             key_unkey,\"Billing, moved\",{},\"[\"\"invoices:read\"\"]\",\"{{\"\"team\"\": \"\"payments\"\"}}\",2025-03-01 10:00:00+00,\n\
             key_stripe,Stripe,{},\"read,write\",,,2099-01-01\n",
            STANDARD.encode(sha256(UNKEY)),
            URL_SAFE_NO_PAD.encode(sha256(STRIPE)),
        ),
    );
    let dry = s.ok(&["import", &csv]);
    assert_eq!(
        dry,
        format!(
            "Would add 2 keys from {csv}:\n  {:<35} Billing, moved\n  {:<35} Stripe\n\
             Nothing written; run again with --yes to write.\n",
            "key_unkey", "key_stripe"
        )
    );
    assert_eq!(s.stored(), None, "a dry run wrote");
    let done = s.ok(&["import", &csv, "--yes", "--no-refresh"]);
    assert!(
        done.starts_with(&format!("✓ Imported 2 keys from {csv}:\n")),
        "{done}"
    );

    // A bare JSON array, uppercase hex; and JSON Lines with base64.
    let array = s.file(
        "github.json",
        &json!([{"id": "key_github", "name": "GitHub", "secret_hash": upper_hex(&sha256(GITHUB))}])
            .to_string(),
    );
    s.ok(&["import", &array, "--yes", "--no-refresh"]);
    let lines = s.file(
        "more.txt",
        &format!(
            "\n{}\n\n",
            json!({"id": "key_row", "secret_hash": URL_SAFE_NO_PAD.encode(sha256(ROW)), "metadata": {"n": 1}})
        ),
    );
    let done = s.ok(&[
        "import",
        &lines,
        "--format",
        "jsonl",
        "--yes",
        "--no-refresh",
    ]);
    assert!(done.starts_with("✓ Imported 1 key from "), "{done}");

    let stored: Value = serde_json::from_slice(&s.stored().unwrap()).unwrap();
    let hashes: Vec<&str> = stored["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["secret_hash"].as_str().unwrap())
        .collect();
    let want: Vec<String> = [UNKEY, STRIPE, GITHUB, ROW]
        .iter()
        .map(|s| lower_hex(&sha256(s)))
        .collect();
    assert_eq!(hashes, want, "stored as lowercase hex");
    let check = s.ok(&["check"]);
    assert!(check.ends_with(": 4 keys, no problems found\n"), "{check}");

    // A server started on the store afterwards knows them by their original secrets.
    let server = Server::with_file(&s.keys);
    assert_eq!(
        verify(&server, UNKEY),
        (
            200,
            json!({"valid": true, "key_id": "key_unkey", "name": "Billing, moved",
                   "metadata": {"team": "payments"}, "code": "VALID",
                   "scopes": ["invoices:read"], "expires_at": null})
        )
    );
    let (status, body) = verify(&server, STRIPE);
    assert_eq!(
        (status, &body["key_id"], &body["scopes"]),
        (200, &json!("key_stripe"), &json!(["read", "write"]))
    );
    assert_eq!(verify(&server, GITHUB).1["key_id"], "key_github");
    assert_eq!(verify(&server, ROW).1["metadata"], json!({"n": 1}));
    let (status, body) = verify(&server, "unkey_3ZbHxdQy9PbKXn1MgkAVfJf2");
    assert_eq!((status, &body["code"]), (403, &json!("NOT_FOUND")));
}

#[test]
fn a_clash_with_the_store_or_within_the_file_is_refused_naming_both_and_writes_nothing() {
    let s = Store::new("import-clash");
    let created: Value =
        serde_json::from_str(&s.ok(&["create", "--name", "Here", "--json", "--no-refresh"]))
            .unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let before = s.stored().unwrap();
    let csv = s.file(
        "clash.csv",
        &format!(
            "id,secret_hash\n{id},{}\nkey_copy,{}\nkey_new,{}\n",
            lower_hex(&sha256(UNKEY)),
            STANDARD.encode(sha256(secret)),
            lower_hex(&sha256(STRIPE)),
        ),
    );
    for yes in [false, true] {
        let mut args = vec!["import", csv.as_str(), "--no-refresh"];
        if yes {
            args.push("--yes");
        }
        let err = s.refused(&args);
        assert_eq!(
            err,
            format!(
                "Error: {} already holds some of these ids or secrets; nothing written:\n  \
                 line 2: key {id}: the store has a key {id} already\n  \
                 line 3: key key_copy: same secret as key {id} in the store\n",
                s.keys.display()
            )
        );
        assert_eq!(s.stored().unwrap(), before, "a refused import wrote");
    }

    let jsonl = s.file(
        "twice.jsonl",
        &format!(
            "{}\n{}\n{}\n",
            json!({"id": "key_a", "secret_hash": lower_hex(&sha256(UNKEY))}),
            json!({"id": "key_b", "secret_hash": STANDARD.encode(sha256(UNKEY))}),
            json!({"id": "key_a", "secret_hash": lower_hex(&sha256(STRIPE))}),
        ),
    );
    let err = s.refused(&["import", &jsonl, "--yes", "--no-refresh"]);
    assert_eq!(
        err,
        format!(
            "Error: {jsonl}: cannot import these keys; nothing written:\n  \
             line 2: key key_b: same secret as key key_a (line 1)\n  \
             line 3: key key_a: same id as line 1\n"
        )
    );
    assert_eq!(s.stored().unwrap(), before);
}

#[test]
fn a_key_the_server_would_refuse_is_named_by_its_line_and_field() {
    let s = Store::new("import-refused");
    let short = STANDARD.encode(&sha256(UNKEY)[..31]);
    let csv = s.file(
        "bad.csv",
        &format!(
            "id,secret_hash,expires_at,scopes\n\
             key_a,{},,read\n\
             key_b,{short},,\n\
             ,{},,\n\
             key_e,{},,\"a b\"\n",
            lower_hex(&sha256("a")),
            lower_hex(&sha256("c")),
            lower_hex(&sha256("e")),
        ),
    );
    let err = s.refused(&["import", &csv]);
    assert_eq!(
        err,
        format!(
            "Error: {csv}: cannot import these keys; nothing written:\n  \
             line 3: key key_b: field `secret_hash` is 31 bytes of base64; a SHA-256 is 32 bytes \
             (64 hex digits, or 43 base64 characters and one optional =)\n  \
             line 4: missing field `id`\n  \
             line 5: key key_e: field `scopes` is not valid: scope 'a b' contains a space: use \
             letters, digits and ASCII punctuation other than \" \\ ,\n"
        )
    );
    assert!(!err.contains(&short), "{err}");
    let unknown = s.file("cols.csv", "id,hash\nkey_a,00\n");
    assert!(s
        .refused(&["import", &unknown])
        .contains("  line 1: unknown column `hash`: expected id, secret_hash, name,"),);
    assert_eq!(s.stored(), None);
}
