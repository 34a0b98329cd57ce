//! The management API's errors: one JSON shape, `{"error": message, "code": CODE}`, with the
//! field at fault for invalid input and the headers a status calls for.

use heare_auth_core::{push_json_string, INVALID_TOKEN_CHALLENGE};

use crate::reply::Reply;

/// A refused management request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// What kind of error, in capitals (`NOT_FOUND`).
    pub code: &'static str,
    /// What was wrong, for a person.
    pub message: String,
    /// The input field at fault (422).
    pub field: Option<String>,
    /// Headers the status calls for (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

/// The challenge of a 401 to a request that presented no key.
const CHALLENGE: &str = "Bearer realm=\"heare-auth\"";

impl Problem {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            message: message.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    /// 401: no key was presented.
    pub fn no_key() -> Problem {
        let mut p = Problem::new(
            401,
            "UNAUTHORIZED",
            "send a key with the scope keys:read, keys:write or keys:admin as Authorization: Bearer <key>",
        );
        p.headers.push(("www-authenticate", CHALLENGE.to_string()));
        p
    }

    /// 401: the key presented is not a valid, enabled, unexpired key.
    pub fn bad_key() -> Problem {
        let mut p = Problem::new(401, "UNAUTHORIZED", "Invalid API key");
        p.headers
            .push(("www-authenticate", INVALID_TOKEN_CHALLENGE.to_string()));
        p
    }

    /// 403: the key lacks a scope.
    pub fn forbidden(message: impl Into<String>) -> Problem {
        Problem::new(403, "FORBIDDEN", message)
    }

    /// 404: no key has this id.
    pub fn not_found(id: &str) -> Problem {
        let mut message = String::from("no key has the id ");
        push_json_string(&mut message, id);
        Problem::new(404, "NOT_FOUND", message)
    }

    /// 409: the key is not as the conditional request's `If-Match` saw it.
    pub fn conflict(id: &str, current: &str) -> Problem {
        let mut p = Problem::new(
            409,
            "CONFLICT",
            format!(
                "the key {id} changed since it was read (If-Match); read it again (its ETag is \
                 now {current}) and retry"
            ),
        );
        p.headers.push(("etag", current.to_string()));
        p
    }

    /// 422: `field` is invalid.
    pub fn invalid(field: &str, message: impl Into<String>) -> Problem {
        let mut p = Problem::new(422, "INVALID_INPUT", message);
        p.field = Some(field.to_string());
        p
    }

    /// 429: a peer failed to authenticate too often; it may try again after `seconds`.
    pub fn throttled(seconds: u64) -> Problem {
        let mut p = Problem::new(
            429,
            "TOO_MANY_ATTEMPTS",
            format!("too many failed authentications from this address; retry in {seconds} s"),
        );
        p.headers.push(("retry-after", seconds.to_string()));
        p
    }

    /// 429: the admin key is over its own rate limit.
    pub fn rate_limited(seconds: u64) -> Problem {
        let mut p = Problem::new(429, "RATE_LIMITED", "the key is over its rate limit");
        p.headers.push(("retry-after", seconds.to_string()));
        p
    }

    /// 415: a body that is not JSON.
    pub fn not_json() -> Problem {
        Problem::new(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as JSON, with Content-Type: application/json",
        )
    }

    /// 413: a body over `limit` bytes (not read; the connection closes).
    pub fn too_large(limit: usize) -> Problem {
        Problem::new(
            413,
            "BODY_TOO_LARGE",
            format!("the request body is over {limit} bytes"),
        )
    }

    /// 405: a management path with another method; `Allow` is set by the caller.
    pub fn method_not_allowed() -> Problem {
        Problem::new(405, "METHOD_NOT_ALLOWED", "Method not allowed")
    }

    /// 503: the store cannot be read or written now.
    pub fn unavailable(message: impl Into<String>) -> Problem {
        let mut p = Problem::new(503, "STORE_UNAVAILABLE", message);
        p.headers.push(("retry-after", "1".to_string()));
        p
    }

    /// The answer.
    pub fn reply(self) -> Reply {
        let mut body = String::from("{\"error\":");
        push_json_string(&mut body, &self.message);
        body.push_str(",\"code\":");
        push_json_string(&mut body, self.code);
        if let Some(field) = &self.field {
            body.push_str(",\"field\":");
            push_json_string(&mut body, field);
        }
        body.push('}');
        let mut reply = Reply::json(self.status, body);
        reply.headers = self.headers;
        reply
    }
}

impl From<heare_auth_store::Error> for Problem {
    fn from(e: heare_auth_store::Error) -> Problem {
        Problem::unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_the_same_shape() {
        let reply = Problem::invalid("name", "has a \"quote\"").reply();
        assert_eq!(reply.status, 422);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "has a \"quote\"", "code": "INVALID_INPUT", "field": "name"})
        );
        let reply = Problem::throttled(12).reply();
        assert_eq!(reply.headers, [("retry-after", "12".to_string())]);
        assert!(Problem::no_key().reply().headers[0]
            .1
            .starts_with("Bearer realm="));
        let body: serde_json::Value =
            serde_json::from_str(&Problem::not_found("k\u{1b}").reply().body).unwrap();
        assert_eq!(body["error"], "no key has the id \"k\\u001b\"");
    }
}
