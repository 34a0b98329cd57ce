//! An HTTP reply before it becomes a tiny_http response: a status and a JSON body.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tiny_http::{Header, Response, StatusCode};

use heare_auth_core::push_json_string;

/// Headers every reply carries, parsed once (tiny_http would otherwise build `Server` and `Date`
/// for each response).
static FIXED: LazyLock<Vec<Header>> = LazyLock::new(|| {
    [
        ("Content-Type", "application/json"),
        ("Server", "heare-auth"),
    ]
    .into_iter()
    .filter_map(|(name, value)| Header::from_bytes(name, value).ok())
    .collect()
});

thread_local! {
    /// This worker's `Date` header and the second it was made in.
    static DATE: RefCell<(u64, Option<Header>)> = const { RefCell::new((u64::MAX, None)) };
}

/// The `Date` header, formatted at most once a second per worker.
fn date() -> Option<Header> {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(made, header)| {
        if *made != second {
            *made = second;
            *header = Header::from_bytes("Date", httpdate::fmt_http_date(now)).ok();
        }
        header.clone()
    })
}

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
        for header in FIXED.iter().cloned().chain(date()) {
            response.add_header(header);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_carries_its_headers_once() {
        let mut reply = Reply::error(405, "Method not allowed");
        reply.allow = Some("POST");
        let response = reply.into_response();
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|h| format!("{}: {}", h.field, h.value))
            .collect();
        assert_eq!(headers.len(), 4, "{headers:?}");
        assert_eq!(headers[0], "Content-Type: application/json");
        assert_eq!(headers[1], "Server: heare-auth");
        assert!(headers[2].starts_with("Date: ") && headers[2].ends_with(" GMT"));
        assert_eq!(headers[3], "Allow: POST");
        assert_eq!(response.status_code(), StatusCode(405));
    }
}
