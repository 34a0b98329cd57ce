//! An HTTP reply before it becomes a tiny_http response: a status and a JSON body.

use std::borrow::Cow;
use std::sync::LazyLock;
use tiny_http::{Header, Response, StatusCode};

use heare_auth_core::push_json_string;

/// Parsed once: every reply carries it.
static CONTENT_TYPE: LazyLock<Option<Header>> =
    LazyLock::new(|| Header::from_bytes("Content-Type", "application/json").ok());

/// A JSON response: every reply of this server has a JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: Cow<'static, str>,
    /// Value of an `Allow` header, for 405 replies.
    pub allow: Option<&'static str>,
}

impl Reply {
    /// A reply with a fixed or computed body.
    pub fn json(status: u16, body: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            status,
            body: body.into(),
            allow: None,
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

    /// Converts to a tiny_http response.
    pub fn into_response(self) -> Response<std::io::Cursor<Vec<u8>>> {
        let body = match self.body {
            Cow::Borrowed(s) => s.as_bytes().to_vec(),
            Cow::Owned(s) => s.into_bytes(),
        };
        let mut response = Response::from_data(body).with_status_code(StatusCode(self.status));
        if let Some(header) = &*CONTENT_TYPE {
            response.add_header(header.clone());
        }
        if let Some(Ok(header)) = self
            .allow
            .map(|methods| Header::from_bytes("Allow", methods))
        {
            response.add_header(header);
        }
        response
    }
}
