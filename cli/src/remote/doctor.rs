//! `heare-auth doctor` through a server: whether its URL answers (`GET /health`), whether the
//! admin key is valid there (`GET /auth`) and which of `keys:read`, `keys:write` and
//! `keys:admin` it holds, and whether the management API is served; reported, never changing
//! anything, and never showing the key.

use serde::Serialize;

use heare_auth_core::visible;

use crate::remote::client::{Client, Reply};
use crate::CliError;

/// The scopes of the management API: `keys:write` and `keys:admin` imply reading.
const READ: &str = "keys:read";
const WRITE: &str = "keys:write";
const ADMIN: &str = "keys:admin";

/// What `doctor` found about a server.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The server's base URL.
    pub url: String,
    /// The status `GET /health` answered; `None`: no answer.
    pub health_status: Option<u16>,
    /// Whether the server accepts the admin key.
    pub key_valid: bool,
    /// The admin key's id, when it is valid.
    pub key_id: Option<String>,
    /// The admin key's name, when it is valid.
    pub key_name: Option<String>,
    /// The admin key's scopes, when it is valid.
    pub scopes: Vec<String>,
    /// Whether it may read keys (`keys:read`, `keys:write` or `keys:admin`).
    pub read: bool,
    /// Whether it may change keys (`keys:write` or `keys:admin`).
    pub write: bool,
    /// Whether it may do everything, keys holding `keys:` scopes included (`keys:admin`).
    pub admin: bool,
    /// Whether `GET /keys` is served; `None`: not asked (no key that may read).
    pub management_api: Option<bool>,
    /// Everything that is wrong, one sentence each.
    pub problems: Vec<String>,
}

/// Asks the server `client` reaches; never fails, it reports.
pub fn examine(client: &Client) -> Report {
    let mut report = Report {
        url: client.base().to_string(),
        ..Report::default()
    };
    match client.get_without_key("/health") {
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
        Ok(reply) => {
            report.health_status = Some(reply.status);
            if reply.status != 200 {
                report
                    .problems
                    .push(format!("{} answered HTTP {}", reply.url, reply.status));
            }
        }
    }
    match client.send("GET", "/auth", None) {
        Err(e) => report.problems.push(e.to_string()),
        Ok(reply) if reply.status == 200 => report.holds(&reply),
        Ok(reply) => report.problems.push(refused(&reply).to_string()),
    }
    if report.key_valid && !report.read {
        report.problems.push(format!(
            "the admin key holds none of {READ}, {WRITE} and {ADMIN}: the management API \
             refuses it everything"
        ));
    }
    if report.read {
        match client.send("GET", "/keys?limit=1", None) {
            Err(e) => report.problems.push(e.to_string()),
            Ok(reply) if (200..300).contains(&reply.status) => report.management_api = Some(true),
            Ok(reply) => {
                report.management_api = Some(reply.status != 404);
                report.problems.push(reply.error(None).to_string());
            }
        }
    }
    report
}

/// Why `/auth` refused the admin key, as an error naming the status and the request.
fn refused(reply: &Reply) -> CliError {
    let code = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|body| body["code"].as_str().map(String::from))
        .unwrap_or_default();
    let message = match code.as_str() {
        "NOT_FOUND" => "the admin key is not a key this server knows".into(),
        "EXPIRED" => "the admin key has expired".into(),
        "DISABLED" => "the admin key is disabled".into(),
        "RATE_LIMITED" => "the admin key is over its rate limit".into(),
        "" => "the admin key is refused".into(),
        code => format!("the admin key is refused: {code}"),
    };
    match reply.error(None) {
        CliError::Api {
            status,
            request_id,
            retry_after_secs,
            ..
        } => CliError::Api {
            status,
            message,
            request_id,
            retry_after_secs,
        },
        other => other,
    }
}

impl Report {
    /// Takes the admin key's identity from `/auth`'s headers.
    fn holds(&mut self, reply: &Reply) {
        self.key_valid = true;
        self.key_id = reply.header("x-key-id").map(percent_decoded);
        self.key_name = reply.header("x-key-name").map(percent_decoded);
        self.scopes = reply
            .header("x-key-scopes")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let held = |scope: &str| self.scopes.iter().any(|s| s == scope);
        self.admin = held(ADMIN);
        self.write = self.admin || held(WRITE);
        self.read = self.write || held(READ);
    }

    /// Whether nothing is wrong: the server answers, and the admin key may at least read.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as one JSON object (with `ok`).
    pub fn to_json(&self) -> String {
        crate::doctor::json_with_ok(self.ok(), self)
    }

    /// The report as lines for a person.
    pub fn to_text(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut out = format!("\nServer:     {}\n", visible(&self.url));
        out.push_str(&match self.health_status {
            Some(200) => "Health:     ok\n".to_string(),
            Some(status) => format!("Health:     HTTP {status}\n"),
            None => "Health:     no answer\n".to_string(),
        });
        if self.health_status.is_some() {
            out.push_str(&match (self.key_valid, &self.key_id, &self.key_name) {
                (true, Some(id), Some(name)) => {
                    format!("Admin key:  {} ({}), valid\n", visible(id), visible(name))
                }
                (true, _, _) => "Admin key:  valid\n".to_string(),
                (false, _, _) => "Admin key:  refused\n".to_string(),
            });
        }
        if self.key_valid {
            let scopes = match self.scopes.is_empty() {
                true => "-".to_string(),
                false => visible(&self.scopes.join(",")).into_owned(),
            };
            out.push_str(&format!("Scopes:     {scopes}\n"));
            out.push_str(&format!(
                "Access:     read {}, write {}, admin {}\n",
                yes_no(self.read),
                yes_no(self.write),
                yes_no(self.admin)
            ));
        }
        if let Some(served) = self.management_api {
            let served = if served { "served" } else { "not served" };
            out.push_str(&format!("Management: {served}\n"));
        }
        if self.ok() {
            out.push_str("\n✓ No problems found.\n");
        } else {
            out.push_str(&format!("\n✗ {} problem(s):\n", self.problems.len()));
            for problem in &self.problems {
                out.push_str(&format!("  - {}\n", visible(problem)));
            }
        }
        out
    }
}

/// A header value as `/auth` writes it (see core's `header_value`), decoded: `%XX` escapes are
/// bytes of UTF-8 text.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            url: "http://h/auth".into(),
            request_id: "ab".into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
            at: SystemTime::UNIX_EPOCH,
        }
    }

    fn held(scopes: &str) -> Report {
        let mut report = Report::default();
        let auth = reply(
            200,
            &[
                ("x-key-id", "key_admin"),
                ("x-key-name", "Zo%C3%AB%20ops"),
                ("x-key-scopes", scopes),
            ],
            "",
        );
        report.holds(&auth);
        report
    }

    #[test]
    fn write_and_admin_imply_read() {
        let access = |r: Report| (r.read, r.write, r.admin);
        assert_eq!(access(held("keys:admin")), (true, true, true));
        assert_eq!(access(held("read,keys:write")), (true, true, false));
        assert_eq!(access(held("keys:read")), (true, false, false));
        assert_eq!(access(held("read,write")), (false, false, false));
        assert_eq!(access(held("")), (false, false, false));
        let admin = held("keys:admin,read");
        assert_eq!(admin.scopes, ["keys:admin", "read"]);
        assert_eq!(
            (admin.key_id.as_deref(), admin.key_name.as_deref()),
            (Some("key_admin"), Some("Zoë ops"))
        );
    }

    #[test]
    fn a_refused_key_says_why_with_the_request() {
        let body = r#"{"code":"EXPIRED","error":"Invalid API key"}"#;
        let err = refused(&reply(401, &[], body));
        assert_eq!(
            err.to_string(),
            "the admin key has expired (HTTP 401, request ab)"
        );
        let limited = reply(429, &[("retry-after", "3")], r#"{"code":"RATE_LIMITED"}"#);
        assert_eq!(
            refused(&limited).to_string(),
            "the admin key is over its rate limit (HTTP 429, request ab); wait 3 s before \
             trying again"
        );
        assert_eq!(
            refused(&reply(403, &[], "<html>")).to_string(),
            "the admin key is refused (HTTP 403, request ab)"
        );
    }

    #[test]
    fn the_text_tells_what_was_found() {
        let mut report = held("keys:read");
        report.url = "http://h:8080".into();
        report.health_status = Some(200);
        report.management_api = Some(true);
        assert!(report.ok());
        assert_eq!(
            report.to_text(),
            "\nServer:     http://h:8080\nHealth:     ok\nAdmin key:  key_admin (Zoë ops), valid\n\
             Scopes:     keys:read\nAccess:     read yes, write no, admin no\n\
             Management: served\n\n✓ No problems found.\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            (&json["ok"], &json["read"], &json["write"], &json["key_id"]),
            (
                &serde_json::json!(true),
                &serde_json::json!(true),
                &serde_json::json!(false),
                &serde_json::json!("key_admin")
            )
        );
        let down = Report {
            url: "http://h:1".into(),
            problems: vec!["cannot reach the server: http://h:1/health: Connection Failed".into()],
            ..Report::default()
        };
        assert!(!down.ok());
        assert_eq!(
            down.to_text(),
            "\nServer:     http://h:1\nHealth:     no answer\n\n✗ 1 problem(s):\n  - cannot \
             reach the server: http://h:1/health: Connection Failed\n"
        );
    }

    #[test]
    fn percent_escapes_decode_and_the_rest_stays() {
        assert_eq!(percent_decoded("a%20b%2"), "a b%2");
        assert_eq!(percent_decoded("%E2%9C%93 100%"), "✓ 100%");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }
}
