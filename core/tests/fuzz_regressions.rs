//! Inputs the fuzz targets (`fuzz/`) once failed on, each kept as the smallest test that shows
//! the property it broke.

#![allow(clippy::unwrap_used)]

use heare_auth_core::{
    authorize, format_timestamp, header_value, parse_timestamp, Document, Error, KeySet,
};

/// The message of a JSON error, for comparing positions only.
fn position(e: Error) -> (usize, usize) {
    match e {
        Error::Json { line, column, .. } => (line, column),
        other => (0, other.to_string().len()),
    }
}

/// keys_file: a file cut short just after a newline was "line 5, column 0", a position in no
/// file; columns are 1-based.
#[test]
fn an_error_at_the_end_after_a_newline_is_in_column_1() {
    let text = b"\n\n{  \n\n";
    assert_eq!(position(KeySet::from_json(text).unwrap_err()), (5, 1));
    assert_eq!(position(Document::parse(text).unwrap_err()), (5, 1));
    let checked = KeySet::check(text);
    assert_eq!(position(checked.errors[0].error.clone()), (5, 1));
}

/// keys_file: a field this version does not know, over several lines, was indented four spaces
/// more each time its record was rewritten; now a rewrite of a file the CLI wrote is the file.
#[test]
fn rewriting_a_record_leaves_its_unknown_fields_as_they_were() {
    let text = "{\n  \"keys\": [\n    {\n      \"id\": \"a\",\n      \"secret\": \"s\",\n      \"name\": \"\",\n      \"metadata\": {},\n      \"tags\": [\n        \"x\"\n      ]\n    }\n  ]\n}\n";
    let mut file = Document::parse(text.as_bytes()).unwrap();
    for _ in 0..2 {
        let record = file.get("a").unwrap().unwrap();
        assert!(file.replace(record));
        assert_eq!(file.to_json().unwrap(), text);
    }
}

/// keys_file: a key whose id the file writes with an escape (`"caf\u00e9"`, as Python's
/// `json.dump` does by default) could not be found by its id, so no CLI command could change it.
#[test]
fn a_key_is_found_by_its_id_however_the_file_escapes_it() {
    let text = br#"{"keys": [{"id": "caf\u00e9", "secret": "a"}, {"id": "a\/b", "secret": "b"}]}"#;
    let mut file = Document::parse(text).unwrap();
    assert_eq!(file.get("café").unwrap().unwrap().id, "café");
    let record = file.get("a/b").unwrap().unwrap();
    assert!(file.replace(record));
    assert_eq!(
        file.remove("café").unwrap().unwrap().secret.as_deref(),
        Some("a")
    );
}

/// keys_file: the CLI typed fields the verifier skips (`created_at`, `created_by`, `updated_at`,
/// `updated_by`, `disabled_at`, `secret_type`), so a file the server loads could be one no CLI
/// command reads, when such a field was not a string (or was a string with a lone surrogate
/// escape, which only a typed read refuses); now such a field is kept as it was.
#[test]
fn the_cli_reads_every_file_the_verifier_loads() {
    for text in [
        r#"{"keys": [{"id": "a", "secret": "s", "created_at": 1795564800}]}"#,
        r#"{"keys": [{"id": "a", "secret": "s", "disabled_at": "2026-11-01T0\ud8000Z"}]}"#,
    ] {
        assert!(KeySet::from_json(text.as_bytes()).is_ok(), "{text}");
        let file = Document::parse(text.as_bytes()).unwrap();
        let records: Result<Vec<_>, _> = file.records().collect();
        assert!(records.is_ok(), "{text}: {records:?}");
    }
}

/// keys_file: `KeySet::check` says its first error is the loader's, but in a file that is not
/// JSON it reported the syntax error before a bad record the loader stops at first, and worded
/// a record cut short differently.
#[test]
fn the_checkers_first_error_is_the_loaders() {
    for text in [
        r#"{"keys": [{"id": "a"}, x]}"#,
        r#"{"keys": [{"id": {}}, x]}"#,
        "{\"keys\": [\n  {\"id\": \"a\",}\n]}",
    ] {
        let loaded = KeySet::from_json(text.as_bytes()).unwrap_err();
        let checked = KeySet::check(text.as_bytes());
        assert_eq!(checked.errors[0].error, loaded, "{text}");
    }
}

/// verify_request: a scope demanded in the `/auth` query is percent-decoded, so it could put a
/// line break or a quote into the challenge, a header no server or proxy can send as it is.
#[test]
fn the_insufficient_scope_challenge_is_one_valid_header() {
    let file = br#"{"keys": [{"id": "k", "secret": "s", "scopes": ["read"]}]}"#;
    let (keys, _) = KeySet::from_json(file).unwrap();
    let query = Some("scope=read&scope=a%0D%0AX:%20%22y%22,%25");
    let answer = authorize(&keys, Some("Bearer s"), None, query, 0);
    assert_eq!(answer.status(), 403);
    assert_eq!(
        answer.headers()[0].1,
        r#"Bearer realm="heare-auth", error="insufficient_scope", scope="read a%0D%0AX:%20%22y%22 %""#
    );
}

/// verify_request: a key name that starts or ends with a space went out as it was, and HTTP
/// strips such spaces, so `X-Key-Name` did not decode to the name.
#[test]
fn a_header_value_keeps_the_spaces_at_its_ends() {
    assert_eq!(header_value(" padded "), "%20padded%20");
    assert_eq!(header_value("in between"), "in between");
}

/// timestamp: ISO 8601's expanded years parsed to instants whose RFC 3339 form does not parse
/// (`-002025-03-01T10.90999+00:00` wrote `-2025-03-01T10:54:35.964000Z`), so a timestamp read
/// could not always be written back, by the CLI's `--expires-at` for one.
#[test]
fn only_timestamps_that_can_be_written_back_parse() {
    for bad in [
        "-002025-03-01T10.90999+00:00",
        "0000-01-01T00:00:00+00:01",
        "+010000-01-01T00:00:00Z",
    ] {
        assert!(parse_timestamp(bad).is_err(), "{bad}");
    }
    for (text, ms) in [
        ("0000-01-01T00:00:00Z", -62_167_219_200_000),
        ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999),
    ] {
        assert_eq!(parse_timestamp(text), Ok(ms));
        assert_eq!(parse_timestamp(&format_timestamp(ms)), Ok(ms));
    }
    // Before 1970 a fraction of a millisecond rounds down too: an expiry never moves later.
    assert_eq!(parse_timestamp("1969-12-31T23:59:59.9995Z"), Ok(-1));
}

/// keys_file (the fuzz target compared metadata as JSON values, which hid it): the CLI read
/// metadata into a `serde_json::Value`, so rewriting a key (disable, enable, rotate) turned an
/// integer beyond 64 bits into a float, and `/verify` answered with another number than the
/// file had; now metadata is kept as the text it was read as.
#[test]
fn rewriting_a_key_keeps_its_metadata_numbers() {
    let text = br#"{"keys": [{"id": "a", "secret": "s", "metadata": {"account": 12345678901234567890123}}]}"#;
    let mut file = Document::parse(text).unwrap();
    let record = file.get("a").unwrap().unwrap();
    assert!(file.replace(record));
    let (set, _) = KeySet::from_json(file.to_json().unwrap().as_bytes()).unwrap();
    let key = set.keys().next().unwrap();
    assert_eq!(
        key.metadata_json(),
        r#"{"account":12345678901234567890123}"#
    );
}
