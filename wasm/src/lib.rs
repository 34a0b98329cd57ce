//! heare-auth's verifier for JavaScript runtimes: a thin wasm-bindgen layer over the core.
//!
//! Each export wraps a plain `*_impl` function that returns `Result`, so the logic is tested
//! natively and the JS side only converts values and errors.

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
mod allocator;

use heare_auth_core::{
    authorize_scopes, check_headers, decrypt_file, required_scopes, spend, verify_request, KeySet,
    Route, UnixMillis, MAX_BODY, MAX_COST,
};
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/**
 * A verification's code: `VALID`, or why not (`MISSING_KEY`: a forward-auth request presented
 * no key). Codes may be added: treat any code you do not know as a failure.
 */
export type Code = "VALID" | "NOT_FOUND" | "EXPIRED" | "DISABLED" | "INSUFFICIENT_SCOPE" | "RATE_LIMITED" | "MISSING_KEY" | "USAGE_EXCEEDED" | (string & {});

/**
 * The `/verify` body: a valid key's id, name, metadata, scopes and expiry (RFC 3339, or null
 * when it never expires), or why not: `error` for people, `code` for programs. `remaining`:
 * what is left of the key's credits after the request, when it has credits and a balance was
 * given (on `USAGE_EXCEEDED`, the balance, untouched).
 */
export type VerifyBody =
  | {
      valid: true;
      key_id: string;
      name: string;
      metadata: Record<string, unknown>;
      code: "VALID";
      scopes: string[];
      expires_at: string | null;
      remaining?: number;
    }
  | { valid: false; error: string; code: Code; remaining?: number };

/**
 * Where a key's credits are counted at a moment: `pool` names the count of this period (the
 * key's id, when its credits were set, and the period: setting credits again, or a new day or
 * month of a refill, starts a new count), `allowance` is what the count starts from, and
 * `resetsAt` when the period ends (Unix ms), or null when the credits are never refilled.
 */
export type CreditsCount = {
  keyId: string;
  pool: string;
  allowance: number;
  resetsAt: number | null;
};

/** An answer to a `/verify` request: the HTTP status and the JSON body, byte for byte the server's. */
export type Reply = { status: number; body: string };

/**
 * An answer to a forward-auth request, the server's `/auth`: 200 with the key's identity in
 * `x-key-id`, `x-key-name`, `x-key-scopes` and `x-key-metadata`; 401 (no key, or one that is
 * unknown, expired or disabled) or 403 (a demanded scope missing) with `www-authenticate`.
 * Header names are in lower case. `body` is JSON text; `code` is `MISSING_KEY` when no key was
 * presented, else the verification's code.
 */
export type AuthReply = {
  status: 200 | 401 | 403;
  headers: [string, string][];
  body: string;
  code: Code;
};

/** A route of the server's table: what it does with a request of this method and path. */
export type RouteName =
  | "verify"
  | "refresh"
  | "auth"
  | "health"
  | "ready"
  | "metrics"
  | "manage"
  | "openapi"
  | "method_not_allowed"
  | "not_found";

/** Where the server sends a request, and for `method_not_allowed` the 405's `Allow` header. */
export type Routed = { route: RouteName; allow: string | null };
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
}

/// A loaded keys file, ready to verify secrets. Build it once and reuse it: loading parses and
/// indexes the file, verifying is one SHA-256 and one lookup.
#[wasm_bindgen]
pub struct Verifier {
    keys: KeySet,
    warnings: Vec<String>,
}

#[wasm_bindgen]
impl Verifier {
    /// `new Verifier(keysFile, storageSecret?)`: `keysFile` is the keys file as a string,
    /// `Uint8Array` or `ArrayBuffer` (plaintext, hashed or legacy; encrypted files need
    /// `storageSecret`). Throws an `Error` naming what is wrong in the file.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = keysFile, unchecked_param_type = "string | Uint8Array | ArrayBuffer")]
        keys_file: JsValue,
        #[wasm_bindgen(js_name = storageSecret)] storage_secret: Option<String>,
    ) -> Result<Verifier, JsError> {
        let bytes = bytes_of(&keys_file, "the keys file")?;
        Verifier::load_impl(&bytes, storage_secret.as_deref()).map_err(js_error)
    }

    /// `verify(secret, nowMs?, requiredScopes?, balance?, cost?)`: the `/verify` body as an
    /// object, `{valid: true, key_id, name, metadata, code, scopes, expires_at}` or `{valid:
    /// false, error, code}`. The key must hold every scope in `requiredScopes` (an array of
    /// strings). `balance` is what is left of the key's credits, counted by the caller (see
    /// `creditsOf`); with it, a valid key with credits pays `cost` (default 1; 0 only checks
    /// that some are left) from it and the body says what `remaining`, or is refused
    /// (`USAGE_EXCEEDED`) when it cannot pay. `nowMs` defaults to `Date.now()`.
    #[wasm_bindgen(unchecked_return_type = "VerifyBody")]
    pub fn verify(
        &self,
        secret: &str,
        // Typed by hand: a parameter with a declared type stops wasm-bindgen from marking the
        // ones before it optional.
        #[wasm_bindgen(js_name = nowMs, unchecked_optional_param_type = "number | null")]
        now_ms: Option<f64>,
        #[wasm_bindgen(
            js_name = requiredScopes,
            unchecked_optional_param_type = "string[] | null"
        )]
        required_scopes: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "number | null")] balance: Option<f64>,
        #[wasm_bindgen(unchecked_optional_param_type = "number | null")] cost: Option<f64>,
    ) -> Result<JsValue, JsError> {
        let body = self.verify_json(secret, now_ms, required_scopes, balance, cost)?;
        json_parse(&body).map_err(|_| js_error("the verifier produced invalid JSON"))
    }

    /// `verifyJson(secret, nowMs?, requiredScopes?, balance?, cost?)`: the `/verify` body as
    /// JSON text, byte for byte what the server answers.
    #[wasm_bindgen(js_name = verifyJson)]
    pub fn verify_json(
        &self,
        secret: &str,
        // Typed by hand: a parameter with a declared type stops wasm-bindgen from marking the
        // ones before it optional.
        #[wasm_bindgen(js_name = nowMs, unchecked_optional_param_type = "number | null")]
        now_ms: Option<f64>,
        #[wasm_bindgen(
            js_name = requiredScopes,
            unchecked_optional_param_type = "string[] | null"
        )]
        required_scopes: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "number | null")] balance: Option<f64>,
        #[wasm_bindgen(unchecked_optional_param_type = "number | null")] cost: Option<f64>,
    ) -> Result<String, JsError> {
        let now = now_impl(now_ms.unwrap_or_else(date_now)).map_err(js_error)?;
        let required = scopes_of(required_scopes)?;
        let balance = balance.map(balance_impl).transpose().map_err(js_error)?;
        let cost = cost.map(cost_impl).transpose().map_err(js_error)?;
        Ok(self.verify_json_impl(secret, now, &required, balance, cost.unwrap_or(1)))
    }

    /// `verifyRequest(contentType, body, nowMs?, balance?)`: the answer to a `POST /verify`
    /// request with this `Content-Type` (`null` or `undefined` when absent) and body (a string,
    /// `Uint8Array` or `ArrayBuffer`, `{"api_key": "...", "required_scopes": [...], "cost":
    /// N}`), as `{status, body}`: what the server answers, status and bytes alike. `balance`,
    /// what is left of the key's credits, is spent by the body's `cost` as `verify` spends it.
    /// `nowMs` defaults to `Date.now()`.
    #[wasm_bindgen(js_name = verifyRequest, unchecked_return_type = "Reply")]
    pub fn verify_request(
        &self,
        #[wasm_bindgen(js_name = contentType)] content_type: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | ArrayBuffer")] body: JsValue,
        #[wasm_bindgen(js_name = nowMs)] now_ms: Option<f64>,
        balance: Option<f64>,
    ) -> Result<JsValue, JsError> {
        let now = now_impl(now_ms.unwrap_or_else(date_now)).map_err(js_error)?;
        let body = bytes_of(&body, "the body")?;
        let balance = balance.map(balance_impl).transpose().map_err(js_error)?;
        self.verify_request_impl(content_type.as_deref(), &body, now, balance)
            .to_js()
    }

    /// `creditsOf(secret, nowMs?)`: where the credits of the key `secret` belongs to are counted
    /// at `nowMs`, `{keyId, pool, allowance, resetsAt}`, for the caller to keep the count and
    /// pass the balance (`allowance` less what the pool has spent) to `verify`; `null` when no
    /// key has the secret or the key has no credits. `nowMs` defaults to `Date.now()`.
    #[wasm_bindgen(js_name = creditsOf, unchecked_return_type = "CreditsCount | null")]
    pub fn credits_of(
        &self,
        secret: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: Option<f64>,
    ) -> Result<JsValue, JsError> {
        let now = now_impl(now_ms.unwrap_or_else(date_now)).map_err(js_error)?;
        match self.credits_of_impl(secret, now) {
            None => Ok(JsValue::NULL),
            Some(count) => object(&[
                ("keyId", count.key_id.into()),
                ("pool", count.pool.into()),
                ("allowance", (count.allowance as f64).into()),
                (
                    "resetsAt",
                    count.resets_at.map_or(JsValue::NULL, |t| (t as f64).into()),
                ),
            ]),
        }
    }

    /// `authorize(authorization, xApiKey, scopes, nowMs?)`: the answer to a forward-auth request
    /// with these `Authorization` and `X-API-Key` headers (each `null` or `undefined` when
    /// absent), demanding `scopes`: an array of scope names, or a query string (without the `?`)
    /// whose `scope` parameters name them, as a proxy passes it; `null` or `undefined` demands
    /// none. Returns `{status, headers, body, code}`: what the server's `/auth` answers. `nowMs`
    /// defaults to `Date.now()`.
    #[wasm_bindgen(unchecked_return_type = "AuthReply")]
    pub fn authorize(
        &self,
        // Typed by hand, every one: once a parameter has a declared type, wasm-bindgen marks
        // optional only those that have one too.
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] authorization: Option<
            String,
        >,
        #[wasm_bindgen(js_name = xApiKey, unchecked_optional_param_type = "string | null")]
        x_api_key: Option<String>,
        #[wasm_bindgen(unchecked_optional_param_type = "string[] | string | null")] scopes: Option<
            JsValue,
        >,
        #[wasm_bindgen(js_name = nowMs, unchecked_optional_param_type = "number | null")]
        now_ms: Option<f64>,
    ) -> Result<JsValue, JsError> {
        let now = now_impl(now_ms.unwrap_or_else(date_now)).map_err(js_error)?;
        let required = demanded_scopes(scopes)?;
        self.authorize_impl(
            authorization.as_deref(),
            x_api_key.as_deref(),
            required,
            now,
        )
        .to_js()
    }

    /// The number of keys loaded.
    #[wasm_bindgen(getter, js_name = keyCount)]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// What loaded but deserves attention, e.g. keys whose `expires_at` cannot be parsed (they
    /// never verify).
    #[wasm_bindgen(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

impl Verifier {
    /// Decrypts (when encrypted), parses and indexes a keys file.
    pub fn load_impl(
        bytes: &[u8],
        storage_secret: Option<&str>,
    ) -> Result<Verifier, heare_auth_core::Error> {
        let plain = decrypt_file(bytes, storage_secret)?;
        let (keys, warnings) = KeySet::from_json(&plain)?;
        let warnings = warnings.iter().map(ToString::to_string).collect();
        Ok(Verifier { keys, warnings })
    }

    /// The `/verify` body for `secret` at `now`, demanding `required_scopes`, spending `cost`
    /// from `balance` when given.
    pub fn verify_json_impl<S: AsRef<str>>(
        &self,
        secret: &str,
        now: UnixMillis,
        required_scopes: &[S],
        balance: Option<u64>,
        cost: u64,
    ) -> String {
        let outcome = self.keys.verify(secret, now, required_scopes);
        let (outcome, remaining) = spend(outcome, balance, cost);
        let mut body = String::with_capacity(160);
        outcome.write_json(&mut body, remaining);
        body
    }

    /// The answer to a `/verify` request with `content_type` and `body` at `now`, spending the
    /// body's cost from `balance` when given.
    pub fn verify_request_impl(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        now: UnixMillis,
        balance: Option<u64>,
    ) -> Reply {
        let mut verified = verify_request(&self.keys, content_type, body, now);
        verified.spend(balance);
        Reply {
            status: verified.status(),
            body: verified.to_json(),
        }
    }

    /// Where the credits of the key `secret` belongs to are counted at `now`; `None` when no key
    /// has the secret or the key has no credits.
    pub fn credits_of_impl(&self, secret: &str, now: UnixMillis) -> Option<CreditsCount> {
        // No scopes demanded, as `String`s: the instance of `verify` the other exports use.
        let key = self.keys.verify(secret, now, &[] as &[String]).key()?;
        let credits = key.credits()?;
        let period = credits.period(now);
        Some(CreditsCount {
            key_id: key.id().to_string(),
            pool: credits.pool(key.id(), period),
            allowance: credits.allowance(period),
            resets_at: credits.period_end(period),
        })
    }

    /// The answer to a forward-auth request with these headers at `now`, demanding `required`.
    pub fn authorize_impl(
        &self,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
        required: Vec<String>,
        now: UnixMillis,
    ) -> AuthReply {
        let answer = authorize_scopes(&self.keys, authorization, x_api_key, required, now);
        AuthReply {
            status: answer.status(),
            headers: answer.headers(),
            body: answer.to_json(),
            code: answer.code().as_str(),
        }
    }
}

/// `checkRequestHeaders(contentType, contentLength)`: for a `/verify` request with this
/// `Content-Type` and declared `Content-Length` (either `null` or `undefined` when absent), the
/// `{status, body}` to answer without reading the body, or `null` when the body may be read.
#[wasm_bindgen(js_name = checkRequestHeaders, unchecked_return_type = "Reply | null")]
pub fn check_request_headers(
    #[wasm_bindgen(js_name = contentType)] content_type: Option<String>,
    #[wasm_bindgen(js_name = contentLength)] content_length: Option<f64>,
) -> Result<JsValue, JsError> {
    let content_length = content_length
        .map(content_length_impl)
        .transpose()
        .map_err(js_error)?;
    match check_headers_impl(content_type.as_deref(), content_length) {
        Some(reply) => reply.to_js(),
        None => Ok(JsValue::NULL),
    }
}

/// `presentedKey(authorization, xApiKey)`: the key a request presents, `Authorization: Bearer`
/// first, then `X-API-Key` (either `null` or `undefined` when absent); `undefined` when none.
#[wasm_bindgen(js_name = presentedKey)]
pub fn presented_key(
    authorization: Option<String>,
    #[wasm_bindgen(js_name = xApiKey)] x_api_key: Option<String>,
) -> Option<String> {
    heare_auth_core::presented_key(authorization.as_deref(), x_api_key.as_deref()).map(String::from)
}

/// `route(method, path)`: where the server sends a request with this method (as sent: methods
/// are case-sensitive) and path (without the query), as `{route, allow}`; `allow` is the `Allow`
/// header of a 405 (`route` `method_not_allowed`), `null` for any other route.
#[wasm_bindgen(unchecked_return_type = "Routed")]
pub fn route(method: &str, path: &str) -> Result<JsValue, JsError> {
    let route = Route::of(method, path);
    object(&[
        ("route", route.name().into()),
        ("allow", route.allow().map_or(JsValue::NULL, JsValue::from)),
    ])
}

/// `maxBody()`: the largest `/verify` body accepted, in bytes (16384).
#[wasm_bindgen(js_name = maxBody)]
pub fn max_body() -> usize {
    MAX_BODY
}

/// Where a key's credits are counted at a moment (`CreditsCount` in TypeScript).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditsCount {
    /// The key's id.
    pub key_id: String,
    /// The name of this period's count.
    pub pool: String,
    /// What the count starts from.
    pub allowance: u64,
    /// When the period ends (Unix ms); `None`: never.
    pub resets_at: Option<UnixMillis>,
}

/// An HTTP answer: the status and the JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl Reply {
    /// As a plain JS object, `{status, body}`.
    fn to_js(&self) -> Result<JsValue, JsError> {
        object(&[
            ("status", self.status.into()),
            ("body", self.body.as_str().into()),
        ])
    }
}

/// A forward-auth answer: the status, the headers (names in lower case), the JSON body and the
/// code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReply {
    /// The HTTP status: 200, 401 or 403.
    pub status: u16,
    /// The headers to answer with, or on 200 to pass upstream.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
    /// `MISSING_KEY`, or the verification's code.
    pub code: &'static str,
}

impl AuthReply {
    /// As a plain JS object, `{status, headers: [[name, value], ...], body, code}`.
    fn to_js(&self) -> Result<JsValue, JsError> {
        let headers: Array = self
            .headers
            .iter()
            .map(|(name, value)| Array::of2(&(*name).into(), &value.as_str().into()))
            .collect();
        object(&[
            ("status", self.status.into()),
            ("headers", headers.into()),
            ("body", self.body.as_str().into()),
            ("code", self.code.into()),
        ])
    }
}

/// A plain JS object with these properties.
fn object(properties: &[(&str, JsValue)]) -> Result<JsValue, JsError> {
    let object = Object::new();
    for (name, value) in properties {
        Reflect::set(&object, &(*name).into(), value)
            .map_err(|_| js_error("could not build the reply object"))?;
    }
    Ok(object.into())
}

/// The answer to a `/verify` request refused on its headers alone, or `None` when its body may
/// be read.
pub fn check_headers_impl(
    content_type: Option<&str>,
    content_length: Option<u64>,
) -> Option<Reply> {
    check_headers(content_type, content_length)
        .err()
        .map(|rejection| Reply {
            status: rejection.status(),
            body: rejection.to_json(),
        })
}

/// A declared length from JS as a byte count: a whole number, not negative.
fn content_length_impl(length: f64) -> Result<u64, String> {
    // Lengths beyond u64 saturate, which is still over the limit.
    whole(length, u64::MAX, "contentLength as a whole number of bytes")
}

/// A balance from JS as credits: a whole number, not negative. Balances beyond u64 saturate:
/// they cover any cost.
fn balance_impl(balance: f64) -> Result<u64, String> {
    whole(balance, u64::MAX, "balance as a whole number of credits")
}

/// A cost from JS as credits: a whole number up to the most one request may spend.
fn cost_impl(cost: f64) -> Result<u64, String> {
    whole(cost, MAX_COST, "cost as a whole number from 0 to 1000000")
}

/// `value` as a whole number from 0 to `max`, or a message saying it was expected as `what`.
fn whole(value: f64, max: u64, what: &str) -> Result<u64, String> {
    if value >= 0.0 && value.fract() == 0.0 && value as u64 <= max {
        Ok(value as u64)
    } else {
        Err(format!("expected {what}, got {value}"))
    }
}

/// Milliseconds from JS as Unix milliseconds. NaN and infinities are refused: read as 0 they
/// would make every expiring key valid.
fn now_impl(now_ms: f64) -> Result<UnixMillis, String> {
    if now_ms.is_finite() {
        Ok(now_ms.floor() as UnixMillis)
    } else {
        Err(format!(
            "expected nowMs as a finite number of milliseconds, got {now_ms}"
        ))
    }
}

/// The scopes in `requiredScopes`: an array of strings, or none when `null` or `undefined`.
fn scopes_of(value: Option<JsValue>) -> Result<Vec<String>, JsError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    strings_of(&value).ok_or_else(|| js_error("expected requiredScopes as an array of strings"))
}

/// The scopes `authorize` demands: an array of strings, or a query string whose `scope`
/// parameters name them; none when `null` or `undefined`.
fn demanded_scopes(value: Option<JsValue>) -> Result<Vec<String>, JsError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    if let Some(query) = value.as_string() {
        return Ok(required_scopes(Some(&query)));
    }
    strings_of(&value)
        .ok_or_else(|| js_error("expected scopes as an array of strings or a query string"))
}

/// The strings of a JS array of strings; `None` for anything else.
fn strings_of(value: &JsValue) -> Option<Vec<String>> {
    Array::is_array(value)
        .then(|| {
            let array: &Array = value.unchecked_ref();
            array.iter().map(|s| s.as_string()).collect()
        })
        .flatten()
}

/// The bytes of `what` (the keys file, a body) given as a string, `Uint8Array` or `ArrayBuffer`.
fn bytes_of(value: &JsValue, what: &str) -> Result<Vec<u8>, JsError> {
    if let Some(text) = value.as_string() {
        Ok(text.into_bytes())
    } else if value.is_instance_of::<Uint8Array>() || value.is_instance_of::<ArrayBuffer>() {
        Ok(Uint8Array::new(value).to_vec())
    } else {
        Err(js_error(format_args!(
            "expected {what} as a string, Uint8Array or ArrayBuffer"
        )))
    }
}

/// The one conversion of errors into a JS `Error`.
fn js_error(err: impl std::fmt::Display) -> JsError {
    JsError::new(&err.to_string())
}

#[cfg(test)]
mod tests;
