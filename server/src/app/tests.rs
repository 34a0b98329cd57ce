//! Handler tests with tiny_http's `TestRequest`, which sets the peer address.

use super::*;
use crate::store::StoreConfig;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tiny_http::{Header, TestRequest};

fn app(name: &str, json: &str) -> (App, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("heare-auth-app-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.json");
    std::fs::write(&path, json).unwrap();
    let keys = Keys::load(StoreConfig::file(path.to_str().unwrap()).open().unwrap()).unwrap();
    (App { keys }, path)
}

const KEYS: &str = r#"{"keys": [{"id": "key_1", "secret": "sec_live", "name": "Live", "metadata": {"plan": "pro"}},
                                  {"id": "key_2", "secret": "sec_old", "name": "Old", "expires_at": "2020-01-01"}]}"#;

fn peer(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 40000)
}

fn run(app: &App, req: TestRequest) -> Reply {
    let mut request: Request = req.into();
    app.handle(&mut request)
}

fn post(path: &str, body: &'static str) -> TestRequest {
    TestRequest::new()
        .with_method(Method::Post)
        .with_path(path)
        .with_remote_addr(peer(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .with_body(body)
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap()
}

#[test]
fn verify_answers_like_the_original() {
    let (app, _) = app("verify", KEYS);
    let ok = run(&app, post("/verify", r#"{"api_key": "sec_live"}"#));
    assert_eq!(ok.status, 200);
    assert_eq!(
        json(&ok),
        serde_json::json!({"valid": true, "key_id": "key_1", "name": "Live", "metadata": {"plan": "pro"}})
    );
    for secret in [
        r#"{"api_key": "sec_nope"}"#,
        r#"{"api_key": "sec_old"}"#,
        r#"{"api_key": ""}"#,
    ] {
        let bad = run(&app, post("/verify", secret));
        assert_eq!(bad.status, 403, "{secret}");
        assert_eq!(
            json(&bad),
            serde_json::json!({"valid": false, "error": "Invalid API key"})
        );
    }
}

#[test]
fn bad_requests_get_a_status_and_a_json_reason() {
    let (app, _) = app("bad", KEYS);
    let cases: [(TestRequest, u16, &str); 9] = [
        (post("/verify", "{not json"), 400, "invalid JSON body"),
        (post("/verify", "[1]"), 400, "expected a JSON object"),
        (post("/verify", "{}"), 400, "missing field \"api_key\""),
        (
            post("/verify", r#"{"api_key": 42}"#),
            400,
            "\"api_key\" must be a string",
        ),
        (
            post("/verify", r#"{"api_key": null}"#),
            400,
            "missing field \"api_key\"",
        ),
        (
            post("/verify", r#"{"api_key": "x"}"#)
                .with_header(Header::from_bytes("Content-Type", "text/plain").unwrap()),
            400,
            "expected Content-Type: application/json",
        ),
        (
            TestRequest::new()
                .with_method(Method::Get)
                .with_path("/verify"),
            405,
            "Method not allowed",
        ),
        (
            TestRequest::new()
                .with_method(Method::Get)
                .with_path("/nope"),
            404,
            "Not found",
        ),
        (
            TestRequest::new()
                .with_method(Method::Delete)
                .with_path("/health"),
            405,
            "Method not allowed",
        ),
    ];
    for (req, status, needle) in cases {
        let reply = run(&app, req);
        assert_eq!(reply.status, status, "{}", reply.body);
        let error = json(&reply)["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{error} does not contain {needle}");
    }
    let charset = post("/verify", r#"{"api_key": "sec_live"}"#).with_header(
        Header::from_bytes("Content-Type", "application/json; charset=utf-8").unwrap(),
    );
    assert_eq!(run(&app, charset).status, 200);
    assert_eq!(
        run(&app, post("/verify?x=1", r#"{"api_key": "sec_live"}"#)).status,
        200
    );
    let allow = run(
        &app,
        TestRequest::new()
            .with_method(Method::Get)
            .with_path("/refresh"),
    );
    assert_eq!(allow.allow, Some("POST"));
}

#[test]
fn oversized_body_is_413() {
    let (app, _) = app("big", KEYS);
    let big: &'static str =
        Box::leak(format!(r#"{{"api_key": "{}"}}"#, "a".repeat(MAX_BODY)).into_boxed_str());
    let reply = run(&app, post("/verify", big));
    assert_eq!(reply.status, 413);
    assert!(json(&reply)["error"]
        .as_str()
        .unwrap()
        .contains("too large"));
}

#[test]
fn health_says_only_ok() {
    let (app, _) = app("health", KEYS);
    let reply = run(
        &app,
        TestRequest::new()
            .with_method(Method::Get)
            .with_path("/health"),
    );
    assert_eq!(
        (reply.status, json(&reply)),
        (200, serde_json::json!({"status": "ok"}))
    );
}

#[test]
fn refresh_only_from_loopback_peers() {
    let (app, path) = app("refresh", KEYS);
    std::fs::write(&path, r#"{"keys": [{"id": "key_3", "secret": "sec_new"}]}"#).unwrap();
    let remote = [
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
        IpAddr::V6("2001:db8::1".parse().unwrap()),
        IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped()),
    ];
    for ip in remote {
        let req = post("/refresh", "")
            .with_remote_addr(peer(ip))
            .with_header(Header::from_bytes("X-Forwarded-For", "127.0.0.1").unwrap())
            .with_header(Header::from_bytes("X-Real-IP", "127.0.0.1").unwrap());
        let reply = run(&app, req);
        assert_eq!(reply.status, 403, "{ip}");
        assert_eq!(
            json(&reply),
            serde_json::json!({"error": "Refresh endpoint only accessible from localhost"})
        );
    }
    // Nothing was reloaded by the rejected calls.
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_live"}"#)).status,
        200
    );

    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
    ] {
        let reply = run(&app, post("/refresh", "").with_remote_addr(peer(ip)));
        assert_eq!(reply.status, 200, "{ip}");
        let v = json(&reply);
        assert_eq!(
            (v["success"].as_bool(), v["keys_loaded"].as_u64()),
            (Some(true), Some(1))
        );
        assert!(heare_auth_core::parse_timestamp(v["timestamp"].as_str().unwrap()).is_ok());
    }
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_live"}"#)).status,
        403
    );
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_new"}"#)).status,
        200
    );
}

#[test]
fn failed_refresh_is_500_and_keeps_the_old_set() {
    let (app, path) = app("refresh-fail", KEYS);
    std::fs::write(
        &path,
        r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "a", "secret": "y"}]}"#,
    )
    .unwrap();
    let reply = run(&app, post("/refresh", ""));
    assert_eq!(reply.status, 500);
    let v = json(&reply);
    assert_eq!(v["success"], false);
    assert!(
        v["error"].as_str().unwrap().contains("duplicate key id a"),
        "{v}"
    );
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_live"}"#)).status,
        200
    );
}

#[test]
fn prefix_is_four_characters_at_most() {
    assert_eq!(prefix("sec_0abcdef"), "sec_");
    assert_eq!(prefix("ab"), "ab");
    assert_eq!(prefix("ünï©ødé"), "ünï©");
}
