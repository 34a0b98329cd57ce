//! The `/verify` request rule, the same at the origin and at the edge: the content type, the body
//! limit, the `api_key` in the body, and the status and body of the answer.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{KeySet, Outcome, Rejection, UnixMillis, MAX_BODY, MAX_COST};

/// Checks what can be checked before the body is read: the content type (absent is accepted,
/// as the original did) and a declared length.
pub fn check_headers(
    content_type: Option<&str>,
    content_length: Option<u64>,
) -> Result<(), Rejection> {
    if let Some(ct) = content_type {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(Rejection::ContentType);
        }
    }
    match content_length {
        Some(n) if n > MAX_BODY as u64 => Err(Rejection::TooLarge),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct VerifyBody<'a> {
    #[serde(borrow, default)]
    api_key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    required_scopes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cost: Option<&'a RawValue>,
}

/// What a `/verify` body asks: the secret presented, and the scopes the key must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyAsk<'b> {
    /// The presented secret.
    pub secret: Cow<'b, str>,
    /// `required_scopes`: every one must be among the key's scopes.
    pub required_scopes: Vec<Cow<'b, str>>,
    /// `cost`: the credits a valid verification spends (1 when absent; 0 checks the balance
    /// without spending).
    pub cost: u64,
}

/// What a `/verify` body asks, or what is wrong with the body.
pub fn parse_body(body: &[u8]) -> Result<VerifyAsk<'_>, Rejection> {
    const EXPECTED: &str = "expected a JSON object with an \"api_key\" string";
    let fail = |message: String| Err(Rejection::Body(message));
    if body.len() > MAX_BODY {
        return Err(Rejection::TooLarge);
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return fail(EXPECTED.into());
    }
    let parsed: VerifyBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) if e.is_data() => return fail(EXPECTED.into()),
        Err(e) => return fail(format!("invalid JSON body: {e}")),
    };
    let Some(raw) = parsed.api_key.map(RawValue::get) else {
        return fail("missing field \"api_key\"".into());
    };
    let secret =
        json_string(raw).ok_or_else(|| Rejection::Body("\"api_key\" must be a string".into()))?;
    let required_scopes = match parsed.required_scopes.map(RawValue::get) {
        None | Some("null") => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<&RawValue>>(raw)
            .ok()
            .and_then(|items| items.iter().map(|i| json_string(i.get())).collect())
            .ok_or_else(|| {
                Rejection::Body("\"required_scopes\" must be an array of strings".into())
            })?,
    };
    let cost = match parsed.cost.map(RawValue::get) {
        None | Some("null") => 1,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|&n| n <= MAX_COST)
            .ok_or_else(|| {
                Rejection::Body(format!(
                    "\"cost\" must be a whole number from 0 to {MAX_COST}"
                ))
            })?,
    };
    Ok(VerifyAsk {
        secret,
        required_scopes,
        cost,
    })
}

/// A JSON string token's value, borrowed when it has no escapes.
pub(crate) fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    let plain = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"'));
    match plain.filter(|t| !t.contains('\\')) {
        Some(text) => Some(Cow::Borrowed(text)),
        None => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// What a `/verify` request came to.
#[derive(Clone, Debug)]
pub enum Verified<'k, 'b> {
    /// The request was well formed: the secret presented (for logs, never for answers) and
    /// what it is.
    Answered {
        /// The presented secret.
        secret: Cow<'b, str>,
        /// What the secret turned out to be.
        outcome: Outcome<'k>,
        /// The credits a valid verification spends.
        cost: u64,
        /// What is left of the key's credits, when it has some and they were counted.
        remaining: Option<u64>,
    },
    /// The request was refused before any key was looked at.
    Rejected(Rejection),
}

impl Verified<'_, '_> {
    /// The HTTP status: 200 for a valid key, 429 for one over its rate limit, 403 for any other
    /// (a missing scope included), 400 or 413 for a bad request.
    pub fn status(&self) -> u16 {
        match self {
            Verified::Answered { outcome, .. } => match outcome {
                Outcome::Valid(_) => 200,
                Outcome::RateLimited(..) => 429,
                _ => 403,
            },
            Verified::Rejected(rejection) => rejection.status(),
        }
    }

    /// The body of the answer.
    pub fn to_json(&self) -> String {
        match self {
            Verified::Answered {
                outcome, remaining, ..
            } => {
                let mut out = String::with_capacity(160);
                outcome.write_json(&mut out, *remaining);
                out
            }
            Verified::Rejected(rejection) => rejection.to_json(),
        }
    }
}

/// Answers a `/verify` request: its `Content-Type` (if any) and its body, against `keys` at
/// `now`.
pub fn verify_request<'k, 'b>(
    keys: &'k KeySet,
    content_type: Option<&str>,
    body: &'b [u8],
    now: UnixMillis,
) -> Verified<'k, 'b> {
    let ask = check_headers(content_type, None).and_then(|()| parse_body(body));
    match ask {
        Ok(VerifyAsk {
            secret,
            required_scopes,
            cost,
        }) => {
            let outcome = keys.verify(&secret, now, &required_scopes);
            Verified::Answered {
                secret,
                outcome,
                cost,
                remaining: None,
            }
        }
        Err(rejection) => Verified::Rejected(rejection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_headers_get_their_status_and_reason() {
        let (keys, _) = KeySet::from_json(br#"{"keys": [{"id": "k", "secret": "s\"q"}]}"#).unwrap();
        let answer = |ct: Option<&str>, body: &str| {
            let v = verify_request(&keys, ct, body.as_bytes(), 0);
            (v.status(), v.to_json())
        };
        let json = Some("application/json; charset=utf-8");
        assert_eq!(answer(json, r#"{"api_key": "s\"q"}"#).0, 200);
        assert_eq!(answer(None, r#"{"api_key": "nope"}"#).0, 403);
        let cases = [
            (
                json,
                "{not json",
                400,
                "invalid JSON body: key must be a string at line 1 column 2",
            ),
            (
                json,
                "[1]",
                400,
                "expected a JSON object with an \"api_key\" string",
            ),
            (json, "{}", 400, "missing field \"api_key\""),
            (
                json,
                r#"{"api_key": null}"#,
                400,
                "missing field \"api_key\"",
            ),
            (
                json,
                r#"{"api_key": 7}"#,
                400,
                "\"api_key\" must be a string",
            ),
            (
                Some("text/plain"),
                "{}",
                400,
                "expected Content-Type: application/json",
            ),
        ];
        for (ct, body, status, error) in cases {
            let want = serde_json::json!({ "error": error }).to_string();
            assert_eq!(answer(ct, body), (status, want), "{body}");
        }
        let big = format!(r#"{{"api_key": "{}"}}"#, "a".repeat(MAX_BODY));
        assert_eq!(answer(json, &big).0, 413);
        assert_eq!(
            check_headers(json, Some(MAX_BODY as u64 + 1)),
            Err(Rejection::TooLarge)
        );
        assert_eq!(check_headers(json, Some(MAX_BODY as u64)), Ok(()));
    }

    #[test]
    fn an_unescaped_key_is_borrowed_an_escaped_one_decoded() {
        let secret = |body: &'static [u8]| parse_body(body).map(|ask| ask.secret);
        assert!(matches!(
            secret(br#"{"api_key": "sec_1"}"#),
            Ok(Cow::Borrowed("sec_1"))
        ));
        assert_eq!(secret(br#"{"api_key": "sec_\u0031"}"#).unwrap(), "sec_1");
    }

    #[test]
    fn cost_is_a_whole_number_up_to_the_most_one_request_may_spend() {
        let cost = |body: &str| parse_body(body.as_bytes()).map(|ask| ask.cost);
        assert_eq!(cost(r#"{"api_key": "s"}"#), Ok(1));
        assert_eq!(cost(r#"{"api_key": "s", "cost": null}"#), Ok(1));
        assert_eq!(cost(r#"{"api_key": "s", "cost": 0}"#), Ok(0));
        assert_eq!(cost(r#"{"api_key": "s", "cost": 1000000}"#), Ok(MAX_COST));
        for bad in ["-1", "1.5", "1e3", "\"2\"", "1000001", "[]"] {
            assert_eq!(
                cost(&format!(r#"{{"api_key": "s", "cost": {bad}}}"#)),
                Err(Rejection::Body(
                    "\"cost\" must be a whole number from 0 to 1000000".into()
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn required_scopes_are_an_array_of_strings() {
        let ask = parse_body(br#"{"api_key": "s", "required_scopes": ["read", "w\u0072ite"]}"#);
        assert_eq!(ask.unwrap().required_scopes, ["read", "write"]);
        let none = parse_body(br#"{"api_key": "s", "required_scopes": null}"#).unwrap();
        assert!(none.required_scopes.is_empty());
        for bad in [r#""read""#, "[1]", r#"{"a": 1}"#, r#"["read", null]"#] {
            let body = format!(r#"{{"api_key": "s", "required_scopes": {bad}}}"#);
            assert_eq!(
                parse_body(body.as_bytes()),
                Err(Rejection::Body(
                    "\"required_scopes\" must be an array of strings".into()
                )),
                "{bad}"
            );
        }
    }
}
