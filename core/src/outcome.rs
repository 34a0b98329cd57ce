//! The result of one verification, its machine-readable code, and the JSON body both the server
//! and the edge answer with.

use crate::{format_timestamp, holds_all, Expiry, Form, Key, KeySet, Status, UnixMillis};

/// What a presented secret turned out to be.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// A live key that has every scope asked for.
    Valid(Key<'a>),
    /// No key has this secret (or it is a previous secret whose grace period is over).
    NotFound,
    /// A secret of the checksummed format whose checksum is wrong (a typo, a cut, a guess):
    /// refused before any lookup, and answered exactly as [`Outcome::NotFound`] is (its code is
    /// `NOT_FOUND`); only logs and metrics tell it apart.
    BadChecksum,
    /// A known key past its `expires_at` (or with an unreadable one).
    Expired(Key<'a>),
    /// A known key that an admin disabled.
    Disabled(Key<'a>),
    /// A live key without every scope asked for.
    InsufficientScope(Key<'a>),
    /// A live key over its rate limit; a token comes back in this many milliseconds.
    RateLimited(Key<'a>, u64),
    /// A live key whose credits are spent (or fewer than the request's cost).
    UsageExceeded(Key<'a>),
}

/// A verification's result for machines: `VALID`, `NOT_FOUND`, ... Clients must treat codes
/// they do not know as failures: codes may be added.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The key verified.
    Valid,
    /// No key has this secret.
    NotFound,
    /// The key expired.
    Expired,
    /// The key is disabled.
    Disabled,
    /// The key lacks a scope the request needs.
    InsufficientScope,
    /// The key is over its rate limit.
    RateLimited,
    /// No key was presented: forward auth only (a `/verify` body without one is a bad request).
    MissingKey,
    /// The key's credits are spent.
    UsageExceeded,
}

impl Code {
    /// Every code, each at its [`Code::position`].
    pub const ALL: [Code; 8] = [
        Code::Valid,
        Code::NotFound,
        Code::Expired,
        Code::Disabled,
        Code::InsufficientScope,
        Code::RateLimited,
        Code::MissingKey,
        Code::UsageExceeded,
    ];

    /// Where the code is in [`Code::ALL`], to keep something per code in an array.
    pub fn position(self) -> usize {
        self as usize
    }

    /// The code as it appears in bodies, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Valid => "VALID",
            Code::NotFound => "NOT_FOUND",
            Code::Expired => "EXPIRED",
            Code::Disabled => "DISABLED",
            Code::InsufficientScope => "INSUFFICIENT_SCOPE",
            Code::RateLimited => "RATE_LIMITED",
            Code::MissingKey => "MISSING_KEY",
            Code::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}

impl<'a> Outcome<'a> {
    /// The key, if the secret is valid now.
    pub fn valid_key(&self) -> Option<Key<'a>> {
        match *self {
            Outcome::Valid(k) => Some(k),
            _ => None,
        }
    }

    /// The key the secret belongs to, valid or not.
    pub fn key(&self) -> Option<Key<'a>> {
        match *self {
            Outcome::NotFound | Outcome::BadChecksum => None,
            Outcome::Valid(k)
            | Outcome::Expired(k)
            | Outcome::Disabled(k)
            | Outcome::InsufficientScope(k)
            | Outcome::RateLimited(k, _)
            | Outcome::UsageExceeded(k) => Some(k),
        }
    }

    /// The same outcome for a key found over its rate limit: a valid key becomes
    /// [`Outcome::RateLimited`]; any other outcome stays.
    pub fn limited(self, retry_after_ms: u64) -> Outcome<'a> {
        match self {
            Outcome::Valid(k) => Outcome::RateLimited(k, retry_after_ms),
            other => other,
        }
    }

    /// The same outcome for a key whose credits do not cover the request: a valid key becomes
    /// [`Outcome::UsageExceeded`]; any other outcome stays.
    pub fn exhausted(self) -> Outcome<'a> {
        match self {
            Outcome::Valid(k) => Outcome::UsageExceeded(k),
            other => other,
        }
    }

    /// For a rate-limited key, the seconds to wait before trying again (at least 1), as
    /// `Retry-After` says it.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Outcome::RateLimited(_, ms) => Some(retry_after_secs(*ms)),
            _ => None,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> Code {
        match self {
            Outcome::Valid(_) => Code::Valid,
            Outcome::NotFound | Outcome::BadChecksum => Code::NotFound,
            Outcome::Expired(_) => Code::Expired,
            Outcome::Disabled(_) => Code::Disabled,
            Outcome::InsufficientScope(_) => Code::InsufficientScope,
            Outcome::RateLimited(..) => Code::RateLimited,
            Outcome::UsageExceeded(_) => Code::UsageExceeded,
        }
    }

    /// Why a failed verification failed, for logs: `checksum` for a secret refused before any
    /// lookup, else the code in lower case (`not_found`, `expired`, ...); `None` for a valid key.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            Outcome::Valid(_) => return None,
            Outcome::BadChecksum => "checksum",
            Outcome::NotFound => "not_found",
            Outcome::Expired(_) => "expired",
            Outcome::Disabled(_) => "disabled",
            Outcome::InsufficientScope(_) => "insufficient_scope",
            Outcome::RateLimited(..) => "rate_limited",
            Outcome::UsageExceeded(_) => "usage_exceeded",
        })
    }

    /// The `error` of a failed verification: unknown, expired and disabled keys look alike.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            Outcome::Valid(_) => None,
            Outcome::InsufficientScope(_) => Some("Insufficient scope"),
            Outcome::RateLimited(..) => Some("Rate limit exceeded"),
            Outcome::UsageExceeded(_) => Some("Usage exceeded"),
            _ => Some("Invalid API key"),
        }
    }

    /// Appends the `/verify` response body: for a valid key `{"valid":true,"key_id","name",
    /// "metadata","code","scopes","expires_at"}` (the original's fields first), otherwise
    /// `{"valid":false,"error","code"}`; with `"remaining"` last when the key has credits and
    /// `remaining` gives what is left of them.
    pub fn write_json(&self, out: &mut String, remaining: Option<u64>) {
        let Some(key) = self.valid_key() else {
            out.push_str(r#"{"valid":false,"error":"#);
            push_json_string(out, self.error().unwrap_or_default());
            out.push_str(r#","code":""#);
            out.push_str(self.code().as_str());
            out.push('"');
            push_remaining(out, remaining);
            out.push('}');
            return;
        };
        out.push_str(r#"{"valid":true,"key_id":"#);
        push_json_string(out, key.id());
        out.push_str(r#","name":"#);
        push_json_string(out, key.name());
        out.push_str(r#","metadata":"#);
        out.push_str(key.metadata_json());
        out.push_str(r#","code":"VALID","scopes":["#);
        for (i, scope) in key.scope_list().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, scope);
        }
        out.push_str(r#"],"expires_at":"#);
        match key.expiry() {
            Expiry::At(t) => push_json_string(out, &format_timestamp(t)),
            _ => out.push_str("null"),
        }
        push_remaining(out, remaining);
        out.push('}');
    }

    /// The `/verify` response body as a new string, without `remaining`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        self.write_json(&mut out, None);
        out
    }
}

fn push_remaining(out: &mut String, remaining: Option<u64>) {
    if let Some(n) = remaining {
        out.push_str(",\"remaining\":");
        out.push_str(&n.to_string());
    }
}

/// `Retry-After` for a key whose next token comes in `wait_ms` milliseconds: whole seconds,
/// rounded up (never early), and at least 1 (0 would invite an immediate retry).
pub(crate) fn retry_after_secs(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(1000).max(1)
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

impl KeySet {
    /// Verifies a presented secret at `now`, for a request that needs every scope in
    /// `required`: one SHA-256 and one hash-table lookup, after a secret of the checksummed
    /// format is refused if its checksum is wrong (a CRC32 of the secret, cheaper than either).
    /// A previous secret verifies as its key until the end of its grace period, and is unknown
    /// after it. A disabled key is refused before an expired one, and both before a missing
    /// scope.
    pub fn verify<S: AsRef<str>>(
        &self,
        secret: &str,
        now: UnixMillis,
        required: &[S],
    ) -> Outcome<'_> {
        if crate::form(secret) == Form::BadChecksum {
            return Outcome::BadChecksum;
        }
        let Some(key) = self.find(secret, now) else {
            return Outcome::NotFound;
        };
        match key.status(now) {
            Status::Disabled => Outcome::Disabled(key),
            s if !s.is_active() => Outcome::Expired(key),
            _ if !holds_all(key.scopes(), required) => Outcome::InsufficientScope(key),
            _ => Outcome::Valid(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_at_its_position() {
        for (i, code) in Code::ALL.into_iter().enumerate() {
            assert_eq!(code.position(), i, "{code:?}");
        }
        assert_eq!(Code::MissingKey.as_str(), "MISSING_KEY");
    }

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
