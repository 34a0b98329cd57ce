//! The framing rules of RFC 9112 that hyper leaves to the server: a request whose length or
//! target could be read two ways is refused, and its connection closed, before any route.
//!
//! Two parsers that read one request differently (a proxy in front, this server behind) are how
//! requests are smuggled; every rule here refuses what one of them might read otherwise.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::Version;

use crate::reply::Reply;

/// The refusal of a request whose framing or target is doubtful, or `None` when it is sound.
/// The reply closes the connection: where one request ends is not known.
pub fn refuse(parts: &Parts) -> Option<Reply> {
    let refusal = |status: u16, message: &str| Some(Reply::error(status, message).closing());
    let hosts = parts.headers.get_all(HOST).iter().count();
    if hosts > 1 {
        return refusal(400, "more than one Host header");
    }
    if hosts == 0 && parts.version == Version::HTTP_11 {
        return refusal(400, "an HTTP/1.1 request needs a Host header");
    }
    if let Some(host) = parts.headers.get(HOST) {
        if !valid_host(host.as_bytes()) {
            return refusal(400, "the Host header is not a host and port");
        }
    }
    let mut codings = 0;
    for line in parts.headers.get_all(TRANSFER_ENCODING) {
        let Ok(line) = line.to_str() else {
            return refusal(400, "the Transfer-Encoding header is not ASCII");
        };
        for coding in line.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("chunked") {
                return refusal(
                    501,
                    "Transfer-Encoding: only chunked is supported, without other codings",
                );
            }
            codings += 1;
        }
    }
    if codings > 1 {
        return refusal(400, "Transfer-Encoding: chunked is given more than once");
    }
    if codings == 1 && parts.version == Version::HTTP_10 {
        return refusal(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if codings == 1 && parts.headers.contains_key(CONTENT_LENGTH) {
        return refusal(400, "both Content-Length and Transfer-Encoding");
    }
    None
}

/// Whether a `Host` value is `uri-host [ ":" port ]` (empty is allowed, RFC 9110 section 7.2):
/// a registered name, an IPv4 address or a bracketed IPv6 literal, with no user information,
/// path, list or space.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        Some(i) if !value[i..].contains(&b']') => (&value[..i], Some(&value[i + 1..])),
        _ => (value, None),
    };
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    let host_ok = match host {
        [b'[', literal @ .., b']'] => literal
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
        name => name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(&b)),
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder().method("POST").uri("/verify");
        request = request.version(version);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
    }

    fn status(version: Version, headers: &[(&str, &str)]) -> Option<(u16, bool)> {
        refuse(&parts(version, headers)).map(|reply| (reply.status, reply.close))
    }

    const HTTP_11: Version = Version::HTTP_11;

    #[test]
    fn one_host_header_and_http_1_1_needs_one() {
        assert_eq!(status(HTTP_11, &[("host", "a")]), None);
        assert_eq!(status(HTTP_11, &[("host", "")]), None);
        assert_eq!(
            status(HTTP_11, &[("host", "a"), ("host", "b")]),
            Some((400, true))
        );
        assert_eq!(status(HTTP_11, &[]), Some((400, true)));
        assert_eq!(status(Version::HTTP_10, &[]), None);
        assert_eq!(
            status(Version::HTTP_10, &[("host", "a"), ("host", "a")]),
            Some((400, true))
        );
    }

    #[test]
    fn a_host_is_a_name_or_address_and_a_port() {
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8080",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(status(HTTP_11, &[("host", good)]), None, "{good}");
        }
        for bad in [
            "a b",
            "a,b",
            "user@example.com",
            "example.com/path",
            "example.com:80a",
            "example.com:123456",
            "[::1",
            "[zz::1]",
        ] {
            assert_eq!(
                status(HTTP_11, &[("host", bad)]),
                Some((400, true)),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_chunked_alone_as_transfer_coding() {
        let te = |value: &str| status(HTTP_11, &[("host", "a"), ("transfer-encoding", value)]);
        assert_eq!(te("chunked"), None);
        assert_eq!(te("Chunked"), None);
        assert_eq!(te("gzip, chunked"), Some((501, true)));
        assert_eq!(te("identity"), Some((501, true)));
        assert_eq!(te("chunked, chunked"), Some((400, true)));
        assert_eq!(
            status(
                HTTP_11,
                &[
                    ("host", "a"),
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            Some((400, true))
        );
        assert_eq!(
            status(
                HTTP_11,
                &[
                    ("host", "a"),
                    ("transfer-encoding", "chunked"),
                    ("content-length", "3")
                ]
            ),
            Some((400, true))
        );
        assert_eq!(
            status(Version::HTTP_10, &[("transfer-encoding", "chunked")]),
            Some((400, true))
        );
    }
}
