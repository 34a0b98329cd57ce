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
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
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
