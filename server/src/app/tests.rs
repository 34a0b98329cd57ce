//! Handler tests: requests built by hand, as the transport would hand them over.

use super::*;
use crate::health::Trigger;
use crate::reload::Reloader;
use heare_auth_core::KeySet;
use heare_auth_store::StoreConfig;
use http::header::{HeaderName, HeaderValue};
use http::Method;
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// An app as the handlers see it, and the reloader behind `/refresh` when there is a store.
struct TestApp {
    app: App,
    reloader: Option<Mutex<Reloader>>,
}

impl Deref for TestApp {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut App {
        &mut self.app
    }
}

/// An app serving `json`, held in memory: no store, so no `/refresh`.
fn app(json: &str) -> TestApp {
    let (set, _) = KeySet::from_json(json.as_bytes()).unwrap();
    let health = Arc::new(Health::default());
    health.read(true, now_ms());
    let live = Arc::new(Live::new(set, None, now_ms()));
    TestApp {
        app: App::new(
            live,
            health,
            Arc::default(),
            Settings::default(),
            Arc::new(Counts::new(false)),
        ),
        reloader: None,
    }
}

/// An app over a keys file in a temporary directory (removed when the directory is dropped),
/// which `/refresh` reloads.
fn reloadable(json: &str) -> (TestApp, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, json).unwrap();
    let store = StoreConfig::file(path.to_str().unwrap()).open().unwrap();
    let reloader = Reloader::load_with_retry(store, std::time::Duration::ZERO, false).unwrap();
    let app = App::new(
        reloader.live(),
        reloader.health(),
        Arc::default(),
        Settings::default(),
        Arc::new(Counts::new(false)),
    );
    let app = TestApp {
        app,
        reloader: Some(Mutex::new(reloader)),
    };
    (app, path, dir)
}

const KEYS: &str = r#"{"keys": [{"id": "key_1", "secret": "sec_live", "name": "Live", "metadata": {"plan": "pro"}},
                                  {"id": "key_2", "secret": "sec_old", "name": "Old", "expires_at": "2020-01-01"}]}"#;

fn peer(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 40000)
}

/// A request as the transport hands it to the handlers.
struct TestRequest {
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    peer: SocketAddr,
    body: String,
}

impl TestRequest {
    fn new(method: Method, path: &'static str) -> TestRequest {
        TestRequest {
            method,
            path,
            headers: HeaderMap::new(),
            peer: peer(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            body: String::new(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &str) -> TestRequest {
        self.headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn with_remote_addr(mut self, peer: SocketAddr) -> TestRequest {
        self.peer = peer;
        self
    }
}

/// Routes and answers like the transport: the pre-body check, then the handler; a reload is
/// done in place.
fn run(app: &TestApp, req: TestRequest) -> Reply {
    let uri: http::Uri = req.path.parse().unwrap();
    let route = Route::of(req.method.as_str(), uri.path());
    if let Some(reply) = app.before_body(route, &req.headers) {
        return reply;
    }
    let request = Request {
        peer: req.peer,
        request_id: "req-test",
        authority: uri.authority().map(|a| a.as_str()),
        path: uri.path(),
        query: uri.query(),
        headers: &req.headers,
        body: req.body.as_bytes(),
    };
    match app.handle(route, &request) {
        Handled::Reply(reply) => reply,
        Handled::Reload => {
            let reloader = app.reloader.as_ref().expect("a store to reload");
            app.refreshed(
                reloader
                    .lock()
                    .reload(Trigger::Refresh)
                    .map_err(Error::Store),
            )
        }
        Handled::Write(_) => panic!("no writer here: management writes are tested end to end"),
        Handled::Count(_) => panic!("no shared counts here: they are tested end to end"),
    }
}

fn post(path: &'static str, body: &str) -> TestRequest {
    let mut req = TestRequest::new(Method::POST, path);
    req.body = body.to_string();
    req
}

fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap()
}

#[test]
fn verify_answers_like_the_original() {
    let app = app(KEYS);
    let ok = run(&app, post("/verify", r#"{"api_key": "sec_live"}"#));
    assert_eq!(ok.status, 200);
    // The original's fields, then the lifecycle's.
    assert_eq!(
        json(&ok),
        serde_json::json!({"valid": true, "key_id": "key_1", "name": "Live", "metadata": {"plan": "pro"},
                           "code": "VALID", "scopes": [], "expires_at": null})
    );
    assert!(ok
        .body
        .starts_with(r#"{"valid":true,"key_id":"key_1","name":"Live","metadata":{"plan":"pro"},"#));
    for (secret, code) in [
        (r#"{"api_key": "sec_nope"}"#, "NOT_FOUND"),
        (r#"{"api_key": "sec_old"}"#, "EXPIRED"),
        (r#"{"api_key": ""}"#, "NOT_FOUND"),
    ] {
        let bad = run(&app, post("/verify", secret));
        assert_eq!(bad.status, 403, "{secret}");
        assert_eq!(
            json(&bad),
            serde_json::json!({"valid": false, "error": "Invalid API key", "code": code})
        );
    }
}

#[test]
fn bad_requests_get_a_status_and_a_json_reason() {
    let app = app(KEYS);
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
            post("/verify", r#"{"api_key": "x"}"#).with_header("content-type", "text/plain"),
            400,
            "expected Content-Type: application/json",
        ),
        (
            TestRequest::new(Method::GET, "/verify"),
            405,
            "Method not allowed",
        ),
        (TestRequest::new(Method::GET, "/nope"), 404, "Not found"),
        (
            TestRequest::new(Method::DELETE, "/health"),
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
    let charset = post("/verify", r#"{"api_key": "sec_live"}"#)
        .with_header("content-type", "application/json; charset=utf-8");
    assert_eq!(run(&app, charset).status, 200);
    assert_eq!(
        run(&app, post("/verify?x=1", r#"{"api_key": "sec_live"}"#)).status,
        200
    );
    let allow = run(&app, TestRequest::new(Method::GET, "/refresh"));
    assert_eq!(allow.allow, Some("POST"));
}

#[test]
fn oversized_body_is_413() {
    let app = app(KEYS);
    let big = format!(
        r#"{{"api_key": "{}"}}"#,
        "a".repeat(crate::limits::MAX_BODY)
    );
    let reply = run(&app, post("/verify", &big));
    assert_eq!(reply.status, 413);
    assert!(json(&reply)["error"]
        .as_str()
        .unwrap()
        .contains("too large"));
    // A declared length over the limit is refused before the body is read, and the
    // connection closed (the body is still on its way).
    let declared = TestRequest::new(Method::POST, "/verify").with_header("content-length", "20000");
    let reply = run(&app, declared);
    assert_eq!((reply.status, reply.close), (413, true));
}

#[test]
fn health_says_only_ok() {
    let app = app(KEYS);
    let reply = run(&app, TestRequest::new(Method::GET, "/health"));
    assert_eq!(
        (reply.status, json(&reply)),
        (200, serde_json::json!({"status": "ok"}))
    );
}

#[test]
fn refresh_only_from_loopback_peers() {
    let (app, path, _dir) = reloadable(KEYS);
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
            .with_header("x-forwarded-for", "127.0.0.1")
            .with_header("x-real-ip", "127.0.0.1");
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
    let (app, path, _dir) = reloadable(KEYS);
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
fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = app(
        r#"{"keys": [{"id": "key_r", "secret": "sec_r", "rate_limit": {"requests": 2, "per_seconds": 60}},
                     {"id": "key_u", "secret": "sec_u"}]}"#,
    );
    let verify = |secret: &str| {
        run(
            &app,
            post("/verify", &format!(r#"{{"api_key": "{secret}"}}"#)),
        )
    };
    assert_eq!(verify("sec_r").status, 200);
    assert_eq!(verify("sec_r").status, 200);
    let limited = verify("sec_r");
    assert_eq!(limited.status, 429);
    assert_eq!(
        json(&limited),
        serde_json::json!({"valid": false, "error": "Rate limit exceeded", "code": "RATE_LIMITED"})
    );
    let retry: u64 = limited
        .headers
        .iter()
        .find(|(n, _)| *n == "retry-after")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!((29..=30).contains(&retry), "{retry}");
    // Other keys are not affected, and refused requests do not count.
    assert_eq!(verify("sec_u").status, 200);
    assert_eq!(verify("sec_nope").status, 403);
    // /auth too, with the configured status.
    let auth = TestRequest::new(Method::GET, "/auth").with_header("authorization", "Bearer sec_r");
    let reply = run(&app, auth);
    assert_eq!(
        (reply.status, json(&reply)["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    let mut strict = app;
    strict.settings.rate_limit_status = 403;
    let auth = TestRequest::new(Method::GET, "/auth").with_header("x-api-key", "sec_r");
    assert_eq!(run(&strict, auth).status, 403);
}

#[test]
fn reloads_keep_the_buckets_of_keys_that_stay_and_drop_the_others() {
    let file = |limited: &[&str]| {
        let keys: Vec<String> = limited
            .iter()
            .map(|id| {
                format!(r#"{{"id": "{id}", "secret": "sec_{id}", "rate_limit": {{"requests": 2, "per_seconds": 3600}}}}"#)
            })
            .chain([r#"{"id": "free", "secret": "sec_free"}"#.to_string()])
            .collect();
        format!(r#"{{"keys": [{}]}}"#, keys.join(", "))
    };
    let (app, path, _dir) = reloadable(&file(&["stay", "go"]));
    let verify = |secret: &str| {
        run(
            &app,
            post("/verify", &format!(r#"{{"api_key": "{secret}"}}"#)),
        )
        .status
    };
    for secret in ["sec_stay", "sec_go"] {
        assert_eq!(
            [verify(secret), verify(secret), verify(secret)],
            [200, 200, 429]
        );
    }
    // Only keys with a limit have a bucket, and traffic adds none: not unknown keys at either
    // route, not a key without a limit.
    assert_eq!(app.keys.current().bucket_ids(), ["go", "stay"]);
    for n in 0..1000 {
        let unknown = format!("sec_unknown{n}");
        assert_eq!(verify(&unknown), 403);
        let auth = TestRequest::new(Method::GET, "/auth").with_header("x-api-key", &unknown);
        assert_eq!(run(&app, auth).status, 401);
        assert_eq!(verify("sec_free"), 200);
    }
    assert_eq!(app.keys.current().bucket_ids(), ["go", "stay"]);

    // `go` removed: its bucket goes with it; `stay` keeps its own, still empty.
    std::fs::write(&path, file(&["stay"])).unwrap();
    assert_eq!(run(&app, post("/refresh", "")).status, 200);
    assert_eq!(app.keys.current().bucket_ids(), ["stay"]);
    assert_eq!(verify("sec_stay"), 429);
    // `go` back is a key the server has not seen: a full bucket.
    std::fs::write(&path, file(&["stay", "go"])).unwrap();
    assert_eq!(run(&app, post("/refresh", "")).status, 200);
    assert_eq!(app.keys.current().bucket_ids(), ["go", "stay"]);
    assert_eq!(
        [verify("sec_go"), verify("sec_go"), verify("sec_go")],
        [200, 200, 429]
    );
    assert_eq!(verify("sec_stay"), 429);
}

#[test]
fn metrics_and_readiness() {
    let mut app = app(KEYS);
    run(&app, post("/verify", r#"{"api_key": "sec_live"}"#));
    run(&app, post("/verify", r#"{"api_key": "sec_old"}"#));
    // A checksummed secret with a wrong checksum: an unknown key's answer, counted apart.
    let typo = format!("sec_1{}", "0".repeat(57));
    assert_eq!(
        heare_auth_core::form(&typo),
        heare_auth_core::Form::BadChecksum
    );
    let refused = run(
        &app,
        post("/verify", &format!(r#"{{"api_key": "{typo}"}}"#)),
    );
    let unknown = run(&app, post("/verify", r#"{"api_key": "sec_unknown"}"#));
    assert_eq!((refused.status, &refused.body), (403, &unknown.body));
    let auth = |key: &str| {
        let reply = run(
            &app,
            TestRequest::new(Method::GET, "/auth").with_header("x-api-key", key),
        );
        (reply.status, reply.headers, reply.body)
    };
    assert_eq!(auth(&typo), auth("sec_unknown"));
    let metrics = run(&app, TestRequest::new(Method::GET, "/metrics"));
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for line in [
        r#"heare_auth_verifications_total{route="/verify",code="VALID"} 1"#,
        r#"heare_auth_verifications_total{route="/verify",code="EXPIRED"} 1"#,
        r#"heare_auth_verifications_total{route="/verify",code="NOT_FOUND"} 2"#,
        r#"heare_auth_verifications_total{route="/auth",code="NOT_FOUND"} 2"#,
        r#"heare_auth_refused_before_lookup_total{route="/verify",reason="checksum"} 1"#,
        r#"heare_auth_refused_before_lookup_total{route="/auth",reason="checksum"} 1"#,
        "heare_auth_keys_loaded 2",
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "{line}");
    }
    let remote = peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let denied = run(
        &app,
        TestRequest::new(Method::GET, "/metrics").with_remote_addr(remote),
    );
    assert_eq!(denied.status, 403);
    assert!(!metrics.body.contains("sec_live") && !metrics.body.contains("Live"));

    let ready = run(&app, TestRequest::new(Method::GET, "/ready"));
    assert_eq!(
        (ready.status, json(&ready)),
        (200, serde_json::json!({"status": "ready"}))
    );
    app.settings.ready_max_staleness = Some(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(5));
    let stale = run(&app, TestRequest::new(Method::GET, "/ready"));
    assert_eq!(
        (stale.status, json(&stale)["status"].as_str()),
        (503, Some("stale"))
    );
    assert!(json(&stale)["reason"]
        .as_str()
        .unwrap()
        .starts_with("the keys store was last read"));
    let remote_view = run(
        &app,
        TestRequest::new(Method::GET, "/ready").with_remote_addr(remote),
    );
    assert_eq!(
        (remote_view.status, json(&remote_view)),
        (503, serde_json::json!({"status": "unavailable"}))
    );
}

#[test]
fn a_forwarded_request_from_loopback_is_not_local() {
    let (mut app, path, _dir) = reloadable(KEYS);
    std::fs::write(&path, r#"{"keys": [{"id": "key_3", "secret": "sec_new"}]}"#).unwrap();
    app.settings.ready_max_staleness = Some(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(5));
    let signs = [
        ("forwarded", "for=203.0.113.9"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", "example.com"),
        ("x-forwarded-proto", "https"),
        ("x-real-ip", "203.0.113.9"),
        ("via", "1.1 proxy"),
        ("x-original-uri", "/refresh"),
    ];
    for (name, value) in signs {
        let refresh = run(&app, post("/refresh", "").with_header(name, value));
        assert_eq!(refresh.status, 403, "{name}");
        assert_eq!(
            json(&refresh)["error"],
            format!(
                "Refresh endpoint only accessible from localhost, not through a proxy \
                 (the request carries {name})"
            )
        );
        let metrics = run(
            &app,
            TestRequest::new(Method::GET, "/metrics").with_header(name, value),
        );
        assert_eq!(metrics.status, 403, "{name}");
        assert!(json(&metrics)["error"]
            .as_str()
            .unwrap()
            .ends_with(&format!("not through a proxy (the request carries {name})")));
        let ready = run(
            &app,
            TestRequest::new(Method::GET, "/ready").with_header(name, value),
        );
        assert_eq!(
            (ready.status, json(&ready)),
            (503, serde_json::json!({"status": "unavailable"})),
            "{name}"
        );
    }
    // The absolute form, which only proxies send, names another host.
    let absolute = run(&app, post("http://evil.example/refresh", ""));
    assert_eq!(absolute.status, 403);
    assert!(json(&absolute)["error"]
        .as_str()
        .unwrap()
        .ends_with("(the request carries an absolute-form request target)"));
    // None of them reloaded; a direct request does.
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_live"}"#)).status,
        200
    );
    assert_eq!(run(&app, post("/refresh", "")).status, 200);
    assert_eq!(
        run(&app, post("/verify", r#"{"api_key": "sec_new"}"#)).status,
        200
    );
}

#[test]
fn a_logged_prefix_is_a_small_part_of_a_long_secret() {
    assert_eq!(super::prefix("sec_0abcdefghijklmnop"), "sec_");
    assert_eq!(super::prefix("0123456789abcdef"), "0123");
    for short in ["", "abcd", "12345", "0123456789abcde", "ééééééééééééééé"] {
        assert_eq!(super::prefix(short), "", "{short}");
    }
    assert_eq!(super::prefix("éééééééééééééééé"), "éééé");
}

#[test]
fn a_logged_user_agent_is_cut_at_its_limit() {
    let headers = |agent: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_str(agent).unwrap());
        headers
    };
    let request = |headers: &HeaderMap| {
        super::user_agent(&Request {
            peer: peer(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            request_id: "req-test",
            authority: None,
            path: "/verify",
            query: None,
            headers,
            body: &[],
        })
        .into_owned()
    };
    let exact = "a".repeat(super::MAX_LOGGED_AGENT);
    assert_eq!(request(&headers(&exact)), exact);
    let long = "b".repeat(100_000);
    let cut = request(&headers(&long));
    assert_eq!(cut.chars().count(), super::MAX_LOGGED_AGENT + 1);
    assert!(cut.ends_with('…') && cut.starts_with("bbbb"));
    assert_eq!(request(&HeaderMap::new()), "");
}
