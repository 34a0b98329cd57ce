//! Native tests of the functions the JS exports wrap.

use super::*;

const FILE: &str = r#"{"keys": [{"id": "key_a", "secret": "sec_a", "name": "A", "metadata": {"n": 1}},
  {"id": "key_old", "secret": "sec_old", "name": "Old", "expires_at": "2026-01-01T00:00:00Z"},
  {"id": "key_rw", "secret": "sec_rw", "name": "Zoë", "scopes": ["read", "write"],
   "previous_secret_hash": "e4495904e3ae15242a67517641aef298f159bc948875e482aae60d620e138887",
   "previous_expires_at": "2026-01-01T00:00:00Z"},
  {"id": "key_off", "secret": "sec_off", "name": "Off", "disabled": true}]}"#;

/// When `key_old` expires and the grace period of `key_rw`'s previous secret ends.
const EXPIRY: UnixMillis = 1_767_225_600_000;

const VALID_A: &str = r#"{"valid":true,"key_id":"key_a","name":"A","metadata":{"n":1},"code":"VALID","scopes":[],"expires_at":null}"#;
const VALID_RW: &str = r#"{"valid":true,"key_id":"key_rw","name":"Zoë","metadata":{},"code":"VALID","scopes":["read","write"],"expires_at":null}"#;
const NOT_FOUND: &str = r#"{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}"#;

fn verifier() -> Verifier {
    Verifier::load_impl(FILE.as_bytes(), None).unwrap()
}

fn scopes(names: &[&str]) -> Vec<String> {
    names.iter().map(|&name| name.to_string()).collect()
}

#[test]
fn verifies_like_the_server() {
    let v = verifier();
    assert_eq!(v.key_count(), 4);
    let none: &[&str] = &[];
    assert_eq!(v.verify_json_impl("sec_a", 0, none, None, 1), VALID_A);
    assert_eq!(v.verify_json_impl("sec_b", 0, none, None, 1), NOT_FOUND);
    assert_eq!(
        v.verify_json_impl("sec_old", EXPIRY, none, None, 1),
        r#"{"valid":true,"key_id":"key_old","name":"Old","metadata":{},"code":"VALID","scopes":[],"expires_at":"2026-01-01T00:00:00.000000Z"}"#
    );
    assert_eq!(
        v.verify_json_impl("sec_old", EXPIRY + 1, none, None, 1),
        r#"{"valid":false,"error":"Invalid API key","code":"EXPIRED"}"#
    );
    assert_eq!(
        v.verify_json_impl("sec_off", 0, none, None, 1),
        r#"{"valid":false,"error":"Invalid API key","code":"DISABLED"}"#
    );
}

#[test]
fn scopes_demanded_must_all_be_held() {
    let v = verifier();
    assert_eq!(
        v.verify_json_impl("sec_rw", 0, &["write", "read"], None, 1),
        VALID_RW
    );
    let insufficient =
        r#"{"valid":false,"error":"Insufficient scope","code":"INSUFFICIENT_SCOPE"}"#;
    assert_eq!(
        v.verify_json_impl("sec_rw", 0, &["read", "admin"], None, 1),
        insufficient
    );
    assert_eq!(
        v.verify_json_impl("sec_a", 0, &["read".to_string()], None, 1),
        insufficient
    );
    assert_eq!(
        v.verify_json_impl("sec_b", 0, &["read"], None, 1),
        NOT_FOUND
    );
}

#[test]
fn a_previous_secret_is_the_same_key_until_its_grace_period_ends() {
    let v = verifier();
    assert_eq!(
        v.verify_json_impl("sec_rw_before", EXPIRY, &["read"], None, 1),
        VALID_RW
    );
    assert_eq!(
        v.verify_json_impl("sec_rw_before", EXPIRY + 1, &["read"], None, 1),
        NOT_FOUND
    );
    assert_eq!(
        v.verify_json_impl("sec_rw", EXPIRY + 1, &["read"], None, 1),
        VALID_RW
    );
}

#[test]
fn forward_auth_answers_with_status_headers_body_and_code() {
    let v = verifier();
    let valid = v.authorize_impl(Some("Bearer sec_rw"), None, scopes(&["read"]), 0);
    assert_eq!(
        valid,
        AuthReply {
            status: 200,
            headers: vec![
                ("x-key-id", "key_rw".into()),
                ("x-key-name", "Zo%C3%AB".into()),
                ("x-key-scopes", "read,write".into()),
                ("x-key-metadata", "e30".into()),
            ],
            body: r#"{"code":"VALID","key_id":"key_rw"}"#.into(),
            code: "VALID",
        }
    );
    let in_x_api_key = v.authorize_impl(Some("Basic dXNlcjpwYXNz"), Some("sec_a"), vec![], 0);
    assert_eq!(in_x_api_key.status, 200);
    assert_eq!(
        in_x_api_key.headers[3],
        ("x-key-metadata", "eyJuIjoxfQ".into())
    );

    let lacking = v.authorize_impl(None, Some("sec_rw"), scopes(&["read", "admin"]), 0);
    assert_eq!(
        lacking,
        AuthReply {
            status: 403,
            headers: vec![(
                "www-authenticate",
                r#"Bearer realm="heare-auth", error="insufficient_scope", scope="read admin""#
                    .into()
            )],
            body: r#"{"code":"INSUFFICIENT_SCOPE","error":"Insufficient scope"}"#.into(),
            code: "INSUFFICIENT_SCOPE",
        }
    );

    let invalid_token = r#"Bearer realm="heare-auth", error="invalid_token""#;
    for (secret, now, code) in [
        ("sec_off", 0, "DISABLED"),
        ("sec_old", EXPIRY + 1, "EXPIRED"),
        ("sec_rw_before", EXPIRY + 1, "NOT_FOUND"),
    ] {
        let refused = v.authorize_impl(Some(&format!("Bearer {secret}")), None, vec![], now);
        assert_eq!(
            (refused.status, refused.code, refused.headers),
            (401, code, vec![("www-authenticate", invalid_token.into())]),
            "{secret}"
        );
        assert_eq!(
            refused.body,
            format!(r#"{{"code":"{code}","error":"Invalid API key"}}"#)
        );
    }

    let missing = v.authorize_impl(Some("Bearer "), None, scopes(&["read"]), 0);
    assert_eq!(
        (missing.status, missing.code, missing.headers),
        (
            401,
            "MISSING_KEY",
            vec![("www-authenticate", r#"Bearer realm="heare-auth""#.into())]
        )
    );
}

#[test]
fn load_errors_name_the_problem() {
    let err = Verifier::load_impl(br#"{"keys": [{"id": "key_a"}]}"#, None)
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "key key_a: missing field `secret_hash`");
    let encrypted = b"HEARE_ENCRYPTED_V1:gAAAAA";
    let err = Verifier::load_impl(encrypted, None).err().unwrap();
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn now_must_be_finite() {
    assert_eq!(now_impl(1_767_225_600_000.9), Ok(1_767_225_600_000));
    assert_eq!(now_impl(-1.5), Ok(-2));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = now_impl(bad).unwrap_err();
        assert!(
            err.starts_with("expected nowMs as a finite number"),
            "{err}"
        );
    }
}

#[test]
fn requests_get_the_servers_status_and_body() {
    let v = verifier();
    let json = Some("application/json");
    let reply = |status, body: &str| Reply {
        status,
        body: body.into(),
    };
    assert_eq!(
        v.verify_request_impl(json, br#"{"api_key": "sec_a"}"#, 0, None),
        reply(200, VALID_A)
    );
    assert_eq!(
        v.verify_request_impl(None, br#"{"api_key": "sec_b"}"#, 0, None),
        reply(403, NOT_FOUND)
    );
    let scoped = br#"{"api_key": "sec_rw", "required_scopes": ["read", "write"]}"#;
    assert_eq!(
        v.verify_request_impl(json, scoped, 0, None),
        reply(200, VALID_RW)
    );
    let lacking = br#"{"api_key": "sec_rw", "required_scopes": ["admin"]}"#;
    assert_eq!(v.verify_request_impl(json, lacking, 0, None).status, 403);
    assert_eq!(
        v.verify_request_impl(
            json,
            br#"{"api_key": "sec_rw", "required_scopes": "read"}"#,
            0,
            None
        ),
        reply(
            400,
            r#"{"error":"\"required_scopes\" must be an array of strings"}"#
        )
    );
    assert_eq!(
        v.verify_request_impl(json, b"{}", 0, None),
        reply(400, r#"{"error":"missing field \"api_key\""}"#)
    );
    assert_eq!(
        v.verify_request_impl(Some("text/plain"), br#"{"api_key": "sec_a"}"#, 0, None),
        reply(
            400,
            r#"{"error":"expected Content-Type: application/json"}"#
        )
    );
    let mut big = br#"{"api_key": "sec_a"}"#.to_vec();
    big.resize(MAX_BODY + 1, b' ');
    assert_eq!(v.verify_request_impl(json, &big, 0, None).status, 413);
    big.truncate(MAX_BODY);
    assert_eq!(v.verify_request_impl(json, &big, 0, None).status, 200);
}

#[test]
fn headers_alone_refuse_a_wrong_type_or_a_declared_length_over_the_limit() {
    let json = Some("application/json; charset=utf-8");
    assert_eq!(check_headers_impl(json, Some(MAX_BODY as u64)), None);
    assert_eq!(check_headers_impl(None, None), None);
    let too_large = check_headers_impl(json, Some(MAX_BODY as u64 + 1)).unwrap();
    assert_eq!(
        too_large,
        Reply {
            status: 413,
            body: r#"{"error":"request body too large (limit 16384 bytes)"}"#.into()
        }
    );
    let form = check_headers_impl(Some("application/x-www-form-urlencoded"), None).unwrap();
    assert_eq!(form.status, 400);
    assert_eq!(max_body(), 16384);
}

#[test]
fn a_content_length_must_be_a_whole_number_of_bytes() {
    assert_eq!(content_length_impl(0.0), Ok(0));
    assert_eq!(content_length_impl(16385.0), Ok(16385));
    assert_eq!(content_length_impl(1e30), Ok(u64::MAX));
    for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY] {
        let err = content_length_impl(bad).unwrap_err();
        assert!(
            err.starts_with("expected contentLength as a whole number of bytes"),
            "{err}"
        );
    }
}

#[test]
fn the_typescript_code_type_names_every_code() {
    // The section is read from the source: the attribute takes the constant for itself.
    let declared = include_str!("lib.rs")
        .lines()
        .find_map(|line| line.strip_prefix("export type Code = "))
        .unwrap();
    for code in heare_auth_core::Code::ALL {
        assert!(
            declared.contains(&format!("\"{}\"", code.as_str())),
            "{code:?} is not in the TypeScript type Code: {declared}"
        );
    }
}

/// A key with credits refilled each day, set at 09:30 on 2026-12-06, and one without.
const CREDITED: &str = r#"{"keys": [
  {"id": "key_m", "secret": "sec_m", "name": "Metered",
   "credits": {"amount": 10, "refill": {"amount": 100, "every": "day"}, "since": "2026-12-06T09:30:00Z"}},
  {"id": "key_once", "secret": "sec_once", "name": "Once", "credits": {"amount": 3}},
  {"id": "key_a", "secret": "sec_a", "name": "A", "metadata": {"n": 1}}]}"#;

/// 2026-12-06T12:00:00Z.
const DEC_6_NOON: UnixMillis = 1_796_558_400_000;
const DAY: UnixMillis = 86_400_000;

#[test]
fn a_balance_given_is_spent_by_the_cost_or_refuses_the_key() {
    let v = Verifier::load_impl(CREDITED.as_bytes(), None).unwrap();
    let none: &[&str] = &[];
    let body = |balance, cost| v.verify_json_impl("sec_m", DEC_6_NOON, none, balance, cost);
    assert!(body(None, 1).ends_with(r#""expires_at":null}"#));
    assert!(body(Some(10), 1).ends_with(r#""expires_at":null,"remaining":9}"#));
    assert!(body(Some(10), 10).ends_with(r#""remaining":0}"#));
    let exceeded = |left: u64| {
        format!(
            r#"{{"valid":false,"error":"Usage exceeded","code":"USAGE_EXCEEDED","remaining":{left}}}"#
        )
    };
    assert_eq!(body(Some(9), 10), exceeded(9));
    assert_eq!(body(Some(0), 0), exceeded(0));
    assert!(body(Some(1), 0).ends_with(r#""remaining":1}"#));
    // A key without credits pays nothing, whatever the balance.
    assert_eq!(
        v.verify_json_impl("sec_a", DEC_6_NOON, none, Some(0), 5),
        VALID_A
    );
    let json = Some("application/json");
    let reply = v.verify_request_impl(json, br#"{"api_key": "sec_m", "cost": 4}"#, 0, Some(4));
    assert_eq!(reply.status, 200);
    assert!(reply.body.ends_with(r#""remaining":0}"#), "{}", reply.body);
    let refused = v.verify_request_impl(json, br#"{"api_key": "sec_m", "cost": 5}"#, 0, Some(4));
    assert_eq!((refused.status, refused.body), (403, exceeded(4)));
}

#[test]
fn credits_are_counted_per_key_per_period_from_when_they_were_set() {
    let v = Verifier::load_impl(CREDITED.as_bytes(), None).unwrap();
    let since: UnixMillis = 1_796_549_400_000; // 2026-12-06T09:30:00Z
    let today = DEC_6_NOON / DAY;
    assert_eq!(
        v.credits_of_impl("sec_m", DEC_6_NOON),
        Some(CreditsCount {
            key_id: "key_m".into(),
            pool: format!("key_m:{since}:{today}"),
            allowance: 10,
            resets_at: Some((today + 1) * DAY),
        })
    );
    // The next day starts a new count, from the refill's amount.
    let tomorrow = v.credits_of_impl("sec_m", DEC_6_NOON + DAY).unwrap();
    assert_eq!(
        (tomorrow.pool, tomorrow.allowance, tomorrow.resets_at),
        (
            format!("key_m:{since}:{}", today + 1),
            100,
            Some((today + 2) * DAY)
        )
    );
    let once = v.credits_of_impl("sec_once", DEC_6_NOON).unwrap();
    assert_eq!(
        (once.pool, once.allowance, once.resets_at),
        ("key_once:0:0".to_string(), 3, None)
    );
    assert_eq!(v.credits_of_impl("sec_a", DEC_6_NOON), None);
    assert_eq!(v.credits_of_impl("sec_nope", DEC_6_NOON), None);
}

#[test]
fn a_balance_and_a_cost_are_whole_numbers() {
    assert_eq!(balance_impl(0.0), Ok(0));
    assert_eq!(balance_impl(1e12), Ok(1_000_000_000_000));
    assert_eq!(balance_impl(1e30), Ok(u64::MAX));
    assert_eq!(cost_impl(0.0), Ok(0));
    assert_eq!(cost_impl(1e6), Ok(MAX_COST));
    for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY] {
        let err = balance_impl(bad).unwrap_err();
        assert!(
            err.starts_with("expected balance as a whole number of credits, got "),
            "{err}"
        );
    }
    for bad in [-1.0, 0.5, 1_000_001.0, f64::NAN] {
        assert_eq!(
            cost_impl(bad),
            Err(format!(
                "expected cost as a whole number from 0 to {MAX_COST}, got {bad}"
            ))
        );
    }
}
