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
        heare_auth_core::INVALID_BODY
    );
    let expiry = 1_767_225_600_000;
    assert!(v.verify_json_impl("sec_old", expiry).contains("key_old"));
    assert_eq!(
        v.verify_json_impl("sec_old", expiry + 1),
        heare_auth_core::INVALID_BODY
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
