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
    assert_eq!(v.verify_json_impl("sec_a", 0, none), VALID_A);
    assert_eq!(v.verify_json_impl("sec_b", 0, none), NOT_FOUND);
    assert_eq!(
        v.verify_json_impl("sec_old", EXPIRY, none),
        r#"{"valid":true,"key_id":"key_old","name":"Old","metadata":{},"code":"VALID","scopes":[],"expires_at":"2026-01-01T00:00:00.000000Z"}"#
    );
    assert_eq!(
        v.verify_json_impl("sec_old", EXPIRY + 1, none),
        r#"{"valid":false,"error":"Invalid API key","code":"EXPIRED"}"#
    );
    assert_eq!(
        v.verify_json_impl("sec_off", 0, none),
        r#"{"valid":false,"error":"Invalid API key","code":"DISABLED"}"#
    );
}

#[test]
fn scopes_demanded_must_all_be_held() {
    let v = verifier();
    assert_eq!(
        v.verify_json_impl("sec_rw", 0, &["write", "read"]),
        VALID_RW
    );
    let insufficient =
        r#"{"valid":false,"error":"Insufficient scope","code":"INSUFFICIENT_SCOPE"}"#;
    assert_eq!(
        v.verify_json_impl("sec_rw", 0, &["read", "admin"]),
        insufficient
    );
    assert_eq!(
        v.verify_json_impl("sec_a", 0, &["read".to_string()]),
        insufficient
    );
    assert_eq!(v.verify_json_impl("sec_b", 0, &["read"]), NOT_FOUND);
}

#[test]
fn a_previous_secret_is_the_same_key_until_its_grace_period_ends() {
    let v = verifier();
    assert_eq!(
        v.verify_json_impl("sec_rw_before", EXPIRY, &["read"]),
        VALID_RW
    );
    assert_eq!(
        v.verify_json_impl("sec_rw_before", EXPIRY + 1, &["read"]),
        NOT_FOUND
    );
    assert_eq!(
        v.verify_json_impl("sec_rw", EXPIRY + 1, &["read"]),
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
        v.verify_request_impl(json, br#"{"api_key": "sec_a"}"#, 0),
        reply(200, VALID_A)
    );
    assert_eq!(
        v.verify_request_impl(None, br#"{"api_key": "sec_b"}"#, 0),
        reply(403, NOT_FOUND)
    );
    let scoped = br#"{"api_key": "sec_rw", "required_scopes": ["read", "write"]}"#;
    assert_eq!(v.verify_request_impl(json, scoped, 0), reply(200, VALID_RW));
    let lacking = br#"{"api_key": "sec_rw", "required_scopes": ["admin"]}"#;
    assert_eq!(v.verify_request_impl(json, lacking, 0).status, 403);
    assert_eq!(
        v.verify_request_impl(
            json,
            br#"{"api_key": "sec_rw", "required_scopes": "read"}"#,
            0
        ),
        reply(
            400,
            r#"{"error":"\"required_scopes\" must be an array of strings"}"#
        )
    );
    assert_eq!(
        v.verify_request_impl(json, b"{}", 0),
        reply(400, r#"{"error":"missing field \"api_key\""}"#)
    );
    assert_eq!(
        v.verify_request_impl(Some("text/plain"), br#"{"api_key": "sec_a"}"#, 0),
        reply(
            400,
            r#"{"error":"expected Content-Type: application/json"}"#
        )
    );
    let mut big = br#"{"api_key": "sec_a"}"#.to_vec();
    big.resize(MAX_BODY + 1, b' ');
    assert_eq!(v.verify_request_impl(json, &big, 0).status, 413);
    big.truncate(MAX_BODY);
    assert_eq!(v.verify_request_impl(json, &big, 0).status, 200);
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
