//! The result of one verification, and the JSON body both the server and the edge answer with.

use crate::Key;

/// What a presented secret turned out to be.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A live key.
    Valid(Key<'a>),
    /// A known key past its `expires_at` (or with an unparseable one).
    Expired(Key<'a>),
    /// No key has this secret.
    NotFound,
}

/// The body of every rejected verification: unknown and expired keys look alike to callers.
pub const INVALID_BODY: &str = r#"{"valid":false,"error":"Invalid API key"}"#;

impl<'a> Outcome<'a> {
    /// The key, if the secret is valid now.
    pub fn valid_key(&self) -> Option<Key<'a>> {
        match *self {
            Outcome::Valid(k) => Some(k),
            _ => None,
        }
    }

    /// Appends the `/verify` response body: `{"valid":true,"key_id",...,"metadata"}` or
    /// [`INVALID_BODY`].
    pub fn write_json(&self, out: &mut String) {
        let Some(key) = self.valid_key() else {
            out.push_str(INVALID_BODY);
            return;
        };
        out.push_str(r#"{"valid":true,"key_id":"#);
        push_json_string(out, key.id());
        out.push_str(r#","name":"#);
        push_json_string(out, key.name());
        out.push_str(r#","metadata":"#);
        out.push_str(key.metadata_json());
        out.push('}');
    }

    /// The `/verify` response body as a new string.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_json(&mut out);
        out
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    out.push('"');
    let mut rest = s;
    // Each escape found is written out; the run before it is copied whole.
    while let Some(i) = rest.bytes().position(needs_escape) {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "ctl\u{1}\n\t\r",
            "ünïcødé ✓ 🔑",
            "",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }
}
