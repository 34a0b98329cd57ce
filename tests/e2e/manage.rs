//! The management API (`MANAGEMENT_API=1`) on the real server: every route and status, the
//! scopes that guard it, throttling, audit logs, and changes from the API, the CLI and other
//! replicas at once on a real S3-protocol store, none lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use heare_auth_tests::{
    bin_dir, cli, env_refs, note_presented, read_response, server_output, stderr, stdout,
    transcribe_answer, S3Server, Server, TempDir,
};
use serde_json::{json, Value};

/// An answer of the API: status, headers (names in lower case) and JSON body (`Null` when empty).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `code` of an error answer with `status`, checked to have the one error shape.
    fn error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.body["error"].is_string(), "{self:?}");
        self.body["code"].as_str().unwrap()
    }
}

/// `method path` with `key` as the bearer key, `headers`, and a JSON `body` when given.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut request =
        ureq::request(method, &format!("{}{path}", server.url)).timeout(Duration::from_secs(30));
    if let Some(key) = key {
        note_presented(key);
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers_names()
        .iter()
        .map(|n| {
            (
                n.to_ascii_lowercase(),
                response.header(n).unwrap_or_default().to_string(),
            )
        })
        .collect();
    let text = response.into_string().unwrap();
    // Every answer is JSON but /openapi.yaml's; HEAD's is empty.
    let body: Value = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
    };
    let head: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    transcribe_answer(
        &format!("{method} {path}\n{status}\n{head}{text}\n"),
        body["secret"].as_str(),
    );
    Answer {
        status,
        headers,
        body,
    }
}

/// A key made with the local CLI: (id, secret).
fn cli_key(env: &[(&str, &str)], name: &str, scopes: &str) -> (String, String) {
    let mut args = vec!["create", "--name", name, "--json", "--no-refresh"];
    if !scopes.is_empty() {
        args.extend(["--scopes", scopes]);
    }
    let out = cli(&args, env);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        created["id"].as_str().unwrap().into(),
        created["secret"].as_str().unwrap().into(),
    )
}

/// A server with the management API on `file`, and its admin, writer and reader keys.
struct Setup {
    server: Server,
    dir: TempDir,
    admin: (String, String),
    writer: (String, String),
    reader: (String, String),
}

fn setup(name: &str, extra: &[(&str, &str)]) -> Setup {
    let dir = TempDir::new(name);
    let file = dir.path("keys.json");
    let file = file.to_str().unwrap();
    let mut env = vec![("KEYS_FILE", file)];
    env.extend_from_slice(extra);
    let admin = cli_key(&env, "admin", "keys:admin");
    let writer = cli_key(&env, "writer", "keys:write");
    let reader = cli_key(&env, "reader", "keys:read");
    env.push(("MANAGEMENT_API", "1"));
    let server = Server::start(&env);
    Setup {
        server,
        dir,
        admin,
        writer,
        reader,
    }
}

fn secret_of(answer: &Answer) -> String {
    answer.body["secret"].as_str().unwrap().to_string()
}

#[test]
fn off_by_default_the_management_paths_are_not_found() {
    let dir = TempDir::new("manage-off");
    let file = dir.path("keys.json");
    let env = [("KEYS_FILE", file.to_str().unwrap())];
    let (_, admin) = cli_key(&env, "admin", "keys:admin");
    let server = Server::start(&env);
    // Whatever the body: off, a /keys path is an unknown path, and its body is not read.
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    let big = call(&server, "POST", "/keys", Some(&admin), &[], Some(&huge));
    assert_eq!(
        (big.status, &big.body),
        (404, &json!({"error": "Not found"}))
    );
    for (method, path) in [("GET", "/keys"), ("POST", "/keys"), ("PUT", "/keys/x")] {
        let answer = call(&server, method, path, Some(&admin), &[], None);
        assert_eq!(
            (answer.status, &answer.body),
            (404, &json!({"error": "Not found"}))
        );
        assert_eq!(answer.header("allow"), None);
    }
    let contract = call(&server, "GET", "/openapi.yaml", None, &[], None);
    assert_eq!(contract.status, 200, "{contract:?}");
    let served = contract.body.as_str().unwrap();
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"));
    assert_eq!(served, file.unwrap());
    assert_eq!(contract.header("content-type"), Some("application/yaml"));
}

#[test]
fn keys_made_under_an_earlier_prefix_keep_working_after_a_restart_with_another() {
    let live = [("SECRET_PREFIX", "amp_live_"), ("ID_PREFIX", "amp_")];
    let s = setup("manage-prefixes", &live);
    let admin = s.admin.1.clone();
    let starts = |text: &str, prefix: &str| assert!(text.starts_with(prefix), "{prefix}");
    // The CLI's keys and the API's are made with the prefixes of their environment.
    starts(&s.admin.0, "amp_0");
    starts(&admin, "amp_live_1");
    let made = call(
        &s.server,
        "POST",
        "/keys",
        Some(&admin),
        &[],
        Some(r#"{"name": "live"}"#),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let (live_id, live_secret) = (made.body["id"].as_str().unwrap(), secret_of(&made));
    starts(live_id, "amp_0");
    starts(&live_secret, "amp_live_1");
    assert_eq!(s.server.verify(&live_secret).1["key_id"], live_id);

    // Restarted under other prefixes: every key made before still verifies and still manages.
    let file = s.dir.path("keys.json");
    let Setup { server, dir, .. } = s;
    assert_eq!(server.stop_with("TERM"), Some(0));
    let env = [
        ("KEYS_FILE", file.to_str().unwrap()),
        ("MANAGEMENT_API", "1"),
        ("SECRET_PREFIX", "amp_test_"),
        ("ID_PREFIX", "tst_"),
    ];
    let server = Server::start(&env);
    assert_eq!(server.verify(&live_secret).1["key_id"], live_id);
    let made = call(
        &server,
        "POST",
        "/keys",
        Some(&admin),
        &[],
        Some(r#"{"name": "test"}"#),
    );
    assert_eq!(made.status, 201, "{made:?}");
    starts(made.body["id"].as_str().unwrap(), "tst_0");
    let test_secret = secret_of(&made);
    starts(&test_secret, "amp_test_1");
    let rotated = call(
        &server,
        "POST",
        &format!("/keys/{live_id}/rotate"),
        Some(&admin),
        &[],
        Some(r#"{"grace": "1h"}"#),
    );
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let rotated_secret = secret_of(&rotated);
    starts(&rotated_secret, "amp_test_1");
    for secret in [&live_secret, &rotated_secret] {
        assert_eq!(server.verify(secret).1["key_id"], live_id);
    }
    assert_eq!(server.verify(&test_secret).1["code"], "VALID");
    drop(server);

    // A prefix that is not one: the server does not start, and says which setting is wrong.
    for (setting, bad) in [("SECRET_PREFIX", "amp-live_"), ("ID_PREFIX", "_x_")] {
        let out = server_output(
            Command::new(bin_dir().join("heare-auth-server"))
                .args(["--host", "127.0.0.1", "--port", "0"])
                .env_clear()
                .env("KEYS_FILE", &file)
                .env(setting, bad),
        );
        assert_eq!(out.status.code(), Some(2), "{setting}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("heare-auth-server: {setting}: expected 2 to 24 ")),
            "{stderr}"
        );
        assert!(
            stderr.trim_end().ends_with(&format!("got '{bad}'")),
            "{stderr}"
        );
    }
    drop(dir);
}

#[test]
fn every_route_answers_as_documented() {
    let s = setup("manage-routes", &[]);
    let (server, admin) = (&s.server, s.admin.1.as_str());

    // Create: the secret once, the fields of `create --json`, an ETag and where the key is.
    let body = json!({"name": "Billing", "metadata": {"team": "core", "n": 1.50},
        "scopes": ["read", "write"], "ttl": "90d", "rate_limit": "100/60s"});
    let created = call(
        server,
        "POST",
        "/keys",
        Some(admin),
        &[],
        Some(&body.to_string()),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_string();
    let secret = secret_of(&created);
    let fields: Vec<&String> = created.body.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "created_at",
            "credits",
            "expires_at",
            "id",
            "metadata",
            "name",
            "rate_limit",
            "scopes",
            "secret"
        ]
    );
    assert_eq!(created.body["credits"], Value::Null);
    assert_eq!(created.body["metadata"], json!({"team": "core", "n": 1.50}));
    assert_eq!(
        created.header("location"),
        Some(format!("/keys/{id}").as_str())
    );
    let etag = created.header("etag").unwrap().to_string();
    // The replica that wrote serves it at once.
    assert_eq!(server.verify(&secret).0, 200);

    // Show and list: never a secret or hash; who made it is the admin key.
    let shown = call(
        server,
        "GET",
        &format!("/keys/{id}"),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(shown.status, 200);
    assert_eq!(shown.header("etag"), Some(etag.as_str()));
    assert_eq!(shown.body["created_by"], format!("key:{}", s.admin.0));
    assert_eq!(shown.body["status"], "active");
    let text = shown.body.to_string();
    assert!(
        !text.contains("secret") && !text.contains(&secret[4..20]),
        "{text}"
    );
    let listed = call(server, "GET", "/keys?name=Bill", Some(admin), &[], None);
    assert_eq!(listed.body["keys"], json!([shown.body]));
    assert_eq!(listed.body["next_cursor"], Value::Null);
    let head = call(server, "HEAD", "/keys", Some(admin), &[], None);
    assert_eq!((head.status, &head.body), (200, &Value::Null));

    // Update: only what changed, in order; If-Match with a stale tag is a conflict.
    let patch = json!({"name": "Billing v2", "expires_at": null, "scopes": ["read", "write"]});
    let patched = call(
        server,
        "PATCH",
        &format!("/keys/{id}"),
        Some(s.writer.1.as_str()),
        &[("If-Match", &etag)],
        Some(&patch.to_string()),
    );
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["changed"], json!(["name", "expires_at"]));
    assert_eq!(
        patched.body["key"]["updated_by"],
        format!("key:{}", s.writer.0)
    );
    assert_ne!(patched.header("etag"), Some(etag.as_str()));
    let stale = call(
        server,
        "PATCH",
        &format!("/keys/{id}"),
        Some(admin),
        &[("If-Match", &etag)],
        Some(r#"{"name": "lost"}"#),
    );
    assert_eq!(stale.error(409), "CONFLICT");
    assert_eq!(stale.header("etag"), patched.header("etag"));
    let again = call(
        server,
        "PATCH",
        &format!("/keys/{id}"),
        Some(admin),
        &[],
        Some(&patch.to_string()),
    );
    assert_eq!(again.body["changed"], json!([]));

    // Rotate with grace: both secrets verify; disable: neither; enable; delete: gone.
    let rotated = call(
        server,
        "POST",
        &format!("/keys/{id}/rotate"),
        Some(admin),
        &[],
        Some(r#"{"grace": "1h"}"#),
    );
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_secret = secret_of(&rotated);
    assert_eq!(rotated.body["replaced_previous"], false);
    assert_eq!(rotated.body["key"]["status"], "rotating");
    assert_eq!(server.verify(&secret).0, 200);
    assert_eq!(server.verify(&new_secret).0, 200);
    let disabled = call(
        server,
        "POST",
        &format!("/keys/{id}/disable"),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(
        (disabled.status, &disabled.body["changed"]),
        (200, &json!(true))
    );
    assert_eq!(server.verify(&new_secret).1["code"], "DISABLED");
    let twice = call(
        server,
        "POST",
        &format!("/keys/{id}/disable"),
        Some(admin),
        &[],
        Some("{}"),
    );
    assert_eq!(twice.body["changed"], false);
    let enabled = call(
        server,
        "POST",
        &format!("/keys/{id}/enable"),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(enabled.body["key"]["disabled"], false);
    assert_eq!(server.verify(&new_secret).0, 200);
    let deleted = call(
        server,
        "DELETE",
        &format!("/keys/{id}"),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(
        (deleted.status, &deleted.body["deleted"]),
        (200, &json!(true))
    );
    assert_eq!(deleted.body["key"]["name"], "Billing v2");
    assert_eq!(server.verify(&new_secret).1["code"], "NOT_FOUND");
    let gone = call(
        server,
        "GET",
        &format!("/keys/{id}"),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(gone.error(404), "NOT_FOUND");
    for method in ["PATCH", "DELETE"] {
        let body = (method == "PATCH").then_some(r#"{"name": "x"}"#);
        let answer = call(
            server,
            method,
            &format!("/keys/{id}"),
            Some(admin),
            &[],
            body,
        );
        assert_eq!(answer.error(404), "NOT_FOUND", "{method}");
    }

    // Every other status: 401 (with a challenge), 403, 405, 413, 415, 422 naming the field.
    let none = call(server, "GET", "/keys", None, &[], None);
    assert_eq!(none.error(401), "UNAUTHORIZED");
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer realm="));
    let wrong = call(
        server,
        "GET",
        "/keys",
        Some("sec_0wrongwrongwrongwrong"),
        &[],
        None,
    );
    assert_eq!(wrong.error(401), "UNAUTHORIZED");
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    let read_only = call(
        server,
        "POST",
        "/keys",
        Some(&s.reader.1),
        &[],
        Some(r#"{"name": "x"}"#),
    );
    assert_eq!(read_only.error(403), "FORBIDDEN");
    assert!(read_only.body["error"]
        .as_str()
        .unwrap()
        .contains("keys:write"));
    let readable = call(server, "GET", "/keys", Some(&s.reader.1), &[], None);
    assert_eq!(readable.status, 200);
    let put = call(server, "PUT", "/keys", Some(admin), &[], None);
    assert_eq!(put.error(405), "METHOD_NOT_ALLOWED");
    assert_eq!(put.header("allow"), Some("GET, HEAD, POST"));
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    let too_large = call(server, "POST", "/keys", Some(admin), &[], Some(&huge));
    assert_eq!(too_large.error(413), "BODY_TOO_LARGE");
    let mut request = ureq::post(&format!("{}/keys", server.url))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "text/plain");
    request = request.timeout(Duration::from_secs(10));
    match request.send_string(r#"{"name": "x"}"#) {
        Err(ureq::Error::Status(415, _)) => {}
        other => panic!("{other:?}"),
    }
    let deep = format!(
        r#"{{"name": "x", "metadata": {{"a": {}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let invalid = [
        (r#"{"name": "a\u001b[2J"}"#.to_string(), "name"),
        (r#"{"name": "x", "scopes": ["a b"]}"#.to_string(), "scopes"),
        (json!({"name": "n".repeat(257)}).to_string(), "name"),
        (r#"{"name": "x", "admin": true}"#.to_string(), "admin"),
        (
            r#"{"name": "x", "ttl": "1h", "expires_at": "2030-01-01"}"#.to_string(),
            "ttl",
        ),
        (deep, "metadata"),
        ("[]".to_string(), "body"),
    ];
    for (body, field) in invalid {
        let answer = call(server, "POST", "/keys", Some(admin), &[], Some(&body));
        assert_eq!(answer.error(422), "INVALID_INPUT", "{body:.80}");
        assert_eq!(answer.body["field"], field, "{body:.80}");
    }
    let bad_query = call(server, "GET", "/keys?limit=5000", Some(admin), &[], None);
    assert_eq!(bad_query.body["field"], "limit");

    // Nothing of the refused requests reached the file; the three keys from the CLI remain.
    let listed = call(server, "GET", "/keys", Some(admin), &[], None);
    let names: Vec<&str> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "writer", "reader"]);

    // Audit: every change with its actor, peer, request id and key; no secret in any line.
    let events = [
        "key_created",
        "key_updated",
        "key_rotated",
        "key_disabled",
        "key_enabled",
        "key_deleted",
    ];
    for event in events {
        let line = server
            .wait_for_event(event, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no {event}"));
        assert_eq!(line["key_id"], id.as_str(), "{line}");
        assert!(
            line["actor"].as_str().unwrap().starts_with("key:key_"),
            "{line}"
        );
        assert_eq!(line["peer"], "127.0.0.1", "{line}");
        assert!(
            line["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{line}"
        );
    }
    let updated = server
        .wait_for_event("key_updated", Duration::from_secs(1))
        .unwrap();
    assert_eq!(updated["changed"], "name,expires_at");
    assert_eq!(updated["actor"], format!("key:{}", s.writer.0));
    let logs = serde_json::to_string(&server.logs()).unwrap();
    for secret in [&secret, &new_secret, &s.admin.1, &s.writer.1] {
        assert!(!logs.contains(&secret[4..]), "a secret is in the logs");
    }
}

#[test]
fn credits_are_set_from_the_servers_clock_changed_and_removed() {
    let s = setup("manage-credits", &[]);
    let (server, admin) = (&s.server, s.admin.1.as_str());
    let body = json!({"name": "Metered", "credits": {"amount": 1000, "refill": "1000/day"}});
    let created = call(
        server,
        "POST",
        "/keys",
        Some(admin),
        &[],
        Some(&body.to_string()),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.body["credits"],
        json!({"amount": 1000, "refill": "1000/day", "since": created.body["created_at"]})
    );
    let path = format!("/keys/{id}");
    let shown = call(server, "GET", &path, Some(admin), &[], None);
    assert_eq!(shown.body["credits"], created.body["credits"]);

    let patch = |body: &str| call(server, "PATCH", &path, Some(admin), &[], Some(body));
    let set = patch(r#"{"credits": {"amount": 5, "refill": null}}"#);
    assert_eq!(set.body["changed"], json!(["credits"]), "{set:?}");
    assert_eq!(
        set.body["key"]["credits"],
        json!({"amount": 5, "refill": null, "since": set.body["key"]["updated_at"]})
    );
    let file = std::fs::read_to_string(s.dir.path("keys.json")).unwrap();
    assert!(
        file.contains("\"credits\": {\n        \"amount\": 5,\n        \"since\": "),
        "{file}"
    );
    let removed = patch(r#"{"credits": null}"#);
    assert_eq!(removed.body["changed"], json!(["credits"]));
    assert_eq!(removed.body["key"]["credits"], Value::Null);
    assert_eq!(patch(r#"{"credits": null}"#).body["changed"], json!([]));

    for (body, field) in [
        (r#"{"credits": "lots"}"#, "credits"),
        (r#"{"credits": {"refill": "5/day"}}"#, "credits.amount"),
        (r#"{"credits": {"amount": -1}}"#, "credits.amount"),
        (r#"{"credits": {"amount": 2.5}}"#, "credits.amount"),
        (
            r#"{"credits": {"amount": 1000000000001}}"#,
            "credits.amount",
        ),
        (
            r#"{"credits": {"amount": 1, "refill": "1/week"}}"#,
            "credits.refill",
        ),
        (r#"{"credits": {"amount": 1, "extra": 1}}"#, "credits.extra"),
    ] {
        for (method, path, body) in [
            ("PATCH", path.as_str(), body.to_string()),
            ("POST", "/keys", body.replacen('{', r#"{"name": "x", "#, 1)),
        ] {
            let refused = call(server, method, path, Some(admin), &[], Some(&body));
            assert_eq!(refused.error(422), "INVALID_INPUT", "{body}");
            assert_eq!(refused.body["field"], field, "{method} {body}");
        }
    }
    let nothing = patch("{}");
    assert_eq!(
        nothing.body["error"],
        "give at least one of name, metadata, scopes, expires_at, ttl, rate_limit, credits"
    );
}

#[test]
fn no_key_gives_or_touches_more_than_it_holds() {
    let s = setup("manage-escalation", &[]);
    let server = &s.server;
    let (admin, writer) = (s.admin.1.as_str(), s.writer.1.as_str());
    let create = |key: &str, scopes: Value| {
        let body = json!({"name": "k", "scopes": scopes}).to_string();
        call(server, "POST", "/keys", Some(key), &[], Some(&body))
    };
    // A writer makes ordinary keys, never one that manages keys.
    let ordinary = create(writer, json!(["read", "billing:admin"]));
    assert_eq!(ordinary.status, 201, "{ordinary:?}");
    let ordinary_id = ordinary.body["id"].as_str().unwrap().to_string();
    for scopes in [
        json!(["keys:read"]),
        json!(["keys:write"]),
        json!(["keys:admin"]),
    ] {
        assert_eq!(
            create(writer, scopes.clone()).error(403),
            "FORBIDDEN",
            "{scopes}"
        );
    }
    // Nor gives an ordinary key a keys: scope, nor changes, rotates, disables or deletes a key
    // that has one: the admin's own, the reader's, or another writer's.
    let patch = json!({"scopes": ["keys:write"]}).to_string();
    let path = format!("/keys/{ordinary_id}");
    assert_eq!(
        call(server, "PATCH", &path, Some(writer), &[], Some(&patch)).error(403),
        "FORBIDDEN"
    );
    for (id, _) in [&s.admin, &s.reader, &s.writer] {
        for (method, suffix, body) in [
            ("PATCH", "", Some(r#"{"name": "mine"}"#)),
            ("POST", "/rotate", None),
            ("POST", "/disable", None),
            ("DELETE", "", None),
        ] {
            let answer = call(
                server,
                method,
                &format!("/keys/{id}{suffix}"),
                Some(writer),
                &[],
                body,
            );
            assert_eq!(answer.error(403), "FORBIDDEN", "{method} {id}{suffix}");
        }
    }
    // The admin may do all of it.
    let granted = create(admin, json!(["keys:write"]));
    assert_eq!(granted.status, 201, "{granted:?}");
    let answer = call(server, "PATCH", &path, Some(admin), &[], Some(&patch));
    assert_eq!(answer.status, 200, "{answer:?}");
    let disabled = call(
        server,
        "POST",
        &format!("/keys/{}/disable", s.writer.0),
        Some(admin),
        &[],
        None,
    );
    assert_eq!(disabled.status, 200);
    // A disabled key is no credential.
    let refused = call(server, "GET", "/keys", Some(writer), &[], None);
    assert_eq!(refused.error(401), "UNAUTHORIZED");
    let refusal = server
        .wait_for_event("admin_forbidden", Duration::from_secs(5))
        .unwrap();
    assert_eq!(refusal["actor"], format!("key:{}", s.writer.0));
}

/// An HTTP/1.1 request to `addr` over a connection from the loopback address `from`: status
/// and `Retry-After`.
fn request_from(
    from: [u8; 4],
    addr: SocketAddr,
    path: &str,
    key: &str,
    extra: &str,
) -> (u16, Option<String>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(2))
        .unwrap();
    let mut stream: TcpStream = socket.into();
    note_presented(key);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let response = read_response(&mut BufReader::new(stream)).unwrap().unwrap();
    let retry = response.header("retry-after").map(str::to_string);
    (response.status, retry)
}

#[test]
fn an_address_that_keeps_failing_is_throttled_and_no_other() {
    let s = setup("manage-throttle", &[]);
    let (addr, admin) = (s.server.addr(), s.admin.1.as_str());
    // Each guess claims to come from elsewhere: the TCP peer counts, not what a header says.
    for i in 0..10 {
        let guess = format!("sec_0guess{i:020}");
        let lie = format!("X-Forwarded-For: 10.0.0.{i}\r\nX-Real-IP: 10.0.1.{i}\r\n");
        let (status, _) = request_from([127, 0, 0, 3], addr, "/keys", &guess, &lie);
        assert_eq!(status, 401, "attempt {i}");
    }
    // Now even the right key is refused from that address, with when to come back...
    let (status, retry) = request_from([127, 0, 0, 3], addr, "/keys", admin, "");
    assert_eq!(status, 429);
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // ...while another address is served, and /verify is not throttled at all.
    assert_eq!(
        request_from([127, 0, 0, 4], addr, "/keys", admin, "").0,
        200
    );
    assert_eq!(s.server.verify(&s.reader.1).0, 200);
    let failure = s
        .server
        .wait_for_event("admin_auth_failed", Duration::from_secs(5))
        .unwrap();
    assert_eq!(failure["peer"], "127.0.0.3");
    assert!(failure["request_id"].is_string());
    let logs = serde_json::to_string(&s.server.logs()).unwrap();
    assert!(
        !logs.contains("guess0000"),
        "a presented key is in the logs"
    );
}

#[test]
fn request_ids_are_echoed_and_name_the_log_lines() {
    let s = setup("manage-request-id", &[]);
    let admin = s.admin.1.as_str();
    let body = r#"{"name": "traced"}"#;
    let created = call(
        &s.server,
        "POST",
        "/keys",
        Some(admin),
        &[("X-Request-Id", "trace-42")],
        Some(body),
    );
    assert_eq!(created.header("x-request-id"), Some("trace-42"));
    let line = s
        .server
        .wait_for_log(Duration::from_secs(5), |l| l["event"] == "key_created")
        .unwrap();
    assert_eq!(line["request_id"], "trace-42");
    let hostile = "a".repeat(129);
    let answer = call(
        &s.server,
        "GET",
        "/keys",
        Some(admin),
        &[("X-Request-Id", &hostile)],
        None,
    );
    let given = answer.header("x-request-id").unwrap();
    assert!(
        given.len() == 24 && given.chars().all(|c| c.is_ascii_hexdigit()),
        "{given}"
    );
}

#[test]
fn an_encrypted_store_stays_encrypted() {
    let s = setup(
        "manage-encrypted",
        &[("STORAGE_SECRET", "correct horse battery staple")],
    );
    let created = call(
        &s.server,
        "POST",
        "/keys",
        Some(&s.admin.1),
        &[],
        Some(r#"{"name": "Plain name"}"#),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let bytes = std::fs::read(s.dir.path("keys.json")).unwrap();
    assert!(heare_auth_core::is_encrypted(&bytes));
    assert!(!String::from_utf8_lossy(&bytes).contains("Plain name"));
    assert_eq!(s.server.verify(&secret_of(&created)).0, 200);
}

#[test]
fn pages_of_a_thousand_cover_every_key_once() {
    let s = setup("manage-pages", &[]);
    let file = s.dir.path("keys.json");
    // 2,500 more keys, written as a file the CLI would write, then loaded.
    let mut document: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let keys = document["keys"].as_array_mut().unwrap();
    for i in 0..2500 {
        keys.push(json!({"id": format!("key_bulk{i:05}"), "secret_hash": format!("{i:064x}"), "name": format!("bulk {i}")}));
    }
    std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
    assert_eq!(s.server.refresh().0, 200);
    let mut seen = Vec::new();
    let mut path = "/keys?limit=1000".to_string();
    loop {
        let page = call(&s.server, "GET", &path, Some(&s.admin.1), &[], None);
        assert_eq!(page.status, 200);
        let keys = page.body["keys"].as_array().unwrap();
        assert!(keys.len() <= 1000);
        seen.extend(keys.iter().map(|k| k["id"].as_str().unwrap().to_string()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/keys?limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2503);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 2503);
}

/// Three replicas with the API on, over one object in a real S3-protocol store, and the CLI:
/// each replica creates keys and disables some while the CLI creates its own; every change is
/// in the file at the end, and each replica serves all of them within a poll interval.
#[test]
fn the_api_three_replicas_and_the_cli_writing_at_once_lose_nothing() {
    let s3 = S3Server::start("manage-replicas");
    let env = s3.env("keys.json");
    let mut with_api = env.clone();
    with_api.push(("MANAGEMENT_API".into(), "1".into()));
    with_api.push(("REFRESH_INTERVAL".into(), "1".into()));
    let (_, admin) = cli_key(&env_refs(&env), "admin", "keys:admin");
    let replicas: Vec<Server> = (0..3)
        .map(|_| Server::start(&env_refs(&with_api)))
        .collect();
    const EACH: usize = 8;
    let started = Instant::now();
    let (api_keys, cli_keys) = std::thread::scope(|scope| {
        let api: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(r, server)| {
                let admin = admin.clone();
                scope.spawn(move || {
                    let mut made = Vec::new();
                    for i in 0..EACH {
                        let body = json!({"name": format!("r{r}-{i}")}).to_string();
                        let created = call(server, "POST", "/keys", Some(&admin), &[], Some(&body));
                        assert_eq!(created.status, 201, "{created:?}");
                        let id = created.body["id"].as_str().unwrap().to_string();
                        assert_eq!(server.verify(&secret_of(&created)).0, 200, "served at once");
                        if i % 2 == 0 {
                            let path = format!("/keys/{id}/disable");
                            let answer = call(server, "POST", &path, Some(&admin), &[], None);
                            assert_eq!(answer.status, 200, "{answer:?}");
                        }
                        made.push((id, secret_of(&created), i % 2 == 0));
                    }
                    made
                })
            })
            .collect();
        let env = &env;
        let cli_thread = scope.spawn(move || {
            (0..EACH)
                .map(|i| cli_key(&env_refs(env), &format!("cli-{i}"), ""))
                .collect::<Vec<_>>()
        });
        let api: Vec<_> = api.into_iter().flat_map(|t| t.join().unwrap()).collect();
        (api, cli_thread.join().unwrap())
    });
    eprintln!(
        "{} changes in {:?}",
        3 * EACH * 3 / 2 + EACH,
        started.elapsed()
    );
    // The file holds every key, each disabled one disabled.
    let out = cli(&["list", "--json"], &env_refs(&env));
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed.len(), 1 + 3 * EACH + EACH);
    for (id, _, disabled) in &api_keys {
        let key = listed
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(key["disabled"], *disabled, "{id}");
    }
    for (id, _) in &cli_keys {
        assert!(listed.iter().any(|k| k["id"] == id.as_str()), "{id} lost");
    }
    // Every replica serves every change within a poll interval (1 s) and a reload.
    let deadline = Instant::now() + Duration::from_secs(10);
    for server in &replicas {
        for (_, secret, disabled) in &api_keys {
            let expected = if *disabled { 403 } else { 200 };
            while server.verify(secret).0 != expected {
                assert!(
                    Instant::now() < deadline,
                    "a replica does not serve a change"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for (_, secret) in &cli_keys {
            while server.verify(secret).0 != 200 {
                assert!(
                    Instant::now() < deadline,
                    "a replica does not serve the CLI's key"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn a_store_that_cannot_be_written_is_a_503_and_nothing_else_breaks() {
    let mut s3 = S3Server::start("manage-503");
    let env = s3.env("keys.json");
    let mut with_api = env.clone();
    with_api.push(("MANAGEMENT_API".into(), "1".into()));
    with_api.push(("REFRESH_INTERVAL".into(), "0".into()));
    let (_, admin) = cli_key(&env_refs(&env), "admin", "keys:admin");
    let server = Server::start(&env_refs(&with_api));
    s3.kill();
    let answer = call(
        &server,
        "POST",
        "/keys",
        Some(&admin),
        &[],
        Some(r#"{"name": "x"}"#),
    );
    assert_eq!(answer.error(503), "STORE_UNAVAILABLE");
    assert!(answer.header("retry-after").is_some());
    // Reads and verification go on from memory.
    assert_eq!(
        call(&server, "GET", "/keys", Some(&admin), &[], None).status,
        200
    );
    assert_eq!(server.verify(&admin).0, 200);
    // Once the store is back, a retry (as Retry-After says) is written.
    s3.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = Some(r#"{"name": "x"}"#);
        let answer = call(&server, "POST", "/keys", Some(&admin), &[], body);
        if answer.status == 201 {
            break;
        }
        assert_eq!(answer.error(503), "STORE_UNAVAILABLE");
        assert!(Instant::now() < deadline, "{answer:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_change_whose_body_never_arrives_holds_no_one_up() {
    let s = setup("manage-slow-body", &[("BODY_TIMEOUT", "1")]);
    let (addr, admin) = (s.server.addr(), s.admin.1.as_str());
    let mut slow = TcpStream::connect(addr).unwrap();
    write!(
        slow,
        "POST /keys HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": "
    )
    .unwrap();
    let started = Instant::now();
    // Others are answered meanwhile, reads and changes alike.
    let listed = call(&s.server, "GET", "/keys", Some(admin), &[], None);
    assert_eq!(listed.status, 200);
    let created = call(
        &s.server,
        "POST",
        "/keys",
        Some(admin),
        &[],
        Some(r#"{"name": "x"}"#),
    );
    assert_eq!(created.status, 201);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let answer = read_response(&mut BufReader::new(slow)).unwrap().unwrap();
    assert_eq!(answer.status, 408, "{}", answer.body);
    let listed = call(&s.server, "GET", "/keys", Some(admin), &[], None);
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 4);
}
