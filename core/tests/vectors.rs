//! The shared vectors (`tests/vectors/`: verification, `/verify` requests, forward auth and
//! routes), run against the native core. The WebAssembly package's Node tests run the same
//! files, so edge and origin cannot disagree.

#![allow(clippy::unwrap_used, clippy::panic)]

use heare_auth_core::{decrypt_file, form, spend, Error, Form, KeySet, Route, Warning};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Deserialize)]
struct Vectors {
    suites: Vec<Suite>,
}

#[derive(Deserialize)]
struct Suite {
    name: String,
    /// The keys file as JSON; its exact text is what gets loaded.
    file: Option<Box<RawValue>>,
    /// The keys file verbatim (invalid JSON, encrypted files).
    file_text: Option<String>,
    storage_secret: Option<String>,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    warnings: Vec<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Case {
    secret: String,
    now: i64,
    #[serde(default)]
    required_scopes: Vec<String>,
    /// What is left of the key's credits, counted by the caller; absent: not counted.
    balance: Option<u64>,
    /// What the request spends of them (1 when absent).
    cost: Option<u64>,
    expected: Value,
    /// What the secret's form says before any lookup: `checksummed`, `bad_checksum`, `other`.
    form: Option<String>,
}

/// A form as the vectors name it.
fn form_name(form: Form) -> &'static str {
    match form {
        Form::Checksummed => "checksummed",
        Form::BadChecksum => "bad_checksum",
        Form::Other => "other",
    }
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/verify.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Loads a suite's file the way the server and the wasm `Verifier` do.
fn load(suite: &Suite) -> Result<(KeySet, Vec<Warning>), Error> {
    let bytes = match (&suite.file, &suite.file_text) {
        (Some(file), None) => file.get().as_bytes(),
        (None, Some(text)) => text.as_bytes(),
        _ => panic!("{}: give exactly one of `file` and `file_text`", suite.name),
    };
    let plain = decrypt_file(bytes, suite.storage_secret.as_deref())?;
    KeySet::from_json(&plain)
}

#[test]
fn every_suite_gives_the_expected_answers() {
    let vectors = vectors();
    let (mut cases, mut rejected) = (0, 0);
    let mut forms = std::collections::BTreeMap::new();
    for suite in &vectors.suites {
        let name = &suite.name;
        match (load(suite), &suite.error) {
            (Ok((set, warnings)), None) => {
                let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
                assert_eq!(warnings, suite.warnings, "{name}: warnings");
                assert!(!suite.cases.is_empty(), "{name}: no cases");
                for case in &suite.cases {
                    let outcome = set.verify(&case.secret, case.now, &case.required_scopes);
                    let (outcome, remaining) = spend(outcome, case.balance, case.cost.unwrap_or(1));
                    let mut body = String::new();
                    outcome.write_json(&mut body, remaining);
                    let got: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(got, case.expected, "{name}: secret {:?}", case.secret);
                    if let Some(expected) = &case.form {
                        let found = form_name(form(&case.secret));
                        assert_eq!(found, expected, "{name}: form of {:?}", case.secret);
                        *forms.entry(found).or_insert(0) += 1;
                    }
                    cases += 1;
                }
            }
            (Err(err), Some(expected)) => {
                let message = err.to_string();
                assert!(
                    message.contains(expected.as_str()),
                    "{name}: error {message:?} does not contain {expected:?}"
                );
                rejected += 1;
            }
            (Ok(_), Some(expected)) => panic!("{name}: loaded, expected an error {expected:?}"),
            (Err(err), None) => panic!("{name}: {err}"),
        }
    }
    assert!(
        cases >= 30 && rejected >= 10,
        "{cases} cases, {rejected} rejected files"
    );
    assert!(
        forms.len() == 3 && forms.values().all(|&n| n >= 2),
        "cases of each form: {forms:?}"
    );
}

/// One request of `tests/vectors/requests.json`.
#[derive(Deserialize)]
struct RequestCase {
    name: String,
    content_type: Option<String>,
    body: Option<String>,
    body_base64: Option<String>,
    pad_to: Option<usize>,
    status: u16,
    response: Value,
}

#[derive(Deserialize)]
struct RequestVectors {
    now: i64,
    file: Box<RawValue>,
    cases: Vec<RequestCase>,
}

impl RequestCase {
    /// The body's bytes, padded as the case says.
    fn bytes(&self) -> Vec<u8> {
        use base64::Engine;
        let mut bytes = match (&self.body, &self.body_base64) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            _ => panic!(
                "{}: give exactly one of `body` and `body_base64`",
                self.name
            ),
        };
        if let Some(size) = self.pad_to {
            bytes.resize(size, b' ');
        }
        bytes
    }
}

#[test]
fn every_request_gets_the_expected_status_and_body() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/requests.json"
    );
    let vectors: RequestVectors =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (keys, _) = KeySet::from_json(vectors.file.get().as_bytes()).unwrap();
    for case in &vectors.cases {
        let body = case.bytes();
        let answer = heare_auth_core::verify_request(
            &keys,
            case.content_type.as_deref(),
            &body,
            vectors.now,
        );
        let got: Value = serde_json::from_str(&answer.to_json()).unwrap();
        assert_eq!(
            (answer.status(), &got),
            (case.status, &case.response),
            "{}",
            case.name
        );
    }
    assert!(vectors.cases.len() >= 20, "{} cases", vectors.cases.len());
}

/// One request of `tests/vectors/auth.json`.
#[derive(Deserialize)]
struct AuthCase {
    name: String,
    authorization: Option<String>,
    x_api_key: Option<String>,
    query: Option<String>,
    status: u16,
    headers: std::collections::BTreeMap<String, String>,
    absent_headers: Vec<String>,
    body: Value,
}

#[derive(Deserialize)]
struct AuthVectors {
    now: i64,
    file: Box<RawValue>,
    cases: Vec<AuthCase>,
}

#[test]
fn every_forward_auth_request_gets_the_expected_answer() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/auth.json");
    let vectors: AuthVectors =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (keys, _) = KeySet::from_json(vectors.file.get().as_bytes()).unwrap();
    for case in &vectors.cases {
        let answer = heare_auth_core::authorize(
            &keys,
            case.authorization.as_deref(),
            case.x_api_key.as_deref(),
            case.query.as_deref(),
            vectors.now,
        );
        let name = &case.name;
        assert_eq!(answer.status(), case.status, "{name}");
        let headers: std::collections::BTreeMap<String, String> = answer
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        for (header, value) in &case.headers {
            assert_eq!(headers.get(header), Some(value), "{name}: {header}");
        }
        for header in &case.absent_headers {
            assert!(!headers.contains_key(header), "{name}: {header} present");
        }
        let body: Value = serde_json::from_str(&answer.to_json()).unwrap();
        assert_eq!(body, case.body, "{name}");
    }
    assert!(vectors.cases.len() >= 12);
}

/// One request of `tests/vectors/routes.json`; its status and body are for the HTTP tests.
#[derive(Deserialize)]
struct RouteCase {
    method: String,
    path: String,
    route: String,
    allow: Option<String>,
}

#[derive(Deserialize)]
struct RouteVectors {
    cases: Vec<RouteCase>,
}

#[test]
fn every_method_and_path_gets_the_expected_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/routes.json");
    let vectors: RouteVectors =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in &vectors.cases {
        let route = Route::of(&case.method, &case.path);
        assert_eq!(
            (route.name(), route.allow()),
            (case.route.as_str(), case.allow.as_deref()),
            "{} {}",
            case.method,
            case.path
        );
    }
    assert!(vectors.cases.len() >= 40, "{} cases", vectors.cases.len());
}
