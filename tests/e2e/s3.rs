//! The S3 store against a real S3-protocol server (s3s-fs, SigV4-checked) on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heare_auth_store::{Backend, Location, StoreConfig};
use heare_auth_tests::{
    bin_dir, cli, env_refs, server_output, stderr, stdout, Behaviour, S3Proxy, S3Server, Server,
    S3_SECRET_KEY,
};
use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn create(env: &[(String, String)], name: &str) -> Value {
    let out = cli(
        &["create", "--name", name, "--json", "--no-refresh"],
        &env_refs(env),
    );
    assert!(out.status.success(), "create: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// Replaces an object with raw bytes through a real signed PUT (s3s-fs keeps ETags in its own
/// metadata, so files changed behind its back would not look changed).
fn put_raw(env: &[(String, String)], bytes: &[u8]) {
    let config =
        StoreConfig::from_env(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let Location::S3(s3) = config.location else {
        panic!("not S3")
    };
    let backend = heare_auth_store::S3Backend::new(&s3).unwrap();
    let current = backend.get().unwrap().map(|o| o.version);
    backend.put(bytes, current.as_deref()).unwrap();
}

/// An object's raw bytes, read through a signed GET.
fn get_raw(env: &[(String, String)]) -> Vec<u8> {
    let config =
        StoreConfig::from_env(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let Location::S3(s3) = config.location else {
        panic!("not S3")
    };
    heare_auth_store::S3Backend::new(&s3)
        .unwrap()
        .get()
        .unwrap()
        .unwrap()
        .bytes
}

fn secret(key: &Value) -> &str {
    key["secret"].as_str().unwrap()
}

/// Polls `check` every 25 ms until it holds or `limit` passes; returns the time it took.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[test]
fn cli_and_server_share_an_s3_object() {
    let s3 = S3Server::start("crud");
    let env = s3.env("keys.json");
    // Missing object: zero keys, for the server and the CLI.
    let server = Server::start(&env_refs(&env));
    assert_eq!(
        stdout(&cli(&["list"], &env_refs(&env))),
        "No API keys found.\n"
    );
    let env = with(env, &[("REFRESH_URL", &format!("{}/refresh", server.url))]);

    // The first write creates the object; the CLI's refresh makes the server load it.
    let out = cli(
        &[
            "create",
            "--name",
            "From S3",
            "--metadata",
            r#"{"region": "eu"}"#,
            "--json",
        ],
        &env_refs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("✓ Service refreshed - 1 keys loaded"),
        "{}",
        stderr(&out)
    );
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (status, body) = server.verify(secret(&key));
    assert_eq!(
        (status, &body["key_id"], &body["metadata"]["region"]),
        (200, &key["id"], &Value::from("eu"))
    );
    let stored = std::fs::read_to_string(s3.object_file("keys.json")).unwrap();
    assert!(
        !stored.contains(&secret(&key)[5..]),
        "plaintext secret in S3"
    );

    let id = key["id"].as_str().unwrap();
    assert!(stdout(&cli(&["list"], &env_refs(&env))).contains(id));
    assert!(stdout(&cli(&["show", id], &env_refs(&env))).contains("From S3"));
    let out = cli(&["delete", id, "--yes"], &env_refs(&env));
    assert_eq!(
        stdout(&out),
        "✓ Deleted successfully.\n✓ Service refreshed - 0 keys loaded\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(server.verify(secret(&key)).0, 403);
}

#[test]
fn replicas_converge_within_one_poll_interval_without_refresh() {
    let s3 = S3Server::start("replicas");
    let interval = Duration::from_millis(500);
    let env = with(s3.env("keys.json"), &[("REFRESH_INTERVAL", "0.5")]);
    let replicas: Vec<Server> = (0..3).map(|_| Server::start(&env_refs(&env))).collect();
    let key = create(&env, "replicated");
    // One interval, plus a margin for the poll in flight and this machine's scheduling.
    let limit = interval * 2 + Duration::from_millis(500);
    for r in &replicas {
        assert!(
            within(limit, || r.verify(secret(&key)).0 == 200).is_some(),
            "{} never accepted the key",
            r.url
        );
    }
    let out = cli(
        &[
            "delete",
            key["id"].as_str().unwrap(),
            "--yes",
            "--no-refresh",
        ],
        &env_refs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for r in &replicas {
        assert!(
            within(limit, || r.verify(secret(&key)).0 == 403).is_some(),
            "{} kept the deleted key",
            r.url
        );
        let changed = r
            .wait_for_log(Duration::from_secs(1), |v| {
                v["event"] == "keys_changed" && v["removed"] == key["id"]
            })
            .expect("a keys_changed event naming the removed id");
        assert!(!changed.to_string().contains(&secret(&key)[5..]));
    }
}

#[test]
fn fifty_concurrent_creates_from_two_groups_of_processes_keep_every_key() {
    let s3 = S3Server::start("concurrent");
    let env = s3.env("keys.json");
    let handles: Vec<_> = (0..2)
        .flat_map(|group| (0..25).map(move |i| (group, i)))
        .map(|(group, i)| {
            let env = env.clone();
            std::thread::spawn(move || {
                create(&env, &format!("group{group}-client{i}"))["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let listed: Value =
        serde_json::from_str(&stdout(&cli(&["list", "--json"], &env_refs(&env)))).unwrap();
    let mut stored: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    stored.sort();
    assert_eq!(stored.len(), 50);
    assert_eq!(stored, ids);
}

#[test]
fn an_s3_outage_fails_no_verification_and_changes_arrive_after_it() {
    let mut s3 = S3Server::start("outage");
    let env = with(s3.env("keys.json"), &[("REFRESH_INTERVAL", "0.2")]);
    let before = create(&env, "before the outage");
    let server = Arc::new(Server::start(&env_refs(&env)));
    let (stop, verified, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let traffic: Vec<_> = (0..2)
        .map(|_| {
            let (server, stop, verified, failed) = (
                server.clone(),
                stop.clone(),
                verified.clone(),
                failed.clone(),
            );
            let secret = secret(&before).to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.verify(&secret).0 {
                        200 => verified.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    s3.kill();
    // Several polls fail while S3 is down.
    assert!(server
        .wait_for_event("refresh_failed", Duration::from_secs(5))
        .is_some());
    std::thread::sleep(Duration::from_millis(800));
    s3.restart();
    let after = create(&env, "after the outage");
    assert!(
        within(Duration::from_secs(5), || server.verify(secret(&after)).0
            == 200)
        .is_some()
    );
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "verifications failed during the outage"
    );
    assert!(
        verified.load(Ordering::SeqCst) > 100,
        "too little traffic to mean anything"
    );
}

#[test]
fn corrupt_objects_and_a_wrong_storage_secret_keep_the_last_good_set() {
    let s3 = S3Server::start("corrupt");
    let env = with(
        s3.env("keys.json"),
        &[
            ("REFRESH_INTERVAL", "0.2"),
            ("STORAGE_SECRET", "right secret"),
        ],
    );
    let key = create(&env, "encrypted");
    assert!(std::fs::read(s3.object_file("keys.json"))
        .unwrap()
        .starts_with(b"HEARE_ENCRYPTED_V1:gAAAAA"));
    let server = Server::start(&env_refs(&env));
    assert_eq!(server.verify(secret(&key)).0, 200);

    let good = get_raw(&env);
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("not JSON", b"{\"keys\": [".to_vec()),
        (
            "invalid",
            br#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}"#.to_vec(),
        ),
    ] {
        put_raw(&env, &bytes);
        let failures = || {
            server
                .logs()
                .iter()
                .filter(|l| l["event"] == "refresh_failed")
                .count()
        };
        let seen = failures();
        assert!(
            within(Duration::from_secs(3), || failures() > seen).is_some(),
            "{what}: no refresh_failed"
        );
        assert_eq!(
            server.verify(secret(&key)).0,
            200,
            "{what}: lost the good set"
        );
    }

    // A file encrypted with another secret.
    let other = with(
        env.clone(),
        &[("S3_KEY", "other.json"), ("STORAGE_SECRET", "wrong secret")],
    );
    let foreign = create(&other, "foreign");
    put_raw(&env, &get_raw(&other));
    assert!(within(Duration::from_secs(3), || {
        server.logs().iter().any(|l| {
            l["event"] == "refresh_failed"
                && l["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("wrong STORAGE_SECRET")
        })
    })
    .is_some());
    assert_eq!(server.verify(secret(&key)).0, 200);
    assert_eq!(server.verify(secret(&foreign)).0, 403);
    let logs: String = server.logs().iter().map(|l| l.to_string()).collect();
    assert!(!logs.contains("right secret") && !logs.contains("wrong secret"));
}

#[test]
fn wrong_credentials_are_a_clear_error_naming_the_cause() {
    let s3 = S3Server::start("creds");
    let env = s3.env("keys.json");
    let cases = [
        (
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
            "SignatureDoesNotMatch",
        ),
        (("AWS_ACCESS_KEY_ID", "nobody"), "access denied"),
    ];
    for ((var, value), cause) in cases {
        let bad = with(env.clone(), &[(var, value)]);
        let out = cli(&["list"], &env_refs(&bad));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("s3://heare-keys/keys.json") && err.contains(cause),
            "{err}"
        );
        assert!(!err.contains(S3_SECRET_KEY) && !err.contains("not-the-secret"));

        let out = server_output(
            Command::new(bin_dir().join("heare-auth-server"))
                .args(["--host", "127.0.0.1", "--port", "0"])
                .env_clear()
                .envs(env_refs(&with(bad, &[("STARTUP_TIMEOUT", "0")]))),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains("s3://heare-keys/keys.json") && err.contains(cause),
            "{err}"
        );
    }
}

#[test]
fn startup_waits_for_the_store_then_gives_up_with_one_line() {
    let mut s3 = S3Server::start("startup");
    let env = with(s3.env("keys.json"), &[("STARTUP_TIMEOUT", "1")]);
    create(&env, "k");
    s3.kill();
    let started = Instant::now();
    let out = server_output(
        Command::new(bin_dir().join("heare-auth-server"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env_clear()
            .envs(env_refs(&env)),
    );
    assert!(!out.status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "gave up too early"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("heare-auth-server: s3://heare-keys/keys.json: GET failed"),
        "{err}"
    );
    assert!(err.contains("startup_retry"), "{err}");
}

/// Objects in the test bucket, by name (the changes beside the keys object as
/// `keys.json.changes/NAME`).
fn objects(s3: &S3Server) -> Vec<String> {
    let names_in = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect()
    };
    let mut names = Vec::new();
    for name in names_in(&s3.data.path(heare_auth_tests::S3_BUCKET)) {
        if name == "keys.json.changes" {
            let changes = names_in(&s3.object_file(&name));
            names.extend(changes.into_iter().map(|c| format!("{name}/{c}")));
        }
        names.push(name);
    }
    names.sort();
    names
}

#[test]
fn a_store_that_ignores_conditions_is_refused_before_anything_is_written() {
    let s3 = S3Server::start("garage");
    let direct = s3.env("keys.json");
    let existing = create(&direct, "before");
    let before = get_raw(&direct);
    let stored = objects(&s3);
    // Between the CLI and the store, a front that accepts conditional writes and drops the
    // conditions, as Garage does.
    let proxy = S3Proxy::start(
        s3.port,
        Behaviour {
            strip_conditions: true,
        },
    );
    let garage = with(direct.clone(), &[("S3_ENDPOINT", &proxy.endpoint)]);
    for args in [
        vec!["create", "--name", "refused", "--no-refresh"],
        vec![
            "delete",
            existing["id"].as_str().unwrap(),
            "--yes",
            "--no-refresh",
        ],
    ] {
        let out = cli(&args, &env_refs(&garage));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert_eq!(
            stderr(&out),
            "Error: s3://heare-keys/keys.json: this S3 store accepts conditional writes \
             (If-Match, If-None-Match) but ignores their conditions, so two admins writing at \
             once could drop each other's keys; nothing was written. To write anyway, without \
             that protection, set S3_UNSAFE_WRITES=1 and make sure only one admin writes at a \
             time\n"
        );
    }
    // Nothing was written (no change either), and the probe left nothing behind.
    assert_eq!(get_raw(&direct), before);
    assert_eq!(objects(&s3), stored);
    // Reading still works through the front.
    assert!(stdout(&cli(&["list"], &env_refs(&garage))).contains("before"));

    // The explicit opt-in writes, and says so.
    let unsafe_env = with(garage.clone(), &[("S3_UNSAFE_WRITES", "1")]);
    let out = cli(
        &["create", "--name", "unprotected", "--json", "--no-refresh"],
        &env_refs(&unsafe_env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(
            "Warning: S3_UNSAFE_WRITES=1: writing s3://heare-keys/keys.json without conditional writes"
        ),
        "{}",
        stderr(&out)
    );
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let server = Server::start(&env_refs(&direct));
    assert_eq!(server.verify(secret(&key)).0, 200);
    assert_eq!(server.verify(secret(&existing)).0, 200);
}

#[test]
fn doctor_reports_what_the_store_holds_and_whether_it_can_be_written_safely() {
    let s3 = S3Server::start("doctor");
    let env = with(s3.env("keys.json"), &[("STORAGE_SECRET", "doctor secret")]);
    create(&env, "one");
    create(&env, "two");
    let stored = objects(&s3);
    let out = cli(&["doctor", "--json"], &env_refs(&env));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["location"], "s3://heare-keys/keys.json");
    assert_eq!(
        (&report["present"], &report["encrypted"], &report["keys"]),
        (&Value::from(true), &Value::from(true), &Value::from(2))
    );
    assert_eq!(report["writes"], "conditional writes honoured");
    // s3s-fs runs on this machine: its clock is ours, give or take a second of rounding.
    assert!(
        report["clock_skew_ms"].as_i64().unwrap().abs() < 2000,
        "{report}"
    );
    // The probe of conditional writes left nothing behind.
    assert_eq!(objects(&s3), stored);

    let proxy = S3Proxy::start(
        s3.port,
        Behaviour {
            strip_conditions: true,
        },
    );
    let garage = with(env.clone(), &[("S3_ENDPOINT", &proxy.endpoint)]);
    let out = cli(&["doctor"], &env_refs(&garage));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("Writes:     conditional writes ignored by the store\n"),
        "{text}"
    );
    assert!(
        text.contains("Keys:       2 (2 active, 0 expired)"),
        "{text}"
    );
    assert!(text.contains("✗ 1 problem(s):\n  - s3://heare-keys/keys.json: this S3 store accepts conditional writes"), "{text}");
    assert!(!text.contains("doctor secret"));

    let wrong = with(env, &[("STORAGE_SECRET", "not it")]);
    let out = cli(&["doctor"], &env_refs(&wrong));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("wrong STORAGE_SECRET or a damaged file"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn ready_reflects_how_long_ago_the_store_was_read() {
    let mut s3 = S3Server::start("ready");
    let env = with(
        s3.env("keys.json"),
        &[("REFRESH_INTERVAL", "0.2"), ("READY_MAX_STALENESS", "0.8")],
    );
    let key = create(&env, "ready");
    let server = Server::start(&env_refs(&env));
    assert_eq!(server.call("GET", "/ready").0, 200);
    s3.kill();
    let stale = within(Duration::from_secs(5), || {
        server.call("GET", "/ready").0 == 503
    });
    assert!(stale.is_some(), "/ready stayed 200 with the store down");
    let (_, body) = server.call("GET", "/ready");
    assert_eq!(body["status"], "stale", "{body}");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the keys store was last read")
            && reason.contains("s3://heare-keys/keys.json"),
        "{reason}"
    );
    // Liveness and verification are another matter: the last good set keeps serving.
    assert_eq!(server.call("GET", "/health").0, 200);
    assert_eq!(server.verify(secret(&key)).0, 200);
    s3.restart();
    assert!(
        within(Duration::from_secs(5), || server.call("GET", "/ready").0
            == 200)
        .is_some(),
        "/ready did not recover with the store"
    );
}
