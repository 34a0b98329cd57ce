//! Routing and the request handlers: `/verify`, `/refresh`, `/health`.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;
use tiny_http::{Method, Request};

use heare_auth_core::{format_timestamp, Outcome, UnixMillis};

use crate::keys::Keys;
use crate::reply::Reply;

/// Largest `/verify` body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// The server's state shared by all worker threads.
pub struct App {
    /// The live key set.
    pub keys: Keys,
}

#[derive(Deserialize)]
struct VerifyBody<'a> {
    #[serde(borrow, default)]
    api_key: Option<&'a RawValue>,
}

impl App {
    /// Routes one request to its handler.
    pub fn handle(&self, request: &mut Request) -> Reply {
        let path = request.url().split('?').next().unwrap_or_default();
        match (request.method(), path) {
            (Method::Post, "/verify") => self.handle_verify(request),
            (Method::Post, "/refresh") => self.handle_refresh(request.remote_addr()),
            (Method::Get, "/health") => Reply::json(200, r#"{"status":"ok"}"#),
            (_, "/verify" | "/refresh") => method_not_allowed("POST"),
            (_, "/health") => method_not_allowed("GET"),
            _ => Reply::error(404, "Not found"),
        }
    }

    fn handle_verify(&self, request: &mut Request) -> Reply {
        if let Some(ct) = header(request, "Content-Type") {
            let media = ct.split(';').next().unwrap_or_default().trim();
            if !media.eq_ignore_ascii_case("application/json") {
                return Reply::error(400, "expected Content-Type: application/json");
            }
        }
        if request.body_length().is_some_and(|n| n > MAX_BODY) {
            return too_large();
        }
        let mut body = Vec::new();
        let limit = MAX_BODY as u64 + 1;
        if let Err(e) = request.as_reader().take(limit).read_to_end(&mut body) {
            return Reply::error(400, &format!("could not read the request body: {e}"));
        }
        if body.len() > MAX_BODY {
            return too_large();
        }
        let secret = match api_key(&body) {
            Ok(secret) => secret,
            Err(message) => return Reply::error(400, &message),
        };
        let keys = self.keys.current();
        let outcome = keys.verify(&secret, now_ms());
        let user_agent = header(request, "User-Agent").unwrap_or_default();
        match outcome {
            Outcome::Valid(key) => log::info!(
                key_id = key.id(), key_name = key.name(), user_agent = user_agent;
                "verification_success"
            ),
            Outcome::Expired(key) => log::info!(
                reason = "expired", key_id = key.id(), key_prefix = prefix(&secret),
                user_agent = user_agent; "verification_failed"
            ),
            Outcome::NotFound => log::info!(
                reason = "not_found", key_prefix = prefix(&secret), user_agent = user_agent;
                "verification_failed"
            ),
        }
        let status = if outcome.valid_key().is_some() {
            200
        } else {
            403
        };
        Reply::json(status, outcome.to_json())
    }

    fn handle_refresh(&self, peer: Option<&SocketAddr>) -> Reply {
        let peer_ip = peer.map(|p| p.ip().to_canonical());
        if !peer_ip.is_some_and(|ip| ip.is_loopback()) {
            let peer = peer_ip.map(|ip| ip.to_string()).unwrap_or_default();
            log::warn!(peer = peer.as_str(); "refresh_rejected");
            return Reply::error(403, "Refresh endpoint only accessible from localhost");
        }
        match self.keys.reload() {
            Ok(count) => {
                log::info!(keys_loaded = count; "refresh_success");
                let timestamp = format_timestamp(now_ms());
                Reply::json(
                    200,
                    format!(
                        r#"{{"success":true,"keys_loaded":{count},"timestamp":"{timestamp}"}}"#
                    ),
                )
            }
            Err(e) => {
                let error = e.to_string();
                log::error!(error = error.as_str(); "refresh_failed");
                let mut reply = Reply::error(500, &format!("Refresh failed: {error}"));
                reply.body = reply.body.replacen('{', r#"{"success":false,"#, 1).into();
                reply
            }
        }
    }
}

/// Extracts `api_key` from a `/verify` body, or says what is wrong with the body.
fn api_key(body: &[u8]) -> Result<String, String> {
    const EXPECTED: &str = "expected a JSON object with an \"api_key\" string";
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(EXPECTED.into());
    }
    let parsed: VerifyBody = serde_json::from_slice(body).map_err(|e| match e.is_data() {
        true => EXPECTED.to_string(),
        false => format!("invalid JSON body: {e}"),
    })?;
    let raw = parsed.api_key.ok_or("missing field \"api_key\"")?;
    serde_json::from_str::<String>(raw.get()).map_err(|_| "\"api_key\" must be a string".into())
}

/// The first four characters of a presented key: enough to tell kinds apart, never the secret.
fn prefix(secret: &str) -> &str {
    let end = secret
        .char_indices()
        .nth(4)
        .map_or(secret.len(), |(i, _)| i);
    &secret[..end]
}

fn header<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = Reply::error(405, "Method not allowed");
    reply.allow = Some(allow);
    reply
}

fn too_large() -> Reply {
    Reply::error(413, "request body too large (limit 16384 bytes)")
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as UnixMillis)
}

#[cfg(test)]
mod tests;
