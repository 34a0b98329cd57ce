//! An HTTP reply before it becomes a hyper response: a status and a JSON body.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, SERVER};
use http::{Response, StatusCode};
use http_body_util::Full;

use heare_auth_core::push_json_string;

/// A response: a status, a body (JSON for every route but `/metrics`), and a few headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: Cow<'static, str>,
    /// Value of an `Allow` header, for 405 replies.
    pub allow: Option<&'static str>,
    /// Close the connection after this reply (`Connection: close`).
    pub close: bool,
    /// Further headers, names in lower case (`/auth` passes a key's identity in them).
    pub headers: Vec<(&'static str, String)>,
    /// The body's media type (JSON, but for `/metrics`).
    pub content_type: &'static str,
}

impl Reply {
    /// A reply with a fixed or computed body.
    pub fn json(status: u16, body: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            status,
            body: body.into(),
            allow: None,
            close: false,
            headers: Vec::new(),
            content_type: "application/json",
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Reply {
        let mut body = String::with_capacity(message.len() + 12);
        body.push_str("{\"error\":");
        push_json_string(&mut body, message);
        body.push('}');
        Reply::json(status, body)
    }

    /// The same reply, announcing that the connection closes after it.
    pub fn closing(mut self) -> Reply {
        self.close = true;
        self
    }

    /// Converts to a hyper response. hyper adds `Date` and `Content-Length`.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = match self.body {
            Cow::Borrowed(s) => Bytes::from_static(s.as_bytes()),
            Cow::Owned(s) => Bytes::from(s),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(SERVER, HeaderValue::from_static("heare-auth"));
        if let Some(methods) = self.allow {
            headers.insert(ALLOW, HeaderValue::from_static(methods));
        }
        if self.close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_carries_its_headers_once() {
        let mut reply = Reply::error(405, "Method not allowed");
        reply.allow = Some("POST");
        let response = reply.clone().into_response();
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                "content-type: application/json",
                "server: heare-auth",
                "allow: POST"
            ]
        );
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let closing = reply.closing().into_response();
        assert_eq!(closing.headers()[CONNECTION], "close");
    }
}
