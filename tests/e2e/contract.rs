//! The real server against `openapi.yaml`, both ways: every operation the spec lists is served
//! with a status it documents for it; every route the server serves is in the spec; and every
//! answer, headers and JSON body, is what the spec says for its status. The spec's examples are
//! checked too: a request made of the request examples named N gets the response example N.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use heare_auth_tests::{read_response, RawResponse, Server, TempDir};
use serde_json::Value;

#[path = "contract/openapi.rs"]
mod openapi;

use openapi::{concrete_path, conforms, Expected, Listener, Operation, Spec, METHODS};

/// The keys the spec's examples name, which tests/tools/fuzz-api.sh serves too.
const KEYS: &str = include_str!("../fixtures/spec-keys.json");

/// The secret of the key allowed one request an hour: the one with a `rate_limit`.
fn limited() -> String {
    let file: Value = serde_json::from_str(KEYS).unwrap();
    let keys = file["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k.get("rate_limit").is_some()).unwrap();
    key["secret"].as_str().unwrap().to_string()
}

/// Paths to probe besides the spec's: those of the server's route table (`Route::of` in
/// core/src/route.rs), and paths near them that it must not serve.
const PROBES: [&str; 20] = [
    "/verify",
    "/refresh",
    "/auth",
    "/auth/",
    "/auth/api/v1/invoices",
    "/health",
    "/ready",
    "/metrics",
    "/",
    "/authz",
    "/Auth",
    "/verify/",
    "/verify/x",
    "/health/",
    "/healthz",
    "/ready/now",
    "/metrics/",
    "/refresh/x",
    "/keys",
    "/openapi.yaml",
];

/// An HTTP request to make.
struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Request {
    fn new(method: &'static str, path: &str) -> Request {
        Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Sends a request and reads the answer, whatever its status.
fn send(base: &str, request: &Request) -> RawResponse {
    let mut call = ureq::request(request.method, &format!("{base}{}", request.path));
    for (name, value) in &request.headers {
        call = call.set(name, value);
    }
    let result = match &request.body {
        Some(body) => call
            .set("Content-Type", "application/json")
            .send_string(body),
        None => call.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{} {}: {e}", request.method, request.path),
    };
    let headers = response
        .headers_names()
        .into_iter()
        .map(|name| {
            let value = response.header(&name).unwrap_or_default().to_string();
            (name, value)
        })
        .collect();
    RawResponse {
        status: response.status(),
        headers,
        body: response.into_string().unwrap(),
    }
}

/// The request made of an operation's request examples named `name`: each parameter's, and the
/// body's (from the request body, or from `components/examples` for a body that is not a valid
/// request and so is kept out of the operation's examples); `None` when no request example has
/// that name. Without `name`, a bare request.
fn request(spec: &Spec, operation: &Operation, name: Option<&str>) -> Option<Request> {
    let mut named = name.is_none();
    let mut example = |examples: &Value| -> Option<Value> {
        let value = spec.resolve(examples.get(name?)?)["value"].clone();
        named = true;
        Some(value)
    };
    let mut query = Vec::new();
    let mut headers = Vec::new();
    for parameter in spec.parameters(operation) {
        let Some(value) = example(&parameter["examples"]) else {
            continue;
        };
        let key = parameter["name"].as_str().unwrap().to_string();
        match parameter["in"].as_str().unwrap() {
            "query" => {
                let values = value.as_array().cloned().unwrap_or_else(|| vec![value]);
                for v in values {
                    query.push(format!("{key}={}", percent_encode(v.as_str().unwrap())));
                }
            }
            "header" => headers.push((key, value.as_str().unwrap().to_string())),
            "path" => {}
            other => panic!("parameters in {other} are not probed"),
        }
    }
    let body = operation.op.get("requestBody").and_then(|body| {
        let own = &spec.resolve(body)["content"]["application/json"]["examples"];
        example(own)
            .or_else(|| example(&spec.0["components"]["examples"]))
            .map(|v| v.to_string())
    });
    if !named {
        return None;
    }
    let mut path = concrete_path(spec, operation);
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    Some(Request {
        method: operation.method,
        path,
        headers,
        body,
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks an answer against an operation: its status documented, and the answer as documented.
fn check(spec: &Spec, operation: &Operation, answer: &RawResponse, what: &str) {
    let documented = &operation.op["responses"][answer.status.to_string()];
    assert!(
        !documented.is_null(),
        "{what}: {} is not documented for {} {}: {answer:?}",
        answer.status,
        operation.method,
        operation.template
    );
    if let Err(e) = conforms(spec, documented, answer) {
        panic!("{what}: {e}: {answer:?}");
    }
}

/// The server with the spec's keys, its rate-limited key's one request already spent, and a
/// `METRICS_ADDR` listener; and that listener's URL.
fn server(dir: &TempDir, env: &[(&str, &str)]) -> (Server, String) {
    std::fs::write(dir.path("keys.json"), KEYS).unwrap();
    let keys = dir.path("keys.json");
    let mut all = vec![
        ("KEYS_FILE", keys.to_str().unwrap()),
        ("METRICS_ADDR", "127.0.0.1:0"),
        ("REFRESH_INTERVAL", "0"),
    ];
    all.extend_from_slice(env);
    let server = Server::start(&all);
    let spend = Request::new("GET", "/auth").header("X-API-Key", &limited());
    assert_eq!(send(&server.url, &spend).status, 200);
    let startup = server
        .wait_for_event("startup", Duration::from_secs(5))
        .unwrap();
    let metrics = format!("http://{}", startup["metrics_address"].as_str().unwrap());
    (server, metrics)
}

#[test]
fn every_operation_in_the_spec_is_served_as_documented() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-operations");
    let (server, _) = server(&dir, &[]);
    let mut examples = 0;
    for operation in spec.operations() {
        let what = format!("{} {}", operation.method, operation.template);
        let bare = request(&spec, &operation, None).unwrap();
        check(&spec, &operation, &send(&server.url, &bare), &what);

        let responses = operation.op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = spec.resolve(response);
            let named = response["content"]["application/json"]["examples"].as_object();
            for (name, example) in named.into_iter().flatten() {
                let Some(request) = request(&spec, &operation, Some(name)) else {
                    continue; // an illustration: no request example has its name
                };
                let answer = send(&server.url, &request);
                let what = format!("{what}, example {name} ({})", request.path);
                check(&spec, &operation, &answer, &what);
                assert_eq!(answer.status.to_string(), *status, "{what}: {answer:?}");
                let body: Value = serde_json::from_str(&answer.body).unwrap();
                assert_eq!(body, spec.resolve(example)["value"], "{what}");
                examples += 1;
            }
        }
    }
    assert!(examples >= 100, "only {examples} examples checked");
}

#[test]
fn every_route_the_server_serves_is_in_the_spec() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-routes");
    let (server, metrics) = server(&dir, &[]);
    let mut paths: Vec<String> = spec
        .operations()
        .iter()
        .map(|op| concrete_path(&spec, op))
        .collect();
    paths.extend(PROBES.iter().map(|p| p.to_string()));
    paths.sort();
    paths.dedup();
    for (listener, base) in [(Listener::Main, &server.url), (Listener::Metrics, &metrics)] {
        for path in &paths {
            for method in METHODS {
                let answer = send(base, &Request::new(method, path));
                let what = format!("{method} {base}{path}");
                let components = &spec.0["components"]["responses"];
                match spec.expect(method, path, listener) {
                    Expected::Operation(operation) => check(&spec, &operation, &answer, &what),
                    Expected::MethodNotAllowed(item) => {
                        let why = "the spec does not list the method";
                        assert_eq!(answer.status, 405, "{what}: {why}: {answer:?}");
                        conforms(&spec, &components["MethodNotAllowed"], &answer).unwrap();
                        let mut allowed: Vec<&str> =
                            answer.header("allow").unwrap().split(", ").collect();
                        allowed.sort_unstable();
                        let mut listed: Vec<&str> = METHODS
                            .into_iter()
                            .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
                            .collect();
                        listed.sort_unstable();
                        assert_eq!(allowed, listed, "{what}: Allow");
                    }
                    Expected::NotFound => {
                        let why = "the spec does not list the path";
                        assert_eq!(answer.status, 404, "{what}: {why}: {answer:?}");
                        conforms(&spec, &components["NotFound"], &answer).unwrap();
                    }
                }
            }
        }
    }
}

/// Sends raw bytes and reads one answer.
fn raw(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    read_response(&mut BufReader::new(stream))
        .unwrap()
        .expect("an answer")
}

#[test]
fn answers_that_need_settings_or_faults_are_documented() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-settings");
    let (server, _) = server(
        &dir,
        &[
            ("RATE_LIMIT_STATUS", "403"),
            ("READY_MAX_STALENESS", "0.05"),
            ("BODY_TIMEOUT", "0.2"),
        ],
    );
    let operation = |method: &str, path: &str| match spec.expect(method, path, Listener::Main) {
        Expected::Operation(operation) => operation,
        _ => panic!("{method} {path} is not in the spec"),
    };
    let verify = operation("POST", "/verify");
    let post_verify = |headers: &str, body: &str| {
        format!("POST /verify HTTP/1.1\r\nHost: t\r\n{headers}\r\n{body}")
    };

    // A rate-limited key on /auth, answered as RATE_LIMIT_STATUS says: 403 with Retry-After.
    let limited = Request::new("GET", "/auth/api").header("X-API-Key", &limited());
    let answer = send(&server.url, &limited);
    check(
        &spec,
        &operation("GET", "/auth/api"),
        &answer,
        "RATE_LIMIT_STATUS=403",
    );
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("RATE_LIMITED"), "{answer:?}");
    assert!(answer.header("retry-after").is_some(), "{answer:?}");

    // The store not read for longer than READY_MAX_STALENESS.
    std::thread::sleep(Duration::from_millis(100));
    let answer = send(&server.url, &Request::new("GET", "/ready"));
    check(&spec, &operation("GET", "/ready"), &answer, "stale");
    assert_eq!(answer.status, 503);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the keys store was last read"),
        "{reason}"
    );

    // A reload of a file that is not a keys file.
    std::fs::write(dir.path("keys.json"), r#"{"keys": [{"name": "no id"}]}"#).unwrap();
    let answer = send(&server.url, &Request::new("POST", "/refresh"));
    check(&spec, &operation("POST", "/refresh"), &answer, "bad file");
    assert_eq!(answer.status, 500);

    // Bodies refused before or while they are read, and a Content-Type other than JSON.
    let cases = [
        (post_verify("Content-Length: 20000\r\n", ""), 413),
        (post_verify("Content-Length: 10\r\n", ""), 408),
        (
            post_verify("Content-Type: text/plain\r\nContent-Length: 2\r\n", "{}"),
            400,
        ),
    ];
    let refused = &verify.op["responses"]["400"]["content"]["application/json"];
    for (request, status) in cases {
        let answer = raw(server.addr(), request.as_bytes());
        check(&spec, &verify, &answer, &request);
        assert_eq!(answer.status, status, "{request}");
        if status == 400 {
            let body: Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(body, refused["examples"]["content_type"]["value"]);
        }
    }

    // A header value with a control character: the HTTP layer's own 400.
    let request = "GET /auth HTTP/1.1\r\nHost: t\r\nX-API-Key: a\x01b\r\n\r\n";
    let answer = raw(server.addr(), request.as_bytes());
    check(
        &spec,
        &operation("GET", "/auth"),
        &answer,
        "control character",
    );
    assert_eq!(answer.status, 400);
}
