//! Native tests of the functions the JS exports wrap.

use super::*;

const FILE: &str = r#"{"keys": [{"id": "key_a", "secret": "sec_a", "name": "A", "metadata": {"n": 1}},
  {"id": "key_old", "secret": "sec_old", "name": "Old", "expires_at": "2026-01-01T00:00:00Z"}]}"#;

#[test]
fn verifies_like_the_server() {
    let v = Verifier::load_impl(FILE.as_bytes(), None).unwrap();
    assert_eq!(v.key_count(), 2);
    assert_eq!(
        v.verify_json_impl("sec_a", 0),
        r#"{"valid":true,"key_id":"key_a","name":"A","metadata":{"n":1}}"#
    );
    assert_eq!(
        v.verify_json_impl("sec_b", 0),
        r#"{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}"#
    );
    let expiry = 1_767_225_600_000;
    assert!(v.verify_json_impl("sec_old", expiry).contains("key_old"));
    assert_eq!(
        v.verify_json_impl("sec_old", expiry + 1),
        r#"{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}"#
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
    let v = Verifier::load_impl(FILE.as_bytes(), None).unwrap();
    let json = Some("application/json");
    let reply = |status, body: &str| Reply {
        status,
        body: body.into(),
    };
    assert_eq!(
        v.verify_request_impl(json, br#"{"api_key": "sec_a"}"#, 0),
        reply(
            200,
            r#"{"valid":true,"key_id":"key_a","name":"A","metadata":{"n":1}}"#
        )
    );
    assert_eq!(
        v.verify_request_impl(None, br#"{"api_key": "sec_b"}"#, 0),
        reply(
            403,
            r#"{"valid":false,"error":"Invalid API key","code":"NOT_FOUND"}"#
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
