//! Leak triage with the real binary: `scan` over a tree of planted secrets (text, binary, `.git`,
//! links, near misses, a long line), `identify` for a secret in each state, and the patterns of
//! `deploy/secret-scanning` (GitHub's, gitleaks's, the pre-commit hook's) against generated
//! secrets and near misses, with gitleaks and git themselves. No output may hold a secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use heare_auth_core::{generate_secret, hash_secret, Prefix};
use heare_auth_tests::{
    bin_dir, cli, cli_with_stdin, note_presented, stderr, stdout, transcribe, TempDir,
};
use regex::bytes::{Regex, RegexBuilder};
use serde_json::{json, Value};

/// Unix ms for secrets made here: the time part is not what is tested.
const NOW: i64 = 1_795_569_434_316;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn prefix(text: &str) -> Prefix {
    Prefix::parse("SECRET_PREFIX", text).unwrap()
}

/// A secret made here (not a key's), noted so that the transcript is searched for it.
fn made(prefix: &Prefix) -> String {
    let secret = generate_secret(prefix, &mut rand_core::OsRng, NOW);
    note_presented(&secret);
    secret
}

/// `secret` with one character of its random part changed: its checksum is wrong.
fn mistyped(secret: &str) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    let at = secret.len() - 20;
    bytes[at] = if bytes[at] == b'Q' { b'R' } else { b'Q' };
    let typo = String::from_utf8(bytes).unwrap();
    note_presented(&typo);
    typo
}

/// Asserts that no secret of `secrets` is in `text`, nor what follows its prefix's `_1`.
fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        let tail = &secret[secret.rfind('_').map_or(0, |i| i + 2)..];
        assert!(
            !text.contains(secret) && !text.contains(tail),
            "a secret ({}…) shown in:\n{text}",
            &secret[..secret.len().min(6)]
        );
    }
}

/// A keys file holding a key in each state, on the real CLI.
struct Keys {
    dir: TempDir,
    env: Vec<(String, String)>,
    /// Each key: its name, id and secret.
    active: (String, String),
    disabled: (String, String),
    expired: (String, String),
    /// Rotated with a grace period that is over: (id, the previous secret).
    rotated: (String, String),
    /// Rotated with an hour's grace: (id, the previous secret), and the new one.
    rotating: (String, String),
    rotating_new: String,
    /// The original service's plaintext secret.
    legacy: (String, String),
    /// A `sec_0…` secret made before the checksummed format, stored as its hash.
    earlier: (String, String),
}

impl Keys {
    fn new(name: &str) -> Keys {
        let dir = TempDir::new(name);
        let file = dir.path("keys.json");
        let legacy = "sec_N3J8dNcKZqg-7bXk_Tr2f3fQh4Gf9t2vQxk3oXa1vQ0".to_string();
        let seed = made(&Prefix::secret());
        let earlier = format!("sec_0{}ab", &seed[5..]);
        note_presented(&legacy);
        note_presented(&earlier);
        let original = json!({"keys": [
            {"id": "key_legacy", "secret": legacy, "name": "Legacy"},
            {"id": "key_earlier", "secret_hash": hash_secret(&earlier).to_hex(), "name": "Earlier"},
        ]});
        std::fs::write(&file, original.to_string()).unwrap();
        let env = vec![
            ("KEYS_FILE".to_string(), file.to_str().unwrap().to_string()),
            (
                "REFRESH_URL".to_string(),
                "http://127.0.0.1:9/refresh".into(),
            ),
        ];
        let mut keys = Keys {
            dir,
            env,
            active: Default::default(),
            disabled: Default::default(),
            expired: Default::default(),
            rotated: Default::default(),
            rotating: Default::default(),
            rotating_new: String::new(),
            legacy: ("key_legacy".into(), legacy),
            earlier: ("key_earlier".into(), earlier),
        };
        let rotated = keys.create("Rotated", &[]);
        keys.ok(&["rotate", &rotated.0, "--grace", "1s", "--no-refresh"]);
        let started = std::time::Instant::now();
        keys.rotated = rotated;
        keys.active = keys.create("Active", &[]);
        keys.disabled = keys.create("Disabled", &[]);
        keys.ok(&["disable", &keys.disabled.0, "--no-refresh"]);
        keys.expired = keys.create("Expired", &["--expires-at", "2020-01-01"]);
        keys.rotating = keys.create("Rotating", &[]);
        let out = keys.ok(&[
            "rotate",
            &keys.rotating.0,
            "--grace",
            "1h",
            "--no-refresh",
            "--json",
        ]);
        let rotated: Value = serde_json::from_str(&out).unwrap();
        keys.rotating_new = rotated["secret"].as_str().unwrap().to_string();
        // The first rotation's grace period is over before anything is looked up.
        std::thread::sleep(
            std::time::Duration::from_millis(1200).saturating_sub(started.elapsed()),
        );
        keys
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn run(&self, args: &[&str]) -> Output {
        cli(args, &self.env())
    }

    /// Runs the CLI with `extra` added to the environment.
    fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut env = self.env();
        env.extend_from_slice(extra);
        cli(args, &env)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Creates a key: (id, secret).
    fn create(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["create", "--name", name, "--no-refresh", "--json"];
        args.extend_from_slice(extra);
        let created: Value = serde_json::from_str(&self.ok(&args)).unwrap();
        let field = |f: &str| created[f].as_str().unwrap().to_string();
        (field("id"), field("secret"))
    }

    /// `identify` of `secret` piped in (and `extra` in the environment).
    fn identify(&self, secret: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut env = self.env();
        env.extend_from_slice(extra);
        let mut line = vec!["identify"];
        line.extend_from_slice(args);
        cli_with_stdin(&line, &env, &format!("{secret}\n"))
    }

    /// Every secret of every key, current and previous.
    fn secrets(&self) -> Vec<&str> {
        vec![
            &self.active.1,
            &self.disabled.1,
            &self.expired.1,
            &self.rotated.1,
            &self.rotating.1,
            &self.rotating_new,
            &self.legacy.1,
            &self.earlier.1,
        ]
    }
}

/// What `identify --json` says of a secret: the object and the exit code.
fn identified(keys: &Keys, secret: &str, extra: &[(&str, &str)]) -> (Value, i32) {
    let out = keys.identify(secret, &["--json"], extra);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_no_secret(&text, &[secret]);
    assert_no_secret(&text, &keys.secrets());
    let body =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (body, out.status.code().unwrap())
}

#[test]
fn identify_names_the_key_and_state_of_every_secret_without_showing_it() {
    let keys = Keys::new("identify");
    let key = |id: &str, name: &str, status: &str, matches: &str, verifies: bool| json!({"id": id, "name": name, "status": status, "matches": matches, "verifies": verifies});
    let cases = [
        (
            &keys.active.1,
            key(&keys.active.0, "Active", "active", "current", true),
        ),
        (
            &keys.disabled.1,
            key(&keys.disabled.0, "Disabled", "disabled", "current", false),
        ),
        (
            &keys.expired.1,
            key(&keys.expired.0, "Expired", "expired", "current", false),
        ),
        (
            &keys.rotating_new,
            key(&keys.rotating.0, "Rotating", "rotating", "current", true),
        ),
    ];
    for (secret, want) in cases {
        let (body, code) = identified(&keys, secret, &[]);
        assert_eq!(code, 0, "{body}");
        assert_eq!(body["key"], want);
        assert_eq!(
            (&body["format"], &body["checksum"], &body["prefix"]),
            (&json!("checksummed"), &json!("right"), &json!("sec_"))
        );
        assert_eq!(body["masked"], "sec_1…(62 chars)");
        assert_eq!(body["deployment_prefix"], true);
    }
    // A rotated key's previous secret: during its grace period, and after it.
    let (body, code) = identified(&keys, &keys.rotating.1, &[]);
    assert_eq!(code, 0);
    assert_eq!(body["key"]["id"], keys.rotating.0.as_str());
    assert_eq!(
        (&body["key"]["matches"], &body["key"]["status"]),
        (&json!("previous"), &json!("rotating"))
    );
    assert_eq!(
        (&body["key"]["grace_over"], &body["key"]["verifies"]),
        (&json!(false), &json!(true))
    );
    let (body, code) = identified(&keys, &keys.rotated.1, &[]);
    assert_eq!(code, 0);
    assert_eq!(body["key"]["id"], keys.rotated.0.as_str());
    assert_eq!(
        (&body["key"]["matches"], &body["key"]["status"]),
        (&json!("previous"), &json!("active"))
    );
    assert_eq!(
        (&body["key"]["grace_over"], &body["key"]["verifies"]),
        (&json!(true), &json!(false))
    );
    // Older forms: found by their hash all the same, with no checksum to check.
    let (body, code) = identified(&keys, &keys.legacy.1, &[]);
    assert_eq!(
        (code, &body["format"], &body["checksum"]),
        (0, &json!("other"), &json!(null))
    );
    assert_eq!(body["masked"], "sec_…(47 chars)");
    assert_eq!(body["key"]["id"], "key_legacy");
    let (body, code) = identified(&keys, &keys.earlier.1, &[]);
    assert_eq!((code, &body["format"]), (0, &json!("earlier")));
    assert_eq!(body["masked"], "sec_0…(64 chars)");
    assert_eq!(body["key"]["id"], "key_earlier");
    // None's: a well-formed unknown secret, a mistyped one, a malformed one; exit 1.
    let unknown = made(&Prefix::secret());
    let (body, code) = identified(&keys, &unknown, &[]);
    assert_eq!(
        (code, &body["format"], &body["key"]),
        (1, &json!("checksummed"), &json!(null))
    );
    let typo = mistyped(&keys.active.1);
    let (body, code) = identified(&keys, &typo, &[]);
    assert_eq!(
        (code, &body["format"], &body["checksum"], &body["key"]),
        (1, &json!("bad_checksum"), &json!("wrong"), &json!(null))
    );
    let (body, code) = identified(&keys, "not a secret", &[]);
    assert_eq!(
        (code, &body["format"], &body["masked"]),
        (1, &json!("other"), &json!("…(12 chars)"))
    );
    // Another deployment's prefix, then this one's.
    let acme = made(&prefix("acme_sk_"));
    let (body, _) = identified(&keys, &acme, &[]);
    assert_eq!(
        (&body["prefix"], &body["deployment_prefix"]),
        (&json!("acme_sk_"), &json!(false))
    );
    let (body, _) = identified(&keys, &acme, &[("SECRET_PREFIX", "acme_sk_")]);
    assert_eq!(body["deployment_prefix"], true);
    assert_eq!(body["masked"], "acme_sk_1…(66 chars)");
    // A key made under that prefix is found whatever the prefix now is.
    let made_there = keys.run_with(
        &["create", "--name", "Acme", "--no-refresh", "--json"],
        &[("SECRET_PREFIX", "acme_sk_")],
    );
    let made_there: Value = serde_json::from_str(&stdout(&made_there)).unwrap();
    let secret = made_there["secret"].as_str().unwrap();
    for (setting, ours) in [("acme_sk_", true), ("", false)] {
        let (body, code) = identified(&keys, secret, &[("SECRET_PREFIX", setting)]);
        assert_eq!((code, &body["deployment_prefix"]), (0, &json!(ours)));
        assert_eq!(body["key"]["id"], made_there["id"]);
    }
    // A bad prefix is a usage error naming the setting.
    let out = keys.identify(secret, &[], &[("SECRET_PREFIX", "Acme")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SECRET_PREFIX"), "{}", stderr(&out));
    assert_no_secret(&stderr(&out), &[secret]);
}

#[test]
fn identify_speaks_plainly_and_refuses_a_secret_given_as_an_argument() {
    let keys = Keys::new("identify-text");
    let out = keys.identify(&keys.rotating.1, &[], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_no_secret(&text, &keys.secrets());
    let want = format!(
        "Secret:   sec_1…(62 chars)\n\
         Format:   checksummed (prefix sec_, this deployment's), checksum right\n\
         Key:      {} (Rotating)\n\
         Matches:  its previous secret, replaced by a rotation; its grace period lasts until ",
        keys.rotating.0
    );
    assert!(text.starts_with(&want), "{text}");
    assert!(text.ends_with(
        "Status:   rotating\nVerifies: yes: rotate the key (or disable it) to stop this secret \
         working\n"
    ));
    let typo = mistyped(&keys.active.1);
    let out = keys.identify(&typo, &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("checksum WRONG"), "{}", stdout(&out));
    assert!(stdout(&out).contains("Key:      none: no key in "));
    assert_no_secret(&stdout(&out), &[&typo]);

    // On the command line, a secret is refused and not repeated: a generated one (which the
    // parser knows by its form) and a legacy one (which identify refuses as any argument).
    let argument = generate_secret(&Prefix::secret(), &mut rand_core::OsRng, NOW);
    // (Neither is any key's, nor contains one: the transcript keeps every command line.)
    for given in [argument.as_str(), "sec_Given0nThe_command_line"] {
        let out = keys.run(&["identify", given]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("not shown"), "{}", stderr(&out));
        assert!(!stderr(&out).contains(given) && stdout(&out).is_empty());
    }
    // Nothing, or more than a secret, on standard input.
    for input in ["", "\n", "sec_a\nsec_b\n"] {
        let out = cli_with_stdin(&["identify"], &keys.env(), input);
        assert_eq!(out.status.code(), Some(2), "{input:?}: {}", stderr(&out));
    }
    // Through a server: the store is needed.
    let out = keys.identify(
        &keys.active.1,
        &[],
        &[
            ("HEARE_AUTH_URL", "http://127.0.0.1:9"),
            ("HEARE_AUTH_ADMIN_KEY", "x"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("Error: identify needs the keys store itself"),
        "{}",
        stderr(&out)
    );
    // A store that cannot be read: exit 1, naming it.
    let broken = keys.dir.path("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    let out = keys.identify(
        &keys.active.1,
        &[],
        &[("KEYS_FILE", broken.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.json"), "{}", stderr(&out));
    assert_no_secret(&stderr(&out), &keys.secrets());
}

/// Line and column (from 1, in bytes) where `secret` first is in `text`.
fn place(text: &[u8], secret: &str) -> (u64, u64) {
    let at = text
        .windows(secret.len())
        .position(|w| w == secret.as_bytes())
        .unwrap();
    let before = &text[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let column = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => (at - nl) as u64,
        None => at as u64 + 1,
    };
    (line, column)
}

/// A tree of files holding the secrets of `keys` and others, and what `scan` must find in it.
struct Tree {
    root: PathBuf,
    /// (path, line, column, key id or "unknown", what scan says of the key), in walk order.
    expected: Vec<(String, u64, u64, String, String)>,
    /// Only found with `--any-prefix`: another deployment's secret.
    acme: (String, u64, u64),
    /// Only found with `--include-git`.
    in_git: (String, u64, u64),
    /// Every secret planted, near misses included.
    planted: Vec<String>,
}

fn plant(keys: &Keys) -> Tree {
    let root = keys.dir.path("tree");
    let unknown = made(&Prefix::secret());
    let acme = made(&prefix("acme_sk_"));
    let typo = mistyped(&keys.disabled.1);
    let a = &keys.active.1;
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            ".git/config",
            format!("[remote]\n\ttoken = {a}\n").into_bytes(),
        ),
        (
            "app/config.env",
            format!("# settings\nAPI_KEY={a}\n").into_bytes(),
        ),
        (
            "app/main.py",
            format!(
                "import os\n\nDISABLED = '{}'\nEXPIRED = \"{}\"\n",
                keys.disabled.1, keys.expired.1
            )
            .into_bytes(),
        ),
        ("big.log", {
            // 2000 short lines, then one of a megabyte with the secret at its end.
            let mut big = "log line of some length\n".repeat(2000).into_bytes();
            big.extend(std::iter::repeat_n(b'x', 1 << 20));
            big.extend(format!(" {a}\nafter\n").into_bytes());
            big
        }),
        (
            "blob.bin",
            [b"\x89PNG\r\n\x1a\n\0\0".as_slice(), a.as_bytes()].concat(),
        ),
        (
            "near-misses.txt",
            format!(
                "typo: {typo}\ngeneration: {}\nupper: {}\nshort: {}\nold: {}\nlegacy: {}\n\
                 other prefix: {acme}\n",
                a.replacen("sec_1", "sec_2", 1),
                a.replacen("sec_", "SEC_", 1),
                &a[..a.len() - 1],
                keys.earlier.1,
                keys.legacy.1,
            )
            .into_bytes(),
        ),
        (
            "notes/leak.log",
            format!("{{\"msg\": \"request failed\\n{unknown}\", \"level\": \"error\"}}\n")
                .into_bytes(),
        ),
        (
            "notes/rotation.md",
            format!(
                "old: {}\nstill in grace: {}\nnew: {}\n",
                keys.rotated.1, keys.rotating.1, keys.rotating_new
            )
            .into_bytes(),
        ),
    ];
    for (name, bytes) in &files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    // A link to a file outside the tree, and one to a directory: not followed.
    let outside = keys.dir.path("outside.txt");
    std::fs::write(&outside, format!("{a}\n")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(keys.dir.root(), root.join("zz-loop")).unwrap();

    let text = |name: &str| files.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let at = |name: &str, secret: &str, id: &str, says: &str| {
        let (line, column) = place(&text(name), secret);
        let path = root.join(name).to_str().unwrap().to_string();
        (path, line, column, id.to_string(), says.to_string())
    };
    let k = keys;
    let expected = vec![
        at("app/config.env", a, &k.active.0, "(Active) active"),
        at(
            "app/main.py",
            &k.disabled.1,
            &k.disabled.0,
            "(Disabled) disabled",
        ),
        at(
            "app/main.py",
            &k.expired.1,
            &k.expired.0,
            "(Expired) expired",
        ),
        at("big.log", a, &k.active.0, "(Active) active"),
        at("notes/leak.log", &unknown, "unknown", ""),
        at(
            "notes/rotation.md",
            &k.rotated.1,
            &k.rotated.0,
            "(Rotated) active, its previous secret (grace period over)",
        ),
        at(
            "notes/rotation.md",
            &k.rotating.1,
            &k.rotating.0,
            "(Rotating) rotating, its previous secret (in its grace period)",
        ),
        at(
            "notes/rotation.md",
            &k.rotating_new,
            &k.rotating.0,
            "(Rotating) rotating",
        ),
    ];
    let acme_at = at("near-misses.txt", &acme, "", "");
    let git_at = at(".git/config", a, "", "");
    let mut planted: Vec<String> = k.secrets().iter().map(|s| s.to_string()).collect();
    planted.extend([unknown, acme, typo]);
    Tree {
        root,
        expected,
        acme: (acme_at.0, acme_at.1, acme_at.2),
        in_git: (git_at.0, git_at.1, git_at.2),
        planted,
    }
}

/// `scan ARGS` on the tree: its output, with no secret in it.
fn scan(keys: &Keys, tree: &Tree, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut line = vec!["scan", tree.root.to_str().unwrap()];
    line.extend_from_slice(args);
    let out = keys.run_with(&line, extra);
    let planted: Vec<&str> = tree.planted.iter().map(String::as_str).collect();
    assert_no_secret(&format!("{}{}", stdout(&out), stderr(&out)), &planted);
    out
}

/// `scan --json`'s findings as (path, line, column, key id or "unknown").
fn findings(out: &Output) -> Vec<(String, u64, u64, String)> {
    let report: Value = serde_json::from_str(&stdout(out)).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
                f["key"]["id"].as_str().unwrap_or("unknown").to_string(),
            )
        })
        .collect()
}

#[test]
fn scan_finds_exactly_the_planted_secrets_with_their_keys_and_never_shows_one() {
    let keys = Keys::new("scan");
    let tree = plant(&keys);
    let out = scan(&keys, &tree, &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let want: String = tree
        .expected
        .iter()
        .map(|(path, line, column, id, says)| {
            let whose = match says.as_str() {
                "" => id.clone(),
                says => format!("{id} {says}"),
            };
            format!("{path}:{line}:{column}: sec_1…(62 chars) {whose}\n")
        })
        .collect();
    assert_eq!(stdout(&out), want);
    assert_eq!(
        stderr(&out),
        "scan: 8 secrets found in 5 files (6 files read, 1 binary skipped); 7 of a known key, \
         4 still verifying\n"
    );

    // --json: the same findings, each key's state.
    let out = scan(&keys, &tree, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let plain: Vec<_> = tree
        .expected
        .iter()
        .map(|(p, l, c, id, _)| (p.clone(), *l, *c, id.clone()))
        .collect();
    assert_eq!(findings(&out), plain);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let first = &report["findings"][0];
    assert_eq!(
        first["key"],
        json!({"id": keys.active.0, "name": "Active", "status": "active", "matches": "current",
               "verifies": true})
    );
    assert_eq!(first["masked"], "sec_1…(62 chars)");
    assert_eq!(report["findings"][5]["key"]["grace_over"], true);
    assert_eq!(report["files_read"], 6);
    let blob = tree.root.join("blob.bin");
    assert_eq!(report["binary_skipped"], json!([blob.to_str().unwrap()]));
    assert_eq!(report["store"], keys.env[0].1.as_str());
    assert_eq!(report["store_error"], Value::Null);

    // --any-prefix adds another deployment's secret, --include-git the .git directory's.
    let out = scan(
        &keys,
        &tree,
        &["--json", "--any-prefix", "--include-git"],
        &[],
    );
    let mut wider = plain.clone();
    wider.insert(
        0,
        (
            tree.in_git.0.clone(),
            tree.in_git.1,
            tree.in_git.2,
            keys.active.0.clone(),
        ),
    );
    wider.insert(
        5,
        (
            tree.acme.0.clone(),
            tree.acme.1,
            tree.acme.2,
            "unknown".into(),
        ),
    );
    assert_eq!(findings(&out), wider);
    // Under its own SECRET_PREFIX, only that deployment's secret.
    let out = scan(&keys, &tree, &["--json"], &[("SECRET_PREFIX", "acme_sk_")]);
    let acme = (
        tree.acme.0.clone(),
        tree.acme.1,
        tree.acme.2,
        "unknown".to_string(),
    );
    assert_eq!(findings(&out), [acme]);

    // Without the store, or with one that cannot be read: the same places, every key unknown.
    let unknown: Vec<_> = plain
        .iter()
        .map(|(p, l, c, _)| (p.clone(), *l, *c, "unknown".to_string()))
        .collect();
    let out = scan(&keys, &tree, &["--json", "--no-store"], &[]);
    assert_eq!(findings(&out), unknown);
    assert_eq!(stderr(&out), "");
    let broken = keys.dir.path("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    let out = scan(
        &keys,
        &tree,
        &["--json"],
        &[("KEYS_FILE", broken.to_str().unwrap())],
    );
    assert_eq!((out.status.code(), findings(&out)), (Some(1), unknown));
    assert!(
        stderr(&out).starts_with("Warning: cannot read the store ("),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["store_error"]
        .as_str()
        .unwrap()
        .contains("broken.json"));
}

#[test]
fn scan_exits_0_when_clean_2_when_it_cannot_read_and_needs_the_store_itself() {
    let keys = Keys::new("scan-exit");
    let clean = keys.dir.path("clean");
    std::fs::create_dir_all(clean.join("src")).unwrap();
    std::fs::write(clean.join("src/a.rs"), "fn main() {}\n").unwrap();
    let out = keys.run(&["scan", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "scan: no secret found (1 file read)\n");
    let missing = keys.dir.path("missing");
    let out = keys.run(&["scan", clean.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("scan: cannot read "),
        "{}",
        stderr(&out)
    );
    let out = keys.run(&["scan"]);
    assert_eq!(out.status.code(), Some(2));
    let out = keys.run_with(
        &["scan", clean.to_str().unwrap()],
        &[
            ("HEARE_AUTH_URL", "http://127.0.0.1:9"),
            ("HEARE_AUTH_ADMIN_KEY", "x"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("Error: scan needs the keys store itself"));
}

/// A regular expression as a secret scanner runs it: on bytes, `\b` and classes ASCII-only
/// (as in Go's RE2, which gitleaks uses).
fn scanner_regex(pattern: &str) -> Regex {
    RegexBuilder::new(pattern).unicode(false).build().unwrap()
}

/// The text of `path` from the repository's root.
fn shipped(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// The value of the first uncommented line of `text` beginning `key`.
fn setting<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no line beginning {key:?}"))
        .trim()
}

/// The shipped patterns, for the prefix `prefix` put in place of `sec_` as their instructions
/// say: (name, regex, the capture group that is the secret).
fn patterns(prefix: &str) -> Vec<(&'static str, Regex, usize)> {
    let readme = shipped("deploy/secret-scanning/README.md");
    let github = format!(
        "(?:{})({})(?:{})",
        setting(&readme, "Before secret:"),
        setting(&readme, "Secret format:"),
        setting(&readme, "After secret:")
    );
    let toml = shipped("deploy/secret-scanning/gitleaks.toml");
    let gitleaks = setting(&toml, "regex = '''")
        .trim_end_matches("'''")
        .to_string();
    assert_eq!(setting(&toml, "keywords = "), r#"["sec_1"]"#);
    let hook = shipped("deploy/secret-scanning/pre-commit");
    let grep = setting(&hook, "pattern=\"")
        .trim_end_matches('"')
        .replace("${prefix}", "sec_")
        .replace("\\$", "$");
    // The hook's pattern groups its boundaries: the secret is what they enclose, grouped here.
    let grep = grep.replacen("sec_1[0-9A-Za-z]{57}", "(sec_1[0-9A-Za-z]{57})", 1);
    [
        ("github", github, 1),
        ("gitleaks", gitleaks, 1),
        ("pre-commit", grep, 2),
    ]
    .into_iter()
    .map(|(name, p, group)| (name, scanner_regex(&p.replace("sec_", prefix)), group))
    .collect()
}

#[test]
fn the_patterns_match_every_generated_secret_and_no_near_miss() {
    // Secrets from the CLI and from core, under the default prefix and others.
    let keys = Keys::new("patterns");
    let from_cli = [&keys.active.1, &keys.disabled.1, &keys.rotating_new];
    for p in ["sec_", "acme_sk_", "a_", "x9_live_"] {
        let mut secrets: Vec<String> = (0..1000 / 4)
            .map(|_| generate_secret(&prefix(p), &mut rand_core::OsRng, NOW))
            .collect();
        if p == "sec_" {
            secrets.extend(from_cli.iter().map(|s| s.to_string()));
        }
        for (name, regex, group) in patterns(p) {
            for secret in &secrets {
                for context in [
                    "{}",
                    "KEY={}\n",
                    "\"{}\"",
                    "'{}'",
                    "x: {} y",
                    "({})",
                    "{},",
                    "a\n{}\nb",
                    "\t{}\r\n",
                    "key=\"{}\";",
                ] {
                    let text = context.replace("{}", secret);
                    let found: Vec<&[u8]> = regex
                        .captures_iter(text.as_bytes())
                        .map(|c| c.get(group).unwrap().as_bytes())
                        .collect();
                    assert_eq!(found, [secret.as_bytes()], "{name} in {context:?}");
                }
                // A regular expression cannot check the checksum: a typo matches too.
                let last = if secret.ends_with('0') { '1' } else { '0' };
                let typo = format!("{}{last}", &secret[..secret.len() - 1]);
                assert!(regex.is_match(typo.as_bytes()), "{name}");
                let near = [
                    secret.replacen(&format!("{p}1"), &format!("{p}2"), 1),
                    secret.replacen(&format!("{p}1"), &format!("{p}0"), 1),
                    secret[..secret.len() - 1].to_string(),
                    format!("{secret}A"),
                    format!("{secret}_"),
                    format!("x{secret}"),
                    format!("_{secret}"),
                    secret.replacen(p, &p.to_uppercase(), 1),
                ];
                for miss in near {
                    assert!(
                        !regex.is_match(miss.as_bytes()),
                        "{name} matched a near miss"
                    );
                }
            }
        }
    }
    // Older secrets are not matched; the README's rule for them matches them and not new ones.
    let readme = shipped("deploy/secret-scanning/README.md");
    let older = scanner_regex(setting(&readme, "regex = '''").trim_end_matches("'''"));
    let default = patterns("sec_");
    for _ in 0..100 {
        let new = generate_secret(&Prefix::secret(), &mut rand_core::OsRng, NOW);
        let old = format!("sec_0{}xy", &new[5..]);
        assert!(older.is_match(format!("K={old}\n").as_bytes()));
        assert!(!older.is_match(new.as_bytes()));
        for (name, regex, _) in &default {
            assert!(!regex.is_match(old.as_bytes()), "{name}");
        }
    }
    for (name, regex, _) in &default {
        assert!(!regex.is_match(keys.legacy.1.as_bytes()), "{name}");
    }
}

/// Runs `gitleaks` with the shipped rules on `dir`: (file name, line) of each finding of
/// heare-auth's rule.
fn gitleaks(bin: &Path, dir: &Path, report: &Path) -> Vec<(String, u64)> {
    let config = repo().join("deploy/secret-scanning/gitleaks.toml");
    let out = Command::new(bin)
        .args([
            "detect",
            "--no-git",
            "--redact",
            "--no-banner",
            "--exit-code",
            "0",
        ])
        .arg("--source")
        .arg(dir)
        .arg("--config")
        .arg(&config)
        .args(["--report-format", "json", "--report-path"])
        .arg(report)
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    transcribe(
        "cli",
        &format!("$ gitleaks detect --no-git --redact\n{text}"),
    );
    assert!(out.status.success(), "{text}");
    let report_text = std::fs::read_to_string(report).unwrap();
    transcribe("cli", &report_text);
    let findings: Value = serde_json::from_str(&report_text).unwrap();
    let mut found: Vec<(String, u64)> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["RuleID"] == "heare-auth-secret")
        .map(|f| {
            let file = Path::new(f["File"].as_str().unwrap());
            let name = file.file_name().unwrap().to_str().unwrap().to_string();
            (name, f["StartLine"].as_u64().unwrap())
        })
        .collect();
    found.sort();
    found
}

#[test]
fn gitleaks_finds_the_secrets_with_the_shipped_rules() {
    let installer = repo().join("tests/tools/ensure-gitleaks.sh");
    let installed = Command::new("bash").arg(&installer).status().unwrap();
    if !installed.success() {
        // The release cannot be downloaded here (no network): the rule's regular expression
        // was checked with the regex crate above, not with gitleaks.
        eprintln!(
            "gitleaks could not be installed (tests/tools/ensure-gitleaks.sh failed): the \
             gitleaks rule is checked with the regex crate only"
        );
        return;
    }
    let bin = repo().join(".cache/tools/bin/gitleaks");
    let dir = TempDir::new("gitleaks");
    let src = dir.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let secret = made(&Prefix::secret());
    let other = made(&Prefix::secret());
    let typo = mistyped(&other);
    std::fs::write(src.join("a.env"), format!("# app\nAPI_KEY={secret}\n")).unwrap();
    std::fs::write(
        src.join("b.py"),
        format!(
            "x = 1\nKEY = '{other}'\nnear = 'x{secret}'\nold = 'sec_0{}ab'\ntypo = '{typo}'\n",
            &secret[5..]
        ),
    )
    .unwrap();
    let found = gitleaks(&bin, &src, &dir.path("report.json"));
    assert_eq!(
        found,
        [("a.env".into(), 2), ("b.py".into(), 2), ("b.py".into(), 5)]
    );
}

/// Runs `git ARGS` in `repo`, with the shipped hooks and a fixed identity.
fn git(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let hooks = repo_hooks();
    let out = Command::new("git")
        .current_dir(repo)
        .env("HOME", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .args(["-c", &format!("core.hooksPath={}", hooks.display())])
        .args([
            "-c",
            "user.name=Triage Test",
            "-c",
            "user.email=triage@example.com",
        ])
        .args(args)
        .output()
        .unwrap();
    transcribe(
        "cli",
        &format!("$ git {}\n{}{}", args.join(" "), stdout(&out), stderr(&out)),
    );
    out
}

fn repo_hooks() -> PathBuf {
    repo()
        .join("deploy/secret-scanning")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_pre_commit_hook_refuses_a_staged_secret_with_heare_auth_or_grep() {
    let dir = TempDir::new("hook");
    let work = dir.root();
    assert!(git(work, &["init", "-q", "."], &[]).status.success());
    let heare_auth = bin_dir().join("heare-auth");
    let with_cli = [("HEARE_AUTH_BIN", heare_auth.to_str().unwrap())];
    let with_grep = [("HEARE_AUTH_BIN", "/nonexistent/heare-auth")];
    let commit = |env: &[(&str, &str)]| git(work, &["commit", "-q", "-m", "change"], env);
    let add = |name: &str, text: &str| {
        std::fs::write(work.join(name), text).unwrap();
        assert!(git(work, &["add", name], &[]).status.success());
    };
    add("README", "nothing to hide\n");
    let out = commit(&with_cli);
    assert!(out.status.success(), "{}", stderr(&out));

    // A secret staged, then removed from the working tree only: what is staged is checked.
    let secret = made(&Prefix::secret());
    add("app.env", &format!("API_KEY={secret}\n"));
    std::fs::write(work.join("app.env"), "API_KEY=\n").unwrap();
    let out = commit(&with_cli);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.contains("./app.env:1:9: sec_1…(62 chars) unknown\n"),
        "{said}"
    );
    assert!(said.contains("pre-commit: refused"), "{said}");
    assert_no_secret(&format!("{}{said}", stdout(&out)), &[&secret]);
    let out = commit(&with_grep);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.contains("checking with a regular expression"),
        "{said}"
    );
    assert!(said.contains("\n  ./app.env\n"), "{said}");
    assert_no_secret(&format!("{}{said}", stdout(&out)), &[&secret]);

    // A mistyped secret: heare-auth knows it for none by its checksum; grep cannot.
    assert!(git(work, &["reset", "-q"], &[]).status.success());
    let typo = mistyped(&secret);
    add("typo.txt", &format!("{typo}\n"));
    let out = commit(&with_grep);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_secret(&stderr(&out), &[&typo]);
    let out = commit(&with_cli);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secret(&stderr(&out), &[&typo]);
}
