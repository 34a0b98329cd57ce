//! Fuzzes the `/verify` request rule and the `/auth` forward-auth rule against a fixed key set
//! (the keys of the request and auth vectors, and a disabled, a rotated and an oddly named key).
//! Input: flags, `Content-Type`, `Authorization`, `X-API-Key`, the query and the body, apart by
//! NUL. Every answer has a documented status and a JSON body; every decision is the one a plain
//! model of the rules makes; a 200 is only ever for a live key's secret, and names that key;
//! every header of an `/auth` answer is one a proxy can carry.

#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use heare_auth_core::{
    authorize, check_headers, hash_secret, parse_body, parse_timestamp, verify_request, KeySet,
    Outcome, Rejection, UnixMillis, Verified, MAX_BODY,
};
use heare_auth_fuzz::{fields, is_header_value, json, text};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Keys beyond the vectors': disabled, rotated (its previous secret `sec_fuzzOld` verifies up to
/// one millisecond past the vectors' `now`), expiring at that instant, and names, metadata and
/// a secret that need escaping.
const EXTRA: &str = r#"[
  {"id": "key_off", "secret": "sec_fuzzDisabled", "name": "Off", "disabled": true, "scopes": ["read"]},
  {"id": "key_rotated", "secret": "sec_fuzzNew", "name": "Rotated \"quoted\"\n\u0001 ✓ 100%",
   "previous_secret_hash": "ef413553aa62f43f9ec83cedd4078c924e0f904aa806e20436a0d990bf520211",
   "previous_expires_at": "2026-11-25T00:00:00.001Z", "scopes": ["a:b", "x/y~!"]},
  {"id": "key_edge", "secret": "sec_fuzz \"\\é\t", "name": " padded ", "expires_at": "2026-11-25T00:00:00Z",
   "metadata": {"q": "\"\\\u0000</script>", "n": [1.5, -0, 1e300, null, true], "é": {}}}
]"#;

/// The previous secrets of [`EXTRA`] (the file keeps only their hashes).
const PREVIOUS: &[(&str, &str)] = &[("sec_fuzzOld", "key_rotated")];

/// The secrets of the vectors' keys that the files keep only as hashes.
const HASHED: &[&str] = &[
    "sec_0authValid",
    "sec_0authPlain",
    "sec_0authDisabled",
    "sec_0authExpired",
    "sec_10VbwYMJg9aRHgwx7xUlmTCtyXtrvwPncGpI7EtVdJRR252iU1XB4Trswr",
    "sec_10VbwYMJgvB2mIyuuttQmj1NFSi7qz1Dxjz1jG2C5SmjWWkhGzrL20mh9z",
    "amp_live_10VbwYMJggZE23eM4HQA6ovZHwFaH27zL1KzwQXFXRv3rObpaorJ4YFZd9",
    "sec_yC9KT-zV2Uf40_L7U2ygcODANQchpnCSEuHzfXRhRjU",
];

/// The vectors' `now`.
const NOW: UnixMillis = 1_795_564_800_000;

/// One key as the model sees it.
struct Model {
    id: String,
    disabled: bool,
    /// `None`: never expires.
    expires_at: Option<UnixMillis>,
    scopes: Vec<String>,
    /// When the previous secret's grace ends, if this is a previous secret.
    previous_until: Option<UnixMillis>,
}

struct Fixture {
    keys: KeySet,
    /// Every known secret, current and previous.
    secrets: HashMap<String, Model>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut records = Vec::new();
        for vectors in [
            include_str!("../../tests/vectors/requests.json"),
            include_str!("../../tests/vectors/auth.json"),
        ] {
            let v = json(vectors);
            records.extend(v["file"]["keys"].as_array().expect("keys").iter().cloned());
        }
        records.extend(json(EXTRA).as_array().expect("keys").iter().cloned());
        let file = serde_json::json!({ "keys": records }).to_string();
        let (keys, _) = KeySet::from_json(file.as_bytes()).expect("the fixed keys load");
        let mut secrets = HashMap::new();
        for r in &records {
            let time = |field: &str| r[field].as_str().map(|t| parse_timestamp(t).expect(field));
            let model = || Model {
                id: r["id"].as_str().expect("id").into(),
                disabled: r["disabled"] == Value::Bool(true),
                expires_at: time("expires_at"),
                scopes: r["scopes"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(|s| s.as_str().map(Into::into))
                            .collect()
                    })
                    .unwrap_or_default(),
                previous_until: None,
            };
            let hashed = r["secret_hash"].as_str().and_then(|hash| {
                HASHED
                    .iter()
                    .find(|s| hash_secret(s).to_hex() == hash)
                    .copied()
            });
            if let Some(secret) = r["secret"].as_str().or(hashed) {
                secrets.insert(secret.to_string(), model());
            }
            for &(secret, id) in PREVIOUS {
                if r["id"] == id {
                    let until = time("previous_expires_at");
                    secrets.insert(
                        secret.into(),
                        Model {
                            previous_until: until,
                            ..model()
                        },
                    );
                }
            }
        }
        assert_eq!(
            secrets.len(),
            keys.len() + PREVIOUS.len(),
            "a fixed key's secret"
        );
        Fixture { keys, secrets }
    })
}

/// What the rules say a secret is at `now`, for a request demanding `required`: the code and
/// the key's id.
fn model(secret: &str, now: UnixMillis, required: &[impl AsRef<str>]) -> (&'static str, String) {
    let Some(key) = fixture().secrets.get(secret) else {
        return ("NOT_FOUND", String::new());
    };
    let code = if key.previous_until.is_some_and(|until| now > until) {
        return ("NOT_FOUND", String::new());
    } else if key.disabled {
        "DISABLED"
    } else if key.expires_at.is_some_and(|t| now > t) {
        "EXPIRED"
    } else if !required
        .iter()
        .all(|r| key.scopes.iter().any(|s| s == r.as_ref()))
    {
        "INSUFFICIENT_SCOPE"
    } else {
        "VALID"
    };
    (code, key.id.clone())
}

fn outcome_of(outcome: &Outcome) -> (&'static str, String) {
    let id = match outcome {
        Outcome::NotFound => String::new(),
        _ => outcome
            .key()
            .map(|k| k.id().to_string())
            .unwrap_or_default(),
    };
    (outcome.code().as_str(), id)
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 6);
    let flags = f[0].unwrap_or_default();
    let flag = |bit: u8| flags.first().is_some_and(|b| b & bit != 0);
    let content_type = text(f[1]).filter(|_| flag(1));
    let authorization = text(f[2]).filter(|_| flag(2));
    let x_api_key = text(f[3]).filter(|_| flag(4));
    let query = text(f[4]).filter(|_| flag(8));
    let body = f[5].unwrap_or_default();
    let now = match flags.get(1) {
        None => NOW,
        Some(&b) => [
            NOW,
            NOW - 1,
            NOW + 1,
            NOW + 2,
            0,
            UnixMillis::MIN,
            UnixMillis::MAX,
        ][usize::from(b) % 7],
    };

    verify(content_type.as_deref(), body, now);
    auth(
        authorization.as_deref(),
        x_api_key.as_deref(),
        query.as_deref(),
        now,
    );
});

/// `/verify`.
fn verify(content_type: Option<&str>, body: &[u8], now: UnixMillis) {
    let keys = &fixture().keys;
    let answer = verify_request(keys, content_type, body, now);
    let status = answer.status();
    let response = json(&answer.to_json());
    assert!(
        matches!(status, 200 | 400 | 403 | 413),
        "/verify answered {status}"
    );
    // The declared length is checked as the body is.
    let declared = check_headers(content_type, Some(body.len() as u64));
    assert_eq!(
        declared == Err(Rejection::TooLarge),
        body.len() > MAX_BODY && declared != Err(Rejection::ContentType)
    );

    match &answer {
        Verified::Rejected(rejection) => {
            assert_eq!(
                response,
                serde_json::json!({ "error": rejection.message() })
            );
            assert_eq!(
                status == 413,
                body.len() > MAX_BODY && content_type_ok(content_type)
            );
        }
        Verified::Answered {
            secret,
            outcome,
            cost,
            remaining,
        } => {
            assert!(content_type_ok(content_type) && body.len() <= MAX_BODY);
            let ask = parse_body(body).expect("answered, so the body parses");
            assert_eq!(*secret, ask.secret);
            // The cost as any JSON parser reads it (1 when absent or null); nothing counted yet.
            let expected_cost = match value_of(body, "cost") {
                None | Some(Value::Null) => 1,
                Some(v) => v.as_u64().expect("an answered cost is a whole number"),
            };
            assert_eq!(*cost, expected_cost);
            assert_eq!(*remaining, None);
            // The body as any JSON parser reads it says the same.
            let value: Value = serde_json::from_slice(body).expect("a body answered is JSON");
            assert_eq!(value["api_key"], Value::String(ask.secret.to_string()));
            let scopes: Vec<Value> = ask.required_scopes.iter().map(|s| (**s).into()).collect();
            match &value["required_scopes"] {
                Value::Null => assert!(scopes.is_empty()),
                other => assert_eq!(*other, Value::Array(scopes)),
            }
            let expected = model(secret, now, &ask.required_scopes);
            assert_eq!(outcome_of(outcome), expected, "secret {secret:?} at {now}");
            assert_eq!(response["code"], expected.0);
            if status == 200 {
                let key = outcome.valid_key().expect("a 200 has a key");
                assert_eq!(response["key_id"], key.id());
                assert_eq!(response["name"], key.name());
                assert_eq!(response["metadata"], json(key.metadata_json()));
                assert_eq!(response["valid"], true);
            } else {
                assert_eq!(response["valid"], false);
            }
        }
    }
}

/// The member `name` of a JSON object body, as serde_json reads it.
fn value_of(body: &[u8], name: &str) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get(name).cloned()
}

/// Whether a `Content-Type` (or none) is JSON, by a rule written apart from the core's.
fn content_type_ok(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let media = ct.split(';').next().unwrap_or_default();
        media.trim().eq_ignore_ascii_case("application/json")
    })
}

/// `/auth`.
fn auth(
    authorization: Option<&str>,
    x_api_key: Option<&str>,
    query: Option<&str>,
    now: UnixMillis,
) {
    let keys = &fixture().keys;
    let answer = authorize(keys, authorization, x_api_key, query, now);
    let status = answer.status();
    assert!(matches!(status, 200 | 401 | 403), "/auth answered {status}");
    let body = json(&answer.to_json());
    assert_eq!(body["code"], answer.code().as_str());
    for (name, value) in answer.headers() {
        assert!(
            is_header_value(&value),
            "header {name} cannot be sent: {value:?}"
        );
        // The challenge's scopes are one quoted string.
        if let Some(scopes) = value.split_once("scope=\"").map(|(_, s)| s) {
            let inside = scopes.strip_suffix('"').expect("a closing quote");
            assert!(!inside.contains(['"', '\\']), "{value}");
        }
    }
    let presented = presented(authorization, x_api_key);
    match (presented, answer.outcome) {
        (None, None) => assert_eq!((status, answer.code().as_str()), (401, "MISSING_KEY")),
        (Some(secret), Some(outcome)) => {
            let expected = model(secret, now, &answer.required);
            assert_eq!(outcome_of(&outcome), expected, "secret {secret:?} at {now}");
            if status == 200 {
                assert_eq!(expected.0, "VALID");
                assert_eq!(body["key_id"], expected.1.as_str());
            }
        }
        (p, o) => panic!("presented {p:?}, but the rule found {o:?}"),
    }
}

/// The key a request presents, by a rule written apart from the core's: a bearer token, or
/// else `X-API-Key`, trimmed, never empty.
fn presented<'h>(authorization: Option<&'h str>, x_api_key: Option<&'h str>) -> Option<&'h str> {
    let bearer = authorization.and_then(|a| {
        let a = a.trim();
        let space = a.find([' ', '\t'])?;
        let (scheme, token) = (&a[..space], a[space..].trim());
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    });
    bearer.or_else(|| x_api_key.map(str::trim).filter(|k| !k.is_empty()))
}
