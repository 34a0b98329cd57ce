//! The management API (`MANAGEMENT_API=1`): `/keys` and the paths under it, guarded by keys
//! with `keys:` scopes. Reads are answered from the served file's [`crate::catalog::Catalog`];
//! changes are checked here, then made on the keys writer ([`writer`]).

mod change;
mod guard;
mod input;
mod listing;
mod problem;
mod usage;
pub mod writer;

use std::time::Instant;

use heare_auth_core::{
    may, may_touch, percent_decode, public_json, time_json, with_member, Access, Manage, UnixMillis,
};

pub use guard::{Guard, MAX_FAILURES, WINDOW};
pub use listing::{MAX_LIMIT, MAX_SCANNED};
pub use problem::Problem;

use crate::app::{header, App, Handled, Request};
use crate::clock::now_ms;
use crate::reply::Reply;
use change::{Ask, Edit};
use guard::{authenticate, bearer, Actor};

/// Answers a management request: `op` on the key whose id is `id_segment` (percent-encoded,
/// as in the path), if any.
pub fn handle(app: &App, op: Manage, id_segment: Option<&str>, request: &Request) -> Handled {
    if !app.settings.management {
        return Handled::Reply(Reply::error(404, "Not found"));
    }
    if let Manage::MethodNotAllowed(allow) = op {
        let mut reply = Problem::method_not_allowed().reply();
        reply.allow = Some(allow);
        return Handled::Reply(reply);
    }
    match answer(app, op, id_segment, request) {
        Ok(handled) => handled,
        Err(problem) => Handled::Reply(problem.reply()),
    }
}

fn answer(
    app: &App,
    op: Manage,
    id_segment: Option<&str>,
    request: &Request,
) -> Result<Handled, Problem> {
    let now = now_ms();
    let actor = admit(app, request, now)?;
    let access = match op.writes() {
        true => Access::Write,
        false => Access::Read,
    };
    may(&actor.scope_list(), access).map_err(|denied| {
        log_refusal(request, &actor, "forbidden");
        Problem::forbidden(denied.0)
    })?;
    let id = id_segment.map(|segment| percent_decode(segment, false));
    let keys = app.keys.current();
    let catalog = keys
        .catalog()
        .ok_or_else(|| Problem::unavailable("the management API's catalog is not loaded"))?;
    if op.writes() {
        check_json(request)?;
    }
    let ask = Ask {
        actor,
        peer: request.peer.ip(),
        request_id: request.request_id.to_string(),
        if_match: header(request.headers, http::header::IF_MATCH).map(str::to_string),
        now,
    };
    let id = id.unwrap_or_default();
    let edit = match op {
        Manage::List => {
            let last_used = |id: &str| app.counts.usage.last_used(id);
            let body = listing::page(catalog, request.query, now, &last_used)?;
            return Ok(Handled::Reply(Reply::json(200, body)));
        }
        Manage::Usage => {
            let key = catalog.find(&id).ok_or_else(|| Problem::not_found(&id))?;
            return Ok(usage::usage(app, &key, now));
        }
        Manage::Show => {
            let key = catalog.find(&id).ok_or_else(|| Problem::not_found(&id))?;
            let last_used = time_json(app.counts.usage.last_used(&key.id));
            let shown = with_member(&public_json(&key, now), "last_used_at", &last_used);
            let mut reply = Reply::json(200, shown);
            reply.headers.push(("etag", key.etag()));
            return Ok(Handled::Reply(reply));
        }
        Manage::Create => {
            let new = input::new_key(request.body, now)?;
            let none: [&str; 0] = [];
            may_touch(
                &ask.actor.scope_list(),
                none,
                new.scopes.iter().map(String::as_str),
            )
            .map_err(|denied| {
                log_refusal(request, &ask.actor, "escalation");
                Problem::forbidden(denied.0)
            })?;
            return Ok(Handled::Write(Box::new(move |context| {
                change::create(context, &ask, new)
            })));
        }
        Manage::Update => Edit::Update(input::changes(request.body, now)?),
        Manage::Rotate => Edit::Rotate {
            grace_ms: input::grace(request.body)?,
        },
        Manage::Disable => {
            input::nothing(request.body, "disabling a key")?;
            Edit::Disable
        }
        Manage::Enable => {
            input::nothing(request.body, "enabling a key")?;
            Edit::Enable
        }
        Manage::Delete => {
            input::nothing(request.body, "deleting a key")?;
            Edit::Delete
        }
        Manage::MethodNotAllowed(_) => unreachable!("answered by handle"),
    };
    // An unknown id is answered at once; the writer checks again against the file.
    if catalog.position(&id).is_none() {
        return Err(Problem::not_found(&id));
    }
    Ok(Handled::Write(Box::new(move |context| {
        change::edit(context, &ask, &id, edit)
    })))
}

/// The actor of a request: its bearer key, if valid, from an address not refused for failing
/// too often.
fn admit(app: &App, request: &Request, now: UnixMillis) -> Result<Actor, Problem> {
    let peer = request.peer.ip();
    let started = Instant::now();
    app.guard.check(peer, started).inspect_err(|_| {
        log_failure(request, "throttled", "");
    })?;
    let authorization = request.headers.get(http::header::AUTHORIZATION);
    let Some(authorization) = authorization else {
        return Err(Problem::no_key());
    };
    let secret = match bearer(authorization.to_str().ok()) {
        Ok(secret) => secret,
        Err(()) => {
            app.guard.failed(peer, started);
            log_failure(request, "not_a_bearer_key", "");
            return Err(Problem::bad_key());
        }
    };
    let keys = app.keys.current();
    authenticate(&keys, &app.counts, secret, now).map_err(|problem| match problem {
        Some(problem) => problem,
        None => {
            app.guard.failed(peer, started);
            log_failure(request, "invalid_key", crate::app::prefix(secret));
            Problem::bad_key()
        }
    })
}

/// The 415 for a write whose body is not declared JSON (an empty body needs no type).
fn check_json(request: &Request) -> Result<(), Problem> {
    if request.body.is_empty() {
        return Ok(());
    }
    let media = header(request.headers, http::header::CONTENT_TYPE)
        .map(|t| t.split(';').next().unwrap_or_default().trim());
    match media {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(Problem::not_json()),
    }
}

fn log_failure(request: &Request, reason: &str, key_prefix: &str) {
    let peer = request.peer.ip().to_canonical().to_string();
    log::warn!(
        peer = peer.as_str(), request_id = request.request_id, reason = reason,
        key_prefix = key_prefix;
        "admin_auth_failed"
    );
}

fn log_refusal(request: &Request, actor: &Actor, reason: &str) {
    let (peer, who) = (request.peer.ip().to_canonical().to_string(), actor.name());
    log::warn!(
        peer = peer.as_str(), request_id = request.request_id, actor = who.as_str(),
        reason = reason;
        "admin_forbidden"
    );
}
