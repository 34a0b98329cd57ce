//! The real `heare-auth-server` over HTTP: answers, errors, refresh, start-up and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use heare_auth_tests::{
    bin_dir, parse_exposition, read_response_to_close, server_output, RawResponse, Server, TempDir,
};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// A keys file exactly as the original Python service wrote it: plaintext secrets, `Z` times,
/// some keys with only the oldest fields.
const LEGACY: &str = r#"{
  "keys": [
    {
      "id": "key_0VPq2bPUzK1nmBe4JtYvLdHt",
      "secret": "sec_0VPq2bPUnvQHkq0wC8XP0Mt1LrX2H4ZyHfRtfLZ9xQhAF7dkcJfBXy3Wq1cDmz",
      "name": "Legacy service",
      "created_at": "2025-03-01T10:11:12.131415Z",
      "metadata": {"team": "payments", "tier": 2, "tags": ["a", "b"]}
    },
    {
      "id": "key_0VPq2bPVq3uTmY9E1kQn4XzW",
      "secret": "sec_0VPq2bPVf0a9bG3m1wpTzQ2L7nC5dYk8sR4hJvXeU6tqWcHb2NzMy0oKjPiL3x",
      "name": "Expired contractor",
      "secret_type": "api",
      "created_at": "2025-03-01T10:11:12.131415+00:00",
      "updated_at": null,
      "expires_at": "2025-06-30T00:00:00+00:00",
      "metadata": {}
    },
    {
      "id": "key_0VPq2bPWc1",
      "secret": "sec_0VPq2bPWfuture",
      "name": "Until 2999",
      "created_at": "2025-03-01T10:11:12",
      "expires_at": "2999-12-31",
      "metadata": {"note": "ünïcödé ✓"}
    }
  ]
}
"#;

fn legacy_server() -> (TempDir, Server) {
    let dir = TempDir::new("legacy");
    std::fs::write(dir.path("keys.json"), LEGACY).unwrap();
    let server = Server::with_file(&dir.path("keys.json"));
    (dir, server)
}

#[test]
fn legacy_plaintext_file_from_the_original_verifies() {
    let (_dir, server) = legacy_server();
    assert_eq!(
        server.verify("sec_0VPq2bPUnvQHkq0wC8XP0Mt1LrX2H4ZyHfRtfLZ9xQhAF7dkcJfBXy3Wq1cDmz"),
        (
            200,
            json!({"valid": true, "key_id": "key_0VPq2bPUzK1nmBe4JtYvLdHt", "name": "Legacy service",
                   "metadata": {"team": "payments", "tier": 2, "tags": ["a", "b"]},
                   "code": "VALID", "scopes": [], "expires_at": null})
        )
    );
    assert_eq!(
        server.verify("sec_0VPq2bPWfuture").1["metadata"],
        json!({"note": "ünïcödé ✓"})
    );
    let invalid = |code| json!({"valid": false, "error": "Invalid API key", "code": code});
    // Expired, unknown, and a prefix of a real secret.
    assert_eq!(
        server.verify("sec_0VPq2bPVf0a9bG3m1wpTzQ2L7nC5dYk8sR4hJvXeU6tqWcHb2NzMy0oKjPiL3x"),
        (403, invalid("EXPIRED"))
    );
    assert_eq!(
        server.verify("sec_0VPq2bPUnvQHkq0wC8XP0Mt1"),
        (403, invalid("NOT_FOUND"))
    );
    assert_eq!(server.verify(""), (403, invalid("NOT_FOUND")));
    let startup = server
        .wait_for_event("startup", Duration::from_secs(1))
        .unwrap();
    assert_eq!(startup["keys_loaded"], 3);
}

#[test]
fn every_bad_request_gets_its_status_and_a_json_error() {
    let (_dir, server) = legacy_server();
    let json_ct = [("Content-Type", "application/json")];
    let big = format!(r#"{{"api_key": "{}"}}"#, "x".repeat(20_000));
    let cases: Vec<(u16, (u16, serde_json::Value))> = vec![
        (400, server.post("/verify", "{\"api_key\": ", &json_ct)),
        (400, server.post("/verify", "", &json_ct)),
        (400, server.post("/verify", "{}", &json_ct)),
        (
            400,
            server.post("/verify", r#"{"api_key": ["sec_"]}"#, &json_ct),
        ),
        (400, server.post("/verify", r#""sec_abc""#, &json_ct)),
        (
            400,
            server.post(
                "/verify",
                r#"{"api_key": "sec_abc"}"#,
                &[("Content-Type", "text/plain")],
            ),
        ),
        (413, server.post("/verify", &big, &json_ct)),
        (404, server.call("GET", "/")),
        (404, server.call("POST", "/verify/extra")),
        (405, server.call("GET", "/verify")),
        (405, server.call("PUT", "/refresh")),
        (405, server.call("POST", "/health")),
    ];
    for (want, (status, body)) in cases {
        assert_eq!(status, want, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{want}: {body}"
        );
    }
    assert_eq!(
        server.call("GET", "/health"),
        (200, json!({"status": "ok"}))
    );
}

#[test]
fn refresh_refuses_forwarded_requests_and_reloads_direct_ones() {
    let dir = TempDir::new("refresh");
    let path = dir.path("keys.json");
    std::fs::write(&path, r#"{"keys": [{"id": "key_a", "secret": "sec_a"}]}"#).unwrap();
    let server = Server::with_file(&path);
    std::fs::write(
        &path,
        r#"{"keys": [{"id": "key_b", "secret": "sec_b"}, {"id": "key_c", "secret": "sec_c"}]}"#,
    )
    .unwrap();
    // The TCP peer is loopback, but a proxy on this machine makes every client loopback: a
    // request that says it was forwarded is refused, and says why.
    for header in ["X-Forwarded-For", "X-Real-IP", "Forwarded", "Via"] {
        let (status, body) = server.post("/refresh", "", &[(header, "203.0.113.7")]);
        assert_eq!(status, 403, "{header}");
        assert_eq!(
            body["error"],
            format!(
                "Refresh endpoint only accessible from localhost, not through a proxy \
                 (the request carries {})",
                header.to_ascii_lowercase()
            )
        );
    }
    server
        .wait_for_event("refresh_rejected", Duration::from_secs(2))
        .unwrap();
    let refused: Vec<_> = server
        .logs()
        .into_iter()
        .filter(|l| l["event"] == "refresh_rejected")
        .map(|l| l["forwarded"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        refused,
        ["x-forwarded-for", "x-real-ip", "forwarded", "via"]
    );
    assert_eq!(server.verify("sec_a").0, 200, "a refused refresh reloaded");
    let (status, body) = server.refresh();
    assert_eq!(
        (status, body["success"].clone(), body["keys_loaded"].clone()),
        (200, json!(true), json!(2))
    );
    assert_eq!(server.verify("sec_a").0, 403);
    assert_eq!(server.verify("sec_c").0, 200);

    // A broken file is refused with 500 and the last good set keeps serving.
    std::fs::write(
        &path,
        r#"{"keys": [{"id": "key_b", "secret": "sec_b"}, {"id": "key_b", "secret": "sec_d"}]}"#,
    )
    .unwrap();
    let (status, body) = server.refresh();
    assert_eq!((status, &body["success"]), (500, &json!(false)));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("duplicate key id key_b"),
        "{body}"
    );
    assert_eq!(server.verify("sec_c").0, 200);
    let failed = server
        .wait_for_event("refresh_failed", Duration::from_secs(2))
        .unwrap();
    assert!(failed["error"].as_str().unwrap().contains("key_b"));
}

#[test]
fn missing_keys_file_means_zero_keys() {
    let dir = TempDir::new("missing");
    let server = Server::with_file(&dir.path("absent.json"));
    assert_eq!(server.verify("sec_anything").0, 403);
    assert_eq!(server.refresh().1["keys_loaded"], 0);
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for signal in ["TERM", "INT"] {
        let (_dir, server) = legacy_server();
        assert_eq!(server.verify("sec_0VPq2bPWfuture").0, 200);
        let logs = server.stop_with(signal);
        assert_eq!(logs, Some(0), "SIG{signal}");
    }
}

#[test]
fn startup_errors_are_one_clear_line_and_nonzero() {
    let dir = TempDir::new("startup");
    let bad = dir.path("bad.json");
    std::fs::write(&bad, r#"{"keys": [{"id": "k", "name": "no secret"}]}"#).unwrap();
    let unreadable = dir.path("dir.json");
    std::fs::create_dir(&unreadable).unwrap();
    let (_keep, running) = legacy_server();
    let taken_port = running.url.rsplit(':').next().unwrap().to_string();
    let cases = [
        (
            vec!["--keys-file", bad.to_str().unwrap()],
            "missing field `secret_hash`",
        ),
        (
            vec!["--keys-file", unreadable.to_str().unwrap()],
            "cannot read",
        ),
        (vec!["--port", &taken_port], "cannot listen on 127.0.0.1:"),
        (vec!["--port", "eighty"], "port: expected a number"),
    ];
    for (args, needle) in cases {
        let out = server_output(
            Command::new(bin_dir().join("heare-auth-server"))
                .args(["--host", "127.0.0.1"])
                .args(&args)
                .env_clear()
                .env("STARTUP_TIMEOUT", "0"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    let help = server_output(Command::new(bin_dir().join("heare-auth-server")).arg("--help"));
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--keys-file PATH"));
}

#[test]
fn logs_are_json_and_never_contain_a_secret() {
    let (_dir, server) = legacy_server();
    let secrets = [
        "sec_0VPq2bPUnvQHkq0wC8XP0Mt1LrX2H4ZyHfRtfLZ9xQhAF7dkcJfBXy3Wq1cDmz",
        "sec_0VPq2bPVf0a9bG3m1wpTzQ2L7nC5dYk8sR4hJvXeU6tqWcHb2NzMy0oKjPiL3x",
        "sec_0VPq2bPWfuture",
        "sec_not_a_real_key_but_still_secret",
    ];
    for s in secrets {
        server.post(
            "/verify",
            &json!({"api_key": s}).to_string(),
            &[("User-Agent", "e2e/1.0")],
        );
        server.verify(s);
    }
    server.refresh();
    // Lines are written in order, so once the refresh is logged every verification is too.
    server
        .wait_for_event("refresh_success", Duration::from_secs(2))
        .expect("refresh_success logged");
    let logs = server.logs();
    let text = logs
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for s in secrets {
        assert!(!text.contains(&s[4..]), "secret {s} in logs:\n{text}");
    }
    let success = logs
        .iter()
        .find(|l| l["event"] == "verification_success")
        .unwrap();
    assert_eq!(success["key_id"], "key_0VPq2bPUzK1nmBe4JtYvLdHt");
    assert_eq!(success["key_name"], "Legacy service");
    let failed = logs
        .iter()
        .find(|l| l["event"] == "verification_failed")
        .unwrap();
    assert_eq!(failed["key_prefix"], "sec_");
    let agents: Vec<_> = logs
        .iter()
        .filter(|l| l["user_agent"] == "e2e/1.0")
        .collect();
    assert_eq!(agents.len(), 4);
    for l in &logs {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["event"].is_string(),
            "{l}"
        );
    }
}

#[test]
fn the_shared_request_vectors_get_the_same_answers_over_http() {
    use base64::Engine;
    use heare_auth_tests::read_response;
    use std::io::{BufReader, Write};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/requests.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = TempDir::new("request-vectors");
    std::fs::write(dir.path("keys.json"), vectors["file"].to_string()).unwrap();
    let server = Server::with_file(&dir.path("keys.json"));
    let cases = vectors["cases"].as_array().unwrap();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut body = match (case["body"].as_str(), case["body_base64"].as_str()) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            _ => panic!("{name}: give exactly one of `body` and `body_base64`"),
        };
        if let Some(size) = case["pad_to"].as_u64() {
            body.resize(size as usize, b' ');
        }
        let content_type = case["content_type"]
            .as_str()
            .map(|ct| format!("Content-Type: {ct}\r\n"))
            .unwrap_or_default();
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        let head = format!(
            "POST /verify HTTP/1.1\r\nHost: t\r\n{content_type}Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let response = read_response(&mut BufReader::new(stream)).unwrap().unwrap();
        let got: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(
            (response.status, &got),
            (case["status"].as_u64().unwrap() as u16, &case["response"]),
            "{name}"
        );
    }
    assert!(cases.len() >= 20);
}

#[test]
fn the_shared_forward_auth_vectors_get_the_same_answers_over_http() {
    use heare_auth_tests::read_response;
    use std::io::{BufReader, Write};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/auth.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = TempDir::new("auth-vectors");
    std::fs::write(dir.path("keys.json"), vectors["file"].to_string()).unwrap();
    let server = Server::with_file(&dir.path("keys.json"));
    let cases = vectors["cases"].as_array().unwrap();
    // Any method and any path under /auth (Envoy appends the original path), body ignored.
    let targets = [
        ("GET", "/auth"),
        ("POST", "/auth/api/orders"),
        ("PUT", "/auth"),
    ];
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let (method, path) = targets[i % targets.len()];
        let query = case["query"]
            .as_str()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut head = format!("{method} {path}{query} HTTP/1.1\r\nHost: t\r\n");
        for (header, field) in [
            ("Authorization", "authorization"),
            ("X-API-Key", "x_api_key"),
        ] {
            if let Some(value) = case[field].as_str() {
                head.push_str(&format!("{header}: {value}\r\n"));
            }
        }
        head.push_str("Content-Length: 9\r\n\r\nignored!!");
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let response = read_response(&mut BufReader::new(stream)).unwrap().unwrap();
        assert_eq!(
            response.status as u64,
            case["status"].as_u64().unwrap(),
            "{name}"
        );
        for (header, value) in case["headers"].as_object().unwrap() {
            assert_eq!(response.header(header), value.as_str(), "{name}: {header}");
        }
        for header in case["absent_headers"].as_array().unwrap() {
            let header = header.as_str().unwrap();
            assert_eq!(response.header(header), None, "{name}: {header}");
        }
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body, case["body"], "{name}");
    }
    // Logged like /verify, with the route, never the secret.
    server
        .wait_for_log(Duration::from_secs(2), |l| {
            l["event"] == "verification_failed" && l["code"] == "MISSING_KEY"
        })
        .expect("the missing key was logged");
    let logs = server.logs();
    let text = logs.iter().map(|l| l.to_string()).collect::<String>();
    assert!(!text.contains("authValid") && !text.contains("authDisabled"));
    let success = logs
        .iter()
        .find(|l| l["event"] == "verification_success")
        .unwrap();
    assert_eq!(
        (&success["route"], &success["key_id"]),
        (&json!("/auth"), &json!("key_0Auth"))
    );
    let disabled = logs.iter().find(|l| l["code"] == "DISABLED").unwrap();
    assert_eq!(
        (&disabled["reason"], &disabled["key_id"]),
        (&json!("disabled"), &json!("key_0Off"))
    );
}

#[test]
fn the_shared_route_vectors_get_the_same_answers_over_http() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/routes.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = TempDir::new("route-vectors");
    let server = Server::with_file(&operating_keys(&dir));
    let cases = vectors["cases"].as_array().unwrap();
    for case in cases {
        let (method, path) = (
            case["method"].as_str().unwrap(),
            case["path"].as_str().unwrap(),
        );
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = raw(&server, request.as_bytes());
        let name = format!("{method} {path}");
        assert_eq!(
            (answer.status as u64, answer.header("allow")),
            (case["status"].as_u64().unwrap(), case["allow"].as_str()),
            "{name}"
        );
        match case.get("body") {
            None => {}
            Some(serde_json::Value::Null) => assert_eq!(answer.body, "", "{name}"),
            Some(body) => assert_eq!(
                &serde_json::from_str::<serde_json::Value>(&answer.body).unwrap(),
                body,
                "{name}"
            ),
        }
    }
    assert!(cases.len() >= 40);
}

/// A keys file for the operating tests: hashed secrets, one per kind of key.
fn operating_keys(dir: &TempDir) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let hash = |s: &str| format!("{:x}", Sha256::digest(s.as_bytes()));
    let file = json!({"keys": [
        {"id": "key_op_valid", "secret_hash": hash("sec_0opValid"), "name": "Op valid", "scopes": ["read"]},
        {"id": "key_op_old", "secret_hash": hash("sec_0opOld"), "name": "Op old", "expires_at": "2020-01-01"},
        {"id": "key_op_off", "secret_hash": hash("sec_0opOff"), "name": "Op off", "disabled": true},
        {"id": "key_op_limited", "secret_hash": hash("sec_0opLimited"), "name": "Op limited",
         "rate_limit": {"requests": 3, "per_seconds": 60}},
    ]});
    let path = dir.path("keys.json");
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// A GET with headers: (status, headers, body).
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, ureq::Response) {
    let mut request = ureq::get(url);
    for (k, v) in headers {
        request = request.set(k, v);
    }
    match request.call() {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn a_key_over_its_rate_limit_gets_429_at_verify_and_auth() {
    let dir = TempDir::new("rate-limit");
    let path = operating_keys(&dir);
    let server = Server::start(&[("KEYS_FILE", path.to_str().unwrap())]);
    let statuses: Vec<u16> = (0..3).map(|_| server.verify("sec_0opLimited").0).collect();
    assert_eq!(statuses, [200, 200, 200]);
    let (status, body) = server.verify("sec_0opLimited");
    assert_eq!(
        (status, body),
        (
            429,
            json!({"valid": false, "error": "Rate limit exceeded", "code": "RATE_LIMITED"})
        )
    );
    let (status, response) = get(
        &format!("{}/auth", server.url),
        &[("Authorization", "Bearer sec_0opLimited")],
    );
    assert_eq!(status, 429);
    let retry: u64 = response.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Keys without a limit are not limited, and the limited key's failures do not count.
    for _ in 0..10 {
        assert_eq!(server.verify("sec_0opValid").0, 200);
    }
    // Behind nginx, /auth answers with another status.
    let dir = TempDir::new("rate-limit-403");
    let path = operating_keys(&dir);
    let server = Server::start(&[
        ("KEYS_FILE", path.to_str().unwrap()),
        ("RATE_LIMIT_STATUS", "403"),
    ]);
    let auth = || {
        get(
            &format!("{}/auth", server.url),
            &[("X-API-Key", "sec_0opLimited")],
        )
        .0
    };
    assert_eq!([auth(), auth(), auth(), auth()], [200, 200, 200, 403]);

    // Answered 401 instead, a key over its limit gets a challenge, as every 401 must.
    let server = Server::start(&[
        ("KEYS_FILE", path.to_str().unwrap()),
        ("RATE_LIMIT_STATUS", "401"),
    ]);
    let auth = || {
        get(
            &format!("{}/auth", server.url),
            &[("X-API-Key", "sec_0opLimited")],
        )
        .1
    };
    for _ in 0..3 {
        assert_eq!(auth().status(), 200);
    }
    let refused = auth();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.header("WWW-Authenticate"),
        Some(r#"Bearer realm="heare-auth", error="invalid_token""#)
    );
    assert!(refused.header("Retry-After").is_some());
}

/// A raw request, for what HTTP clients would not send, on a connection of its own that the
/// server closes after answering.
fn raw(server: &Server, request: &[u8]) -> RawResponse {
    use std::io::{BufReader, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream.write_all(request).unwrap();
    read_response_to_close(&mut BufReader::new(stream)).unwrap()
}

#[test]
fn head_is_answered_wherever_get_is() {
    let dir = TempDir::new("head");
    let server = Server::with_file(&operating_keys(&dir));
    let ask = |method: &str, path: &str| {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        raw(&server, request.as_bytes())
    };
    for path in ["/health", "/ready", "/metrics"] {
        let get = ask("GET", path);
        let head = ask("HEAD", path);
        assert!(get.status == 200 && head.status == 200, "{path}: {head:?}");
        assert!(!get.body.is_empty());
        assert!(head.body.is_empty(), "{path}: HEAD answered a body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        let put = ask("PUT", path);
        assert!(
            put.status == 405 && put.header("allow") == Some("GET, HEAD"),
            "{path}: {put:?}"
        );
    }
}

#[test]
fn a_content_type_that_is_not_ascii_is_not_json() {
    let dir = TempDir::new("content-type");
    let server = Server::with_file(&operating_keys(&dir));
    let body = r#"{"api_key": "sec_0opValid"}"#;
    let request = |content_type: &[u8]| {
        let mut request =
            b"POST /verify HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: ".to_vec();
        request.extend_from_slice(content_type);
        request.extend_from_slice(
            format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        );
        raw(&server, &request)
    };
    assert_eq!(request(b"application/json").status, 200);
    let refused = request(b"application/json\xe8");
    assert_eq!(refused.status, 400, "{refused:?}");
    let answer: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("Content-Type"),
        "{answer}"
    );
}

#[test]
fn metrics_count_known_traffic_and_name_no_key() {
    let dir = TempDir::new("metrics");
    let path = operating_keys(&dir);
    let server = Server::start(&[
        ("KEYS_FILE", path.to_str().unwrap()),
        ("METRICS_ADDR", "127.0.0.1:0"),
    ]);
    for (secret, times) in [
        ("sec_0opValid", 3),
        ("sec_0nothing", 2),
        ("sec_0opOld", 1),
        ("sec_0opOff", 1),
    ] {
        for _ in 0..times {
            server.verify(secret);
        }
    }
    let auth = |headers: &[(&str, &str)], query: &str| {
        get(&format!("{}/auth{query}", server.url), headers).0
    };
    assert_eq!(auth(&[("Authorization", "Bearer sec_0opValid")], ""), 200);
    assert_eq!(auth(&[("X-API-Key", "sec_0opValid")], "?scope=read"), 200);
    assert_eq!(auth(&[], ""), 401);
    assert_eq!(auth(&[("X-API-Key", "sec_0opValid")], "?scope=admin"), 403);
    // A checksummed secret whose checksum is wrong: answered as an unknown key, counted apart.
    let typo = format!("sec_1{}", "0".repeat(57));
    assert_eq!(
        heare_auth_core::form(&typo),
        heare_auth_core::Form::BadChecksum
    );
    assert_eq!(server.verify(&typo), server.verify("sec_0nothing"));
    assert_eq!(auth(&[("X-API-Key", typo.as_str())], ""), 401);
    let logged = server
        .wait_for_log(Duration::from_secs(5), |v| v["reason"] == "checksum")
        .unwrap();
    assert_eq!(
        (&logged["event"], &logged["code"], &logged["key_prefix"]),
        (
            &json!("verification_failed"),
            &json!("NOT_FOUND"),
            &json!("sec_")
        )
    );

    let (status, response) = get(&format!("{}/metrics", server.url), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.into_string().unwrap();
    heare_auth_tests::transcribe("metrics", &text);
    let samples = parse_exposition(&text);
    let count = |route: &str, code: &str| {
        samples[&format!(r#"heare_auth_verifications_total{{code="{code}",route="{route}"}}"#)]
    };
    assert_eq!(
        [
            count("/verify", "VALID"),
            count("/verify", "NOT_FOUND"),
            count("/verify", "EXPIRED"),
            count("/verify", "DISABLED"),
            count("/auth", "VALID"),
            count("/auth", "MISSING_KEY"),
            count("/auth", "NOT_FOUND"),
            count("/auth", "INSUFFICIENT_SCOPE"),
            count("/auth", "RATE_LIMITED"),
        ],
        [3.0, 4.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 0.0]
    );
    assert_eq!(
        samples[r#"heare_auth_verification_duration_seconds_count{route="/verify"}"#],
        9.0
    );
    for route in ["/verify", "/auth"] {
        let name = format!(
            r#"heare_auth_refused_before_lookup_total{{reason="checksum",route="{route}"}}"#
        );
        assert_eq!(samples[&name], 1.0, "{name}");
    }
    assert_eq!(samples["heare_auth_keys_loaded"], 4.0);
    assert!(samples["heare_auth_open_connections"] >= 1.0);
    assert!(samples["heare_auth_last_load_timestamp_seconds"] > 1.7e9);
    assert_eq!(
        samples[r#"heare_auth_reload_failures_total{trigger="poll"}"#],
        0.0
    );
    assert_eq!(samples[r#"heare_auth_build_info{version="0.1.0"}"#], 1.0);
    for secret_or_name in ["sec_0op", "key_op", "Op valid", "Op off"] {
        assert!(
            !text.contains(secret_or_name),
            "{secret_or_name} in /metrics"
        );
    }

    // The METRICS_ADDR listener: /metrics to any peer, and nothing else.
    let startup = server
        .wait_for_event("startup", Duration::from_secs(1))
        .unwrap();
    let metrics_url = format!("http://{}", startup["metrics_address"].as_str().unwrap());
    let (status, response) = get(&format!("{metrics_url}/metrics"), &[]);
    assert_eq!(status, 200);
    let text = response.into_string().unwrap();
    heare_auth_tests::transcribe("metrics", &text);
    assert!(parse_exposition(&text).contains_key("heare_auth_keys_loaded"));
    assert_eq!(get(&format!("{metrics_url}/health"), &[]).0, 404);
    let verify = ureq::post(&format!("{metrics_url}/verify")).send_string("{}");
    assert!(matches!(verify, Err(ureq::Error::Status(404, _))));
}

/// Replaces `path` whole (a rename), so that a reload never reads it half written.
fn replace_file(path: &std::path::Path, content: &[u8]) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn metrics_count_failed_reloads_by_trigger() {
    let dir = TempDir::new("reload-failures");
    let path = operating_keys(&dir);
    let mut mended: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    mended["keys"].as_array_mut().unwrap().pop();
    let server = Server::start(&[
        ("KEYS_FILE", path.to_str().unwrap()),
        ("REFRESH_INTERVAL", "0.2"),
    ]);
    let failed = |trigger: &str| {
        server
            .logs()
            .iter()
            .filter(|l| l["event"] == "refresh_failed" && l["trigger"] == trigger)
            .count() as f64
    };
    // The keys file replaced by garbage: each /refresh fails, and the keys stay.
    replace_file(&path, b"{\"keys\": [garbage");
    for _ in 0..2 {
        let (status, body) = server.refresh();
        assert_eq!((status, &body["success"]), (500, &json!(false)), "{body}");
    }
    assert_eq!(server.verify("sec_0opValid").0, 200);
    // The periodic check fails on each tick while the file stays broken, then loads it mended
    // (with a key fewer, so that the load shows).
    let poll_failed =
        |l: &serde_json::Value| l["event"] == "refresh_failed" && l["trigger"] == "poll";
    assert!(server
        .wait_for_log(Duration::from_secs(3), poll_failed)
        .is_some());
    replace_file(&path, mended.to_string().as_bytes());
    assert!(server
        .wait_for_log(Duration::from_secs(3), |l| l["event"] == "refresh_success"
            && l["trigger"] == "poll")
        .is_some());

    let (status, response) = get(&format!("{}/metrics", server.url), &[]);
    assert_eq!(status, 200);
    let samples = parse_exposition(&response.into_string().unwrap());
    let counted = |trigger: &str| {
        samples[&format!(r#"heare_auth_reload_failures_total{{trigger="{trigger}"}}"#)]
    };
    assert_eq!(counted("refresh"), 2.0);
    // As many as the failed checks logged (one per tick, so their number depends on timing).
    assert!(counted("poll") >= 1.0);
    assert_eq!(counted("poll"), failed("poll"));
    assert_eq!(failed("refresh"), 2.0);
    assert_eq!(samples["heare_auth_keys_loaded"], 3.0);
}

#[test]
fn ready_once_loaded_health_always() {
    let dir = TempDir::new("ready");
    let path = operating_keys(&dir);
    let server = Server::start(&[("KEYS_FILE", path.to_str().unwrap())]);
    assert_eq!(
        server.call("GET", "/ready"),
        (200, json!({"status": "ready"}))
    );
    assert_eq!(
        server.call("GET", "/health"),
        (200, json!({"status": "ok"}))
    );
}

#[test]
fn a_flood_of_refresh_costs_one_reload_per_pause_and_every_caller_gets_its_answer() {
    let dir = TempDir::new("refresh-flood");
    let path = dir.path("keys.json");
    std::fs::write(&path, r#"{"keys": [{"id": "key_a", "secret": "sec_a"}]}"#).unwrap();
    let server = std::sync::Arc::new(Server::with_file(&path));
    let started = std::time::Instant::now();
    // 8 callers, 10 refreshes each, one after another as fast as they are answered.
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let (status, body) = server.refresh();
                    assert_eq!((status, &body["keys_loaded"]), (200, &json!(1)), "{body}");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let reloads = server
        .logs()
        .iter()
        .filter(|l| l["event"] == "refresh_success" && l["trigger"] == "refresh")
        .count();
    // One look at the store, then at most one per 50 ms pause (each answers every caller
    // waiting).
    let most = 1 + (took.as_millis() / 50) as usize;
    assert!(
        (1..=most).contains(&reloads),
        "{reloads} reloads for 80 refreshes in {took:?}"
    );
    assert!(reloads < 80, "{reloads} reloads for 80 refreshes");
}

#[test]
fn a_short_legacy_secret_is_never_logged_and_a_long_user_agent_is_cut() {
    let dir = TempDir::new("short-secret");
    let path = dir.path("keys.json");
    std::fs::write(&path, r#"{"keys": [{"id": "key_s", "secret": "wxyz"}]}"#).unwrap();
    let server = Server::with_file(&path);
    let agent = format!("agent-{}", "u".repeat(10_000));
    for secret in ["wxyz", "wxy", "wxyq"] {
        server.post(
            "/verify",
            &json!({ "api_key": secret }).to_string(),
            &[("User-Agent", &agent)],
        );
    }
    server.refresh();
    server
        .wait_for_event("refresh_success", Duration::from_secs(2))
        .unwrap();
    let logs = server.logs();
    let verifications: Vec<_> = logs
        .iter()
        .filter(|l| {
            l["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("verification_"))
        })
        .collect();
    assert_eq!(verifications.len(), 3);
    for line in &verifications {
        let text = line.to_string();
        assert!(!text.contains("wxy"), "a short secret in the log: {text}");
        let logged = line["user_agent"].as_str().unwrap();
        assert_eq!(logged.chars().count(), 257, "{logged}");
        assert!(logged.starts_with("agent-uuu") && logged.ends_with('…'));
    }
}

#[test]
fn every_answer_carries_a_request_id_and_the_log_lines_about_it_name_it() {
    let dir = TempDir::new("request-id");
    let path = dir.path("keys.json");
    std::fs::write(
        &path,
        r#"{"keys": [{"id": "key_r", "secret": "sec_0requestIdSecret"}]}"#,
    )
    .unwrap();
    let server = Server::with_file(&path);
    let ask = |head: &str, body: &str| {
        raw(
            &server,
            format!(
                "{head}\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let id_of = |r: &RawResponse| r.header("x-request-id").map(str::to_string);
    // The caller's own, when it is a sane token.
    let verify = r#"{"api_key": "sec_0requestIdSecret"}"#;
    let kept = ask(
        "POST /verify HTTP/1.1\r\nX-Request-Id: trace-4242.a:b",
        verify,
    );
    assert_eq!(kept.status, 200);
    assert_eq!(id_of(&kept).as_deref(), Some("trace-4242.a:b"));
    // Otherwise a new one, different for each answer.
    let too_long = format!("POST /verify HTTP/1.1\r\nX-Request-Id: {}", "x".repeat(129));
    let spaced = "POST /verify HTTP/1.1\r\nX-Request-Id: two words";
    let mut fresh = Vec::new();
    for head in [too_long.as_str(), spaced, "POST /verify HTTP/1.1"] {
        let answer = ask(head, r#"{"api_key": "sec_0unknownToAnyone"}"#);
        assert_eq!(answer.status, 403);
        let id = id_of(&answer).unwrap();
        assert!(
            id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        fresh.push(id);
    }
    fresh.sort();
    fresh.dedup();
    assert_eq!(fresh.len(), 3);
    // On every route, and on a refusal before any route.
    for (head, status) in [
        ("GET /auth HTTP/1.1\r\nX-Request-Id: auth-1", 401),
        ("GET /health HTTP/1.1\r\nX-Request-Id: health-1", 200),
        ("GET /nowhere HTTP/1.1\r\nX-Request-Id: nowhere-1", 404),
        ("PUT /verify HTTP/1.1\r\nX-Request-Id: put-1", 405),
        (
            "POST /verify HTTP/1.1\r\nX-Request-Id: te-1\r\nTransfer-Encoding: gzip, chunked",
            501,
        ),
    ] {
        let answer = ask(head, "");
        assert_eq!(answer.status, status, "{head}");
        let sent = head
            .split("X-Request-Id: ")
            .nth(1)
            .unwrap()
            .split('\r')
            .next()
            .unwrap();
        assert_eq!(id_of(&answer).as_deref(), Some(sent), "{head}");
    }
    // The log lines about /verify and /auth name it.
    server
        .wait_for_log(Duration::from_secs(2), |l| l["request_id"] == "auth-1")
        .expect("the /auth line names its request");
    let logs = server.logs();
    let line = logs
        .iter()
        .find(|l| l["event"] == "verification_success")
        .unwrap();
    assert_eq!(line["request_id"], "trace-4242.a:b");
    for id in &fresh {
        assert!(logs.iter().any(|l| l["request_id"] == id.as_str()), "{id}");
    }
}

#[test]
fn credits_are_spent_by_verify_and_auth_and_refused_with_usage_exceeded() {
    let dir = TempDir::new("credits");
    let file = dir.path("keys.json");
    std::fs::write(
        &file,
        r#"{"keys": [{"id": "key_metered", "secret": "sec_0opMetered", "name": "M",
                     "credits": {"amount": 4, "since": "2026-01-01T00:00:00Z"}}]}"#,
    )
    .unwrap();
    let server = Server::with_file(&file);
    let verify = |cost: &str| {
        let body = format!(r#"{{"api_key": "sec_0opMetered"{cost}}}"#);
        server.post("/verify", &body, &[("Content-Type", "application/json")])
    };
    let (status, body) = verify(r#", "cost": 2"#);
    assert_eq!((status, &body["remaining"]), (200, &json!(2)));
    // A check spends nothing.
    let (status, body) = verify(r#", "cost": 0"#);
    assert_eq!((status, &body["remaining"]), (200, &json!(2)));
    let (status, body) = verify(r#", "cost": 3"#);
    assert_eq!(
        (status, body),
        (
            403,
            json!({"valid": false, "error": "Usage exceeded", "code": "USAGE_EXCEEDED", "remaining": 2})
        )
    );
    // /auth spends one per valid request, and answers a key out of credits as it answers one
    // over its rate limit.
    let auth = || {
        get(
            &format!("{}/auth", server.url),
            &[("X-API-Key", "sec_0opMetered")],
        )
    };
    assert_eq!(auth().0, 200);
    assert_eq!(auth().0, 200);
    let (status, response) = auth();
    assert_eq!(status, 429);
    let body: serde_json::Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    assert_eq!(body["code"], "USAGE_EXCEEDED");
    let (status, body) = verify("");
    assert_eq!((status, &body["code"]), (403, &json!("USAGE_EXCEEDED")));
}
