//! The real CLI through a real server's management API (`HEARE_AUTH_URL`, `--url`) against the
//! same CLI on the store: the same commands print the same output with the same exit codes;
//! `list` and `show` of one file are byte for byte the same either way; refusals, the admin
//! key's sources, `doctor`, and the admin key never shown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use heare_auth_tests::{cli, note_presented, stderr, stdout, Server, TempDir};
use regex::Regex;
use serde_json::Value;

/// Where the CLI runs: its environment and the ids of the keys it made, in order.
struct Side {
    env: Vec<(String, String)>,
    /// `{A}`, `{B}`, ... in an argument stand for these.
    ids: Vec<String>,
}

impl Side {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Runs the CLI with `args`, `{A}`... replaced by the ids made so far.
    fn run(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| self.with_ids(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args, &self.env())
    }

    fn with_ids(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (i, id) in self.ids.iter().enumerate() {
            text = text.replace(&format!("{{{}}}", char::from(b'A' + i as u8)), id);
        }
        text
    }
}

/// A server with the management API on `served.json`, whose admin key (`keys:admin`) was made
/// on the store; `local.json`, a copy made before the server started; and a port that would
/// record a refresh, which nothing should ask for.
struct Setup {
    dir: TempDir,
    server: Server,
    admin_id: String,
    admin_secret: String,
    refresh_trap: TcpListener,
    /// Everything every run printed, searched for the admin key at the end.
    printed: std::cell::RefCell<String>,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = TempDir::new(name);
        let served = dir.path("served.json");
        let made = cli(
            &[
                "create",
                "--name",
                "admin",
                "--scopes",
                "keys:admin",
                "--json",
                "--no-refresh",
            ],
            &[
                ("KEYS_FILE", served.to_str().unwrap()),
                ("HEARE_AUTH_ACTOR", "bootstrap"),
            ],
        );
        assert!(made.status.success(), "{}", stderr(&made));
        let admin: Value = serde_json::from_str(&stdout(&made)).unwrap();
        std::fs::copy(&served, dir.path("local.json")).unwrap();
        let server = Server::start(&[
            ("KEYS_FILE", served.to_str().unwrap()),
            ("MANAGEMENT_API", "1"),
        ]);
        let refresh_trap = TcpListener::bind("127.0.0.1:0").unwrap();
        refresh_trap.set_nonblocking(true).unwrap();
        Setup {
            dir,
            server,
            admin_id: admin["id"].as_str().unwrap().into(),
            admin_secret: admin["secret"].as_str().unwrap().into(),
            refresh_trap,
            printed: Default::default(),
        }
    }

    fn refresh_url(&self) -> String {
        format!("http://{}/refresh", self.refresh_trap.local_addr().unwrap())
    }

    /// The CLI on the store in `file`, recording changes as the admin key's actor does.
    fn local(&self, file: &str) -> Side {
        let env = [
            (
                "KEYS_FILE",
                self.dir.path(file).to_str().unwrap().to_string(),
            ),
            ("HEARE_AUTH_ACTOR", format!("key:{}", self.admin_id)),
            ("REFRESH_URL", self.refresh_url()),
        ];
        Side {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ids: Vec::new(),
        }
    }

    /// The CLI through the server, with `key` as the admin key.
    fn remote_with(&self, key: &str) -> Side {
        let env = [
            ("HEARE_AUTH_URL", self.server.url.clone()),
            ("HEARE_AUTH_ADMIN_KEY", key.to_string()),
            ("REFRESH_URL", self.refresh_url()),
        ];
        Side {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ids: Vec::new(),
        }
    }

    fn remote(&self) -> Side {
        self.remote_with(&self.admin_secret)
    }

    /// Runs `args` on `side`: (exit code, stdout, stderr), all kept for the search at the end.
    fn run(&self, side: &Side, args: &[&str]) -> (i32, String, String) {
        let out = side.run(args);
        let (code, out, err) = (out.status.code().unwrap(), stdout(&out), stderr(&out));
        self.printed.borrow_mut().push_str(&format!("{out}{err}"));
        (code, out, err)
    }

    /// Whether anything asked the refresh port to reload.
    fn refresh_asked(&self) -> bool {
        self.refresh_trap.accept().is_ok()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let printed = self.printed.borrow();
            assert!(!printed.is_empty());
            assert!(
                !printed.contains(&self.admin_secret),
                "the admin key was printed"
            );
        }
    }
}

/// `text` with what differs between two stores made by the same commands made alike: each id
/// as its letter (`ids`, in order), secrets and times.
fn normalised(text: &str, ids: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (id, name) in ids {
        text = text.replace(id, name);
    }
    let secret = Regex::new("sec_[0-9A-Za-z]+").unwrap();
    let time =
        Regex::new("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z").unwrap();
    let date = Regex::new("[0-9]{4}-[0-9]{2}-[0-9]{2}").unwrap();
    let text = secret.replace_all(&text, "<secret>");
    let text = time.replace_all(&text, "<time>");
    date.replace_all(&text, "<date>").into_owned()
}

/// The id in what `create` printed, as text or JSON.
fn created_id(out: &str) -> String {
    match serde_json::from_str::<Value>(out) {
        Ok(v) => v["id"].as_str().unwrap().to_string(),
        Err(_) => out
            .lines()
            .find_map(|l| l.trim().strip_prefix("ID:"))
            .unwrap()
            .trim()
            .to_string(),
    }
}

#[test]
fn every_command_through_the_server_prints_what_it_prints_on_the_store() {
    let s = Setup::new("remote-same");
    let mut local = s.local("local.json");
    let mut remote = s.remote();
    // Every command that changes a key, each as the one before leaves it; --no-refresh is
    // given to both (the store's would otherwise ask for a reload, the server's has none to
    // skip).
    let steps: &[&[&str]] = &[
        &[
            "create",
            "--name",
            "Billing service",
            "--metadata",
            r#"{"team": "payments", "n": 1.50, "big": 12345678901234567890123}"#,
            "--scopes",
            "read,write",
            "--ttl",
            "90d",
            "--rate-limit",
            "100/60s",
            "--credits",
            "1000",
            "--refill",
            "1000/day",
            "--json",
            "--no-refresh",
        ],
        &[
            "create",
            "--name",
            "Zoë ✓",
            "--credits",
            "50",
            "--no-refresh",
        ],
        &["list"],
        &["list", "--detailed"],
        &["list", "--json"],
        &["show", "{A}"],
        &["show", "{A}", "--json"],
        &["show", "{B}"],
        &["delete", "{B}"],
        &[
            "update",
            "{A}",
            "--name",
            "Billing v2",
            "--scopes",
            "read",
            "--no-refresh",
        ],
        &[
            "update",
            "{A}",
            "--name",
            "Billing v2",
            "--scopes",
            "read",
            "--no-refresh",
        ],
        &["update", "{A}", "--no-expiry", "--json", "--no-refresh"],
        &[
            "update",
            "{B}",
            "--expires-at",
            "2030-01-31",
            "--metadata",
            r#"{"tier": 2}"#,
            "--no-refresh",
        ],
        &[
            "update",
            "{A}",
            "--credits",
            "5",
            "--refill",
            "5/month",
            "--no-refresh",
        ],
        &[
            "update",
            "{A}",
            "--credits",
            "5",
            "--refill",
            "5/month",
            "--no-refresh",
        ],
        &["show", "{A}"],
        &["update", "{B}", "--no-credits", "--json", "--no-refresh"],
        &["update", "{B}", "--no-credits", "--no-refresh"],
        &["update", "{B}", "--refill", "5/day"],
        &["update", "{B}", "--credits", "0", "--json", "--no-refresh"],
        &["set-rate-limit", "{A}", "5/1m", "--no-refresh"],
        &["set-rate-limit", "{A}", "5/1m", "--no-refresh"],
        &["set-rate-limit", "{A}", "none", "--no-refresh"],
        &["set-rate-limit", "{A}", "none", "--no-refresh"],
        &["disable", "{B}", "--no-refresh"],
        &["disable", "{B}", "--json", "--no-refresh"],
        &["show", "{B}"],
        &["enable", "{B}", "--no-refresh"],
        &["enable", "{B}", "--json", "--no-refresh"],
        &["rotate", "{A}", "--grace", "0", "--json", "--no-refresh"],
        &["rotate", "{A}", "--no-refresh"],
        &["rotate", "{A}", "--grace", "2h", "--json", "--no-refresh"],
        &["list", "--detailed"],
        &["list", "--json"],
        &["show", "{A}"],
        &["delete", "{B}", "--yes", "--no-refresh"],
        &["delete", "{B}", "--yes", "--no-refresh"],
        &["show", "{B}"],
        &["show", "key_nope", "--json"],
        &["update", "key_nope", "--name", "x"],
        &["disable", "key_nope"],
        &["enable", "key_nope"],
        &["rotate", "key_nope"],
        &["set-rate-limit", "key_nope", "none"],
        &["delete", "key_nope", "--yes"],
        &["list"],
        &["list", "--detailed"],
    ];
    for args in steps {
        let mut answers = Vec::new();
        for side in [&mut local, &mut remote] {
            let (code, out, err) = s.run(side, args);
            if args[0] == "create" {
                assert_eq!(code, 0, "{args:?}: {err}");
                side.ids.push(created_id(&out));
            }
            let names: Vec<(&str, &str)> = [(s.admin_id.as_str(), "<admin>")]
                .into_iter()
                .chain(side.ids.iter().map(String::as_str).zip(["<A>", "<B>"]))
                .collect();
            answers.push((code, normalised(&out, &names), normalised(&err, &names)));
        }
        assert_eq!(
            answers[0], answers[1],
            "{args:?}: the store's, then the server's"
        );
    }
    // The exit codes the comparison covered, to be sure it compared what it should.
    let (_, out, _) = s.run(&remote, &["show", "{A}"]);
    assert!(
        out.contains("  Credits:    5, refilled to 5/month (set "),
        "{out}"
    );
    let (code, _, err) = s.run(&remote, &["update", "{B}", "--refill", "5/day"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: update: --refill needs --credits, the balance to start from\n\
             Run 'heare-auth --help' for usage.\n"
        )
    );
    let (code, _, err) = s.run(&remote, &["show", "key_nope"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: API key not found: key_nope\n")
    );
    let (code, _, err) = s.run(&remote, &["delete", "{A}"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin is not a terminal; pass --yes"), "{err}");
    assert!(!s.refresh_asked(), "a reload was asked for");

    // Without --no-refresh the server's side asks for no reload either: it serves its own
    // changes at once.
    let (code, out, _) = s.run(&remote, &["disable", "{A}"]);
    assert_eq!(code, 0);
    assert!(!out.contains("refreshed"), "{out}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!s.refresh_asked(), "a reload was asked for");
}

#[test]
fn list_and_show_of_one_file_are_the_same_bytes_either_way() {
    let s = Setup::new("remote-bytes");
    let remote = s.remote();
    for args in [
        &[
            "create", "--name", "Billing", "--scopes", "read", "--ttl", "30d",
        ][..],
        &["create", "--name", "Old", "--expires-at", "2020-01-01"][..],
        &["create", "--name", "Ctl \u{1b}[31m"][..],
    ] {
        // A control character in a name is refused before anything is sent.
        let (code, _, err) = s.run(&remote, args);
        let ctl = args[2].contains('\u{1b}');
        assert_eq!(code, if ctl { 2 } else { 0 }, "{args:?}: {err}");
    }
    let ids: Vec<String> =
        serde_json::from_str::<Vec<Value>>(&s.run(&remote, &["list", "--json"]).1)
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (billing, old) = (&ids[1], &ids[2]);
    for args in [
        vec!["rotate", billing.as_str(), "--grace", "1h", "--no-refresh"],
        vec!["set-rate-limit", old.as_str(), "10/500ms"],
        vec![
            "update",
            old.as_str(),
            "--credits",
            "7",
            "--refill",
            "7/day",
        ],
        vec!["disable", old.as_str()],
        vec![
            "update",
            billing.as_str(),
            "--metadata",
            r#"{"a": [1, 2.0, "\u00e9"]}"#,
        ],
    ] {
        let (code, _, err) = s.run(&remote, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let local = s.local("served.json");
    let mut reads = vec![
        vec!["list".to_string()],
        vec!["list".into(), "--detailed".into()],
        vec!["list".into(), "--json".into()],
    ];
    for id in &ids {
        reads.push(vec!["show".into(), id.clone()]);
        reads.push(vec!["show".into(), id.clone(), "--json".into()]);
    }
    for args in &reads {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stored = s.run(&local, &args);
        let served = s.run(&remote, &args);
        assert_eq!(stored.0, 0, "{args:?}: {}", stored.2);
        assert_eq!(served, stored, "{args:?}");
    }
    let detailed = s.run(&remote, &["list", "--detailed"]).1;
    for part in ["rotating", "disabled", "Rate limit: 10/500ms", "by key:"] {
        assert!(detailed.contains(part), "{part}: {detailed}");
    }
}

#[test]
fn without_a_key_or_with_a_wrong_one_nothing_is_sent_or_done() {
    let s = Setup::new("remote-refused");
    let url = s.server.url.clone();
    let no_key = Side {
        env: vec![("HEARE_AUTH_URL".into(), url.clone())],
        ids: Vec::new(),
    };
    let (code, out, err) = s.run(&no_key, &["list"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("needs an admin key: set HEARE_AUTH_ADMIN_KEY or give --admin-key-file"),
        "{err}"
    );
    // A key as an argument is refused, and not repeated. (Not the admin key: the transcript
    // keeps every command line, and a real key there would be a leak the tests made.)
    let given = "sec_0VbwYMJgGivenOnTheCommandLineGivenOnTheCommandLineGivenOnThe";
    let (code, _, err) = s.run(&no_key, &["list", &format!("--admin-key={given}")]);
    assert_eq!(code, 2);
    assert!(err.contains("never taken on the command line"), "{err}");
    assert!(!err.contains(given), "{err}");

    let wrong = "sec_0VbwYMJgWrongWrongWrongWrongWrongWrongWrongWrongWrongWrongW";
    note_presented(wrong);
    let (code, out, err) = s.run(&s.remote_with(wrong), &["list"]);
    assert_eq!((code, out.as_str()), (1, ""));
    let said =
        Regex::new("^Error: Invalid API key \\(HTTP 401, request ([0-9a-f]{24})\\)\n$").unwrap();
    let request_id = said
        .captures(&err)
        .unwrap_or_else(|| panic!("{err}"))
        .get(1)
        .unwrap()
        .as_str()
        .to_string();
    // The server logged the refusal under the id the CLI named.
    s.server
        .wait_for_log(Duration::from_secs(5), |v| {
            v["event"] == "admin_auth_failed" && v["request_id"] == request_id.as_str()
        })
        .unwrap_or_else(|| panic!("no admin_auth_failed with {request_id}"));
    assert!(!err.contains(wrong));
    let (code, _, err) = s.run(&s.remote_with(wrong), &["create", "--name", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("(HTTP 401, request "), "{err}");

    // A key that may read but not write: refused with the server's reason.
    let (code, out, err) = s.run(
        &s.remote(),
        &[
            "create",
            "--name",
            "reader",
            "--scopes",
            "keys:read",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let reader = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, err) = s.run(&s.remote_with(&reader), &["create", "--name", "x"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: ") && err.contains("(HTTP 403, request "),
        "{err}"
    );
    assert_eq!(s.run(&s.remote_with(&reader), &["list"]).0, 0);

    // Commands that need the store are refused through a server, naming why.
    let list = s.local("served.json");
    let export = s.dir.path("export.json");
    for args in [
        vec!["check"],
        vec!["migrate", "--hash-secrets"],
        vec!["export"],
        vec!["import", export.to_str().unwrap(), "--yes"],
        vec!["refresh"],
    ] {
        let (code, out, err) = s.run(&s.remote(), &args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert!(
            err.starts_with(&format!("Error: {} needs the keys store itself", args[0])),
            "{args:?}: {err}"
        );
        let mut flagged = vec!["--url", url.as_str()];
        flagged.extend(&args);
        let (code, _, err) = s.run(&list, &flagged);
        assert_eq!(code, 2, "{flagged:?}");
        assert!(err.contains("run it without --url"), "{err}");
    }
    assert!(!export.exists());
}

#[test]
fn the_key_from_a_file_and_the_url_from_a_flag() {
    let s = Setup::new("remote-file");
    let key_file = s.dir.path("admin.key");
    std::fs::write(&key_file, format!("{}\n", s.admin_secret)).unwrap();
    set_mode(&key_file, 0o600);
    let flags = Side {
        env: Vec::new(),
        ids: Vec::new(),
    };
    let url = s.server.url.clone();
    let file = key_file.to_str().unwrap();
    let by_env = s.run(&s.remote(), &["list", "--detailed"]);
    let by_flags = s.run(
        &flags,
        &[
            "--url",
            &url,
            "list",
            "--detailed",
            "--admin-key-file",
            file,
        ],
    );
    assert_eq!(by_flags, by_env);
    assert_eq!(by_env.2, "");
    // A file others may read works, with a warning, as ssh gives.
    set_mode(&key_file, 0o644);
    let (code, out, err) = s.run(&flags, &["list", "--url", &url, "--admin-key-file", file]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, s.run(&s.remote(), &["list"]).1);
    assert_eq!(
        err,
        format!(
            "Warning: the admin key file {file} can be read by its group and every user (mode \
             0644); make it readable by its owner alone: chmod 600 {file}\n"
        )
    );
    std::fs::write(&key_file, "\n").unwrap();
    let (code, _, err) = s.run(&flags, &["list", "--url", &url, "--admin-key-file", file]);
    assert_eq!(code, 2);
    assert!(err.contains("is empty: it holds no key"), "{err}");
    let missing = s.dir.path("missing.key");
    let (code, _, err) = s.run(
        &flags,
        &[
            "--url",
            &url,
            "--admin-key-file",
            missing.to_str().unwrap(),
            "list",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: cannot read the admin key file "),
        "{err}"
    );
    // An https URL is spoken to with TLS: this server speaks plain HTTP, so the handshake fails.
    let https = url.replacen("http://", "https://", 1);
    let (code, _, err) = s.run(&s.remote(), &["--url", &https, "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("tls connection init failed"), "{err}");
    // The flag wins over the variable.
    let (code, _, err) = s.run(&s.remote(), &["--url", "http://127.0.0.1:1", "list"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: cannot reach the server: http://127.0.0.1:1/keys"),
        "{err}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn doctor_checks_the_url_the_key_and_its_scopes() {
    let s = Setup::new("remote-doctor");
    let doctor = |side: &Side| {
        let (code, out, err) = s.run(side, &["doctor", "--json"]);
        assert_eq!(err, "");
        (code, serde_json::from_str::<Value>(&out).unwrap())
    };
    let (code, admin) = doctor(&s.remote());
    assert_eq!(code, 0, "{admin}");
    assert_eq!(
        (&admin["ok"], &admin["key_id"], &admin["management_api"]),
        (
            &Value::from(true),
            &Value::from(s.admin_id.as_str()),
            &Value::from(true)
        )
    );
    assert_eq!(
        (&admin["read"], &admin["write"], &admin["admin"]),
        (&Value::from(true), &Value::from(true), &Value::from(true))
    );
    let (code, text, _) = s.run(&s.remote(), &["doctor"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!("Admin key:  {} (admin), valid\n", s.admin_id))
            && text.contains("Access:     read yes, write yes, admin yes\n"),
        "{text}"
    );

    let secret_of = |args: &[&str]| {
        let (code, out, err) = s.run(&s.remote(), args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let writer = secret_of(&["create", "--name", "w", "--scopes", "keys:write", "--json"]);
    let (code, report) = doctor(&s.remote_with(&writer));
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (&report["read"], &report["write"], &report["admin"]),
        (&Value::from(true), &Value::from(true), &Value::from(false))
    );
    // A valid key with no keys: scope may do nothing here.
    let plain = secret_of(&["create", "--name", "p", "--scopes", "read", "--json"]);
    let (code, report) = doctor(&s.remote_with(&plain));
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        (&report["key_valid"], &report["read"]),
        (&Value::from(true), &Value::from(false))
    );
    let wrong = "sec_0VbwYMJgNotAKeyNotAKeyNotAKeyNotAKeyNotAKeyNotAKeyNotAKeyNo";
    note_presented(wrong);
    let (code, report) = doctor(&s.remote_with(wrong));
    assert_eq!(code, 1);
    assert_eq!(report["key_valid"], Value::from(false));
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("the admin key is not a key this server knows (HTTP 401"),
        "{problems}"
    );

    let gone = Side {
        env: vec![
            ("HEARE_AUTH_URL".into(), "http://127.0.0.1:1".into()),
            ("HEARE_AUTH_ADMIN_KEY".into(), s.admin_secret.clone()),
        ],
        ids: Vec::new(),
    };
    let (code, report) = doctor(&gone);
    assert_eq!((code, &report["health_status"]), (1, &Value::Null));

    // A server without the management API: the key is valid there, the API is not served.
    let off = Server::start(&[("KEYS_FILE", s.dir.path("served.json").to_str().unwrap())]);
    let at_off = Side {
        env: vec![
            ("HEARE_AUTH_URL".into(), off.url.clone()),
            ("HEARE_AUTH_ADMIN_KEY".into(), s.admin_secret.clone()),
        ],
        ids: Vec::new(),
    };
    let (code, report) = doctor(&at_off);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        (&report["key_valid"], &report["management_api"]),
        (&Value::from(true), &Value::from(false))
    );
    let (code, _, err) = s.run(&at_off, &["show", &s.admin_id]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not a management API: is the server started with MANAGEMENT_API=1"),
        "{err}"
    );
}
