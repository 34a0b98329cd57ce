//! The management API's HTTP client: one request at a time, the admin key as a bearer token,
//! an `X-Request-Id` of its own so that an error can name the request, bounded waits, and
//! every answer that is not the one asked for turned into the CLI's error.

use std::io::Read;
use std::time::{Duration, SystemTime};

use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::remote::admin_key::AdminKey;
use crate::remote::target::{KeySource, Server};
use crate::CliError;

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, its answer read to the end included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: a page of 1000 keys with metadata at its bound is about 17 MB.
const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// Who is asking, for the server's logs.
const USER_AGENT: &str = concat!("heare-auth/", env!("CARGO_PKG_VERSION"));

/// A client of one server's management API.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: AdminKey,
}

/// A server's answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    /// The URL asked.
    pub url: String,
    /// The `X-Request-Id` it was asked with.
    pub request_id: String,
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// When the answer arrived, for a `Retry-After` given as a date.
    pub at: SystemTime,
}

impl Client {
    /// A client of the API at `base` (a base URL, see
    /// [`base_url`](crate::remote::target::base_url)) using `key`.
    pub fn new(base: &str, key: AdminKey) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(USER_AGENT)
            // A redirect is reported, not followed: the key is for this server only.
            .redirects(0)
            .build();
        Client {
            agent,
            base: base.to_string(),
            key,
        }
    }

    /// A client of `server`, its admin key read (from its file, when it is in one).
    pub fn of(server: Server) -> Result<Client, CliError> {
        let key = match server.key {
            KeySource::Env(key) => key,
            KeySource::File(path) => AdminKey::from_file(&path)?,
        };
        Ok(Client::new(&server.url, key))
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with the admin key and, when there is one, a JSON `body`; the
    /// answer whatever its status, or why none came.
    pub fn send(&self, method: &str, path: &str, body: Option<&str>) -> Result<Reply, CliError> {
        self.request(method, path, body, true)
    }

    /// Sends `GET path` without the admin key (for `/health`, which needs none).
    pub fn get_without_key(&self, path: &str) -> Result<Reply, CliError> {
        self.request("GET", path, None, false)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        with_key: bool,
    ) -> Result<Reply, CliError> {
        let url = format!("{}{path}", self.base);
        let request_id = request_id();
        let mut request = self
            .agent
            .request(method, &url)
            .set("X-Request-Id", &request_id);
        if with_key {
            request = request.set("Authorization", &self.key.bearer());
        }
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            // ureq names the URL itself when it got as far as using it.
            Err(ureq::Error::Transport(t)) if t.url().is_some() => {
                return Err(CliError::Unreachable(t.to_string()))
            }
            Err(e) => return Err(CliError::Unreachable(format!("{url}: {e}"))),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_string();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect();
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_ANSWER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::Unreachable(format!("{url}: reading the answer: {e}")))?;
        let reply = Reply {
            url,
            request_id,
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            at: SystemTime::now(),
        };
        if bytes.len() as u64 > MAX_ANSWER_BYTES {
            return Err(reply.unexpected(format!("an answer over {MAX_ANSWER_BYTES} bytes")));
        }
        Ok(reply)
    }
}

/// What the management API says in an error's body.
#[derive(Debug, Default, Deserialize)]
struct Problem {
    error: Option<String>,
    code: Option<String>,
}

impl Reply {
    /// A header's value, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON answer of a request that succeeded (2xx), read as `T`; for any other status,
    /// the error it means (see [`Reply::error`]) about the key `id` the request was about.
    pub fn json<T: DeserializeOwned>(&self, id: Option<&str>) -> Result<T, CliError> {
        if !(200..300).contains(&self.status) {
            return Err(self.error(id));
        }
        serde_json::from_str(&self.body)
            .map_err(|e| self.unexpected(format!("not the answer expected: {e}")))
    }

    /// The error an answer that is not a success means: the key `id` not found, as when the
    /// store has no such key; a management API that is not there; a redirect not followed; or
    /// the server's reason, with how long to wait when it said (`Retry-After`).
    pub fn error(&self, id: Option<&str>) -> CliError {
        if (300..400).contains(&self.status) {
            let to = self.header("location").unwrap_or("nowhere said");
            return self.unexpected(format!(
                "a redirect to {to}, not followed: give --url the server's own URL"
            ));
        }
        let problem: Problem = serde_json::from_str(&self.body).unwrap_or_default();
        let message = match (self.status, problem.code.as_deref(), id) {
            (404, Some("NOT_FOUND"), Some(id)) => return CliError::NotFound(id.to_string()),
            (404, Some("NOT_FOUND"), None) => problem.error,
            (404, _, _) => Some(format!(
                "{} is not a management API: is the server started with MANAGEMENT_API=1, \
                 and is --url (or HEARE_AUTH_URL) its base URL?",
                self.url
            )),
            _ => problem.error,
        };
        CliError::Api {
            status: self.status,
            message: message.unwrap_or_else(|| format!("{} gave no reason", self.url)),
            request_id: self.request_id.clone(),
            retry_after_secs: self
                .header("retry-after")
                .and_then(|value| retry_after_secs(value, self.at)),
        }
    }

    /// An answer the CLI cannot read, and why.
    pub fn unexpected(&self, reason: String) -> CliError {
        CliError::Unexpected {
            url: self.url.clone(),
            status: self.status,
            reason,
            request_id: self.request_id.clone(),
        }
    }
}

/// The seconds a `Retry-After` asks to wait, given in seconds or as an HTTP date after `now`
/// (a part of a second counted as one).
fn retry_after_secs(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let until = httpdate::parse_http_date(value).ok()?;
    let wait = until.duration_since(now).unwrap_or_default();
    Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

/// A new request id: 24 hex digits from the OS CSPRNG.
pub fn request_id() -> String {
    let mut bytes = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The path of the key `id` (`/keys/{id}`), and of one of its actions (`/keys/{id}/rotate`).
pub fn key_path(id: &str, action: Option<&str>) -> String {
    let mut path = format!("/keys/{}", encode(id));
    if let Some(action) = action {
        path.push('/');
        path.push_str(action);
    }
    path
}

/// `text` percent-encoded for a path segment or a query value: every byte but the unreserved
/// characters of RFC 3986 (letters, digits, `-._~`).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            true => out.push(char::from(b)),
            false => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            url: "http://h/keys/key_a".into(),
            request_id: "0123456789abcdef01234567".into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_569_434),
        }
    }

    fn api(status: u16, message: &str, retry_after_secs: Option<u64>) -> CliError {
        CliError::Api {
            status,
            message: message.into(),
            request_id: "0123456789abcdef01234567".into(),
            retry_after_secs,
        }
    }

    #[test]
    fn a_missing_key_is_not_found_as_in_the_store() {
        let body = r#"{"error": "API key not found: key_a", "code": "NOT_FOUND"}"#;
        assert_eq!(
            reply(404, &[], body).error(Some("key_a")),
            CliError::NotFound("key_a".into())
        );
        let err = reply(404, &[], body).json::<serde_json::Value>(Some("key_a"));
        assert_eq!(err.unwrap_err().to_string(), "API key not found: key_a");
    }

    #[test]
    fn a_404_without_the_code_is_a_missing_management_api() {
        let err = reply(404, &[], r#"{"error": "Not found"}"#).error(Some("key_a"));
        assert_eq!(
            err,
            api(
                404,
                "http://h/keys/key_a is not a management API: is the server started with \
                 MANAGEMENT_API=1, and is --url (or HEARE_AUTH_URL) its base URL?",
                None
            )
        );
    }

    #[test]
    fn every_other_refusal_is_the_servers_reason_and_the_request() {
        let cases = [
            (
                401,
                r#"{"error": "Invalid admin key", "code": "UNAUTHORIZED"}"#,
            ),
            (
                403,
                r#"{"error": "keys:write needed", "code": "FORBIDDEN"}"#,
            ),
            (409, r#"{"error": "the key changed", "code": "CONFLICT"}"#),
            (
                422,
                r#"{"error": "name must not be empty", "code": "INVALID_INPUT", "field": "name"}"#,
            ),
            (
                503,
                r#"{"error": "store down", "code": "STORE_UNAVAILABLE"}"#,
            ),
        ];
        for (status, body) in cases {
            let message = serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]
                .as_str()
                .unwrap()
                .to_string();
            let err = reply(status, &[], body).error(Some("key_a"));
            assert_eq!(err, api(status, &message, None), "{status}");
            assert_eq!(err.exit_code(), 1);
            assert!(err.to_string().ends_with(&format!(
                "(HTTP {status}, request 0123456789abcdef01234567)"
            )));
        }
        assert_eq!(
            reply(502, &[], "<html>Bad Gateway</html>").error(None),
            api(502, "http://h/keys/key_a gave no reason", None)
        );
    }

    #[test]
    fn retry_after_says_how_long_to_wait() {
        let body = r#"{"error": "Too many attempts", "code": "TOO_MANY_ATTEMPTS"}"#;
        let err = reply(429, &[("retry-after", "30")], body).error(None);
        assert_eq!(err, api(429, "Too many attempts", Some(30)));
        assert!(err.to_string().ends_with("; wait 30 s before trying again"));
        // As a date: 1_795_569_434 is Wed, 25 Nov 2026 01:17:14 GMT.
        let dated = reply(
            429,
            &[("retry-after", "Wed, 25 Nov 2026 01:18:00 GMT")],
            body,
        );
        assert_eq!(dated.error(None), api(429, "Too many attempts", Some(46)));
        let past = reply(
            429,
            &[("retry-after", "Wed, 25 Nov 2026 01:00:00 GMT")],
            body,
        );
        assert_eq!(past.error(None), api(429, "Too many attempts", Some(0)));
        let odd = reply(429, &[("retry-after", "soon")], body);
        assert_eq!(odd.error(None), api(429, "Too many attempts", None));
    }

    #[test]
    fn a_redirect_or_an_unreadable_success_is_unexpected() {
        let moved = reply(301, &[("location", "https://h/keys/key_a")], "");
        assert_eq!(
            moved.error(None).to_string(),
            "http://h/keys/key_a answered HTTP 301: a redirect to https://h/keys/key_a, not \
             followed: give --url the server's own URL (request 0123456789abcdef01234567)"
        );
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "only whether it reads matters")]
        struct Page {
            keys: Vec<String>,
        }
        let err = reply(200, &[], r#"{"items": []}"#)
            .json::<Page>(None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "http://h/keys/key_a answered HTTP 200: not the answer expected: missing field \
             `keys` at line 1 column 13 (request 0123456789abcdef01234567)"
        );
    }

    #[test]
    fn ids_are_percent_encoded_and_request_ids_are_24_hex_digits() {
        assert_eq!(key_path("key_0Ab", None), "/keys/key_0Ab");
        assert_eq!(
            key_path("a/b c?é%", Some("rotate")),
            "/keys/a%2Fb%20c%3F%C3%A9%25/rotate"
        );
        assert_eq!(encode("x-._~"), "x-._~");
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert!(
            a.len() == 24
                && a.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    /// Answers one request on a loopback port with `status` and `body`; the URL, and the
    /// request as received.
    fn one_answer(
        status: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                request.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut content = vec![0; length];
            reader.read_exact(&mut content).unwrap();
            request.push_str(&String::from_utf8(content).unwrap());
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            (&conn).write_all(answer.as_bytes()).unwrap();
            request
        });
        (url, handle)
    }

    fn key() -> AdminKey {
        AdminKey::new("sec_admin_key", "test").unwrap().unwrap()
    }

    #[test]
    fn a_request_carries_the_key_its_id_and_who_asks() {
        let (url, server) = one_answer("201 Created", r#"{"id": "key_a"}"#);
        let client = Client::new(&url, key());
        let reply = client
            .send("POST", "/keys", Some(r#"{"name":"A"}"#))
            .unwrap();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (201, r#"{"id": "key_a"}"#)
        );
        let request = server.join().unwrap();
        let lines: Vec<&str> = request.split("\r\n").collect();
        assert_eq!(lines[0], "POST /keys HTTP/1.1");
        let has = |line: String| assert!(lines.contains(&line.as_str()), "{line}: {request}");
        has("Authorization: Bearer sec_admin_key".into());
        has("Content-Type: application/json".into());
        has(format!(
            "User-Agent: heare-auth/{}",
            env!("CARGO_PKG_VERSION")
        ));
        has(format!("X-Request-Id: {}", reply.request_id));
        assert!(request.ends_with("\r\n\r\n{\"name\":\"A\"}"), "{request}");

        let (url, server) = one_answer("200 OK", r#"{"status": "ok"}"#);
        let reply = Client::new(&url, key()).get_without_key("/health").unwrap();
        assert_eq!(reply.status, 200);
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(!request.contains("sec_admin_key") && !request.contains("Content-Type"));
    }

    #[test]
    fn an_unreachable_server_is_named_and_the_key_is_not() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let err = Client::new(&url, key())
            .send("GET", "/keys", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "cannot reach the server: {url}/keys: Connection Failed"
            )),
            "{err}"
        );
        assert!(!err.contains("sec_admin_key"), "{err}");
    }
}
