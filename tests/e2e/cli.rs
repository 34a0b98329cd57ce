//! The real `heare-auth` CLI against a real server: the whole admin workflow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heare_auth_tests::{cli, cli_with_stdin, stderr, stdout, Server, TempDir};
use serde_json::{json, Value};
use std::time::Duration;

struct Setup {
    dir: TempDir,
    server: Server,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = TempDir::new(name);
        let keys = dir.path("keys.json");
        let server = Server::with_file(&keys);
        let env = vec![
            ("KEYS_FILE".to_string(), keys.to_str().unwrap().to_string()),
            ("REFRESH_URL".to_string(), format!("{}/refresh", server.url)),
        ];
        Setup { dir, server, env }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        cli(args, &self.env())
    }

    fn create_json(&self, name: &str, extra: &[&str]) -> Value {
        let mut args = vec!["create", "--name", name, "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    }
}

#[test]
fn create_verify_delete_with_automatic_refresh_and_no_secret_in_logs() {
    let s = Setup::new("workflow");
    let out = s.run(&[
        "create",
        "--name",
        "Billing service",
        "--metadata",
        r#"{"team": "payments", "tier": 2}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("\nCreated API key:\n  ID:     key_0"),
        "{text}"
    );
    assert!(text.contains("⚠️  Save the SECRET securely - it will not be shown again!"));
    assert!(
        text.contains("✓ Service refreshed - 1 keys loaded"),
        "{text}"
    );
    let line = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
            .unwrap()
            .to_string()
    };
    let (id, secret) = (line("ID:"), line("Secret:"));
    assert_eq!(secret.len(), 64);
    assert!(secret.starts_with("sec_0"));

    // The server learnt about the key through the CLI's refresh, not a restart.
    assert_eq!(
        s.server.verify(&secret),
        (
            200,
            json!({"valid": true, "key_id": id, "name": "Billing service", "metadata": {"team": "payments", "tier": 2},
                   "code": "VALID", "scopes": [], "expires_at": null})
        )
    );
    let stored = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    assert!(
        !stored.contains(&secret[5..]),
        "plaintext secret in the keys file"
    );

    for args in [
        vec!["list"],
        vec!["list", "--detailed"],
        vec!["list", "--json"],
        vec!["show", &id],
        vec!["show", &id, "--json"],
    ] {
        let out = s.run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let all = stdout(&out) + &stderr(&out);
        assert!(all.contains(&id), "{args:?}: {all}");
        assert!(!all.contains(&secret[5..]), "{args:?} printed the secret");
    }
    assert!(stdout(&s.run(&["list"])).contains("Total: 1 keys"));

    let out = s.run(&["delete", &id, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "✓ Deleted successfully.\n✓ Service refreshed - 0 keys loaded\n"
    );
    assert_eq!(
        s.server.verify(&secret),
        (
            403,
            json!({"valid": false, "error": "Invalid API key", "code": "NOT_FOUND"})
        )
    );
    assert_eq!(stdout(&s.run(&["list"])), "No API keys found.\n");

    // Lines are written in order: once the last verification is logged, all before it are.
    s.server
        .wait_for_event("verification_failed", Duration::from_secs(2))
        .expect("the last verification logged");
    let logs: String = s
        .server
        .logs()
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    assert!(logs.contains("verification_success") && logs.contains("refresh_success"));
    assert!(!logs.contains(&secret[4..]), "secret in server logs");
}

#[test]
fn fifty_concurrent_creates_leave_fifty_keys() {
    let s = Setup::new("concurrent");
    let env = s.env.clone();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let env = env.clone();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let name = format!("client-{i}");
                let out = cli(&["create", "--name", &name, "--no-refresh", "--json"], &env);
                assert!(out.status.success(), "{}", stderr(&out));
                serde_json::from_str::<Value>(&stdout(&out)).unwrap()["secret"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let secrets: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let list: Value = serde_json::from_str(&stdout(&s.run(&["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 50);
    assert_eq!(s.server.refresh().1["keys_loaded"], 50);
    for secret in secrets.iter().step_by(7) {
        assert_eq!(s.server.verify(secret).0, 200);
    }
}

#[test]
fn expiry_flags_and_json_output() {
    let s = Setup::new("expiry");
    let past = s.create_json("Past", &["--expires-at", "2020-01-01"]);
    let ttl = s.create_json("Day", &["--ttl", "1d"]);
    assert_eq!(past["expires_at"], "2020-01-01T00:00:00.000000Z");
    assert_eq!(s.server.verify(past["secret"].as_str().unwrap()).0, 403);
    assert_eq!(s.server.verify(ttl["secret"].as_str().unwrap()).0, 200);
    let shown: Value = serde_json::from_str(&stdout(&s.run(&[
        "show",
        past["id"].as_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        (shown["expired"].clone(), shown["name"].clone()),
        (json!(true), json!("Past"))
    );
    assert!(shown.get("secret").is_none() && shown.get("secret_hash").is_none());
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let s = Setup::new("bad");
    let keys = s.dir.path("keys.json");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["create", "--name", "x", "--metadata", "{oops"],
            1,
            "Error: Invalid JSON in metadata: ",
        ),
        (
            &["create", "--name", "x", "--expires-at", "someday"],
            2,
            "--expires-at: expected an RFC 3339 timestamp",
        ),
        (
            &["create", "--name", "x", "--ttl", "10y"],
            2,
            "--ttl: expected a positive number",
        ),
        (&["create"], 2, "missing required flag --name"),
        (
            &["show", "key_nope"],
            1,
            "Error: API key not found: key_nope",
        ),
        (
            &["delete", "key_nope", "--yes"],
            1,
            "Error: API key not found: key_nope",
        ),
        (&["explode"], 2, "unknown command 'explode'"),
    ];
    for (args, code, needle) in cases {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert!(!keys.exists(), "a rejected command wrote the keys file");
}

#[test]
fn delete_needs_a_terminal_or_yes() {
    let s = Setup::new("confirm");
    let key = s.create_json("Keep me", &[]);
    let id = key["id"].as_str().unwrap();
    let out = cli_with_stdin(&["delete", id], &s.env(), "y\n");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("stdin is not a terminal; pass --yes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.server.verify(key["secret"].as_str().unwrap()).0, 200);
}

#[test]
fn a_failed_refresh_is_only_a_warning() {
    let dir = TempDir::new("norefresh");
    let keys = dir.path("keys.json");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/refresh", closed.local_addr().unwrap());
    drop(closed);
    let env = [
        ("KEYS_FILE", keys.to_str().unwrap()),
        ("REFRESH_URL", url.as_str()),
    ];
    let out = cli(&["create", "--name", "offline"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("Warning: Failed to refresh service: "),
        "{}",
        stderr(&out)
    );
    let out = cli(&["refresh"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Error: Failed to refresh: "));
}

#[test]
fn fields_a_newer_version_wrote_survive_a_rewrite() {
    let s = Setup::new("extensible");
    let keys = s.dir.path("keys.json");
    std::fs::write(
        &keys,
        r#"{"format": 2, "keys": [{"id": "key_old", "secret": "sec_legacy_plain", "name": "Old",
            "scopes": ["read", "write"], "disabled": false, "rate_limit": {"rps": 5}}]}"#,
    )
    .unwrap();
    s.create_json("New", &["--no-refresh"]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(file["format"], 2);
    let old = &file["keys"][0];
    assert_eq!(
        (old["scopes"].clone(), old["rate_limit"].clone()),
        (json!(["read", "write"]), json!({"rps": 5}))
    );
    assert_eq!(
        old["secret"], "sec_legacy_plain",
        "legacy entries are kept as they were"
    );
    assert_eq!(file["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn doctor_reports_a_local_file_and_fails_on_a_broken_one() {
    let s = Setup::new("doctor");
    s.create_json("one", &[]);
    let out = s.run(&["doctor"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for line in [
        "Keys file:  present (",
        "Encrypted:  no (STORAGE_SECRET not set)",
        "Keys:       1 (1 active, 0 expired)",
        "Writes:     local file: written under a lock file, replaced atomically",
        "Clock:      not visible from this store",
        "✓ No problems found.",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    std::fs::write(
        s.dir.path("keys.json"),
        r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}"#,
    )
    .unwrap();
    let out = s.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["ok"], false);
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .ends_with("duplicate key id a"),
        "{report}"
    );
}

#[test]
fn a_change_rewrites_only_the_records_it_touches() {
    let s = Setup::new("byte-for-byte");
    let original = r#"{"keys": [{"id": "key_legacy", "secret": "sec_legacy_plaintext", "name": "Old",  "scopes": ["x"], "custom": {"a": [1, 2]}}], "version": 7}"#;
    std::fs::write(s.dir.path("keys.json"), original).unwrap();
    let created = s.create_json("New", &["--no-refresh"]);
    let text = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    assert!(
        text.contains(r#"{"id": "key_legacy", "secret": "sec_legacy_plaintext", "name": "Old",  "scopes": ["x"], "custom": {"a": [1, 2]}}"#),
        "{text}"
    );
    assert!(text.contains("\"version\": 7"), "{text}");
    let out = s.run(&[
        "delete",
        created["id"].as_str().unwrap(),
        "--yes",
        "--no-refresh",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    assert!(!text.contains(created["id"].as_str().unwrap()));
    assert!(text.contains(r#""custom": {"a": [1, 2]}"#), "{text}");
}
