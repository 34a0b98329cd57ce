//! heare-auth's verifier for JavaScript runtimes: a thin wasm-bindgen layer over the core.
//!
//! Each export wraps a plain `*_impl` function that returns `Result`, so the logic is tested
//! natively and the JS side only converts values and errors.

use heare_auth_core::{decrypt_file, KeySet, UnixMillis};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const VERIFY_BODY: &str = r#"
/** The `/verify` body: a valid key's id, name and metadata, or why not. */
export type VerifyBody =
  | { valid: true; key_id: string; name: string; metadata: Record<string, unknown> }
  | { valid: false; error: string };
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
        let bytes = file_bytes(&keys_file)?;
        Verifier::load_impl(&bytes, storage_secret.as_deref()).map_err(js_error)
    }

    /// `verify(secret, nowMs?)`: the `/verify` body as an object, `{valid: true, key_id, name,
    /// metadata}` or `{valid: false, error}`. `nowMs` defaults to `Date.now()`.
    #[wasm_bindgen(unchecked_return_type = "VerifyBody")]
    pub fn verify(
        &self,
        secret: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: Option<f64>,
    ) -> Result<JsValue, JsError> {
        let body = self.verify_json(secret, now_ms)?;
        json_parse(&body).map_err(|_| JsError::new("the verifier produced invalid JSON"))
    }

    /// `verifyJson(secret, nowMs?)`: the `/verify` body as JSON text, byte for byte what the
    /// server answers.
    #[wasm_bindgen(js_name = verifyJson)]
    pub fn verify_json(
        &self,
        secret: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: Option<f64>,
    ) -> Result<String, JsError> {
        let now = now_impl(now_ms.unwrap_or_else(date_now)).map_err(js_error)?;
        Ok(self.verify_json_impl(secret, now))
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

    /// The `/verify` body for `secret` at `now`.
    pub fn verify_json_impl(&self, secret: &str, now: UnixMillis) -> String {
        self.keys.verify(secret, now).to_json()
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

/// The bytes of a keys file given as a string, `Uint8Array` or `ArrayBuffer`.
fn file_bytes(value: &JsValue) -> Result<Vec<u8>, JsError> {
    if let Some(text) = value.as_string() {
        Ok(text.into_bytes())
    } else if value.is_instance_of::<Uint8Array>() || value.is_instance_of::<ArrayBuffer>() {
        Ok(Uint8Array::new(value).to_vec())
    } else {
        Err(JsError::new(
            "expected the keys file as a string, Uint8Array or ArrayBuffer",
        ))
    }
}

/// The one conversion of errors into a JS `Error`.
fn js_error(err: impl std::fmt::Display) -> JsError {
    JsError::new(&err.to_string())
}

#[cfg(test)]
mod tests;
