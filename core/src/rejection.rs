//! The answer to a malformed `/verify` request (400 or 413): an outcome of the request, as a
//! key's [`crate::Outcome`] is, and not one of the core's errors ([`crate::Error`]).

use std::borrow::Cow;

use crate::push_json_string;

/// Largest `/verify` body accepted, in bytes: a larger one is [`Rejection::TooLarge`].
pub const MAX_BODY: usize = 16 * 1024;

/// Why a `/verify` request was refused before any key was looked at: the answer the caller
/// gets (a status and an `{"error"}` body), the way an [`crate::Outcome`] is the answer for a
/// key, rather than a failure of the code that found it. [`crate::Verified::Rejected`] holds it
/// beside the answered outcomes.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A `Content-Type` other than JSON (400).
    ContentType,
    /// A body over [`MAX_BODY`] (413).
    TooLarge,
    /// A body that is not `{"api_key": "..."}` (400), and what is wrong with it.
    Body(String),
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::TooLarge => 413,
            _ => 400,
        }
    }

    /// What is wrong, for the `error` field.
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            Rejection::ContentType => "expected Content-Type: application/json".into(),
            Rejection::TooLarge => {
                format!("request body too large (limit {MAX_BODY} bytes)").into()
            }
            Rejection::Body(message) => message.as_str().into(),
        }
    }

    /// The body of the answer: `{"error": "..."}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"error\":");
        push_json_string(&mut out, &self.message());
        out.push('}');
        out
    }
}
