//! The request handlers of core's route table ([`Route`]): `/verify`, `/refresh`, `/health`,
//! as plain synchronous functions of a request that the transport has already read.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

pub use heare_auth_core::Route;
use heare_auth_core::{Code, UnixMillis};

use heare_auth_core::{
    authorize, check_headers, format_timestamp, presented_key, verify_request, Outcome, Rejection,
    Verified, INVALID_TOKEN_CHALLENGE,
};

use crate::clock::now_ms;
use crate::config::Settings;
use crate::counts::Counts;
use crate::health::Health;
use crate::live::{Live, Served};
use crate::metrics::{Counted, Metrics, Readings, Stats};
use crate::reply::Reply;
use crate::Error;

/// The server's state shared by all worker threads.
pub struct App {
    /// The live key set.
    pub keys: Arc<Live>,
    /// How the keys loader fares.
    pub health: Arc<Health>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// What the transport counted.
    pub transport: Arc<Stats>,
    /// How the handlers answer.
    pub settings: Settings,
    /// Failed authentications to the management API, by address.
    pub guard: crate::manage::Guard,
    /// Rate limits, credits and usage, per replica or shared.
    pub counts: Arc<Counts>,
}

impl App {
    /// An app serving `keys`, which the keys loader reloads and records in `health`.
    pub fn new(
        keys: Arc<Live>,
        health: Arc<Health>,
        transport: Arc<Stats>,
        settings: Settings,
        counts: Arc<Counts>,
    ) -> App {
        App {
            keys,
            health,
            metrics: Metrics::default(),
            transport,
            settings,
            guard: crate::manage::Guard::default(),
            counts,
        }
    }
}

/// A request as the handlers see it: already read, nothing left to wait for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The TCP peer (not a forwarded-for header).
    pub peer: SocketAddr,
    /// Its id ([`crate::request_id`]), in every log line about it.
    pub request_id: &'a str,
    /// The authority of a request target in absolute form (`POST http://host/refresh`), which
    /// only proxies send.
    pub authority: Option<&'a str>,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body, for routes that read one; empty otherwise.
    pub body: &'a [u8],
}

/// What a handler decided.
pub enum Handled {
    /// Answer with this.
    Reply(Reply),
    /// Reload the keys off the request path, then answer with [`App::refreshed`].
    Reload,
    /// Make a change to the store on the keys writer, which answers.
    Write(crate::manage::writer::Job),
    /// Read the shared counts on the counts thread, which answers.
    Count(crate::counts::sync::Job),
}

impl App {
    /// Whether the handler of `route` reads the request body (the transport reads it first,
    /// within the body limit and timeout): core's rule, but for the management API when it is
    /// off, whose paths answer 404 as unknown ones do.
    pub fn reads_body(&self, route: Route) -> bool {
        match route {
            Route::Manage(_) if !self.settings.management => false,
            _ => route.reads_body(),
        }
    }

    /// Checks a request before its body is read: a reply here is sent without reading it.
    pub fn before_body(&self, route: Route, headers: &HeaderMap) -> Option<Reply> {
        if route != Route::Verify {
            return None;
        }
        let declared = header(headers, http::header::CONTENT_LENGTH)
            .and_then(|n| n.trim().parse::<u64>().ok());
        check_headers(content_type(headers), declared)
            .err()
            .map(|rejection| rejected(&rejection))
    }

    /// Answers a request routed to `route`.
    pub fn handle(&self, route: Route, request: &Request) -> Handled {
        let reply = match route {
            Route::Verify => self.handle_verify(request),
            Route::Auth => self.handle_auth(request),
            Route::Refresh => return self.handle_refresh(request),
            Route::Health => Reply::json(200, r#"{"status":"ok"}"#),
            Route::Ready => self.handle_ready(request),
            Route::Metrics { public } => self.handle_metrics(public, request),
            Route::MethodNotAllowed(allow) => method_not_allowed(allow),
            Route::Manage(op) => {
                let id = heare_auth_core::key_id_segment(request.path);
                return crate::manage::handle(self, op, id, request);
            }
            Route::OpenApi => openapi(),
            Route::NotFound => Reply::error(404, "Not found"),
        };
        Handled::Reply(reply)
    }

    fn handle_verify(&self, request: &Request) -> Reply {
        let started = Instant::now();
        let keys = self.keys.current();
        let now = now_ms();
        let mut verified = verify_request(&keys, content_type(request.headers), request.body, now);
        let Verified::Answered {
            secret,
            outcome,
            cost,
            remaining,
        } = &mut verified
        else {
            return match verified {
                Verified::Rejected(rejection) => rejected(&rejection),
                answered => Reply::json(answered.status(), answered.to_json()),
            };
        };
        (*outcome, *remaining) = self.count(&keys, *outcome, *cost, now);
        log_outcome("/verify", Some(outcome), secret, request);
        let mut reply = Reply::json(verified.status(), verified.to_json());
        if let Verified::Answered { outcome, .. } = &verified {
            if let Some(seconds) = outcome.retry_after_secs() {
                reply.headers.push(("retry-after", seconds.to_string()));
            }
            if matches!(outcome, Outcome::BadChecksum) {
                self.metrics.refused_checksum(Counted::Verify);
            }
            self.metrics
                .verification(Counted::Verify, outcome.code(), started.elapsed());
        }
        reply
    }

    fn handle_auth(&self, request: &Request) -> Reply {
        let started = Instant::now();
        let keys = self.keys.current();
        let authorization = header(request.headers, http::header::AUTHORIZATION);
        let x_api_key = request
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok());
        let now = now_ms();
        let mut answer = authorize(&keys, authorization, x_api_key, request.query, now);
        answer.outcome = answer.outcome.map(|o| self.count(&keys, o, 1, now).0);
        let secret = presented_key(authorization, x_api_key).unwrap_or_default();
        log_outcome("/auth", answer.outcome.as_ref(), secret, request);
        let status = match answer.outcome {
            Some(Outcome::RateLimited(..) | Outcome::UsageExceeded(_)) => {
                self.settings.rate_limit_status
            }
            _ => answer.status(),
        };
        let mut reply = Reply::json(status, answer.to_json());
        reply.headers = answer.headers();
        if status == 401
            && !reply
                .headers
                .iter()
                .any(|(name, _)| *name == "www-authenticate")
        {
            // A key over its limit, answered 401 for a proxy (RATE_LIMIT_STATUS): every 401
            // carries a challenge.
            reply
                .headers
                .push(("www-authenticate", INVALID_TOKEN_CHALLENGE.to_string()));
        }
        if matches!(answer.outcome, Some(Outcome::BadChecksum)) {
            self.metrics.refused_checksum(Counted::Auth);
        }
        self.metrics
            .verification(Counted::Auth, answer.code(), started.elapsed());
        reply
    }

    /// Applies `keys`' counts to an outcome at `now`: a valid key over its rate limit is
    /// [`Outcome::RateLimited`], one whose credits do not cover `cost` is
    /// [`Outcome::UsageExceeded`]; the key's usage is counted. Returns the outcome and what is
    /// left of the key's credits, when it has some.
    fn count<'k>(
        &self,
        keys: &'k Served,
        outcome: Outcome<'k>,
        cost: u64,
        now: UnixMillis,
    ) -> (Outcome<'k>, Option<u64>) {
        let Some(key) = outcome.key() else {
            return (outcome, None);
        };
        let mut remaining = None;
        let outcome = match outcome {
            Outcome::Valid(key) => match self.counts.take_key(keys, key, now) {
                Err(wait_ms) => outcome.limited(wait_ms),
                Ok(()) => match (key.credits(), keys.credits_of(key.id())) {
                    (Some(credits), Some(cell)) => {
                        match self.counts.spend(cell, credits, cost, now) {
                            Ok(left) => {
                                remaining = Some(left);
                                outcome
                            }
                            Err(left) => {
                                remaining = Some(left);
                                outcome.exhausted()
                            }
                        }
                    }
                    _ => outcome,
                },
            },
            other => other,
        };
        let valid = matches!(outcome, Outcome::Valid(_));
        self.counts.usage.record(key.id(), valid, now);
        (outcome, remaining)
    }

    fn handle_ready(&self, request: &Request) -> Reply {
        let age = self.health.read_age();
        let stale = self
            .settings
            .ready_max_staleness
            .filter(|&limit| age > limit);
        let Some(limit) = stale else {
            return Reply::json(200, r#"{"status":"ready"}"#);
        };
        if Local::of(request) != Local::Yes {
            return Reply::json(503, r#"{"status":"unavailable"}"#);
        }
        let mut reason = format!(
            "the keys store was last read {:.0} s ago (limit {:.0} s)",
            age.as_secs_f64(),
            limit.as_secs_f64()
        );
        if let Some(error) = self.health.last_error() {
            reason.push_str(": ");
            reason.push_str(&error);
        }
        let mut body = String::from(r#"{"status":"stale","reason":"#);
        heare_auth_core::push_json_string(&mut body, &reason);
        body.push('}');
        Reply::json(503, body)
    }

    fn handle_metrics(&self, public: bool, request: &Request) -> Reply {
        if !public {
            if let Some(refusal) = Local::of(request).refusal(
                "Metrics endpoint only accessible from localhost; set METRICS_ADDR to serve it to others",
            ) {
                return refusal;
            }
        }
        let keys = self.keys.current();
        let stats = &self.transport;
        let count = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        let snapshot = Readings {
            keys_loaded: keys.len(),
            last_load_secs: Some(self.health.last_load_ms() as f64 / 1000.0),
            reload_failures: self.health.failures(),
            open_connections: stats.open.load(Ordering::Relaxed) as u64,
            rejections: [
                (
                    "first_request_timeout",
                    count(&stats.first_request_timeouts),
                ),
                ("header_timeout", count(&stats.header_timeouts)),
                ("body_timeout", count(&stats.body_timeouts)),
                ("idle_timeout", count(&stats.idle_timeouts)),
                ("evicted_idle", count(&stats.evicted_idle)),
                ("evicted_slow", count(&stats.evicted_slow)),
                ("peer_cap", count(&stats.peer_cap)),
                ("peer_share", count(&stats.peer_share)),
                ("connection_cap", count(&stats.at_capacity)),
            ],
            accept_errors: count(&stats.accept_errors),
            redis_up: self.counts.shared(),
            replicas: self.counts.replicas(),
        };
        let mut reply = Reply::json(200, self.metrics.render(&snapshot));
        reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply
    }

    fn handle_refresh(&self, request: &Request) -> Handled {
        let local = Local::of(request);
        match local.refusal("Refresh endpoint only accessible from localhost") {
            None => Handled::Reload,
            Some(refusal) => {
                let peer_ip = request.peer.ip().to_canonical().to_string();
                let forwarded = match local {
                    Local::Forwarded(sign) => sign,
                    _ => "",
                };
                log::warn!(
                    peer = peer_ip.as_str(), forwarded = forwarded,
                    request_id = request.request_id;
                    "refresh_rejected"
                );
                Handled::Reply(refusal)
            }
        }
    }

    /// The `/refresh` answer once the reload asked for by [`Handled::Reload`] is done.
    pub fn refreshed(&self, result: Result<usize, Error>) -> Reply {
        match result {
            Ok(count) => {
                let timestamp = format_timestamp(now_ms());
                Reply::json(
                    200,
                    format!(
                        r#"{{"success":true,"keys_loaded":{count},"timestamp":"{timestamp}"}}"#
                    ),
                )
            }
            Err(e) => {
                let mut body = String::from(r#"{"success":false,"error":"#);
                heare_auth_core::push_json_string(&mut body, &format!("Refresh failed: {e}"));
                body.push('}');
                Reply::json(500, body)
            }
        }
    }
}

/// Logs one verification of `request` on `route`: the key's id and name, or the first
/// characters of what was presented, never the secret. `None`: no key was presented.
fn log_outcome(route: &str, outcome: Option<&Outcome>, secret: &str, request: &Request) {
    let (user_agent, request_id) = (&*user_agent(request), request.request_id);
    let Some(outcome) = outcome else {
        return log::info!(
            route = route, reason = "missing_key", code = Code::MissingKey.as_str(),
            user_agent = user_agent, request_id = request_id;
            "verification_failed"
        );
    };
    let (code, reason) = (
        outcome.code().as_str(),
        outcome.reason().unwrap_or_default(),
    );
    match (outcome, outcome.key()) {
        (Outcome::Valid(key), _) => log::info!(
            route = route, key_id = key.id(), key_name = key.name(), user_agent = user_agent,
            request_id = request_id;
            "verification_success"
        ),
        (_, Some(key)) => log::info!(
            route = route, reason = reason, code = code, key_id = key.id(), key_prefix = prefix(secret), user_agent = user_agent,
            request_id = request_id;
            "verification_failed"
        ),
        (_, None) => log::info!(
            route = route, reason = reason, code = code, key_prefix = prefix(secret),
            user_agent = user_agent, request_id = request_id; "verification_failed"
        ),
    }
}

/// Whether a request may reach the endpoints kept for this machine (`/refresh`, `/metrics`,
/// `/ready`'s reason): a loopback peer is not enough, since a proxy on this machine makes every
/// client one; a request that bears any sign of having been forwarded is not local either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Local {
    /// From this machine, directly.
    Yes,
    /// From another machine.
    Remote,
    /// From this machine, but through a proxy: the header (or absolute-form target) that shows it.
    Forwarded(&'static str),
}

/// Headers that proxies add to what they forward.
const FORWARDED_SIGNS: [&str; 7] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
    "x-original-uri",
];

impl Local {
    fn of(request: &Request) -> Local {
        if !request.peer.ip().to_canonical().is_loopback() {
            return Local::Remote;
        }
        if request.authority.is_some() {
            return Local::Forwarded("an absolute-form request target");
        }
        match FORWARDED_SIGNS
            .iter()
            .find(|name| request.headers.contains_key(**name))
        {
            Some(name) => Local::Forwarded(name),
            None => Local::Yes,
        }
    }

    /// The 403 for a request that is not local, `message` first.
    fn refusal(self, message: &str) -> Option<Reply> {
        match self {
            Local::Yes => None,
            Local::Remote => Some(Reply::error(403, message)),
            Local::Forwarded(sign) => Some(Reply::error(
                403,
                &format!("{message}, not through a proxy (the request carries {sign})"),
            )),
        }
    }
}

/// Characters of a client's `User-Agent` that a log line holds at most; a longer one is cut
/// there and ends in `…`, so that no request can write much to the log.
pub const MAX_LOGGED_AGENT: usize = 256;

/// The request's `User-Agent`, as text, cut to [`MAX_LOGGED_AGENT`] characters.
fn user_agent<'r>(request: &Request<'r>) -> std::borrow::Cow<'r, str> {
    let Some(value) = request.headers.get(http::header::USER_AGENT) else {
        return std::borrow::Cow::Borrowed("");
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.char_indices().nth(MAX_LOGGED_AGENT) {
        None => text,
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// The answer to a request refused before any key was looked at; a body too large closes the
/// connection (it was not read).
fn rejected(rejection: &Rejection) -> Reply {
    let reply = Reply::json(rejection.status(), rejection.to_json());
    match rejection {
        Rejection::TooLarge => reply.closing(),
        _ => reply,
    }
}

/// Characters of a presented key that are logged: enough to tell kinds apart (`sec_`).
const LOGGED_PREFIX: usize = 4;
/// The shortest presented key whose first [`LOGGED_PREFIX`] characters are logged: a prefix is
/// logged only as a small part (a quarter at most) of a long secret, never most of a short one.
const LOGGED_PREFIX_OF: usize = 16;

/// The first characters of a presented key, or nothing when they would tell much of it.
pub(crate) fn prefix(secret: &str) -> &str {
    let mut ends = secret.char_indices().map(|(i, _)| i);
    match (
        ends.nth(LOGGED_PREFIX),
        ends.nth(LOGGED_PREFIX_OF - LOGGED_PREFIX - 2),
    ) {
        (Some(end), Some(_)) => &secret[..end],
        _ => "",
    }
}

/// A header's value as text; `None` when absent or not visible ASCII.
pub fn header(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `Content-Type`; one that is not visible ASCII is present, and not JSON.
fn content_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::CONTENT_TYPE)?;
    Some(value.to_str().unwrap_or("(not ASCII)"))
}

/// The HTTP contract, `GET /openapi.yaml`.
fn openapi() -> Reply {
    let mut reply = Reply::json(200, include_str!("../../openapi.yaml"));
    reply.content_type = "application/yaml";
    reply
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = Reply::error(405, "Method not allowed");
    reply.allow = Some(allow);
    reply
}

/// The 413 answer to a body over [`crate::limits::MAX_BODY`].
pub fn too_large() -> Reply {
    rejected(&Rejection::TooLarge)
}

#[cfg(test)]
mod tests;
