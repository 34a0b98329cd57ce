//! The real server against `openapi.yaml`, both ways: every operation the spec lists is served
//! with a status it documents for it; every route the server serves is in the spec; and every
//! answer, headers and JSON body, is what the spec says for its status. The spec's examples are
//! checked too: a request made of the request examples named N gets the response example N.
//! The management API (`/keys`) is checked on a server that serves it (`MANAGEMENT_API=1`), and
//! on one that does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use heare_auth_tests::{read_response, RawResponse, Server, TempDir};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "contract/openapi.rs"]
mod openapi;

use openapi::{
    concrete_path, conforms, path_with, percent_encode, Expected, Listener, Operation, Spec,
    METHODS,
};

/// The keys the spec's examples name, which tests/tools/fuzz-api.sh serves too.
const KEYS: &str = include_str!("../fixtures/spec-keys.json");

/// The keys the management API's examples name, stored as the server stores them (secrets only
/// as hashes), which tests/tools/fuzz-api.sh serves too.
const ADMIN_KEYS: &str = include_str!("../fixtures/spec-admin-keys.json");

/// The secrets of the keys of `ADMIN_KEYS` that the examples present, by role: `admin`
/// (keys:admin), `reader` (keys:read), `writer` (keys:write), `limited` (keys:read, one
/// request an hour) and `ordinary` (no keys: scope).
const ADMIN_SECRETS: &str = include_str!("../fixtures/spec-admin-secrets.json");

/// A secret no key has.
const WRONG: &str = "sec_0VdWrongWrongWrongWrongWrongWrongWrongWrongWrongWrongWrongWrongW";

/// The secret of the key of `ADMIN_KEYS` that plays `role`, checked against its hash there.
fn secret(role: &str) -> String {
    let secrets: Value = serde_json::from_str(ADMIN_SECRETS).unwrap();
    let (id, secret) = (
        &secrets[role]["id"],
        secrets[role]["secret"].as_str().unwrap(),
    );
    let file: Value = serde_json::from_str(ADMIN_KEYS).unwrap();
    let keys = file["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k["id"] == *id).unwrap();
    let hash: String = Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(key["secret_hash"], hash.as_str(), "{role}'s secret");
    secret.to_string()
}

/// Who presents the request of a management example, by the example's name: the admin key,
/// unless the name says otherwise. Each of these names makes a request example of its own.
const PRESENTERS: [(&str, Option<&str>); 6] = [
    ("no_key", None),
    ("invalid_key", Some("wrong")),
    ("forbidden", Some("ordinary")),
    ("read_only", Some("reader")),
    ("escalation", Some("writer")),
    ("over_rate_limit", Some("limited")),
];

/// The `Authorization` of a management example's request; none for `no_key`.
fn authorization(name: Option<&str>) -> Option<String> {
    let role = match PRESENTERS.iter().find(|(n, _)| Some(*n) == name) {
        Some((_, role)) => *role,
        None => Some("admin"),
    };
    role.map(bearer)
}

/// `Authorization: Bearer` with the key of `role` (`wrong`: a key no one has).
fn bearer(role: &str) -> String {
    match role {
        "wrong" => format!("Bearer {WRONG}"),
        role => format!("Bearer {}", secret(role)),
    }
}

/// The secret of the key allowed one request an hour: the one with a `rate_limit`.
fn limited() -> String {
    let file: Value = serde_json::from_str(KEYS).unwrap();
    let keys = file["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k.get("rate_limit").is_some()).unwrap();
    key["secret"].as_str().unwrap().to_string()
}

/// Paths to probe besides the spec's: those of the server's route table (`Route::of` in
/// core/src/route.rs), and paths near them that it must not serve.
const PROBES: [&str; 26] = [
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
    "/keys/",
    "/keys/key_x/undo",
    "/keys/key_x/rotate/now",
    "/keys//rotate",
    "/keysx",
    "/openapi.json",
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
/// that name. An operation that needs a bearer key gets one, as [`authorization`] says for
/// `name`. Without `name`, a bare request (without a key).
fn request(spec: &Spec, operation: &Operation, name: Option<&str>) -> Option<Request> {
    let mut named = name.is_none();
    let mut example = |examples: &Value| -> Option<Value> {
        let value = spec.resolve(examples.get(name?)?)["value"].clone();
        named = true;
        Some(value)
    };
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut query = Vec::new();
    let mut headers = Vec::new();
    let mut path_values = Vec::new();
    for parameter in spec.parameters(operation) {
        let Some(value) = example(&parameter["examples"]) else {
            continue;
        };
        let key = parameter["name"].as_str().unwrap().to_string();
        match parameter["in"].as_str().unwrap() {
            "query" => {
                let values = value.as_array().cloned().unwrap_or_else(|| vec![value]);
                for v in values {
                    query.push(format!("{key}={}", percent_encode(&text(&v))));
                }
            }
            "header" => headers.push((key, text(&value))),
            "path" => path_values.push((key, text(&value))),
            other => panic!("parameters in {other} are not probed"),
        }
    }
    let body = operation.op.get("requestBody").and_then(|body| {
        let own = &spec.resolve(body)["content"]["application/json"]["examples"];
        example(own)
            .or_else(|| example(&spec.0["components"]["examples"]))
            .map(|v| v.to_string())
    });
    if Spec::needs_bearer(operation) && name.is_some() {
        named |= PRESENTERS.iter().any(|(n, _)| Some(*n) == name);
        if let Some(value) = authorization(name) {
            headers.push(("Authorization".into(), value));
        }
    }
    if !named {
        return None;
    }
    let mut path = path_with(spec, operation, &path_values);
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

/// The server with the management API on, on the keys its examples name, the rate-limited
/// key's one request already spent.
fn managed(dir: &TempDir, env: &[(&str, &str)]) -> Server {
    std::fs::write(dir.path("keys.json"), ADMIN_KEYS).unwrap();
    let keys = dir.path("keys.json");
    let mut all = vec![
        ("KEYS_FILE", keys.to_str().unwrap()),
        ("MANAGEMENT_API", "1"),
        ("REFRESH_INTERVAL", "0"),
    ];
    all.extend_from_slice(env);
    let server = Server::start(&all);
    let spend = Request::new("GET", "/auth").header("X-API-Key", &secret("limited"));
    assert_eq!(send(&server.url, &spend).status, 200);
    server
}

/// Fields of a change's answer that the change makes at the time it is made, or at random:
/// an answer and an example are compared on these only by whether each is a string or null.
const MADE: [&str; 6] = [
    "secret",
    "created_at",
    "updated_at",
    "disabled_at",
    "previous_expires_at",
    "since",
];

/// `value` with the string values of the fields `names` replaced by one placeholder.
fn masked(value: &Value, names: &[&str]) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| match (names.contains(&name.as_str()), v) {
                    (true, Value::String(_)) => (name.clone(), "(made by the request)".into()),
                    _ => (name.clone(), masked(v, names)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked(v, names)).collect()),
        other => other.clone(),
    }
}

/// Sends each operation of the spec a bare request, then the request of each of its response
/// examples, and checks each answer: documented, and for an example, of the example's status
/// and body (see [`MADE`] for a change's). The management API's operations on
/// `Listener::Managed`, every other one on `Listener::Main`. The JSON bodies of the answers to
/// changes, and the number of examples checked.
fn check_examples(spec: &Spec, base: &str, listener: Listener) -> (Vec<Value>, usize) {
    let mut examples = 0;
    let mut changes = Vec::new();
    let operations = spec.operations();
    let managed = listener == Listener::Managed;
    for operation in operations
        .iter()
        .filter(|op| Spec::opt_in(op.item) == managed)
    {
        let what = format!("{} {}", operation.method, operation.template);
        let bare = request(spec, operation, None).unwrap();
        check(spec, operation, &send(base, &bare), &what);

        let responses = operation.op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = spec.resolve(response);
            let named = response["content"]["application/json"]["examples"].as_object();
            for (name, example) in named.into_iter().flatten() {
                let Some(request) = request(spec, operation, Some(name)) else {
                    continue; // an illustration: no request example has its name
                };
                let answer = send(base, &request);
                let what = format!("{what}, example {name} ({})", request.path);
                check(spec, operation, &answer, &what);
                assert_eq!(answer.status.to_string(), *status, "{what}: {answer:?}");
                let body: Value = serde_json::from_str(&answer.body).unwrap();
                let expected = &spec.resolve(example)["value"];
                if matches!(operation.method, "GET" | "HEAD") {
                    assert_eq!(body, *expected, "{what}");
                } else {
                    let mut made = MADE.to_vec();
                    if status == "201" {
                        made.push("id");
                    }
                    assert_eq!(masked(&body, &made), masked(expected, &made), "{what}");
                    changes.push(body);
                }
                examples += 1;
            }
        }
    }
    (changes, examples)
}

#[test]
fn every_operation_in_the_spec_is_served_as_documented() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-operations");
    let (server, _) = server(&dir, &[]);
    let (_, examples) = check_examples(&spec, &server.url, Listener::Main);
    assert!(examples >= 100, "only {examples} examples checked");
}

#[test]
fn every_management_operation_is_served_as_documented() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-management");
    let server = managed(&dir, &[]);
    let (changes, examples) = check_examples(&spec, &server.url, Listener::Managed);
    assert!(examples >= 60, "only {examples} examples checked");
    // No secret presented or issued is logged.
    let log: String = server.logs().iter().map(Value::to_string).collect();
    for role in ["admin", "reader", "writer", "limited", "ordinary"] {
        assert!(
            !log.contains(&secret(role)),
            "the {role} key's secret is logged"
        );
    }
    let issued: Vec<&str> = changes
        .iter()
        .filter_map(|b| b["secret"].as_str())
        .collect();
    assert!(issued.len() >= 2, "{} secrets issued", issued.len());
    for (i, secret) in issued.iter().enumerate() {
        assert!(!log.contains(secret), "secret {i} issued is logged");
    }
}

#[test]
fn every_route_the_server_serves_is_in_the_spec() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-routes");
    let (server, metrics) = server(&dir, &[]);
    let managed_dir = TempDir::new("contract-routes-managed");
    let managed = managed(&managed_dir, &[]);
    let mut paths: Vec<String> = spec
        .operations()
        .iter()
        .map(|op| concrete_path(&spec, op))
        .collect();
    paths.extend(PROBES.iter().map(|p| p.to_string()));
    paths.sort();
    paths.dedup();
    let listeners = [
        (Listener::Main, &server.url),
        (Listener::Managed, &managed.url),
        (Listener::Metrics, &metrics),
    ];
    for (listener, base) in listeners {
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

#[test]
fn the_contract_is_served_byte_for_byte() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-self");
    let (server, _) = server(&dir, &[]);
    let text = include_str!("../../openapi.yaml");
    for method in ["GET", "HEAD"] {
        let answer = send(&server.url, &Request::new(method, "/openapi.yaml"));
        check(
            &spec,
            &operation(&spec, method, "/openapi.yaml"),
            &answer,
            method,
        );
        assert_eq!(answer.status, 200, "{method}");
        assert_eq!(answer.header("content-type"), Some("application/yaml"));
        let length = text.len().to_string();
        assert_eq!(answer.header("content-length"), Some(length.as_str()));
        let body = if method == "GET" { text } else { "" };
        assert!(
            answer.body == body,
            "{method} /openapi.yaml is not openapi.yaml"
        );
    }
}

/// The operation of the spec that `method path` is, on a server with the management API on.
fn operation<'s>(spec: &'s Spec, method: &str, path: &str) -> Operation<'s> {
    match spec.expect(method, path, Listener::Managed) {
        Expected::Operation(operation) => operation,
        _ => panic!("{method} {path} is not in the spec"),
    }
}

/// A management request presented with `role`'s key.
fn by(role: &str, method: &'static str, path: &str) -> Request {
    Request::new(method, path).header("Authorization", &bearer(role))
}

/// `request` with a JSON body.
fn with_body(mut request: Request, body: &str) -> Request {
    request.body = Some(body.to_string());
    request
}

/// The id of the key of `ADMIN_KEYS` named `name`.
fn id_of(name: &str) -> String {
    let file: Value = serde_json::from_str(ADMIN_KEYS).unwrap();
    let keys = file["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k["name"] == name).unwrap();
    key["id"].as_str().unwrap().to_string()
}

#[test]
fn a_conditional_change_applies_only_to_the_key_as_read() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-if-match");
    let server = managed(&dir, &[]);
    let path = format!("/keys/{}", id_of("Reports service"));
    let (show, patch) = (
        operation(&spec, "GET", &path),
        operation(&spec, "PATCH", &path),
    );
    let shown = send(&server.url, &by("admin", "GET", &path));
    check(&spec, &show, &shown, "GET");
    let tag = shown.header("etag").unwrap().to_string();
    let head = send(&server.url, &by("admin", "HEAD", &path));
    check(&spec, &operation(&spec, "HEAD", &path), &head, "HEAD");
    assert_eq!(head.header("etag"), Some(tag.as_str()));

    // As read: changed, with a new tag.
    let change = |if_match: &str, team: &str| {
        let request = by("admin", "PATCH", &path).header("If-Match", if_match);
        let answer = send(
            &server.url,
            &with_body(request, &format!(r#"{{"metadata": {{"team": "{team}"}}}}"#)),
        );
        check(&spec, &patch, &answer, &format!("If-Match: {if_match}"));
        answer
    };
    let changed = change(&format!("\"0000000000000000\", {tag}"), "finance");
    assert_eq!(changed.status, 200, "{changed:?}");
    let body: Value = serde_json::from_str(&changed.body).unwrap();
    assert_eq!(body["changed"], serde_json::json!(["metadata"]));
    let new_tag = changed.header("etag").unwrap().to_string();
    assert_ne!(new_tag, tag);

    // Read before that change: refused, with the tag it has now; the key is as it was.
    for stale in [tag.clone(), format!("W/{new_tag}")] {
        let refused = change(&stale, "sales");
        assert_eq!(refused.status, 409, "{refused:?}");
        assert_eq!(refused.header("etag"), Some(new_tag.as_str()));
    }
    let now = send(&server.url, &by("admin", "GET", &path));
    assert_eq!(now.header("etag"), Some(new_tag.as_str()));
    assert!(now.body.contains("finance"), "{now:?}");

    // `*` matches any version; a change to what the key holds already changes nothing.
    let same = change("*", "finance");
    assert_eq!(same.status, 200, "{same:?}");
    let body: Value = serde_json::from_str(&same.body).unwrap();
    assert_eq!(body["changed"], serde_json::json!([]));
    assert_eq!(same.header("etag"), Some(new_tag.as_str()));
}

#[test]
fn a_created_key_is_where_location_says_until_it_is_deleted() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-lifecycle");
    let server = managed(&dir, &[]);
    let create = with_body(
        by("admin", "POST", "/keys"),
        r#"{"name": "Search indexer"}"#,
    );
    let created = send(&server.url, &create);
    check(
        &spec,
        &operation(&spec, "POST", "/keys"),
        &created,
        "create",
    );
    assert_eq!(created.status, 201, "{created:?}");
    let body: Value = serde_json::from_str(&created.body).unwrap();
    let location = created.header("location").unwrap().to_string();
    assert_eq!(location, format!("/keys/{}", body["id"].as_str().unwrap()));

    let shown = send(&server.url, &by("admin", "GET", &location));
    check(&spec, &operation(&spec, "GET", &location), &shown, "show");
    assert_eq!(shown.status, 200);
    assert_eq!(shown.header("etag"), created.header("etag"));
    let (status, verified) = server.verify(body["secret"].as_str().unwrap());
    assert_eq!((status, &verified["key_id"]), (200, &body["id"]));

    let deleted = send(&server.url, &by("admin", "DELETE", &location));
    check(
        &spec,
        &operation(&spec, "DELETE", &location),
        &deleted,
        "delete",
    );
    assert_eq!(deleted.status, 200, "{deleted:?}");
    for method in ["GET", "DELETE", "PATCH"] {
        let mut request = by("admin", method, &location);
        if method == "PATCH" {
            request = with_body(request, r#"{"name": "x"}"#);
        }
        let gone = send(&server.url, &request);
        check(&spec, &operation(&spec, method, &location), &gone, method);
        assert_eq!(gone.status, 404, "{method} after the delete: {gone:?}");
    }
    let (status, refused) = server.verify(body["secret"].as_str().unwrap());
    assert_eq!((status, &refused["code"]), (403, &Value::from("NOT_FOUND")));
}

/// Sends a management request as raw bytes, presented with the admin key.
fn raw_write(server: &Server, method: &str, path: &str, headers: &str, body: &[u8]) -> RawResponse {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n{headers}\
         Content-Length: {}\r\n\r\n",
        bearer("admin"),
        body.len()
    );
    raw(server.addr(), &[head.as_bytes(), body].concat())
}

#[test]
fn writes_refused_before_or_after_the_key_is_looked_at_are_documented() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-management-faults");
    let server = managed(&dir, &[]);
    let create = operation(&spec, "POST", "/keys");
    let path = format!("/keys/{}", id_of("Reports service"));
    let patch = operation(&spec, "PATCH", &path);

    // A body that is not declared JSON.
    let answer = raw_write(
        &server,
        "POST",
        "/keys",
        "Content-Type: text/plain\r\n",
        b"{}",
    );
    check(&spec, &create, &answer, "415");
    assert_eq!(answer.status, 415);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    let media = &spec.0["components"]["responses"]["KeysNotJson"]["content"]["application/json"];
    assert_eq!(body, media["example"]);

    // A body over 64 KiB, not read.
    let big = vec![b' '; 64 * 1024 + 1];
    for (method, path, operation) in [("POST", "/keys", &create), ("PATCH", path.as_str(), &patch)]
    {
        let json = "Content-Type: application/json\r\n";
        let answer = raw_write(&server, method, path, json, &big);
        check(&spec, operation, &answer, "413");
        assert_eq!(answer.status, 413, "{method}");
        assert_eq!(answer.header("connection"), Some("close"));
    }
    // 64 KiB exactly is read (and refused for what it holds).
    let json = "Content-Type: application/json\r\n";
    let answer = raw_write(&server, "PATCH", &path, json, &big[1..]);
    check(&spec, &patch, &answer, "64 KiB");
    assert_eq!(answer.status, 422, "{answer:?}");

    // A keys file that cannot be read: nothing is written, and the caller may retry.
    std::fs::write(dir.path("keys.json"), "{\"keys\": [").unwrap();
    let change = with_body(by("admin", "PATCH", &path), r#"{"name": "Reports"}"#);
    let answer = send(&server.url, &change);
    check(&spec, &patch, &answer, "503");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("STORE_UNAVAILABLE"), "{answer:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path("keys.json")).unwrap(),
        "{\"keys\": ["
    );
}

#[test]
fn wrong_keys_throttle_the_address_and_no_key_does_not() {
    let spec = Spec::load();
    let dir = TempDir::new("contract-throttle");
    let server = managed(&dir, &[]);
    let list = operation(&spec, "GET", "/keys");
    for _ in 0..20 {
        let answer = send(&server.url, &Request::new("GET", "/keys"));
        check(&spec, &list, &answer, "no key");
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"heare-auth\"")
        );
    }
    assert_eq!(send(&server.url, &by("admin", "GET", "/keys")).status, 200);
    for i in 0..10 {
        let answer = send(&server.url, &by("wrong", "GET", "/keys"));
        check(&spec, &list, &answer, "wrong key");
        assert_eq!(answer.status, 401, "wrong key {i}");
    }
    // The address is refused whatever key it presents, whatever it asks.
    let key = format!("/keys/{}", id_of("Reports service"));
    let asks = [
        ("GET", "/keys"),
        ("HEAD", "/keys"),
        ("POST", "/keys"),
        ("DELETE", key.as_str()),
    ];
    for (method, path) in asks {
        let answer = send(&server.url, &by("admin", method, path));
        check(&spec, &operation(&spec, method, path), &answer, method);
        assert_eq!(answer.status, 429, "{method}: {answer:?}");
        let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After: {wait}");
        if method == "GET" {
            assert!(answer.body.contains("TOO_MANY_ATTEMPTS"), "{answer:?}");
        }
    }
}
