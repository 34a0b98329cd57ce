//! Replicas sharing rate limits, credits and usage through a real Redis (Debian's
//! `redis-server` on loopback): one limit and one balance for all of them, usage counted once,
//! and verification that goes on whatever Redis does (stopped, paused, wiped, restarted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heare_auth_tests::{cli, note_presented, stderr, stdout, RedisServer, Server, TempDir};
use serde_json::{json, Value};

/// When the credits in these tests were set: 2026-01-01T00:00:00Z.
const SINCE_MS: i64 = 1_767_225_600_000;

/// A key made with the CLI in `file`, with `extra` fields written into its record: (id, secret).
fn key(file: &str, name: &str, args: &[&str], extra: Value) -> (String, String) {
    let mut all = vec!["create", "--name", name, "--json", "--no-refresh"];
    all.extend(args);
    let out = cli(&all, &[("KEYS_FILE", file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    if let Value::Object(fields) = extra {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let record = doc["keys"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|k| k["id"] == id.as_str())
            .unwrap();
        for (name, value) in fields {
            record[name] = value;
        }
        std::fs::write(file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
    (id, created["secret"].as_str().unwrap().to_string())
}

fn credits(amount: u64) -> Value {
    json!({"credits": {"amount": amount, "since": "2026-01-01T00:00:00Z"}})
}

/// `POST /verify` without writing the answer anywhere: the status.
fn verify(server: &Server, secret: &str) -> u16 {
    let body = json!({ "api_key": secret }).to_string();
    match ureq::post(&format!("{}/verify", server.url))
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(10))
        .send_string(&body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(status, _)) => status,
        Err(e) => panic!("verify failed: {e}"),
    }
}

/// `GET path` with `admin` as the bearer key: (status, JSON body).
fn get(server: &Server, path: &str, admin: &str) -> (u16, Value) {
    note_presented(admin);
    let answer = ureq::get(&format!("{}{path}", server.url))
        .set("Authorization", &format!("Bearer {admin}"))
        .call();
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path} failed: {e}"),
    };
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

/// The value of the gauge `name` on `server`.
fn gauge(server: &Server, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    heare_auth_tests::parse_exposition(&text).get(name).copied()
}

/// The value of `heare_auth_redis_up` on `server`.
fn redis_up(server: &Server) -> Option<f64> {
    gauge(server, "heare_auth_redis_up")
}

/// Waits until `check` holds, up to `timeout`.
fn eventually(timeout: Duration, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `n` replicas on `file`, sharing counts in `redis` (each alone when `None`).
fn replicas(
    n: usize,
    file: &str,
    redis: Option<&RedisServer>,
    extra: &[(&str, &str)],
) -> Vec<Server> {
    let url = redis.map(RedisServer::url);
    (0..n)
        .map(|_| {
            let mut env = vec![("KEYS_FILE", file), ("REFRESH_INTERVAL", "0")];
            if let Some(url) = &url {
                env.push(("REDIS_URL", url.as_str()));
            }
            env.extend(extra);
            let server = Server::start(&env);
            if redis.is_some() {
                server
                    .wait_for_event("redis_up", Duration::from_secs(5))
                    .expect("redis_up");
            }
            server
        })
        .collect()
}

/// Sends `n` verifications of `secret` spread over `servers` in turn: how many were accepted.
fn spread(servers: &[Server], secret: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| verify(&servers[i % servers.len()], secret) == 200)
        .count()
}

#[test]
fn replicas_share_one_rate_limit_one_balance_and_one_count() {
    let dir = TempDir::new("redis-share");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (_, limited) = key(file, "limited", &["--rate-limit", "40/600s"], json!(null));
    let (_, metered) = key(file, "metered", &[], credits(50));
    let (used_id, used) = key(file, "used", &[], json!(null));
    let (unused_id, _) = key(file, "unused", &[], json!(null));
    let (_, admin) = key(file, "admin", &["--scopes", "keys:read"], json!(null));
    note_presented(&limited);
    note_presented(&metered);
    note_presented(&used);
    std::thread::sleep(Duration::from_millis(5));
    // Keys made before now and not used since: `unused` only, once `used` is.
    let cutoff = heare_auth_core::format_timestamp(now_ms());
    let redis = RedisServer::start("share");

    // Alone, each replica would accept 40 of the limited key's requests and 50 of the metered
    // key's: 120 and 150 in all.
    let servers = replicas(3, file, Some(&redis), &[("MANAGEMENT_API", "1")]);
    eventually(Duration::from_secs(5), "three replicas present", || {
        servers
            .iter()
            .all(|s| gauge(s, "heare_auth_redis_replicas") == Some(3.0))
    });
    let accepted = spread(&servers, &limited, 120);
    // One limit for all: at most one lease (a fortieth of the limit, at least 1) over it per
    // replica, and as little under it (leases held elsewhere when the run ends).
    assert!(
        (37..=43).contains(&accepted),
        "accepted {accepted} of a limit of 40"
    );
    let spent = spread(&servers, &metered, 120);
    assert!((47..=53).contains(&spent), "spent {spent} of 50 credits");
    // Refused requests spend nothing; once the leases are given back, nothing more verifies
    // than the balance allows.
    std::thread::sleep(Duration::from_millis(400));
    assert!(spread(&servers, &metered, 30) <= 53 - spent);

    for i in 0..9 {
        assert_eq!(verify(&servers[i % 3], &used), 200);
    }
    // Usage is sent every second; every replica answers with the counts of all.
    let usage = |s: &Server| get(s, &format!("/keys/{used_id}/usage"), &admin);
    eventually(Duration::from_secs(5), "usage of all replicas", || {
        let (status, body) = usage(&servers[2]);
        status == 200 && body["today"]["valid"] == 9
    });
    let (_, body) = usage(&servers[0]);
    assert_eq!(body["counted"], "all_replicas");
    assert_eq!(body["last_30_days"], json!({"valid": 9, "refused": 0}));
    assert!(body["last_used_at"].is_string());
    assert!(body["credits"].is_null());
    // Each replica hears of the others' uses within about a second.
    eventually(Duration::from_secs(5), "last use heard everywhere", || {
        servers.iter().all(|s| {
            let (_, page) = get(s, &format!("/keys?unused_since={cutoff}"), &admin);
            let ids: Vec<&str> = page["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap())
                .collect();
            !ids.contains(&used_id.as_str()) && ids.contains(&unused_id.as_str())
        })
    });
    assert!(redis
        .cli(&["ZSCORE", "heare-auth:last-used", &used_id])
        .is_some_and(|t| !t.is_empty()));
    for server in &servers {
        assert_eq!(redis_up(server), Some(1.0));
    }
}

#[test]
fn bursts_after_pauses_are_served_as_one_bucket_would() {
    let dir = TempDir::new("redis-bursts");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (_, bursty) = key(file, "bursty", &["--rate-limit", "60/600s"], json!(null));
    note_presented(&bursty);
    let redis = RedisServer::start("bursts");
    let servers = replicas(3, file, Some(&redis), &[]);
    eventually(Duration::from_secs(5), "three replicas present", || {
        servers
            .iter()
            .all(|s| gauge(s, "heare_auth_redis_replicas") == Some(3.0))
    });
    // Bursts of 12 at once (4 per replica), with pauses long enough for leases to go back.
    for burst in 0..4 {
        let accepted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..12)
                .map(|i| {
                    let (server, secret) = (&servers[i % 3], &bursty);
                    scope.spawn(move || verify(server, secret))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&status| status == 200)
                .count()
        });
        assert_eq!(accepted, 12, "burst {burst}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn one_replica_spends_credits_exactly_and_alone_each_replica_counts_its_own() {
    let dir = TempDir::new("redis-exact");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (id, metered) = key(file, "metered", &[], credits(25));
    note_presented(&metered);
    let redis = RedisServer::start("exact");
    let one = replicas(1, file, Some(&redis), &[]);
    assert_eq!(spread(&one, &metered, 40), 25);
    // Stopped, a replica sends what it has not sent; restarted, it gets the balance from
    // Redis.
    let one = one.into_iter().next().unwrap();
    assert_eq!(one.stop_with("TERM"), Some(0));
    let again = replicas(1, file, Some(&redis), &[]);
    assert_eq!(spread(&again, &metered, 5), 0);
    let pool = format!("heare-auth:credits:{id}:{SINCE_MS}:0");
    assert_eq!(redis.cli(&["GET", &pool]).as_deref(), Some("25"));

    // Without Redis, each replica has the whole balance: 25 each.
    let alone = replicas(3, file, None, &[]);
    assert_eq!(spread(&alone, &metered, 90), 75);
    assert_eq!(redis_up(&alone[0]), None);
}

#[test]
fn verification_goes_on_whatever_redis_does_and_nothing_is_counted_twice_or_lost() {
    let dir = TempDir::new("redis-faults");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (used_id, used) = key(file, "used", &[], json!(null));
    let (metered_id, metered) = key(file, "metered", &[], credits(1_000_000));
    let (_, limited) = key(file, "limited", &["--rate-limit", "3/600s"], json!(null));
    let (_, admin) = key(file, "admin", &["--scopes", "keys:read"], json!(null));
    note_presented(&used);
    note_presented(&metered);
    note_presented(&limited);
    let mut redis = RedisServer::start("faults");
    let servers = Arc::new(replicas(3, file, Some(&redis), &[("MANAGEMENT_API", "1")]));
    let usage = |server: &Server| get(server, &format!("/keys/{used_id}/usage"), &admin);

    // Load all along: every request answered, and counted by the client.
    let stop = Arc::new(AtomicBool::new(false));
    let (valid, spent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (servers, stop) = (servers.clone(), stop.clone());
        let (valid, spent) = (valid.clone(), spent.clone());
        let (used, metered) = (used.clone(), metered.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let server = &servers[i % 3];
                assert_eq!(verify(server, &used), 200, "a valid key refused");
                valid.fetch_add(1, Ordering::Relaxed);
                assert_eq!(verify(server, &metered), 200, "credits refused");
                spent.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let all_logged = |event: &str, count: usize| {
        eventually(Duration::from_secs(10), event, || {
            servers
                .iter()
                .all(|s| s.logs().iter().filter(|l| l["event"] == event).count() == count)
        })
    };
    let gauge = |up: f64| {
        eventually(Duration::from_secs(10), "heare_auth_redis_up", || {
            servers.iter().all(|s| redis_up(s) == Some(up))
        })
    };
    std::thread::sleep(Duration::from_millis(1500));

    // Stopped: one line per replica, the gauge, per-replica rate limits, /ready unaffected.
    redis.kill();
    all_logged("redis_down", 1);
    gauge(0.0);
    for server in servers.iter() {
        assert_eq!(server.call("GET", "/ready").0, 200);
    }
    // Each replica's own bucket: 3 each, 9 in all.
    assert_eq!(spread(&servers, &limited, 18), 9);
    // Usage of all replicas cannot be read: said so, not answered with this replica's.
    let (status, body) = usage(&servers[0]);
    assert_eq!((status, &body["code"]), (503, &json!("STORE_UNAVAILABLE")));
    std::thread::sleep(Duration::from_millis(1000));
    redis.restart();
    all_logged("redis_up", 2);
    gauge(1.0);
    assert_eq!(usage(&servers[1]).0, 200);
    std::thread::sleep(Duration::from_millis(1500));

    // Paused: answers stop coming, which counts as down; resumed, it comes back.
    redis.signal("STOP");
    all_logged("redis_down", 2);
    std::thread::sleep(Duration::from_millis(1000));
    redis.signal("CONT");
    all_logged("redis_up", 3);
    std::thread::sleep(Duration::from_millis(1500));

    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    // Every verification counted once: usage is sent within a second, leases given back
    // within a tenth of one.
    let (valid, spent) = (valid.load(Ordering::Relaxed), spent.load(Ordering::Relaxed));
    let day = SINCE_MS / 86_400_000 + (now_ms() - SINCE_MS) / 86_400_000;
    let usage_key = format!("heare-auth:usage:{used_id}:{day}");
    let pool = format!("heare-auth:credits:{metered_id}:{SINCE_MS}:0");
    eventually(Duration::from_secs(5), "every count sent", || {
        redis.cli(&["HGET", &usage_key, "valid"]) == Some(valid.to_string())
            && redis.cli(&["GET", &pool]) == Some(spent.to_string())
    });

    // Wiped: verification goes on, and counting starts again from nothing.
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    for i in 0..12 {
        assert_eq!(verify(&servers[i % 3], &used), 200);
    }
    eventually(Duration::from_secs(5), "counts after a wipe", || {
        redis.cli(&["HGET", &usage_key, "valid"]).as_deref() == Some("12")
    });
    for server in servers.iter() {
        assert!(server.logs().iter().all(|l| l["level"] != "error"));
    }
}

#[test]
fn an_exchange_redis_refuses_is_dropped_and_said_so_and_the_next_ones_go_on() {
    let dir = TempDir::new("redis-refused");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (used_id, used) = key(file, "used", &[], json!(null));
    note_presented(&used);
    let redis = RedisServer::start("refused");
    // A key of another type where the replicas keep who is present: every exchange fails.
    assert_eq!(
        redis
            .cli(&["SET", "heare-auth:present", "not a sorted set"])
            .as_deref(),
        Some("OK")
    );
    let servers = replicas(1, file, None, &[("REDIS_URL", &redis.url())]);
    let server = &servers[0];
    assert_eq!(verify(server, &used), 200);
    let refused = server
        .wait_for_event("redis_exchange_refused", Duration::from_secs(5))
        .expect("redis_exchange_refused");
    assert!(
        refused["error"].as_str().unwrap().contains("WRONGTYPE"),
        "{refused}"
    );
    assert_eq!(verify(server, &used), 200);
    assert_eq!(
        redis.cli(&["DEL", "heare-auth:present"]).as_deref(),
        Some("1")
    );
    let before = verify(server, &used);
    assert_eq!(before, 200);
    let day = now_ms() / 86_400_000;
    let usage_key = format!("heare-auth:usage:{used_id}:{day}");
    eventually(Duration::from_secs(5), "usage counted again", || {
        redis
            .cli(&["HGET", &usage_key, "valid"])
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 1))
    });
    assert_eq!(redis_up(server), Some(1.0));
}

#[test]
fn rediss_is_served_with_a_private_authority_and_refused_with_a_clear_error_without_it() {
    let dir = TempDir::new("redis-tls");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (used_id, used) = key(file, "used", &[], json!(null));
    note_presented(&used);
    let redis = RedisServer::start_tls("tls");
    let (url, ca) = (redis.url(), redis.ca_file());
    let trusted = replicas(
        1,
        file,
        None,
        &[("REDIS_URL", &url), ("REDIS_CA_FILE", ca.to_str().unwrap())],
    );
    trusted[0]
        .wait_for_event("redis_up", Duration::from_secs(10))
        .expect("redis_up over TLS");
    assert_eq!(verify(&trusted[0], &used), 200);
    let day = now_ms() / 86_400_000;
    let usage_key = format!("heare-auth:usage:{used_id}:{day}");
    eventually(Duration::from_secs(5), "usage counted over TLS", || {
        redis.cli(&["HGET", &usage_key, "valid"]).as_deref() == Some("1")
    });
    // Without the authority, the certificate is refused: said once, and keys verify.
    let untrusting = replicas(1, file, None, &[("REDIS_URL", &url)]);
    let down = untrusting[0]
        .wait_for_event("redis_down", Duration::from_secs(10))
        .expect("redis_down");
    let error = down["error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("issuer"),
        "{down}"
    );
    assert_eq!(verify(&untrusting[0], &used), 200);
    assert_eq!(redis_up(&untrusting[0]), Some(0.0));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_cli_shows_every_replicas_usage_on_the_store_and_through_the_server_alike() {
    let dir = TempDir::new("redis-cli-usage");
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let (used_id, used) = key(file, "used", &[], json!(null));
    let daily = ["--credits", "5", "--refill", "5/day"];
    let (metered_id, metered) = key(file, "metered", &daily, json!(null));
    let (unused_id, _) = key(file, "unused", &[], json!(null));
    let (admin_id, admin) = key(file, "admin", &["--scopes", "keys:read"], json!(null));
    note_presented(&used);
    note_presented(&metered);
    note_presented(&admin);
    std::thread::sleep(Duration::from_millis(5));
    // Every key was made before now; `unused` and `admin` are not used after it.
    let cutoff = heare_auth_core::format_timestamp(now_ms());
    let redis = RedisServer::start("cli-usage");
    let server = replicas(1, file, Some(&redis), &[("MANAGEMENT_API", "1")])
        .pop()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(verify(&server, &used), 200);
    }
    let spent = (0..7).filter(|_| verify(&server, &metered) == 200).count();
    assert_eq!(spent, 5, "one replica spends credits exactly");
    // Usage is sent every second.
    let day = now_ms() / 86_400_000;
    let count = |id: &str, field: &str| {
        redis.cli(&["HGET", &format!("heare-auth:usage:{id}:{day}"), field])
    };
    eventually(Duration::from_secs(5), "usage sent to Redis", || {
        count(&used_id, "valid").as_deref() == Some("3")
            && count(&metered_id, "refused").as_deref() == Some("2")
    });
    std::thread::sleep(Duration::from_millis(1500));

    let redis_url = redis.url();
    let local = [("KEYS_FILE", file), ("REDIS_URL", redis_url.as_str())];
    let remote = [
        ("HEARE_AUTH_URL", server.url.as_str()),
        ("HEARE_AUTH_ADMIN_KEY", admin.as_str()),
    ];
    // The same bytes on the store (reading Redis) and through the server (reading it there).
    let same = |args: &[&str]| {
        let (here, there) = (cli(args, &local), cli(args, &remote));
        assert!(here.status.success(), "{args:?}: {}", stderr(&here));
        assert!(there.status.success(), "{args:?}: {}", stderr(&there));
        assert_eq!(stdout(&here), stdout(&there), "{args:?}");
        stdout(&here)
    };
    let shown = same(&["show", &used_id]);
    assert!(shown.contains("\n  Last used: 20"), "{shown}");
    assert!(
        shown.contains(
            "\n  Usage:   today 3 valid, 0 refused; last 30 days 3 valid, 0 refused\n  Metadata: "
        ),
        "{shown}"
    );
    assert!(!shown.contains("Credits left"), "{shown}");
    let shown = same(&["show", &metered_id]);
    assert!(
        shown.contains("\n  Credits left: 0, refilled at 20"),
        "{shown}"
    );
    assert!(
        shown.contains("\n  Usage:   today 5 valid, 2 refused; last 30 days 5 valid, 2 refused\n"),
        "{shown}"
    );
    assert!(same(&["show", &unused_id]).contains("\n  Last used: never\n"));
    let shown: Value = serde_json::from_str(&same(&["show", &metered_id, "--json"])).unwrap();
    assert!(shown["last_used_at"].is_string());
    assert_eq!(
        shown["usage"],
        json!({"today": {"valid": 5, "refused": 2}, "last_30_days": {"valid": 5, "refused": 2}})
    );
    assert_eq!(shown["credits_left"]["remaining"], 0);
    assert!(shown["credits_left"]["refills_at"].is_string());
    assert_eq!(shown["credits"]["amount"], 5);

    let detailed = same(&["list", "--detailed"]);
    assert_eq!(
        detailed.matches("\n    Last used: ").count(),
        4,
        "{detailed}"
    );
    assert_eq!(detailed.matches("\n    Last used: never\n").count(), 2);
    assert_eq!(detailed.matches("\n    Credits left: ").count(), 1);
    let listed: Value = serde_json::from_str(&same(&["list", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(
        listed[0]["usage"]["today"],
        json!({"valid": 3, "refused": 0})
    );
    assert!(listed[2]["last_used_at"].is_null());
    // Without --detailed or --json, the table has no room for usage, and Redis is not read.
    assert!(!same(&["list"]).contains("Last used"));

    // Keys made before the cutoff and not used since, with the other flags.
    let ids = |text: &str| -> Vec<String> {
        let listed: Value = serde_json::from_str(text).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    };
    let unused = same(&["list", "--unused-since", &cutoff, "--json"]);
    assert_eq!(ids(&unused), [unused_id.clone(), admin_id.clone()]);
    let table = same(&["list", "--unused-since", &cutoff, "--detailed"]);
    assert!(table.contains("Total: 2 keys"), "{table}");
    assert!(
        !table.contains(&used_id) && table.contains(&unused_id),
        "{table}"
    );
    assert_eq!(
        same(&["list", "--unused-since", "1h"]),
        "No API keys found.\n"
    );
    assert_eq!(same(&["list", "--json", "--unused-since=2w"]), "[]\n");

    // Without REDIS_URL: no usage on the store, and no unused keys to find.
    let plain = cli(&["show", &used_id], &[("KEYS_FILE", file)]);
    assert!(!stdout(&plain).contains("Last used"));
    let refused = cli(&["list", "--unused-since", "90d"], &[("KEYS_FILE", file)]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        stderr(&refused),
        "Error: list --unused-since needs usage counts: set REDIS_URL to the replicas' Redis, \
         or run against the server with --url\n"
    );
    // A Redis that does not answer is an error naming it, its password hidden.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("redis://:hunter2@127.0.0.1:{port}");
    for args in [&["show", used_id.as_str()][..], &["list", "--json"][..]] {
        let out = cli(
            args,
            &[("KEYS_FILE", file), ("REDIS_URL", nowhere.as_str())],
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "Error: cannot read usage counts from REDIS_URL redis://:***@127.0.0.1:{port}: "
            )),
            "{err}"
        );
        assert!(!err.contains("hunter2") && stdout(&out).is_empty(), "{err}");
    }
}
