//! The real `heare-auth` CLI (and server) with keys files and input meant to hurt: the file's
//! mode and owner kept, links planted beside it, control characters in names, an id held twice,
//! metadata too deep or too large, and secrets of the wrong type kept out of every message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use heare_auth_core::is_control;
use heare_auth_tests::{bin_dir, cli, stderr, stdout, unprivileged_uid, Server, TempDir};
use serde_json::Value;

/// A keys file in a fresh directory, and the environment that points the CLI at it.
struct Keys {
    dir: TempDir,
    path: PathBuf,
}

impl Keys {
    fn new(name: &str) -> Keys {
        let dir = TempDir::new(name);
        let path = dir.path("keys.json");
        Keys { dir, path }
    }

    fn with(name: &str, text: &str) -> Keys {
        let keys = Keys::new(name);
        std::fs::write(&keys.path, text).unwrap();
        keys
    }

    fn run(&self, args: &[&str]) -> Output {
        cli(args, &[("KEYS_FILE", self.path.to_str().unwrap())])
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn mode(&self) -> u32 {
        std::fs::metadata(&self.path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(&self, mode: u32) {
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Runs the CLI expecting success; its stdout.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// A failed run: its exit code and stderr.
fn failed(out: Output) -> (Option<i32>, String) {
    assert!(!out.status.success(), "succeeded: {}", stdout(&out));
    (out.status.code(), stderr(&out))
}

/// Whether `text` holds a control character other than the line breaks it is laid out with.
fn obeys_controls(text: &str) -> bool {
    text.chars().any(|c| c != '\n' && is_control(c))
}

const LEGACY: &str =
    r#"{"keys": [{"id": "key_l", "secret": "sec_LEGACYPLAIN", "name": "Legacy"}]}"#;

#[test]
fn a_cli_write_keeps_the_keys_files_mode_and_owner_and_a_new_file_is_private() {
    let fresh = Keys::new("mode-new");
    ok(fresh.run(&["create", "--name", "A", "--no-refresh"]));
    assert_eq!(
        fresh.mode(),
        0o600,
        "a new keys file is readable by its owner only"
    );

    let keys = Keys::with("mode", LEGACY);
    keys.chmod(0o600);
    ok(keys.run(&["create", "--name", "B", "--no-refresh"]));
    assert_eq!(keys.mode(), 0o600, "chmod 600 undone by a write");
    assert!(keys.text().contains("sec_LEGACYPLAIN"));
    keys.chmod(0o640);
    let mine = std::fs::metadata(&keys.path).unwrap();
    // Only root can give a file to another user; the CLI as root keeps it theirs.
    let owner = match mine.uid() {
        0 => (unprivileged_uid(), unprivileged_uid()),
        _ => (mine.uid(), mine.gid()),
    };
    std::os::unix::fs::chown(&keys.path, Some(owner.0), Some(owner.1)).unwrap();
    let id = ok(keys.run(&["create", "--name", "C", "--no-refresh", "--json"]));
    let id: Value = serde_json::from_str(&id).unwrap();
    ok(keys.run(&["disable", id["id"].as_str().unwrap(), "--no-refresh"]));
    let after = std::fs::metadata(&keys.path).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), keys.mode()),
        (owner.0, owner.1, 0o640)
    );
}

/// Runs the CLI from a shell that first plants a link to `target` at `KEYS_FILE.tmp.$$`: the
/// name the CLI's temporary file once had, `$$` being its process id once the shell `exec`s it.
fn with_planted_tmp_link(keys: &Keys, target: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(r#"ln -s "$1" "$2.tmp.$$" && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(target)
        .arg(&keys.path)
        .arg(bin_dir().join("heare-auth"))
        .args(args)
        .env_clear()
        .env("KEYS_FILE", &keys.path)
        .output()
        .unwrap()
}

#[test]
fn a_link_planted_at_the_temporary_name_is_not_written_through() {
    let keys = Keys::with("tmp-link", LEGACY);
    let elsewhere = TempDir::new("tmp-link-target");
    let target = elsewhere.path("authorized_keys");
    std::fs::write(&target, "untouched\n").unwrap();
    let out = with_planted_tmp_link(&keys, &target, &["create", "--name", "N", "--no-refresh"]);
    ok(out);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    assert!(!std::fs::symlink_metadata(&keys.path).unwrap().is_symlink());
    let listed: Value = serde_json::from_str(&ok(keys.run(&["list", "--json"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // A dangling link is not followed to create its target either.
    let absent = elsewhere.path("created-through-the-link");
    ok(with_planted_tmp_link(
        &keys,
        &absent,
        &["create", "--name", "M", "--no-refresh"],
    ));
    assert!(!absent.exists());
}

#[test]
fn a_link_planted_at_the_lock_file_is_refused_and_nothing_is_written_through_it() {
    let keys = Keys::with("lock-link", LEGACY);
    let elsewhere = TempDir::new("lock-link-target");
    let before = keys.text();
    for target in [elsewhere.path("absent"), elsewhere.path("present")] {
        if target.ends_with("present") {
            std::fs::write(&target, "untouched\n").unwrap();
        }
        let lock = keys.dir.path("keys.json.lock");
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        // A change is stored beside the file without the lock; folding it into the file, which
        // takes the lock, is refused.
        ok(keys.run(&["create", "--name", "N", "--no-refresh"]));
        let (code, err) = failed(keys.run(&["compact", "--no-refresh"]));
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("cannot create the lock file beside it: ")
                && err.contains("symbolic links"),
            "{err}"
        );
        assert_eq!(keys.text(), before);
        match target.ends_with("present") {
            true => assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n"),
            false => assert!(!target.exists(), "the lock was created through the link"),
        }
    }
}

/// Terminal controls: a title change, a screen clear, line breaks, DEL, a C1 CSI and a bidi
/// override, as JSON escapes.
const CONTROLS: &str = r"\u001b]0;pwned\u0007\u001b[2J\r\n\t\u007f\u009b\u202e";
/// The same as [`heare_auth_core::visible`] shows them.
const SHOWN: &str = r"\x1b]0;pwned\x07\x1b[2J\r\n\t\x7f\u{9b}\u{202e}";

#[test]
fn control_characters_in_a_keys_file_are_shown_not_obeyed() {
    let text = format!(
        r#"{{"keys": [{{"id": "key_e{CONTROLS}", "secret": "sec_e", "name": "Evil{CONTROLS}",
            "created_by": "ann{CONTROLS}", "expires_at": "soon{CONTROLS}",
            "metadata": {{"t": "x{raw}y"}}}}]}}"#,
        raw = "\u{7f}\u{202e}"
    );
    let keys = Keys::with("controls", &text);
    let id: Value = serde_json::from_str(&ok(keys.run(&["list", "--json"]))).unwrap();
    let id = id[0]["id"].as_str().unwrap().to_string();
    assert!(
        id.contains('\u{1b}') && id.contains('\u{202e}'),
        "--json is exact: {id:?}"
    );
    let mut outputs = Vec::new();
    for args in [
        &["list"][..],
        &["list", "--detailed"],
        &["show", &id],
        &["check"],
        &["doctor"],
        &["disable", &id, "--no-refresh"],
        &["disable", &id, "--no-refresh"],
        &["set-rate-limit", &id, "5/1s", "--no-refresh"],
        &["migrate", "--hash-secrets"],
        &["rotate", &id, "--grace", "0", "--no-refresh"],
    ] {
        let out = keys.run(args);
        let (stdout, stderr) = (stdout(&out), stderr(&out));
        assert!(
            !obeys_controls(&stdout) && !obeys_controls(&stderr),
            "{args:?}: {stdout:?} {stderr:?}"
        );
        outputs.push(stdout);
    }
    for (i, out) in outputs.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert!(out.contains(&format!("key_e{SHOWN}")), "{i}: {out}");
    }
    assert!(
        outputs[2].contains(&format!("  Name:    Evil{SHOWN}\n")),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[2].contains("\"t\": \"x\\x7f\\u{202e}y\""),
        "{}",
        outputs[2]
    );
    // An error naming the key shows it too.
    let (_, err) = failed(keys.run(&["show", &format!("{id}x")]));
    assert!(!obeys_controls(&err) && err.contains(SHOWN), "{err:?}");
}

#[test]
fn a_name_or_id_with_a_control_character_is_refused_at_create_and_import() {
    let keys = Keys::new("refused-names");
    for (name, shown, at) in [
        ("Billing\u{1b}[2J", "\\x1b", 8),
        ("a\nb", "\\n", 2),
        ("\u{202e}gpj", "\\u{202e}", 1),
    ] {
        let (code, err) = failed(keys.run(&["create", "--name", name, "--no-refresh"]));
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "create: --name: field `name` has a control character ({shown}) at character {at}"
            )),
            "{err}"
        );
        assert!(!obeys_controls(&err), "{err:?}");
    }
    assert!(!keys.path.exists());
    let backup = keys.dir.path("backup.json");
    std::fs::write(
        &backup,
        format!(r#"{{"keys": [{{"id": "key_i", "secret": "s", "name": "Imp{CONTROLS}"}}]}}"#),
    )
    .unwrap();
    for yes in [false, true] {
        let mut args = vec!["import", backup.to_str().unwrap(), "--no-refresh"];
        if yes {
            args.push("--yes");
        }
        let (code, err) = failed(keys.run(&args));
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("key key_i: field `name` has a control character (\\x1b) at character 4"),
            "{err}"
        );
    }
    assert!(!keys.path.exists());
}

#[test]
fn every_edit_by_id_refuses_a_file_holding_the_id_twice() {
    let text = r#"{"keys": [{"id": "key_t", "secret": "sec_first", "name": "First"},
  {"id": "key_t", "secret": "sec_second", "name": "Second", "disabled": true}]}"#;
    let keys = Keys::with("twice", text);
    for args in [
        &["delete", "key_t", "--yes", "--no-refresh"][..],
        &["disable", "key_t", "--no-refresh"],
        &["enable", "key_t", "--no-refresh"],
        &["rotate", "key_t", "--grace", "0", "--no-refresh"],
        &["set-rate-limit", "key_t", "1/1s", "--no-refresh"],
        &["set-rate-limit", "key_t", "none", "--no-refresh"],
        &["show", "key_t"],
        &["list"],
    ] {
        let (code, err) = failed(keys.run(args));
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("duplicate key id key_t"), "{args:?}: {err}");
        assert!(!err.contains("sec_"), "{args:?}: {err}");
        assert_eq!(keys.text(), text, "{args:?} wrote");
    }
}

/// `levels` nested arrays inside a metadata object.
fn nested(levels: usize) -> String {
    format!(
        r#"{{"a":{}1{}}}"#,
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

#[test]
fn metadata_too_deep_or_too_large_is_refused_before_a_key_is_made() {
    let keys = Keys::new("metadata-input");
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(16 * 1024));
    for (metadata, want) in [
        (
            nested(128),
            "is nested 128 levels deep; at most 32 levels are allowed",
        ),
        (
            nested(129),
            "is nested 129 levels deep; at most 32 levels are allowed",
        ),
        (
            big,
            "is 16392 bytes as compact JSON; at most 16384 bytes are allowed",
        ),
    ] {
        let out = keys.run(&[
            "create",
            "--name",
            "D",
            "--json",
            "--metadata",
            &metadata,
            "--no-refresh",
        ]);
        let (code, err) = failed(out);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!("Error: Invalid metadata: --metadata {want}")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!keys.path.exists(), "a key was saved");
    }
    let created: Value = serde_json::from_str(&ok(keys.run(&[
        "create",
        "--name",
        "D",
        "--json",
        "--metadata",
        &nested(32),
        "--no-refresh",
    ])))
    .unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("sec_"));
    let show = ok(keys.run(&["show", created["id"].as_str().unwrap()]));
    assert!(show.len() < 4_000, "{} bytes", show.len());
}

#[test]
fn a_keys_file_with_metadata_too_deep_is_refused_quickly_by_the_cli_and_the_server() {
    let keys = Keys::with("metadata-file", r#"{"keys": []}"#);
    let server = Server::with_file(&keys.path);
    let deep = format!(
        r#"{{"keys": [{{"id": "key_d", "secret": "sec_deep", "metadata": {}}}]}}"#,
        nested(20_000)
    );
    std::fs::write(&keys.path, &deep).unwrap();
    let want =
        "key key_d: field `metadata` is nested 20000 levels deep; at most 32 levels are allowed";
    for args in [&["show", "key_d"][..], &["list", "--detailed"], &["check"]] {
        let started = std::time::Instant::now();
        let out = keys.run(args);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
        let (code, err) = (out.status.code(), stdout(&out) + &stderr(&out));
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.len() < 2_000, "{args:?}: {} bytes", err.len());
    }
    let (status, body) = server.refresh();
    assert_eq!(status, 500, "{body}");
    assert!(body["error"].as_str().unwrap().contains(want), "{body}");
}

#[test]
fn a_secret_of_the_wrong_type_is_in_no_message_of_the_cli_or_the_server() {
    let keys = Keys::with("secret-types", r#"{"keys": []}"#);
    let server = Server::with_file(&keys.path);
    let long = format!("\"{}\"", "98765".repeat(400));
    let cases = [
        ("secret", "98765432101234"),
        ("secret", "-98765432101234.5"),
        ("secret", "[98765432101234]"),
        ("secret", r#"{"s": 98765432101234}"#),
        ("secret", "true"),
        ("secret_hash", "98765432101234"),
        ("secret_hash", r#"["98765432101234"]"#),
        ("secret_hash", &long),
        ("previous_secret_hash", "98765432101234"),
        ("previous_secret_hash", &long),
    ];
    for (field, value) in cases {
        let text = format!(
            r#"{{"keys": [{{"id": "key_n", "secret": "sec_x", "previous_expires_at": "2030-01-01", "{field}": {value}}}]}}"#
        )
        .replacen(r#""secret": "sec_x", "#, if field == "secret" { "" } else { r#""secret": "sec_x", "# }, 1);
        std::fs::write(&keys.path, &text).unwrap();
        let mut said = String::new();
        for args in [&["check"][..], &["check", "--json"], &["list"], &["doctor"]] {
            let out = keys.run(args);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
            said += &(stdout(&out) + &stderr(&out));
        }
        let (status, body) = server.refresh();
        assert_eq!(status, 500, "{body}");
        said += &body.to_string();
        said += &server.call("GET", "/ready").1.to_string();
        assert!(said.contains("key_n") && said.contains(field), "{said}");
        assert!(
            !said.contains("98765") && !said.contains("true`"),
            "{field}: {value}: {said}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let logs: String = server.logs().iter().map(|l| l.to_string()).collect();
    assert!(
        logs.contains("refresh_failed") || logs.contains("refresh"),
        "{logs}"
    );
    assert!(!logs.contains("98765"), "{logs}");
}

#[test]
fn check_warns_of_a_plaintext_secret_that_auth_can_never_match() {
    let keys = Keys::with(
        "spaced",
        r#"{"keys": [{"id": "key_s", "secret": " sec_SPACEDSECRET "}, {"id": "key_ok", "secret": "sec_fine"}]}"#,
    );
    let out = keys.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("warning: key key_s: its plaintext `secret` begins or ends with whitespace: it verifies on /verify, but never on /auth"),
        "{text}"
    );
    assert!(!text.contains("key key_ok: its plaintext"), "{text}");
    assert!(!text.contains("SPACEDSECRET"), "{text}");
}
