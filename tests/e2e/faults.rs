//! A broken store: faults injected between heare-auth and a real S3 server (errors, timeouts,
//! cut connections, cut or damaged bodies, writes whose answer is lost), and a local keys file
//! deleted, truncated, replaced or made unreadable behind the server's back. The server keeps
//! verifying with its last good set, logs each failed check once, shows the staleness on
//! `/ready` and recovers; the CLI never leaves a partial file, never duplicates or loses a key,
//! and says so when a write it gave up on may land yet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use heare_auth_store::{Backend, Change, Location, S3Backend, Store, StoreConfig};
use heare_auth_tests::{
    cli, cli_unprivileged, env_refs, stderr, stdout, Behaviour, Fault, FaultKind, S3Proxy,
    S3Server, Server, TempDir,
};
use serde_json::Value;

/// Seconds between the server's checks of the store.
const INTERVAL: &str = "0.3";
/// How long a fault lasts while the server is watched, at least.
const OUTAGE: Duration = Duration::from_secs(3);
/// The longest anything here may take.
const LONGEST: Duration = Duration::from_secs(30);

/// s3s-fs, and a fault-injecting front before it.
struct Rig {
    s3: S3Server,
    /// Straight to s3s-fs.
    direct: Vec<(String, String)>,
    proxy: S3Proxy,
    /// Through the front.
    faulty: Vec<(String, String)>,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let s3 = S3Server::start(name);
        let direct = s3.env("keys.json");
        let proxy = S3Proxy::start(s3.port, Behaviour::default());
        let faulty = with(
            direct.clone(),
            &[("S3_ENDPOINT", &proxy.endpoint), ("S3_TIMEOUT", "1")],
        );
        Rig {
            s3,
            direct,
            proxy,
            faulty,
        }
    }

    fn backend(&self) -> S3Backend {
        let env = &self.direct;
        let config =
            StoreConfig::from_env(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                .unwrap();
        let Location::S3(s3) = config.location else {
            panic!("not S3")
        };
        S3Backend::new(&s3).unwrap()
    }

    /// The stored object's bytes, read straight from s3s-fs.
    fn object(&self) -> Option<Vec<u8>> {
        self.backend().get().unwrap().map(|o| o.bytes)
    }

    /// The keys file as every reader sees it (the object with the changes after it applied),
    /// read straight from s3s-fs: a fold that failed under a fault leaves the object behind.
    fn keys(&self) -> Vec<u8> {
        let store = Store::new(Box::new(self.backend()), None);
        store.load().unwrap().bytes_or_empty().to_vec()
    }

    /// Whether change `seq`, as stored, is only the note of a fold (`false` when it is gone).
    fn is_note(&self, seq: u64) -> bool {
        let bytes = self.backend().get_change(seq).unwrap();
        bytes.is_some_and(|b| Change::parse(&b).unwrap().is_note())
    }

    /// The stored changes that change keys (not the notes of folds).
    fn edits(&self) -> usize {
        let seqs = self.backend().list_changes(0).unwrap();
        seqs.into_iter().filter(|&seq| !self.is_note(seq)).count()
    }

    /// Replaces the object through a signed PUT straight to s3s-fs.
    fn put(&self, bytes: &[u8]) {
        let backend = self.backend();
        let current = backend.get().unwrap().map(|o| o.version);
        backend.put(bytes, current.as_deref()).unwrap();
    }

    /// s3s-fs's temporary files of uploads not yet complete (it writes each upload to one,
    /// then renames it over the object).
    fn uploads_in_progress(&self) -> usize {
        let bucket = self.s3.object_file("keys.json");
        let root = bucket.parent().unwrap().parent().unwrap();
        std::fs::read_dir(root)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".tmp.")
            })
            .count()
    }

    /// How many writes of a change reached the front so far: PUTs of change objects, but for
    /// the notes that folds write after the change (the write a command makes is its change).
    fn puts(&self) -> usize {
        let seen = self.proxy.seen();
        seen.iter()
            .filter_map(|(r, _)| r.strip_prefix("PUT /heare-keys/keys.json.changes/"))
            .filter_map(|name| name.strip_suffix(".json")?.parse().ok())
            .filter(|&seq| !self.is_note(seq))
            .count()
    }

    /// Names of the objects in the bucket, the changes' as `keys.json.changes/NAME` (s3s-fs
    /// keeps its own metadata in dot files).
    fn objects(&self) -> Vec<String> {
        let dir = self.s3.object_file("keys.json");
        let mut names = Vec::new();
        for name in names_in(dir.parent().unwrap()) {
            match name.as_str() {
                "keys.json.changes" => names.extend(
                    names_in(&self.s3.object_file(&name))
                        .into_iter()
                        .map(|change| format!("{name}/{change}")),
                ),
                _ => names.push(name),
            }
        }
        names.sort();
        names
    }

    /// Asserts that a failed or retried write left nothing behind: the objects there `before`
    /// it (the keys object and its changes), no other, and no upload in progress.
    fn assert_nothing_left(&self, before: &[String], context: &str) {
        assert_eq!(self.objects(), before, "{context}");
        assert_eq!(
            self.uploads_in_progress(),
            0,
            "{context}: an upload was left behind"
        );
    }
}

/// The names in `dir` but s3s-fs's own dot files.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// The object the S3 rigs write, as the CLI names it in its errors.
const OBJECT: &str = "s3://heare-keys/keys.json";

/// A CLI write that failed: exit 1, nothing on stdout, and an error on stderr that begins
/// `Error: {target}: {cause}`; returns the error for further checks. `context` names the case.
fn assert_failed(out: &std::process::Output, target: &str, cause: &str, context: &str) -> String {
    let message = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{context}: {message}");
    assert!(stdout(out).is_empty(), "{context}: {}", stdout(out));
    assert!(
        message.starts_with(&format!("Error: {target}: {cause}")),
        "{context}: {message}"
    );
    message
}

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// A key made by the CLI: (id, secret).
fn create(env: &[(String, String)], name: &str) -> (String, String) {
    let out = cli(
        &["create", "--name", name, "--json", "--no-refresh"],
        &env_refs(env),
    );
    assert!(out.status.success(), "create: {}", stderr(&out));
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        key["id"].as_str().unwrap().to_string(),
        key["secret"].as_str().unwrap().to_string(),
    )
}

/// Ids of the keys in a keys file named `name`.
fn ids_named(file: &[u8], name: &str) -> Vec<String> {
    let file: Value = serde_json::from_slice(file).unwrap();
    file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == name)
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

fn server_env(env: &[(String, String)]) -> Vec<(String, String)> {
    with(
        env.to_vec(),
        &[("REFRESH_INTERVAL", INTERVAL), ("READY_MAX_STALENESS", "1")],
    )
}

/// Verifies `secret` until it gets `status` or `timeout` passes; how long that took.
fn until_status(server: &Server, secret: &str, status: u16, timeout: Duration) -> Duration {
    let start = Instant::now();
    while server.verify(secret).0 != status {
        assert!(
            start.elapsed() < timeout,
            "no {status} within {timeout:?}: {:?}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Polls failures logged so far.
fn failed_polls(server: &Server) -> Vec<Value> {
    server
        .logs()
        .into_iter()
        .filter(|l| l["event"] == "refresh_failed" && l["trigger"] == "poll")
        .collect()
}

/// The heart of the server's promise under a broken store: from the moment `break_it` runs
/// until `mend_it` does, `kept` keeps verifying on every request, `added` (written to the store
/// during the outage) is not half-loaded, each failed check is logged once and not once per
/// request, and `/ready` turns stale; afterwards the new version loads within a few checks.
fn rides_out(
    server: &Server,
    kept: &str,
    added: &str,
    break_it: impl FnOnce(),
    mend_it: impl FnOnce(),
) -> Vec<Value> {
    assert_eq!(server.verify(kept).0, 200);
    assert_eq!(server.call("GET", "/ready").0, 200);
    let failures_before = failed_polls(server).len();

    break_it();
    let start = Instant::now();
    let mut requests = 0;
    let mut stale = None;
    // At least OUTAGE, and until two checks have failed: the loader runs at the lowest
    // priority, so on a machine busy with other tests its checks come late.
    while start.elapsed() < OUTAGE
        || failed_polls(server).len() < failures_before + 2 && start.elapsed() < LONGEST
    {
        let (status, body) = server.verify(kept);
        assert_eq!(status, 200, "a good key refused during the outage: {body}");
        assert_eq!(server.verify(added).0, 403);
        requests += 2;
        if stale.is_none() {
            let (status, body) = server.call("GET", "/ready");
            if status == 503 {
                stale = Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let failures: Vec<Value> = failed_polls(server).split_off(failures_before);
    let checks = start.elapsed().as_secs_f64() / INTERVAL.parse::<f64>().unwrap();
    assert!(
        failures.len() >= 2 && failures.len() as f64 <= checks + 2.0,
        "{} failures logged for at most {checks} checks and {requests} requests",
        failures.len()
    );
    let stale = stale.expect("/ready stayed 200 through the outage");
    assert_eq!(stale["status"], "stale", "{stale}");

    mend_it();
    until_status(server, added, 200, LONGEST);
    assert_eq!(server.verify(kept).0, 200);
    let deadline = Instant::now() + LONGEST;
    while server.call("GET", "/ready").0 != 200 {
        assert!(Instant::now() < deadline, "/ready did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    failures
}

/// `current` with one more key, made by the CLI on a scratch copy: (its secret, the new file).
fn with_new_key(current: &[u8], name: &str) -> (String, Vec<u8>) {
    let scratch = TempDir::new("scratch");
    let path = scratch.path("keys.json");
    std::fs::write(&path, current).unwrap();
    let env = vec![("KEYS_FILE".to_string(), path.display().to_string())];
    let (_, secret) = create(&env, name);
    (secret, std::fs::read(&path).unwrap())
}

/// The server behind the front while `fault` hits its requests for the keys object, and a
/// key is added to the store meanwhile.
fn server_rides_out_fault(name: &str, fault: Fault) -> Vec<Value> {
    let rig = Rig::new(name);
    let (_, kept) = create(&rig.direct, "kept");
    let server = Server::start(&env_refs(&server_env(&rig.faulty)));
    let (added, with_added) = with_new_key(&rig.object().unwrap(), "added");
    let mut hits = 0;
    let failures = rides_out(
        &server,
        &kept,
        &added,
        || {
            rig.proxy.inject(fault);
            rig.put(&with_added);
        },
        || {
            hits = rig.proxy.faulted();
            rig.proxy.clear();
        },
    );
    assert!(hits > 0, "the fault never hit: {:?}", rig.proxy.seen());
    failures
}

#[test]
fn the_server_rides_out_s3_errors() {
    for status in [500, 503, 403, 429] {
        let failures = server_rides_out_fault(
            &format!("status-{status}"),
            Fault::always("*", FaultKind::Status(status)),
        );
        let error = failures[0]["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("HTTP {status}")) || error.contains(&format!("({status})")),
            "{error}"
        );
        assert!(error.starts_with(&format!("{OBJECT}: ")), "{error}");
    }
}

#[test]
fn the_server_rides_out_cut_connections() {
    let failures = server_rides_out_fault("cut", Fault::always("*", FaultKind::Cut));
    assert!(failures[0]["error"].as_str().unwrap().contains(" failed: "));
}

#[test]
fn the_server_rides_out_a_store_slower_than_its_timeout() {
    let failures = server_rides_out_fault(
        "slow",
        Fault::always("*", FaultKind::Delay(Duration::from_millis(1500))),
    );
    assert!(failures[0]["error"].as_str().unwrap().contains(" failed: "));
}

#[test]
fn the_server_rides_out_a_body_cut_short() {
    let failures =
        server_rides_out_fault("truncated", Fault::always("GET", FaultKind::TruncateBody));
    let error = failures[0]["error"].as_str().unwrap();
    assert!(error.contains(": GET "), "{error}");
}

/// A damaged body that is still a valid keys file, with the key's hash changed: only the
/// checksum stored with the object tells it from the real one.
#[test]
fn the_server_refuses_a_body_damaged_into_another_valid_file() {
    let rig = Rig::new("corrupt");
    let kept_secret = "sec_KeptKeyOfTheCorruptionTest0000000000000000000";
    let added_secret = "sec_AddedKeyOfTheCorruptionTest000000000000000000";
    let hash = |s: &str| heare_auth_core::hash_secret(s).to_hex();
    let file = |pad: &str, added: bool| {
        let added = match added {
            true => format!(
                r#", {{"id": "added", "secret_hash": "{}"}}"#,
                hash(added_secret)
            ),
            false => String::new(),
        };
        format!(
            r#"{{"keys": [{{"id": "kept", "name": "{pad}", "secret_hash": "{}"}}{added}]}}"#,
            hash(kept_secret)
        )
    };
    rig.put(file("", false).as_bytes());
    let server = Server::start(&env_refs(&server_env(&rig.faulty)));
    // Pad the name so that the byte the front flips (the middle one) is a digit of the kept
    // key's hash that stays a digit either way the front flips it: the damaged file is another
    // valid one, without the kept key.
    let damaged = (0..200)
        .map(|n| file(&"x".repeat(n), true))
        .find(|text| {
            let middle = text.len() / 2;
            let at = text.find(&hash(kept_secret)).unwrap();
            (at..at + 64).contains(&middle) && (b'0'..=b'7').contains(&text.as_bytes()[middle])
        })
        .unwrap();
    for bit in [0x01, 0x02] {
        let mut flipped = damaged.clone().into_bytes();
        flipped[damaged.len() / 2] ^= bit;
        let (flipped_set, _) = heare_auth_core::KeySet::from_json(&flipped).unwrap();
        assert!(
            matches!(
                flipped_set.verify::<&str>(kept_secret, 0, &[]),
                heare_auth_core::Outcome::NotFound
            ),
            "the damage must matter"
        );
    }

    rides_out(
        &server,
        kept_secret,
        added_secret,
        || {
            rig.proxy
                .inject(Fault::always("GET", FaultKind::CorruptBody));
            rig.put(damaged.as_bytes());
        },
        || rig.proxy.clear(),
    );
    let error = failed_polls(&server)[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("damaged in transfer"), "{error}");
}

#[test]
fn the_server_keeps_its_keys_when_the_object_is_deleted_or_replaced_by_garbage() {
    let rig = Rig::new("gone");
    let (_, kept) = create(&rig.direct, "kept");
    let server = Server::start(&env_refs(&server_env(&rig.direct)));

    let (added, with_added) = with_new_key(&rig.object().unwrap(), "added");
    let failures = rides_out(
        &server,
        &kept,
        &added,
        || std::fs::remove_file(rig.s3.object_file("keys.json")).unwrap(),
        || rig.put(&with_added),
    );
    let error = failures[0]["error"].as_str().unwrap();
    assert!(
        error.contains("the keys file is gone; still serving the 1 keys last loaded"),
        "{error}"
    );

    let (third, with_third) = with_new_key(&with_added, "third");
    rides_out(
        &server,
        &added,
        &third,
        || rig.put(b"<html>502 Bad Gateway</html>"),
        || rig.put(&with_third),
    );
}

/// A deleted, truncated, garbage or unreadable local file: the server keeps its keys.
#[test]
fn the_server_rides_out_a_damaged_local_file() {
    let dir = TempDir::new("file-faults");
    // The server runs unprivileged, so that an unreadable file is unreadable to it.
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path("keys.json");
    let env = vec![("KEYS_FILE".to_string(), path.display().to_string())];
    let (_, mut kept) = create(&env, "kept");
    // The CLI makes a new keys file and its changes 0600 (the directory of changes 0700): the
    // operator lets the server's user read them, and later writes keep that.
    let readable = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    readable(&path, 0o644);
    let changes = dir.path("keys.json.changes");
    readable(&changes, 0o755);
    for change in std::fs::read_dir(&changes).unwrap() {
        readable(&change.unwrap().path(), 0o644);
    }
    let server = Server::start_unprivileged(&env_refs(&server_env(&env)));

    // Replaces the file at once (as every writer here does), with `mode`.
    let replace = |bytes: &[u8], mode: u32| {
        let tmp = dir.path("keys.json.new");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    for what in ["deleted", "truncated", "garbage", "unreadable"] {
        let current = std::fs::read(&path).unwrap();
        let (added, with_added) = with_new_key(&current, &format!("after-{what}"));
        let failures = rides_out(
            &server,
            &kept,
            &added,
            || match what {
                "deleted" => std::fs::remove_file(&path).unwrap(),
                "truncated" => std::fs::write(&path, &current[..current.len() / 2]).unwrap(),
                "garbage" => std::fs::write(&path, b"\x00\xff garbage").unwrap(),
                _ => replace(&with_added, 0o000),
            },
            || replace(&with_added, 0o644),
        );
        let error = failures[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{}: ", path.display())),
            "{what}: {error}"
        );
        if what == "unreadable" {
            assert!(error.contains("Permission denied"), "{error}");
        }
        kept = added;
    }
}

/// Writes that fail for good leave the object exactly as it was, and the CLI says so.
#[test]
fn a_failed_write_leaves_the_object_as_it_was() {
    let rig = Rig::new("cli-failed");
    let (_, before) = create(&rig.direct, "before");
    let good = rig.object().unwrap();
    let stored = rig.objects();
    for kind in [
        FaultKind::Status(500),
        FaultKind::Status(503),
        FaultKind::CutUpload,
        FaultKind::Cut,
    ] {
        // The first PUT is the change's: nothing gets further.
        rig.proxy.inject(Fault::always("PUT", kind));
        let faulted = rig.proxy.faulted();
        let out = cli(
            &["create", "--name", "never", "--no-refresh"],
            &env_refs(&rig.faulty),
        );
        rig.proxy.clear();
        assert_failed(&out, OBJECT, "PUT failed", &format!("{kind:?}"));
        // Three writes, each read back and found not to have landed, then it gives up.
        assert_eq!(rig.proxy.faulted() - faulted, 3, "{kind:?}");
        assert_eq!(rig.object().unwrap(), good, "{kind:?}: the object changed");
        rig.assert_nothing_left(&stored, &format!("{kind:?}"));
    }
    // Still a file the server loads, with the key that was there.
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(&before).0, 200);
}

/// A write that landed while its answer was lost (or came too late) is found on reading back:
/// the command succeeds, once.
#[test]
fn a_write_whose_answer_is_lost_is_neither_lost_nor_repeated() {
    let rig = Rig::new("cli-lost");
    let (doomed, _) = create(&rig.direct, "doomed");
    let (rotated, old_secret) = create(&rig.direct, "rotated");
    let kinds = [
        FaultKind::LoseAnswer,
        FaultKind::Delay(Duration::from_millis(1500)),
    ];
    for (hits, kind) in kinds.into_iter().enumerate() {
        let name = format!("once-{kind:?}").replace(['(', ')', ' '], "");
        rig.proxy.inject(Fault::times("PUT", kind, 1));
        let out = cli(
            &["create", "--name", &name, "--json", "--no-refresh"],
            &env_refs(&rig.faulty),
        );
        assert!(out.status.success(), "{kind:?}: {}", stderr(&out));
        assert_eq!(rig.proxy.faulted(), hits + 1, "{:?}", rig.proxy.seen());
        let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
        // Let a delayed write arrive; it must not land over the newer file.
        std::thread::sleep(Duration::from_millis(1600));
        let file = rig.object().unwrap();
        assert_eq!(ids_named(&file, &name), [key["id"].as_str().unwrap()]);
        let server = Server::start(&env_refs(&rig.direct));
        assert_eq!(server.verify(key["secret"].as_str().unwrap()).0, 200);
        assert_eq!(server.verify(&old_secret).0, 200);
    }

    // Rotation: the new secret replaces the old one once, so the old one is in its grace.
    rig.proxy
        .inject(Fault::times("PUT", FaultKind::LoseAnswer, 1));
    let out = cli(
        &["rotate", &rotated, "--json", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    assert!(out.status.success(), "rotate: {}", stderr(&out));
    let new_secret = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(&new_secret).0, 200);
    assert_eq!(
        server.verify(&old_secret).0,
        200,
        "the old secret lost its grace"
    );
    drop(server);

    // Deletion: gone, and reported deleted (not "not found").
    rig.proxy
        .inject(Fault::times("PUT", FaultKind::LoseAnswer, 1));
    let out = cli(
        &["delete", &doomed, "--yes", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(ids_named(&rig.object().unwrap(), "doomed").is_empty());
}

/// Writes the store refuses (access denied, too many requests) fail with the store's answer,
/// whichever command makes them, and leave the object as it was.
#[test]
fn a_refused_write_fails_naming_the_refusal() {
    let rig = Rig::new("cli-refused");
    let (id, secret) = create(&rig.direct, "kept");
    let good = rig.object().unwrap();
    let stored = rig.objects();
    let commands = [
        vec!["create", "--name", "never", "--no-refresh"],
        vec!["disable", &id, "--no-refresh"],
        vec!["rotate", &id, "--no-refresh"],
        vec!["delete", &id, "--yes", "--no-refresh"],
    ];
    for (status, cause) in [
        (403, "PUT failed: access denied (403)"),
        (429, "PUT failed: HTTP 429"),
    ] {
        for args in &commands {
            rig.proxy
                .inject(Fault::always("PUT", FaultKind::Status(status)));
            let puts = rig.puts();
            let out = cli(args, &env_refs(&rig.faulty));
            rig.proxy.clear();
            assert_failed(&out, OBJECT, cause, &format!("{status} {args:?}"));
            let tries = rig.puts() - puts;
            assert!((1..=3).contains(&tries), "{status} {args:?}: {tries} PUTs");
            assert_eq!(rig.object().unwrap(), good, "{status} {args:?}");
            rig.assert_nothing_left(&stored, &format!("{status} {args:?}"));
        }
    }
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(&secret).0, 200);
}

/// Every write slower than `S3_TIMEOUT`: the CLI gives up after three, each read back and not
/// found, saying that whether the change was saved is unknown, since a write that got no answer
/// may land yet. One does, after the CLI gave up: each is conditional on the version the CLI
/// read, so the key lands once, in a file that still has every other key.
#[test]
fn writes_that_always_time_out_may_land_once_and_say_so() {
    let rig = Rig::new("cli-slow");
    let (_, kept) = create(&rig.direct, "kept");
    let good = rig.object().unwrap();
    let (stored, edits) = (rig.objects(), rig.edits());
    // Longer than the CLI's three writes take to time out, so that none lands while it runs.
    let delay = Duration::from_secs(5);
    rig.proxy
        .inject(Fault::always("PUT", FaultKind::Delay(delay)));
    let start = Instant::now();
    let out = cli(
        &["create", "--name", "slow", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    let took = start.elapsed();
    assert!(
        took < delay,
        "the CLI took {took:?}, as long as a write's delay"
    );
    let message = assert_failed(&out, OBJECT, "PUT failed: ", "");
    assert!(
        message.contains("timed out")
            && message.contains("whether the change was saved is unknown: check before"),
        "{message}"
    );
    assert_eq!(rig.puts(), 3, "{:?}", rig.proxy.seen());
    assert_eq!(rig.object().unwrap(), good, "the object changed");
    rig.assert_nothing_left(&stored, "a write landed while the CLI ran");

    // Every write was sent before the CLI gave up, so all have arrived `delay` later: the
    // first as one change after the keys the CLI read (nobody folded it into the object), the
    // others refused, as its number was taken.
    std::thread::sleep(delay);
    let file = rig.keys();
    assert_eq!(
        ids_named(&file, "slow").len(),
        1,
        "{}",
        String::from_utf8_lossy(&file)
    );
    assert_eq!(ids_named(&file, "kept"), ids_named(&good, "kept"));
    assert_eq!(rig.edits(), edits + 1);
    assert_eq!(rig.objects().len(), stored.len() + 1, "{:?}", rig.objects());
    rig.assert_nothing_left(&rig.objects(), "after the slow writes");
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(&kept).0, 200);
}

/// `disable` (or `enable`) of `id` through the front, whose first write meets the fault
/// injected: the command says it changed the key, its change was written once and is stored
/// once, and the key is in the file once, as asked.
fn toggle_once(rig: &Rig, id: &str, disable: bool) {
    let command = if disable { "disable" } else { "enable" };
    let (puts, faulted, edits) = (rig.puts(), rig.proxy.faulted(), rig.edits());
    let out = cli(
        &[command, id, "--json", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    assert!(out.status.success(), "{command}: {}", stderr(&out));
    assert_eq!(rig.proxy.faulted(), faulted + 1, "{command}: no fault hit");
    assert_eq!(rig.puts(), puts + 1, "{command}: {:?}", rig.proxy.seen());
    assert_eq!(rig.edits(), edits + 1, "{command}: {:?}", rig.objects());
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (&answer["changed"], &answer["disabled"]),
        (&Value::Bool(true), &Value::Bool(disable)),
        "{command}: {answer}"
    );
    let file: Value = serde_json::from_slice(&rig.keys()).unwrap();
    let keys: Vec<&Value> = file["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == id)
        .collect();
    assert_eq!(keys.len(), 1, "{command}: {file}");
    assert_eq!(keys[0]["disabled"] == true, disable, "{command}: {file}");
    assert_eq!(keys[0]["disabled_at"], answer["disabled_at"], "{command}");
}

/// A `disable` or `enable` whose write landed while its answer was lost: the key is as asked,
/// changed once, and the command says so.
#[test]
fn a_toggle_whose_answer_is_lost_is_applied_once() {
    let rig = Rig::new("cli-lost-toggle");
    let (id, secret) = create(&rig.direct, "toggled");
    for (disable, status) in [(true, 403), (false, 200)] {
        rig.proxy
            .inject(Fault::times("PUT", FaultKind::LoseAnswer, 1));
        toggle_once(&rig, &id, disable);
        let server = Server::start(&env_refs(&rig.direct));
        assert_eq!(server.verify(&secret).0, status, "disable: {disable}");
    }
}

/// A write that landed while its answer was cut short or garbled: the command succeeds, once.
#[test]
fn a_write_whose_answer_is_cut_or_garbled_is_neither_lost_nor_repeated() {
    let rig = Rig::new("cli-garbled");
    let (toggled, _) = create(&rig.direct, "toggled");
    for kind in [FaultKind::CutAnswer, FaultKind::GarbleAnswer] {
        let name = format!("once-{kind:?}");
        rig.proxy.inject(Fault::times("PUT", kind, 1));
        let (puts, faulted, edits) = (rig.puts(), rig.proxy.faulted(), rig.edits());
        let out = cli(
            &["create", "--name", &name, "--json", "--no-refresh"],
            &env_refs(&rig.faulty),
        );
        assert!(out.status.success(), "{kind:?}: {}", stderr(&out));
        assert_eq!(rig.proxy.faulted(), faulted + 1, "{kind:?}: no fault hit");
        assert_eq!(rig.puts(), puts + 1, "{kind:?}: {:?}", rig.proxy.seen());
        assert_eq!(rig.edits(), edits + 1, "{kind:?}: {:?}", rig.objects());
        let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            ids_named(&rig.keys(), &name),
            [key["id"].as_str().unwrap()],
            "{kind:?}"
        );
        let server = Server::start(&env_refs(&rig.direct));
        assert_eq!(server.verify(key["secret"].as_str().unwrap()).0, 200);

        for disable in [true, false] {
            rig.proxy.inject(Fault::times("PUT", kind, 1));
            toggle_once(&rig, &toggled, disable);
        }
    }
}

/// A listing of the changes that fails: a write cannot know the next change's number, so it
/// fails naming the LIST, and writes nothing.
#[test]
fn a_write_whose_listing_of_the_changes_fails_names_it_and_writes_nothing() {
    let rig = Rig::new("cli-list");
    let (_, kept) = create(&rig.direct, "kept");
    let (good, stored) = (rig.object().unwrap(), rig.objects());
    rig.proxy
        .inject(Fault::always("LIST", FaultKind::Status(503)));
    let out = cli(
        &["create", "--name", "never", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    rig.proxy.clear();
    assert_failed(&out, OBJECT, "LIST failed: HTTP 503", "");
    assert!(rig.proxy.faulted() > 0, "{:?}", rig.proxy.seen());
    let seen = rig.proxy.seen();
    assert!(!seen.iter().any(|(r, _)| r.starts_with("PUT ")), "{seen:?}");
    assert_eq!(rig.object().unwrap(), good);
    rig.assert_nothing_left(&stored, "after the failed listing");
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(&kept).0, 200);
}

/// The write of a change that lands while its answer is lost: read back, it is found, so the
/// command succeeds, and the change is stored once.
#[test]
fn a_change_whose_answer_is_lost_lands_once() {
    let rig = Rig::new("cli-lost-change");
    create(&rig.direct, "kept");
    let (puts, edits, seen) = (rig.puts(), rig.edits(), rig.proxy.seen().len());
    rig.proxy
        .inject(Fault::times("PUT", FaultKind::LoseAnswer, 1));
    let out = cli(
        &["create", "--name", "once", "--json", "--no-refresh"],
        &env_refs(&rig.faulty),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hit: Vec<String> = (rig.proxy.seen().into_iter().skip(seen))
        .filter(|(_, hit)| *hit)
        .map(|(request, _)| request)
        .collect();
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert!(
        hit[0].starts_with("PUT /heare-keys/keys.json.changes/"),
        "{hit:?}"
    );
    assert_eq!(rig.puts(), puts + 1, "{:?}", rig.proxy.seen());
    assert_eq!(rig.edits(), edits + 1, "{:?}", rig.objects());
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        ids_named(&rig.keys(), "once"),
        [key["id"].as_str().unwrap()]
    );
    let server = Server::start(&env_refs(&rig.direct));
    assert_eq!(server.verify(key["secret"].as_str().unwrap()).0, 200);
}

/// Reads that fail or return damaged content are errors naming the cause; nothing is written.
#[test]
fn the_cli_reports_a_store_it_cannot_read() {
    let rig = Rig::new("cli-read");
    create(&rig.direct, "there");
    let good = rig.object().unwrap();
    for (kind, cause) in [
        (FaultKind::Status(503), "GET failed: HTTP 503"),
        (FaultKind::CorruptBody, "damaged in transfer"),
        (FaultKind::TruncateBody, ": GET "),
    ] {
        rig.proxy.inject(Fault::always("GET", kind));
        for args in [
            vec!["list"],
            vec!["create", "--name", "never", "--no-refresh"],
        ] {
            let out = cli(&args, &env_refs(&rig.faulty));
            assert_eq!(out.status.code(), Some(1), "{kind:?} {args:?}");
            let message = stderr(&out);
            assert!(
                message.starts_with(&format!("Error: {OBJECT}: ")) && message.contains(cause),
                "{kind:?} {args:?}: {message}"
            );
        }
        rig.proxy.clear();
        assert_eq!(rig.object().unwrap(), good);
    }
}

/// A local file whose directory, and the directory of changes in it, are read-only: the write
/// fails with the reason, the file is as it was, and nothing is left beside it.
#[test]
fn a_read_only_directory_fails_the_write_cleanly() {
    let dir = TempDir::new("read-only");
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path("keys.json");
    let env = vec![("KEYS_FILE".to_string(), path.display().to_string())];
    // The first write, by the unprivileged user, creates the file and its lock file.
    let out = cli_unprivileged(
        &["create", "--name", "first", "--no-refresh"],
        &env_refs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read(&path).unwrap();
    let before = listing(&dir);

    set_dir_modes(&dir, 0o555, 0o555);
    let out = cli_unprivileged(
        &["create", "--name", "never", "--no-refresh"],
        &env_refs(&env),
    );
    set_dir_modes(&dir, 0o777, 0o700);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!(
            "Error: {}: cannot write a change: ",
            path.display()
        )) && message.contains("Permission denied"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), good);
    assert_eq!(listing(&dir), before);

    // Writable again: the next write works.
    let out = cli_unprivileged(
        &["create", "--name", "after", "--no-refresh"],
        &env_refs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The names in a directory and in the directory of changes in it (as
/// `keys.json.changes/NAME`), sorted.
fn listing(dir: &TempDir) -> Vec<String> {
    let names_in = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let mut names = Vec::new();
    for name in names_in(dir.root()) {
        if name == "keys.json.changes" {
            let changes = names_in(&dir.path(&name));
            names.extend(changes.into_iter().map(|c| format!("{name}/{c}")));
        }
        names.push(name);
    }
    names.sort();
    names
}

/// Sets the mode of the keys file's directory and of the directory of changes in it.
fn set_dir_modes(dir: &TempDir, root: u32, changes: u32) {
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(root)).unwrap();
    let changes_dir = dir.path("keys.json.changes");
    std::fs::set_permissions(changes_dir, std::fs::Permissions::from_mode(changes)).unwrap();
}

/// A directory the unprivileged CLI can write in, with a keys file and its lock file made by
/// a first write of that CLI: (the directory, the file, the CLI's environment).
fn local_store(name: &str) -> (TempDir, std::path::PathBuf, Vec<(String, String)>) {
    let dir = TempDir::new(name);
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path("keys.json");
    let env = vec![("KEYS_FILE".to_string(), path.display().to_string())];
    let out = cli_unprivileged(
        &["create", "--name", "first", "--no-refresh"],
        &env_refs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The change, the fold's note after it, the file they were folded into, and its lock.
    assert_eq!(
        listing(&dir),
        [
            "keys.json",
            "keys.json.changes",
            "keys.json.changes/00000000000000000000.json",
            "keys.json.changes/00000000000000000001.json",
            "keys.json.lock"
        ]
    );
    (dir, path, env)
}

/// Ways to damage a local keys file, each with what the CLI's message must then contain.
const DAMAGE: [(&str, &str); 3] = [
    ("truncated", "EOF while parsing"),
    ("garbage", "invalid JSON at line 1, column 1"),
    ("unreadable", "cannot read: Permission denied"),
];

/// Damages the keys file at `path` as `what` says (replacing it at once where it is replaced);
/// the bytes it then holds.
fn damage(path: &std::path::Path, what: &str) -> Vec<u8> {
    let current = std::fs::read(path).unwrap();
    let damaged = match what {
        "truncated" => current[..current.len() / 2].to_vec(),
        "garbage" => b"\x00\xff garbage".to_vec(),
        _ => current,
    };
    match what {
        "unreadable" => {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, &damaged).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o000)).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        _ => std::fs::write(path, &damaged).unwrap(),
    }
    damaged
}

/// The bytes of the keys file at `path`, made readable first (it may have been made
/// unreadable, and the tests need not run as root).
fn contents(path: &std::path::Path) -> Vec<u8> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::read(path).unwrap()
}

/// A CLI write to a local file refused: exit 1, nothing on stdout, and a message naming the
/// file and `cause`, with no doubt about the outcome (a local write always knows it).
fn assert_refused(out: &std::process::Output, path: &std::path::Path, cause: &str) {
    let message = assert_failed(out, &path.display().to_string(), "", "");
    assert!(
        message.contains(cause) && !message.contains("unknown"),
        "{message}"
    );
}

/// A truncated, garbage or unreadable local file: a CLI write refuses it, saying why, and
/// leaves it as it is.
#[test]
fn a_cli_write_refuses_a_damaged_local_file() {
    for (what, cause) in DAMAGE {
        let (dir, path, env) = local_store(&format!("damaged-{what}"));
        let damaged = damage(&path, what);
        let before = listing(&dir);
        let out = cli_unprivileged(
            &["create", "--name", "never", "--no-refresh"],
            &env_refs(&env),
        );
        assert_refused(&out, &path, cause);
        assert_eq!(contents(&path), damaged, "{what}");
        assert_eq!(listing(&dir), before, "{what}");
    }
}

/// `major:minor:inode` of a file as `/proc/locks` shows it.
fn lock_id(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    let dev = meta.dev();
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    format!("{major:02x}:{minor:02x}:{}", meta.ino())
}

/// Runs the unprivileged CLI with `args` while this process holds the file store's lock (an
/// exclusive `flock` of `keys.json.lock`, as the CLI takes it to fold its change into the
/// file), and runs `during` once the CLI has read the file, stored its change and waits for the
/// lock, before letting it go: a change made between the CLI's read and its fold.
fn write_while_locked(
    dir: &TempDir,
    env: &[(String, String)],
    args: &[&str],
    during: impl FnOnce(),
) -> std::process::Output {
    let lock_path = dir.path("keys.json.lock");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let id = lock_id(&lock_path);
    let (env, args) = (
        env.to_vec(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    let writer = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_unprivileged(&args, &env_refs(&env))
    });
    // A process waiting for a lock is listed after its holder, as `N: -> FLOCK ...`.
    let start = Instant::now();
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains("->") && l.contains(&format!(" {id} ")))
    {
        assert!(!writer.is_finished(), "the CLI did not wait for the lock");
        assert!(
            start.elapsed() < LONGEST,
            "the CLI never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    during();
    drop(lock);
    writer.join().unwrap()
}

/// The file damaged, deleted, or its directory made read-only, between a CLI write's read and
/// its fold of the change into the file: the change is stored (the command succeeds, once), the
/// fold is refused, the file is as the damage left it (a deleted one is not made anew with only
/// the keys the CLI read), and nothing but the change is left beside it.
#[test]
fn damage_during_a_cli_write_is_not_written_over() {
    let (dir, path, env) = local_store("during");
    let good = std::fs::read(&path).unwrap();
    for what in ["truncated", "garbage", "unreadable", "read-only", "deleted"] {
        let mut expected = good.clone();
        let before = listing(&dir);
        let out = write_while_locked(
            &dir,
            &env,
            &["create", "--name", what, "--no-refresh"],
            || match what {
                "read-only" => set_dir_modes(&dir, 0o555, 0o555),
                // Not taken for a first run (no file): the file was read with its keys, and
                // a new file of those keys would drop any written meanwhile.
                "deleted" => std::fs::remove_file(&path).unwrap(),
                _ => expected = damage(&path, what),
            },
        );
        set_dir_modes(&dir, 0o777, 0o700);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let mut after = listing(&dir);
        let added: Vec<String> = (after.iter())
            .filter(|name| !before.contains(name))
            .cloned()
            .collect();
        assert_eq!(added.len(), 1, "{what}: {after:?}");
        assert!(
            added[0].starts_with("keys.json.changes/"),
            "{what}: {after:?}"
        );
        after.retain(|name| *name != added[0]);
        if what == "deleted" {
            assert!(!path.exists(), "the deleted file was made anew");
            after.push("keys.json".into());
            after.sort();
        } else {
            assert_eq!(contents(&path), expected, "{what}");
        }
        assert_eq!(after, before, "{what}");
        // Mended for the next case: the file as it was, and the change applied after it.
        std::fs::write(&path, &good).unwrap();
        let out = cli_unprivileged(&["list", "--json"], &env_refs(&env));
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let named = (listed.as_array().unwrap().iter()).filter(|k| k["name"] == what);
        assert_eq!(named.count(), 1, "{what}: {listed}");
    }
}
