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

    /// Runs the CLI, expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs the CLI with `--json`, expecting success; the object it printed.
    fn ok_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// `POST /verify` needing `scopes`: (status, code).
    fn verify_scoped(&self, secret: &str, scopes: &[&str]) -> (u16, String) {
        let body = json!({"api_key": secret, "required_scopes": scopes}).to_string();
        let (status, body) =
            self.server
                .post("/verify", &body, &[("Content-Type", "application/json")]);
        (
            status,
            body["code"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// `POST /verify`: (status, code).
    fn code(&self, secret: &Value) -> (u16, String) {
        self.verify_scoped(secret.as_str().unwrap(), &[])
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
    assert!(secret.starts_with("sec_1"), "{id}");
    assert_eq!(
        heare_auth_core::form(&secret),
        heare_auth_core::Form::Checksummed
    );

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
        (
            &["disable", "key_nope"],
            1,
            "Error: API key not found: key_nope",
        ),
        (
            &["enable", "key_nope", "--json"],
            1,
            "Error: API key not found: key_nope",
        ),
        (
            &["rotate", "key_nope", "--grace", "0"],
            1,
            "Error: API key not found: key_nope",
        ),
        (
            &["create", "--name", "x", "--scopes", "read,write all"],
            2,
            "error: create: --scopes: scope 'write all' contains a space",
        ),
        (
            &["create", "--name", "x", "--scopes", "read,"],
            2,
            "error: create: --scopes: a scope must not be empty, got 'read,'",
        ),
        (
            &["rotate", "key_nope", "--grace", "soon"],
            2,
            "error: rotate: --grace: expected 0 or a number and a unit",
        ),
        (
            &["rotate", "key_nope", "--grace", "-5m"],
            2,
            "--grace: expected 0",
        ),
        (
            &["create", "--name", "x", "--rate-limit", "100/minute"],
            2,
            "error: create: --rate-limit: expected REQUESTS/PERIOD like 100/60s or 5/1m, got '100/minute'",
        ),
        (
            &["set-rate-limit", "key_nope", "1/1s"],
            1,
            "Error: API key not found: key_nope",
        ),
        (
            &["set-rate-limit", "key_nope"],
            2,
            "error: set-rate-limit: missing the rate limit",
        ),
        (
            &["migrate", "--yes"],
            2,
            "error: migrate: missing required flag --hash-secrets",
        ),
        (
            &["import", "/nonexistent/backup.json", "--yes"],
            1,
            "Error: /nonexistent/backup.json: no such file",
        ),
        (&["import"], 2, "error: import: missing the file to import"),
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
            "scopes": ["read", "write"], "disabled": false, "quota": {"rps": 5}}]}"#,
    )
    .unwrap();
    s.create_json("New", &["--no-refresh"]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(file["format"], 2);
    let old = &file["keys"][0];
    assert_eq!(
        (old["scopes"].clone(), old["quota"].clone()),
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

#[test]
fn scopes_decide_what_a_key_may_do() {
    let s = Setup::new("scopes");
    let key = s.create_json(
        "Reader",
        &["--scopes", "read,reports:write", "--scopes=read,admin"],
    );
    assert_eq!(key["scopes"], json!(["read", "reports:write", "admin"]));
    let secret = key["secret"].as_str().unwrap();
    assert_eq!(s.verify_scoped(secret, &[]), (200, "VALID".into()));
    assert_eq!(
        s.verify_scoped(secret, &["reports:write", "read"]),
        (200, "VALID".into())
    );
    assert_eq!(
        s.verify_scoped(secret, &["read", "billing"]),
        (403, "INSUFFICIENT_SCOPE".into())
    );
    let (_, body) = s.server.verify(secret);
    assert_eq!(body["scopes"], json!(["read", "reports:write", "admin"]));
    let shown = s.ok(&["show", key["id"].as_str().unwrap()]);
    assert!(
        shown.contains("  Scopes:  read,reports:write,admin\n"),
        "{shown}"
    );
    let unscoped = s.create_json("Plain", &[]);
    assert_eq!(
        s.verify_scoped(unscoped["secret"].as_str().unwrap(), &["read"]),
        (403, "INSUFFICIENT_SCOPE".into())
    );
}

#[test]
fn a_disabled_key_is_refused_until_enabled() {
    let s = Setup::new("disable");
    let key = s.create_json("Batch job", &[]);
    let id = key["id"].as_str().unwrap();
    let secret = &key["secret"];

    assert_eq!(
        s.ok(&["disable", id]),
        format!("✓ Disabled API key '{id}' (Batch job).\n✓ Service refreshed - 1 keys loaded\n")
    );
    assert_eq!(s.code(secret), (403, "DISABLED".into()));
    let again = s.ok(&["disable", id]);
    assert!(
        again.starts_with(&format!(
            "API key '{id}' (Batch job) is already disabled; nothing changed.\n"
        )),
        "{again}"
    );
    let shown = s.ok_json(&["show", id]);
    assert_eq!(
        (&shown["status"], &shown["disabled"]),
        (&json!("disabled"), &json!(true))
    );
    assert!(shown["disabled_at"].as_str().unwrap().ends_with('Z'));

    let enabled = s.ok_json(&["enable", id]);
    assert_eq!(
        enabled,
        json!({"id": id, "name": "Batch job", "disabled": false, "disabled_at": null, "changed": true})
    );
    assert_eq!(s.code(secret), (200, "VALID".into()));
    assert!(!s.ok_json(&["enable", id, "--no-refresh"])["changed"]
        .as_bool()
        .unwrap());

    // Without a refresh the server keeps the old state until it reloads.
    s.ok(&["disable", id, "--no-refresh"]);
    assert_eq!(s.code(secret), (200, "VALID".into()));
    s.ok(&["refresh"]);
    assert_eq!(s.code(secret), (403, "DISABLED".into()));
}

#[test]
fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
    let s = Setup::new("rotate");
    let first = s.create_json(
        "Billing",
        &["--scopes", "read", "--metadata", r#"{"team": "payments"}"#],
    );
    let id = first["id"].as_str().unwrap();

    let text = s.ok(&["rotate", id, "--grace", "10m"]);
    assert!(
        text.starts_with(&format!(
            "\nRotated API key:\n  ID:     {id}\n  Secret: sec_1"
        )),
        "{text}"
    );
    assert!(
        text.contains("  Name:   Billing\n  Previous secret valid until: "),
        "{text}"
    );
    assert!(text.contains("⚠️  Save the SECRET securely - it will not be shown again!"));
    assert!(
        text.ends_with("✓ Service refreshed - 1 keys loaded\n"),
        "{text}"
    );
    assert!(!text.contains("still rotating"), "{text}");
    let second = json!(text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Secret: "))
        .unwrap());
    assert_eq!(s.code(&first["secret"]), (200, "VALID".into()));
    assert_eq!(s.code(&second), (200, "VALID".into()));
    // The old secret verifies as the same key: same id, name, metadata and scopes.
    let (_, old) = s.server.verify(first["secret"].as_str().unwrap());
    let (_, new) = s.server.verify(second.as_str().unwrap());
    assert_eq!(old, new);
    assert_eq!(
        (&new["key_id"], &new["metadata"], &new["scopes"]),
        (&json!(id), &json!({"team": "payments"}), &json!(["read"]))
    );
    assert_eq!(s.ok_json(&["show", id])["status"], "rotating");

    // Rotating again within the grace period: the first secret stops, and the output says so.
    let text = s.ok(&["rotate", id]);
    assert!(
        text.contains("⚠️  The key was still rotating: the secret before the previous one stopped working now.\n"),
        "{text}"
    );
    let third = json!(text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Secret: "))
        .unwrap());
    assert_eq!(s.code(&first["secret"]), (403, "NOT_FOUND".into()));
    assert_eq!(s.code(&second), (200, "VALID".into()));
    assert_eq!(s.code(&third), (200, "VALID".into()));

    // No grace: the old secret stops at once.
    let fourth = s.ok_json(&["rotate", id, "--grace", "0"]);
    assert_eq!(
        (
            &fourth["id"],
            &fourth["name"],
            &fourth["previous_expires_at"],
            &fourth["replaced_previous"]
        ),
        (&json!(id), &json!("Billing"), &Value::Null, &json!(true))
    );
    assert_eq!(s.code(&third), (403, "NOT_FOUND".into()));
    assert_eq!(s.code(&second), (403, "NOT_FOUND".into()));
    assert_eq!(s.code(&fourth["secret"]), (200, "VALID".into()));
    assert_eq!(s.ok_json(&["show", id])["status"], "active");

    let stored = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    for secret in [&first["secret"], &second, &third, &fourth["secret"]] {
        assert!(
            !stored.contains(&secret.as_str().unwrap()[5..]),
            "a secret in the keys file"
        );
    }
    for args in [
        vec!["list", "--detailed"],
        vec!["list", "--json"],
        vec!["show", id],
    ] {
        let out = s.ok(&args);
        assert!(
            !out.contains(&fourth["secret"].as_str().unwrap()[5..]),
            "{args:?}"
        );
    }
}

#[test]
fn list_and_show_tell_status_scopes_and_who_changed_what() {
    let s = Setup::new("status");
    let active = s.create_json("Active", &["--scopes", "read"]);
    s.create_json("Expired", &["--expires-at", "2020-01-01"]);
    let disabled = s.create_json("Disabled", &[]);
    let rotating = s.create_json("Rotating", &[]);
    s.ok(&["disable", disabled["id"].as_str().unwrap(), "--no-refresh"]);
    let mut env = s.env();
    env.push(("HEARE_AUTH_ACTOR", "deploy-bot"));
    let out = cli(
        &["rotate", rotating["id"].as_str().unwrap(), "--no-refresh"],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let table = s.ok(&["list"]);
    assert!(
        table.contains(&format!(
            "{:<30} {:<35} {:<15} {:<10} {}\n",
            "Name", "Key ID", "Created", "Status", "Scopes"
        )),
        "{table}"
    );
    for (name, status, scopes) in [
        ("Active", "active", "read"),
        ("Expired", "expired", "-"),
        ("Disabled", "disabled", "-"),
        ("Rotating", "rotating", "-"),
    ] {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap();
        assert!(row.ends_with(&format!(" {status:<10} {scopes}")), "{row}");
    }
    let listed: Value = serde_json::from_str(&s.ok(&["list", "--json"])).unwrap();
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "expired", "disabled", "rotating"]);
    for key in listed.as_array().unwrap() {
        let fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            !fields
                .iter()
                .any(|f| f.contains("secret") || f.contains("hash")),
            "{fields:?}"
        );
    }

    // Who: HEARE_AUTH_ACTOR when set, else user@host (no USER here: unknown@host).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let default_actor = format!("unknown@{host}");
    let rotated = &listed[3];
    assert_eq!(
        (&rotated["created_by"], &rotated["updated_by"]),
        (&json!(default_actor), &json!("deploy-bot"))
    );
    assert!(rotated["previous_expires_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(listed[0]["updated_by"], json!(default_actor));
    assert_eq!(listed[0]["created_at"], listed[0]["updated_at"]);

    let detailed = s.ok(&["list", "--detailed"]);
    assert!(
        detailed.contains("    Rotation: previous secret valid until "),
        "{detailed}"
    );
    assert!(detailed.contains("    Disabled at: "), "{detailed}");
    assert!(
        detailed.contains(&format!(" by {default_actor}   Updated: ")),
        "{detailed}"
    );

    let shown = s.ok(&["show", rotating["id"].as_str().unwrap()]);
    for line in [
        "  Status:  rotating\n",
        "  Scopes:  -\n",
        "  Disabled: no\n",
        "  Rotation: previous secret valid until ",
        " by deploy-bot\n",
        "  Secret:  stored hashed (SHA-256)\n",
    ] {
        assert!(shown.contains(line), "{line}\n{shown}");
    }
    assert_eq!(s.code(&active["secret"]), (200, "VALID".into()));
}

#[test]
fn a_closed_or_full_stdout_ends_quietly_or_fails_clearly() {
    // `heare-auth list | head`: the reader goes away while the output is still being written
    // (1,500 keys are more than a pipe holds).
    let dir = TempDir::new("list-head");
    let keys: Vec<Value> = (0..1500)
        .map(|i| json!({"id": format!("key_{i}"), "secret_hash": format!("{i:064x}"), "name": format!("Key {i}")}))
        .collect();
    let file = dir.path("keys.json");
    std::fs::write(&file, json!({ "keys": keys }).to_string()).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(heare_auth_tests::bin_dir().join("heare-auth"));
        cmd.args(args).env_clear().env("KEYS_FILE", &file);
        cmd
    };
    for args in [&["list"][..], &["list", "--json"], &["export"]] {
        let mut child = run(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 64];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            (out.status.code(), stderr(&out)),
            (Some(0), String::new()),
            "{args:?}"
        );
    }
    // Except where the output is the only copy of a new secret: the key is made (or rotated),
    // and the error says how to replace the secret nobody saw.
    for (args, remedy) in [
        (
            &["create", "--name", "Lost", "--no-refresh"][..],
            "delete key_",
        ),
        (&["rotate", "key_7", "--no-refresh"], "rotate key_7 again"),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = run(args).stdout(writer).output().unwrap();
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {message}");
        assert!(
            message.starts_with("Error: cannot write the new secret: Broken pipe")
                && message.contains(&format!("it is not stored anywhere, so {remedy}")),
            "{message}"
        );
    }
    // The file is large, so the changes are stored beside it: read it whole through export.
    let exported = run(&["export"]).output().unwrap();
    let text = String::from_utf8(exported.stdout).unwrap();
    assert!(text.contains("\"Lost\"") && text.contains("previous_secret_hash"));
    // Any other failure to write is an error: `heare-auth export > backup.json` on a full disk.
    for args in [&["list"][..], &["export"], &["--version"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = run(args).stdout(full).output().unwrap();
        assert_eq!(
            (out.status.code(), stderr(&out)),
            (
                Some(1),
                "Error: cannot write the output: No space left on device (os error 28)\n".into()
            ),
            "{args:?}"
        );
    }
}

/// `POST /verify` for `secret`: (status, `Retry-After`, code).
fn verify_with_retry(server: &Server, secret: &str) -> (u16, Option<String>, String) {
    let body = json!({ "api_key": secret }).to_string();
    let response = match ureq::post(&format!("{}/verify", server.url))
        .set("Content-Type", "application/json")
        .send_string(&body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let retry_after = response.header("retry-after").map(String::from);
    let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    (
        status,
        retry_after,
        body["code"].as_str().unwrap_or_default().into(),
    )
}

#[test]
fn a_rate_limit_set_by_the_cli_is_enforced_until_removed() {
    let s = Setup::new("ratelimit");
    let key = s.create_json("Metered", &["--rate-limit", "2/60s"]);
    assert_eq!(key["rate_limit"], "2/60s");
    let (id, secret) = (key["id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    let calls: Vec<_> = (0..3)
        .map(|_| verify_with_retry(&s.server, secret))
        .collect();
    assert_eq!(
        (calls[0].0, calls[1].0, calls[2].0),
        (200, 200, 429),
        "{calls:?}"
    );
    assert_eq!(calls[2].2, "RATE_LIMITED");
    let wait: u64 = calls[2].1.as_deref().expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert_eq!(s.ok_json(&["show", id])["rate_limit"], "2/60s");
    assert!(s
        .ok(&["list", "--detailed"])
        .contains("    Rate limit: 2/60s\n"));

    let again = s.ok(&["set-rate-limit", id, "2/1m"]);
    assert!(
        again.starts_with(&format!(
            "API key '{id}' (Metered) already has the rate limit 2/60s; nothing changed.\n"
        )),
        "{again}"
    );
    assert_eq!(
        s.ok(&["set-rate-limit", id, "none"]),
        format!(
            "✓ Removed the rate limit of API key '{id}' (Metered).\n✓ Service refreshed - 1 keys loaded\n"
        )
    );
    assert_eq!(verify_with_retry(&s.server, secret).0, 200);
    assert_eq!(s.ok_json(&["show", id])["rate_limit"], Value::Null);
    assert!(s.ok(&["show", id]).contains("  Rate limit: none\n"));
    let stored = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    assert!(!stored.contains("rate_limit"), "{stored}");

    // A limit set later is enforced after the refresh that follows it.
    s.ok(&["set-rate-limit", id, "1/60s"]);
    let codes: Vec<u16> = (0..2)
        .map(|_| verify_with_retry(&s.server, secret).0)
        .collect();
    assert_eq!(codes, [200, 429]);
    for bad in [
        &["set-rate-limit", id, "fast"][..],
        &["create", "--name", "x", "--rate-limit", "0/1s"],
    ] {
        assert_eq!(s.run(bad).status.code(), Some(2), "{bad:?}");
    }
    let out = s.run(&["set-rate-limit", "key_nope", "1/1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Error: API key not found: key_nope"));
}

#[test]
fn credits_set_by_the_cli_are_shown_set_again_and_removed() {
    let s = Setup::new("credits");
    let key = s.create_json("Metered", &["--credits", "1000", "--refill", "1000/day"]);
    let id = key["id"].as_str().unwrap();
    let since = key["created_at"].as_str().unwrap();
    assert_eq!(
        key["credits"],
        json!({"amount": 1000, "refill": "1000/day", "since": since})
    );
    let shown = format!("1000, refilled to 1000/day (set {since})");
    assert!(s
        .ok(&["show", id])
        .contains(&format!("  Rate limit: none\n  Credits:    {shown}\n")));
    assert!(s
        .ok(&["list", "--detailed"])
        .contains(&format!("    Rate limit: none\n    Credits: {shown}\n")));
    assert_eq!(s.ok_json(&["show", id])["credits"], key["credits"]);
    let keys = s.dir.path("keys.json");
    let stored = std::fs::read_to_string(&keys).unwrap();
    assert!(
        stored.contains(
            "\"refill\": {\n          \"amount\": 1000,\n          \"every\": \"day\"\n        },"
        ),
        "{stored}"
    );

    // Bad flags are usage errors that name them, and write nothing.
    for (args, message) in [
        (
            vec!["update", id, "--refill", "5/day"],
            "update: --refill needs --credits, the balance to start from",
        ),
        (
            vec!["update", id, "--credits", "5", "--no-credits"],
            "update: give --credits (with --refill) or --no-credits, not both",
        ),
        (
            vec!["create", "--name", "x", "--credits", "lots"],
            "create: --credits: expected a whole number from 0 to 1000000000000, got 'lots'",
        ),
        (
            vec![
                "create",
                "--name",
                "x",
                "--credits",
                "5",
                "--refill",
                "5/week",
            ],
            "create: --refill: expected AMOUNT/day or AMOUNT/month like 1000/day, got '5/week'",
        ),
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), stored);

    // Set again, the same credits start a new count, from now.
    std::thread::sleep(Duration::from_millis(5));
    let again = s.ok(&["update", id, "--credits", "1000", "--refill", "1000/day"]);
    assert!(
        again.starts_with(&format!("✓ Updated API key '{id}' (Metered): credits.\n")),
        "{again}"
    );
    let set = s.ok_json(&["show", id]);
    assert_eq!(set["credits"]["since"], set["updated_at"]);
    assert_ne!(set["credits"]["since"], since);

    let removed = s.ok(&["update", id, "--no-credits"]);
    assert!(
        removed.starts_with(&format!("✓ Updated API key '{id}' (Metered): credits.\n")),
        "{removed}"
    );
    assert!(s.ok(&["show", id]).contains("  Credits:    none\n"));
    assert!(!std::fs::read_to_string(&keys).unwrap().contains("credits"));
    assert_eq!(
        s.ok(&["update", id, "--no-credits", "--no-refresh"]),
        format!("API key '{id}' (Metered) already has these values; nothing changed.\n")
    );
}

/// A file with an error of every kind the server refuses, and a good key among them.
fn broken_file() -> String {
    use sha2::Digest;
    let previous = format!("{:x}", sha2::Sha256::digest(b"sec_prev"));
    format!(
        r#"{{"keys": [
  {{"secret": "sec_noid"}},
  {{"id": "key_empty_hash", "secret_hash": "abc"}},
  {{"id": "key_no_secret", "name": "No secret"}},
  {{"id": "key_scopes", "secret": "sec_scopes", "scopes": ["read write"]}},
  {{"id": "key_limit", "secret": "sec_limit", "rate_limit": {{"requests": 0, "per_seconds": 60}}}},
  {{"id": "key_rotated", "secret": "sec_rotated", "previous_secret_hash": "{previous}"}},
  {{"id": "key_good", "secret": "sec_TOPSECRET"}},
  {{"id": "key_good", "secret": "sec_other"}},
  {{"id": "key_copy", "secret": "sec_TOPSECRET"}}
]}}"#
    )
}

#[test]
fn check_names_every_error_and_passes_a_file_with_warnings_only() {
    let s = Setup::new("check");
    let bad = s.dir.path("bad.json");
    std::fs::write(&bad, broken_file()).unwrap();
    let out = s.run(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "error: key keys[0]: missing field `id`\n",
        "error: key key_empty_hash: field `secret_hash` is not 64 hex digits (SHA-256)\n",
        "error: key key_no_secret: missing field `secret_hash`\n",
        "error: key key_scopes: field `scopes` is not valid: scope 'read write' contains a space",
        "error: key key_limit: field `rate_limit` is not valid: expected 1 to 4294967295 requests, got 0\n",
        "error: key key_rotated: missing field `previous_expires_at`\n",
        "error: duplicate key id key_good\n",
        "error: keys key_good and key_copy have the same secret\n",
        "warning: key key_good: plaintext `secret` in the file",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert!(
        text.ends_with(": 9 keys, 8 errors, 5 warnings: the server would refuse this file\n"),
        "{text}"
    );
    assert!(!text.contains("TOPSECRET"), "{text}");
    let report: Value =
        serde_json::from_str(&stdout(&s.run(&["check", bad.to_str().unwrap(), "--json"]))).unwrap();
    assert_eq!(
        (&report["ok"], &report["keys"], &report["errors"]),
        (&json!(false), &json!(9), &json!(8))
    );
    assert_eq!(
        report["findings"][1],
        json!({"severity": "error", "key": "key_empty_hash",
               "message": "key key_empty_hash: field `secret_hash` is not 64 hex digits (SHA-256)"})
    );
    // The server refuses the same file, for the first of those reasons.
    std::fs::copy(&bad, s.dir.path("keys.json")).unwrap();
    let (status, body) = s.server.refresh();
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("key keys[0]: missing field `id`"),
        "{body}"
    );

    // Warnings only: the store's own file (no FILE), exit 0.
    std::fs::write(
        s.dir.path("keys.json"),
        r#"{"keys": [{"id": "key_legacy", "secret": "sec_legacy", "name": "Legacy"},
                     {"id": "key_off", "secret": "sec_off", "disabled": true},
                     {"id": "key_gone", "secret": "sec_gone", "expires_at": "2020-01-01"},
                     {"id": "key_odd", "secret": "sec_odd", "expires_at": "someday"}]}"#,
    )
    .unwrap();
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "warning: key key_legacy: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash\n",
        "warning: key key_off: disabled\n",
        "warning: key key_gone: expired more than 90 days ago (2020-01-01)\n",
        "warning: key key_odd: expires_at 'someday' is not a timestamp; the key is treated as expired\n",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert!(
        text.ends_with(": 4 keys, no errors, 7 warnings\n"),
        "{text}"
    );
    assert_eq!(s.server.refresh().0, 200);

    // An encrypted file needs STORAGE_SECRET.
    let sealed = s.dir.path("sealed.json");
    let mut env = vec![
        ("KEYS_FILE", sealed.to_str().unwrap()),
        ("STORAGE_SECRET", "storage-secret"),
    ];
    let out = cli(&["create", "--name", "Sealed", "--no-refresh"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&["check", sealed.to_str().unwrap()], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).ends_with(": 1 key, no problems found\n"));
    env.pop();
    let out = cli(&["check", sealed.to_str().unwrap()], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("STORAGE_SECRET is not set"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["check", "/nonexistent/keys.json"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/keys.json: no such file"));
}

#[test]
fn migrate_hashes_plaintext_secrets_only_when_told_to() {
    let s = Setup::new("migrate");
    let keys = s.dir.path("keys.json");
    let legacy = r#"{"keys": [
  {"id": "key_a", "secret": "sec_legacy_TOPSECRET_a", "name": "Billing", "custom": {"x": 1}},
  {"id": "key_b", "secret": "sec_legacy_TOPSECRET_b", "name": "Reports", "scopes": ["read"]}
]}"#;
    std::fs::write(&keys, legacy).unwrap();
    assert_eq!(s.server.refresh().0, 200);
    let created = s.create_json("New", &[]);

    let before = std::fs::read(&keys).unwrap();
    let dry = s.ok(&["migrate", "--hash-secrets"]);
    assert_eq!(
        dry,
        format!(
            "Would replace 2 plaintext secrets with their SHA-256 hashes:\n  {:<35} Billing\n  {:<35} Reports\n\
             Nothing written; run again with --yes to write.\n",
            "key_a", "key_b"
        )
    );
    assert_eq!(std::fs::read(&keys).unwrap(), before, "a dry run wrote");

    let done = s.ok(&["migrate", "--hash-secrets", "--yes"]);
    assert!(
        done.starts_with("✓ Replaced 2 plaintext secrets with their SHA-256 hashes:\n"),
        "{done}"
    );
    assert!(
        done.ends_with("✓ Service refreshed - 3 keys loaded\n"),
        "{done}"
    );
    assert!(!(dry + &done).contains("TOPSECRET"));
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(!text.contains("TOPSECRET"), "{text}");
    assert!(text.contains(r#""custom": {"x": 1}"#), "{text}");
    for secret in [
        "sec_legacy_TOPSECRET_a",
        "sec_legacy_TOPSECRET_b",
        created["secret"].as_str().unwrap(),
    ] {
        assert_eq!(s.server.verify(secret).0, 200, "{secret}");
    }
    let (_, body) = s.server.verify("sec_legacy_TOPSECRET_b");
    assert_eq!(
        (&body["key_id"], &body["scopes"]),
        (&json!("key_b"), &json!(["read"]))
    );
    assert!(s
        .ok(&["show", "key_a"])
        .contains("  Secret:  stored hashed (SHA-256)\n"));

    let after = std::fs::read(&keys).unwrap();
    for args in [
        &["migrate", "--hash-secrets"][..],
        &["migrate", "--hash-secrets", "--yes"],
    ] {
        assert_eq!(
            s.ok(args),
            "No plaintext secrets: nothing to change.\n",
            "{args:?}"
        );
    }
    assert_eq!(std::fs::read(&keys).unwrap(), after);
    let check = s.ok(&["check"]);
    assert!(check.ends_with(": 3 keys, no problems found\n"), "{check}");
}

#[test]
fn an_export_imported_into_an_empty_store_verifies_the_same_keys() {
    let from = Setup::new("export");
    std::fs::write(
        from.dir.path("keys.json"),
        r#"{"keys": [{"id": "key_legacy", "secret": "sec_legacy_TOPSECRET", "name": "Legacy", "metadata": {"team": "ops"}}]}"#,
    )
    .unwrap();
    let scoped = from.create_json("Scoped", &["--scopes", "read", "--rate-limit", "100/60s"]);
    let rotated = from.create_json("Rotated", &[]);
    let rotated_id = rotated["id"].as_str().unwrap();
    let next = from.ok_json(&["rotate", rotated_id, "--grace", "1h"]);
    let secrets = [
        "sec_legacy_TOPSECRET",
        scoped["secret"].as_str().unwrap(),
        rotated["secret"].as_str().unwrap(),
        next["secret"].as_str().unwrap(),
    ];
    let before = std::fs::read(from.dir.path("keys.json")).unwrap();

    let printed = from.ok(&["export"]);
    assert!(printed.starts_with("{\n  \"keys\": [\n"), "{printed}");
    assert!(!printed.contains("TOPSECRET") && !printed.contains("\"secret\""));
    let backup = from.dir.path("backup.json");
    let out = from.ok(&["export", "--output", backup.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "✓ Exported 3 keys to {} (hashes only, unencrypted).\n",
            backup.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), printed);
    assert_eq!(
        std::fs::read(from.dir.path("keys.json")).unwrap(),
        before,
        "export changed the store"
    );

    let to = Setup::new("import");
    let file = backup.to_str().unwrap();
    let dry = to.ok(&["import", file]);
    assert!(
        dry.starts_with(&format!("Would add 3 keys from {file}:\n")),
        "{dry}"
    );
    assert!(
        dry.ends_with("Nothing written; run again with --yes to write.\n"),
        "{dry}"
    );
    assert!(!to.dir.path("keys.json").exists(), "a dry run wrote");
    let done = to.ok(&["import", file, "--yes"]);
    assert!(
        done.starts_with(&format!("✓ Imported 3 keys from {file}:\n")),
        "{done}"
    );
    assert!(
        done.ends_with("✓ Service refreshed - 3 keys loaded\n"),
        "{done}"
    );
    for secret in secrets {
        let (a, b) = (from.server.verify(secret), to.server.verify(secret));
        assert_eq!(a.0, 200, "{secret}");
        assert_eq!(a, b, "{secret}");
    }
    assert_eq!(
        verify_with_retry(&to.server, scoped["secret"].as_str().unwrap()).0,
        200
    );
    assert_eq!(to.ok_json(&["show", rotated_id])["status"], "rotating");

    // Again: every key is already there, named, and nothing is written.
    let stored = std::fs::read(to.dir.path("keys.json")).unwrap();
    let out = to.run(&["import", file, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("already holds some of these ids or secrets; nothing written:\n")
            && err.contains("  keys[0]: key key_legacy: the store has a key key_legacy already\n")
            && err.contains(&format!(
                ": key {rotated_id}: the store has a key {rotated_id} already\n"
            )),
        "{err}"
    );
    assert_eq!(std::fs::read(to.dir.path("keys.json")).unwrap(), stored);
}

#[test]
fn import_refuses_a_clash_or_a_broken_file_and_writes_nothing() {
    let s = Setup::new("clash");
    let rotated = s.create_json("Rotated", &[]);
    let id = rotated["id"].as_str().unwrap();
    s.ok(&["rotate", id, "--grace", "1h"]);
    let other = s.create_json("Other", &[]);
    let stored = std::fs::read(s.dir.path("keys.json")).unwrap();

    // The old secret of a rotated key still counts, and so does an id.
    let incoming = s.dir.path("incoming.json");
    std::fs::write(
        &incoming,
        format!(
            r#"{{"keys": [{{"id": "key_fresh", "secret": "sec_fresh"}},
                         {{"id": "key_old_secret", "secret": {}}},
                         {{"id": {}, "secret": "sec_same_id"}}]}}"#,
            rotated["secret"], other["id"]
        ),
    )
    .unwrap();
    for args in [
        &["import", incoming.to_str().unwrap()][..],
        &["import", incoming.to_str().unwrap(), "--yes"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        let other = other["id"].as_str().unwrap();
        assert!(
            err.contains(&format!(
                "  keys[2]: key {other}: the store has a key {other} already\n"
            )) && err.contains(&format!(
                "  keys[1]: key key_old_secret: same secret as key {id} in the store\n"
            )),
            "{err}"
        );
        assert!(
            !err.contains("sec_same_id") && !err.contains("sec_fresh"),
            "{err}"
        );
    }
    assert_eq!(s.server.verify("sec_fresh").0, 403);

    std::fs::write(&incoming, broken_file()).unwrap();
    let out = s.run(&["import", incoming.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot import these keys; nothing written:\n  keys[0]: missing field `id`\n")
            && err.contains(
                "  keys[1]: key key_empty_hash: field `secret_hash` is 2 bytes of base64"
            )
            && err.contains("  keys[8]: key key_copy: same secret as key key_good (keys[6])"),
        "{err}"
    );
    assert_eq!(err.matches("\n  ").count(), 8, "{err}");
    assert_eq!(std::fs::read(s.dir.path("keys.json")).unwrap(), stored);
}

#[test]
fn update_changes_name_metadata_scopes_and_expiry_and_the_secret_still_verifies() {
    let s = Setup::new("update");
    let key = s.create_json(
        "Billing",
        &["--scopes", "read", "--rate-limit", "100/60s", "--ttl", "1d"],
    );
    let (id, secret) = (key["id"].as_str().unwrap(), key["secret"].as_str().unwrap());
    let keys = s.dir.path("keys.json");
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();

    assert_eq!(
        s.ok(&[
            "update",
            id,
            "--name",
            "Billing service",
            "--scopes",
            "read,reports:write"
        ]),
        format!(
            "✓ Updated API key '{id}' (Billing service): name, scopes.\n✓ Service refreshed - 1 keys loaded\n"
        )
    );
    let shown = s.ok_json(&[
        "update",
        id,
        "--metadata",
        r#"{"team": "payments", "tier": 2}"#,
        "--no-expiry",
    ]);
    assert_eq!(shown, s.ok_json(&["show", id]));
    assert_eq!(
        (&shown["name"], &shown["metadata"], &shown["expires_at"]),
        (
            &json!("Billing service"),
            &json!({"team": "payments", "tier": 2}),
            &Value::Null
        )
    );
    assert!(shown.get("secret").is_none() && shown.get("secret_hash").is_none());

    // The server answers the new values for the same secret.
    let (status, body) = s.server.verify(secret);
    assert_eq!(status, 200);
    assert_eq!(
        (
            &body["name"],
            &body["metadata"],
            &body["scopes"],
            &body["expires_at"]
        ),
        (
            &json!("Billing service"),
            &json!({"team": "payments", "tier": 2}),
            &json!(["read", "reports:write"]),
            &Value::Null
        )
    );
    assert_eq!(
        s.verify_scoped(secret, &["reports:write"]),
        (200, "VALID".into())
    );

    // Everything else about the key is as it was.
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    let (old, new) = (&before["keys"][0], &after["keys"][0]);
    for field in [
        "id",
        "secret_hash",
        "rate_limit",
        "created_at",
        "created_by",
    ] {
        assert_eq!(old[field], new[field], "{field}");
    }
    assert!(new.get("expires_at").is_none_or(Value::is_null), "{new}");
    assert!(new["updated_at"].as_str().unwrap() >= old["updated_at"].as_str().unwrap());

    // The same values again change nothing; an expiry in the past is enforced.
    let again = s.ok(&["update", id, "--name", "Billing service"]);
    assert!(
        again.starts_with(&format!(
            "API key '{id}' (Billing service) already has these values; nothing changed.\n"
        )),
        "{again}"
    );
    s.ok(&["update", id, "--expires-at", "2020-01-01"]);
    assert_eq!(s.server.verify(secret).0, 403);
    s.ok(&["update", id, "--ttl", "1h"]);
    assert_eq!(s.server.verify(secret).0, 200);

    let bytes = std::fs::read(&keys).unwrap();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["update", id],
            2,
            "error: update: nothing to change: give --name, --metadata, --scopes",
        ),
        (
            &["update", id, "--ttl", "1d", "--no-expiry"],
            2,
            "give one of --expires-at, --ttl and --no-expiry",
        ),
        (
            &["update", id, "--name", "Bill\u{1b}[2J"],
            2,
            "error: update: --name: field `name` has a control character (\\x1b) at character 5",
        ),
        (
            &["update", id, "--scopes", "read,"],
            2,
            "error: update: --scopes: a scope must not be empty",
        ),
        (
            &["update", id, "--metadata", "[1]"],
            1,
            "Error: Invalid JSON in metadata: expected a JSON object, got an array",
        ),
        (
            &["update", id, "--metadata", &deep],
            1,
            "Error: Invalid metadata: --metadata ",
        ),
        (
            &["update", "key_nope", "--name", "X"],
            1,
            "Error: API key not found: key_nope",
        ),
    ];
    for (args, code, needle) in cases {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(
        std::fs::read(&keys).unwrap(),
        bytes,
        "a refused update wrote"
    );
}

#[test]
fn prefixes_come_from_the_environment_and_keys_made_under_earlier_ones_keep_working() {
    let s = Setup::new("prefixes");
    let with = |pairs: &[(&'static str, &'static str)]| {
        let mut env = s.env();
        env.extend_from_slice(pairs);
        env
    };
    let made = |args: &[&str], pairs: &[(&'static str, &'static str)]| -> Value {
        let out = cli(args, &with(pairs));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let plain = s.create_json("Default", &[]);
    let live_env = [("SECRET_PREFIX", "amp_live_"), ("ID_PREFIX", "amp_")];
    let live = made(&["create", "--name", "Live", "--json"], &live_env);
    let starts = |v: &Value, field: &str, prefix: &str| {
        let text = v[field].as_str().unwrap();
        assert!(text.starts_with(prefix), "{field} {}", v["id"]);
    };
    starts(&plain, "secret", "sec_1");
    starts(&plain, "id", "key_0");
    starts(&live, "secret", "amp_live_1");
    starts(&live, "id", "amp_0");

    // A rotation under yet another prefix: the new secret has it, and the old one, like every
    // key made before the change, still verifies.
    let id = live["id"].as_str().unwrap();
    let rotated = made(&["rotate", id, "--json"], &[("SECRET_PREFIX", "amp_test_")]);
    starts(&rotated, "secret", "amp_test_1");
    for secret in [&plain["secret"], &live["secret"], &rotated["secret"]] {
        assert_eq!(s.code(secret), (200, "VALID".to_string()));
    }
    // One character of a secret changed: refused as an unknown key is.
    let secret = live["secret"].as_str().unwrap();
    let last = if secret.ends_with('x') { "y" } else { "x" };
    let typo = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_eq!(
        heare_auth_core::form(&typo),
        heare_auth_core::Form::BadChecksum
    );
    assert_eq!(s.code(&json!(typo)), (403, "NOT_FOUND".to_string()));

    // A prefix that is not one: a usage error naming the setting, and nothing written.
    let before = std::fs::read(s.dir.path("keys.json")).unwrap();
    for (setting, bad) in [("SECRET_PREFIX", "Amp_"), ("ID_PREFIX", "amp")] {
        for args in [&["create", "--name", "X"][..], &["rotate", id]] {
            let out = cli(args, &with(&[(setting, bad)]));
            assert_eq!(out.status.code(), Some(2), "{setting} {args:?}");
            assert_eq!(
                stderr(&out).trim_end(),
                format!(
                    "Error: {setting}: expected 2 to 24 lowercase letters, digits and _, \
                     beginning with a letter and ending in _ (like acme_sk_), got '{bad}'"
                ),
                "{args:?}"
            );
        }
    }
    assert_eq!(std::fs::read(s.dir.path("keys.json")).unwrap(), before);
}
