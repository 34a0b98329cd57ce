//! The forward-auth rule (`/auth`), the same at the origin and at the edge: where a request's
//! key comes from, which scopes a proxy location demands, and what the proxy is answered (a
//! status it understands, and the key's identity in headers it can pass on).

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::outcome::retry_after_secs;
use crate::{check_scope, push_json_string, Code, KeySet, Outcome, UnixMillis};

/// The challenge of every 401 and 403 (RFC 6750).
const REALM: &str = "Bearer realm=\"heare-auth\"";
/// The challenge of a 401 for a key that was presented and refused.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"heare-auth\", error=\"invalid_token\"";

/// The key presented in a request's headers: `Authorization: Bearer <key>`, else `X-API-Key`.
/// An `Authorization` of another scheme (Basic, say) is not a key.
pub fn presented_key<'h>(
    authorization: Option<&'h str>,
    x_api_key: Option<&'h str>,
) -> Option<&'h str> {
    let bearer = authorization.and_then(|value| {
        let value = value.trim();
        let (scheme, token) = value.split_once([' ', '\t'])?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    });
    bearer.or_else(|| x_api_key.map(str::trim).filter(|k| !k.is_empty()))
}

/// The scopes a request demands through its query: every `scope` parameter, percent-decoded,
/// commas also separating (`?scope=read&scope=write`, `?scope=read,write`).
pub fn required_scopes(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .flat_map(|value| {
            percent_decode(value, true)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What `/auth` came to.
#[derive(Clone, Debug)]
pub struct Authorized<'k> {
    /// What the key turned out to be; `None` when no key was presented.
    pub outcome: Option<Outcome<'k>>,
    /// The scopes the request demanded.
    pub required: Vec<String>,
}

/// Answers a forward-auth request from its `Authorization`, `X-API-Key` and query.
pub fn authorize<'k>(
    keys: &'k KeySet,
    authorization: Option<&str>,
    x_api_key: Option<&str>,
    query: Option<&str>,
    now: UnixMillis,
) -> Authorized<'k> {
    authorize_scopes(keys, authorization, x_api_key, required_scopes(query), now)
}

/// Answers a forward-auth request from its `Authorization` and `X-API-Key`, demanding
/// `required`: the scopes themselves, where [`authorize`] takes them from a proxy's query.
pub fn authorize_scopes<'k>(
    keys: &'k KeySet,
    authorization: Option<&str>,
    x_api_key: Option<&str>,
    required: Vec<String>,
    now: UnixMillis,
) -> Authorized<'k> {
    let outcome =
        presented_key(authorization, x_api_key).map(|key| keys.verify(key, now, &required));
    Authorized { outcome, required }
}

impl Authorized<'_> {
    /// 200 for a valid key; 403 for a key without a demanded scope; 401 for a missing,
    /// unknown, expired or disabled key; 429 for a key over its rate limit (nginx turns
    /// anything but 2xx, 401 and 403 from `auth_request` into a 500, so a server in front of
    /// nginx answers that one with another status; Envoy allows only exactly 200).
    pub fn status(&self) -> u16 {
        match self.outcome {
            Some(Outcome::Valid(_)) => 200,
            Some(Outcome::InsufficientScope(_)) => 403,
            Some(Outcome::RateLimited(..) | Outcome::UsageExceeded(_)) => 429,
            _ => 401,
        }
    }

    /// The code: [`Code::MissingKey`] when no key was presented, else the verification's.
    pub fn code(&self) -> Code {
        self.outcome.map_or(Code::MissingKey, |o| o.code())
    }

    /// The headers of the answer: the key's identity for the proxy to pass upstream on 200
    /// (all four always, so a proxy replaces any a client sent), the challenge otherwise.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self.outcome {
            Some(Outcome::Valid(key)) => vec![
                ("x-key-id", header_value(key.id()).into_owned()),
                ("x-key-name", header_value(key.name()).into_owned()),
                ("x-key-scopes", key.scopes().to_string()),
                (
                    "x-key-metadata",
                    URL_SAFE_NO_PAD.encode(key.metadata_json()),
                ),
            ],
            Some(Outcome::RateLimited(_, ms)) => {
                vec![("retry-after", retry_after_secs(ms).to_string())]
            }
            Some(Outcome::InsufficientScope(_)) => {
                let scopes: Vec<Cow<str>> =
                    self.required.iter().map(|s| challenge_scope(s)).collect();
                vec![(
                    "www-authenticate",
                    format!(
                        "{REALM}, error=\"insufficient_scope\", scope=\"{}\"",
                        scopes.join(" ")
                    ),
                )]
            }
            Some(_) => vec![("www-authenticate", INVALID_TOKEN_CHALLENGE.to_string())],
            None => vec![("www-authenticate", REALM.to_string())],
        }
    }

    /// A small JSON body for people reading it: the code, and the key's id or what is wrong.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"code\":\"");
        out.push_str(self.code().as_str());
        out.push('"');
        match self.outcome {
            Some(Outcome::Valid(key)) => {
                out.push_str(",\"key_id\":");
                push_json_string(&mut out, key.id());
            }
            Some(outcome) => {
                out.push_str(",\"error\":");
                push_json_string(&mut out, outcome.error().unwrap_or_default());
            }
            None => out.push_str(
                ",\"error\":\"missing API key: send Authorization: Bearer <key> or X-API-Key\"",
            ),
        }
        out.push('}');
        out
    }

    /// The verification's code, when a key was presented.
    pub fn verification(&self) -> Option<Code> {
        self.outcome.map(|o| o.code())
    }
}

/// Text as a header value: unchanged when it is printable ASCII without `%` (and does not start
/// or end with a space, which HTTP would strip), otherwise percent-encoded UTF-8 as
/// JavaScript's `encodeURIComponent` does. Either way, percent-decoding gives the text back.
pub fn header_value(text: &str) -> Cow<'_, str> {
    let spaced = text.starts_with(' ') || text.ends_with(' ');
    if !spaced && text.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'%') {
        return Cow::Borrowed(text);
    }
    percent_encode(text, |b| {
        b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
    })
}

/// A demanded scope as the challenge names it: a scope name as it is; anything else (it came
/// percent-decoded from the query, so it may hold a quote, a space or a line break) with every
/// byte that is not visible ASCII, or is `"`, `\`, `,` or `%`, percent-encoded, so that the
/// header stays one valid quoted string. No key holds such a scope.
fn challenge_scope(scope: &str) -> Cow<'_, str> {
    if check_scope(scope).is_ok() {
        return Cow::Borrowed(scope);
    }
    percent_encode(scope, |b| b.is_ascii_graphic() && !b"\"\\,%".contains(&b))
}

/// `text` with every byte but those `keep` accepts written `%XX`.
fn percent_encode(text: &str, keep: impl Fn(u8) -> bool) -> Cow<'static, str> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    Cow::Owned(out)
}

/// Decodes `%XX` sequences (and, in a query (`form`), `+` as a space, as forms encode it);
/// anything else is kept, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str, form: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if form => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"keys": [
      {"id": "key_rw", "secret": "sec_rw", "name": "Zoë's key", "scopes": ["read", "write"], "metadata": {"team": "core"}},
      {"id": "key_off", "secret": "sec_off", "name": "Off", "disabled": true},
      {"id": "key_old", "secret": "sec_old", "name": "Old", "expires_at": "2020-01-01"}]}"#;

    fn keys() -> KeySet {
        KeySet::from_json(FILE.as_bytes()).unwrap().0
    }

    #[test]
    fn the_key_comes_from_bearer_then_x_api_key() {
        assert_eq!(
            presented_key(Some("Bearer sec_1"), Some("sec_2")),
            Some("sec_1")
        );
        assert_eq!(presented_key(Some("bearer \t sec_1 "), None), Some("sec_1"));
        assert_eq!(
            presented_key(Some("Basic dXNlcjpwYXNz"), Some("sec_2")),
            Some("sec_2")
        );
        assert_eq!(presented_key(Some("Bearer "), Some(" ")), None);
        assert_eq!(presented_key(None, None), None);
    }

    #[test]
    fn scopes_come_from_the_query() {
        assert_eq!(
            required_scopes(Some("scope=read&x=1&scope=keys%3Awrite,admin")),
            ["read", "keys:write", "admin"]
        );
        assert!(required_scopes(None).is_empty());
        assert!(required_scopes(Some("scope=&scopes=read")).is_empty());
        assert_eq!(percent_decode("a%2", true), "a%2");
        assert_eq!(percent_decode("%zz%41", true), "%zzA");
    }

    #[test]
    fn every_decision_has_its_status_headers_and_code() {
        let keys = keys();
        let answer = |auth: Option<&str>, query: Option<&str>| {
            let a = authorize(&keys, auth, None, query, 1_795_564_800_000);
            (a.status(), a.code().as_str(), a.headers(), a.to_json())
        };
        let (status, code, headers, body) = answer(Some("Bearer sec_rw"), Some("scope=read"));
        assert_eq!((status, code), (200, "VALID"));
        assert_eq!(
            headers,
            [
                ("x-key-id", "key_rw".to_string()),
                ("x-key-name", "Zo%C3%AB's%20key".to_string()),
                ("x-key-scopes", "read,write".to_string()),
                (
                    "x-key-metadata",
                    URL_SAFE_NO_PAD.encode(r#"{"team":"core"}"#)
                ),
            ]
        );
        assert_eq!(body, r#"{"code":"VALID","key_id":"key_rw"}"#);
        let (status, code, headers, _) =
            answer(Some("Bearer sec_rw"), Some("scope=admin&scope=read"));
        assert_eq!((status, code), (403, "INSUFFICIENT_SCOPE"));
        assert_eq!(
            headers[0].1,
            r#"Bearer realm="heare-auth", error="insufficient_scope", scope="admin read""#
        );
        for (secret, code) in [
            ("sec_off", "DISABLED"),
            ("sec_old", "EXPIRED"),
            ("sec_no", "NOT_FOUND"),
        ] {
            let (status, got, headers, body) = answer(Some(&format!("Bearer {secret}")), None);
            assert_eq!((status, got), (401, code));
            assert_eq!(
                headers[0].1,
                r#"Bearer realm="heare-auth", error="invalid_token""#
            );
            assert_eq!(
                body,
                format!(r#"{{"code":"{code}","error":"Invalid API key"}}"#)
            );
        }
        let (status, code, headers, _) = answer(None, None);
        assert_eq!(
            (status, code, headers[0].1.as_str()),
            (401, "MISSING_KEY", REALM)
        );
    }

    #[test]
    fn scopes_given_as_themselves_are_not_decoded() {
        let keys = keys();
        let answer = |required: &[&str]| {
            let required = required.iter().map(|s| s.to_string()).collect();
            let a = authorize_scopes(&keys, Some("Bearer sec_rw"), None, required, 0);
            (a.status(), a.headers())
        };
        let from_query = authorize(
            &keys,
            Some("Bearer sec_rw"),
            None,
            Some("scope=admin&scope=read"),
            0,
        );
        assert_eq!(
            answer(&["admin", "read"]),
            (from_query.status(), from_query.headers())
        );
        assert_eq!(answer(&["write", "read"]).0, 200);
        assert_eq!(answer(&["read%2Cwrite"]).0, 403);
    }

    #[test]
    fn header_values_survive_percent_decoding() {
        assert_eq!(header_value("key_0Vbw"), "key_0Vbw");
        assert_eq!(header_value("Billing (EU)"), "Billing (EU)");
        assert_eq!(header_value("100%"), "100%25");
        assert_eq!(header_value("a\nb"), "a%0Ab");
        for text in ["Zoë ✓ 🔑", "100% sure", "tab\there"] {
            assert_eq!(percent_decode(&header_value(text), true), text);
        }
    }
}
