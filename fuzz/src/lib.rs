//! What the fuzz targets share: how an input is cut into fields, and the checks more than one
//! target makes (two key sets alike, a header value a proxy can carry, a body that is JSON).

use heare_auth_core::{KeySet, UnixMillis};

/// The separator of an input's fields: a byte no header value or argument can hold, so the
/// seed corpus stays readable (`fuzz/seed.py` writes it).
pub const SEP: u8 = 0;

/// Cuts `data` into `n` fields at the first `n - 1` separators; missing ones are `None`. The
/// last field keeps any further separators, so a body can hold every byte.
pub fn fields(data: &[u8], n: usize) -> Vec<Option<&[u8]>> {
    let mut out: Vec<Option<&[u8]>> = data.splitn(n, |&b| b == SEP).map(Some).collect();
    out.resize(n, None);
    out
}

/// A field as text, as a server reading a header (lossy where it is not UTF-8).
pub fn text(field: Option<&[u8]>) -> Option<String> {
    field.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The instants a key set is worth checking at: the start of time, the vectors' `now`, the
/// end of time, and each side of every expiry of its first keys.
pub fn instants(set: &KeySet) -> Vec<UnixMillis> {
    let mut nows = vec![UnixMillis::MIN, 0, 1_795_564_800_000, UnixMillis::MAX];
    for key in set.keys().take(16) {
        let state = key.state();
        for expiry in [Some(state.expiry), state.previous].into_iter().flatten() {
            if let heare_auth_core::Expiry::At(t) = expiry {
                nows.extend([t, t.saturating_add(1)]);
            }
        }
    }
    nows
}

/// Asserts two loads of a keys file hold the same keys in the same order, alike in every
/// field, metadata text included (the CLI writes a record's metadata back as it read it).
pub fn assert_same_keys(before: &KeySet, after: &KeySet) {
    assert_eq!(before.len(), after.len(), "number of keys");
    for (a, b) in before.keys().zip(after.keys()) {
        assert!(a == b, "key {:?} changed: {a:?} != {b:?}", a.id());
    }
}

/// Parses text that must be JSON.
pub fn json(text: &str) -> serde_json::Value {
    match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => panic!("not JSON ({e}): {text}"),
    }
}

/// Whether `value` may be sent as an HTTP field value (RFC 9110: visible ASCII, spaces and
/// tabs inside, nothing a proxy or a `Headers` object would refuse or split on).
pub fn is_header_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner = |b: &u8| matches!(b, b'\t' | b' '..=b'~');
    bytes.iter().all(inner)
        && !bytes.first().is_some_and(u8::is_ascii_whitespace)
        && !bytes.last().is_some_and(u8::is_ascii_whitespace)
}
