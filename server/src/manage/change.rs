//! The management API's changes, as run on the keys writer: each goes through the store's
//! conditional read-edit-write as the CLI's do, checks the caller's `If-Match` and scopes
//! against the key as it is in the file at that moment, is logged with who made it, and is
//! served by this replica before it is answered.

use std::net::IpAddr;

use rand_core::OsRng;

use heare_auth_core::{
    created_json, format_timestamp, generate_id, generate_secret, hash_secret, may_touch,
    public_json, push_json_string, time_json, with_changes, with_disabled, with_member,
    with_new_secret, Changes, Document, KeyRecord, UnixMillis,
};

use super::guard::Actor;
use super::input::NewKey;
use super::problem::Problem;
use super::writer::Context;
use crate::reply::Reply;

/// Who asks for a change, and on what terms.
#[derive(Clone, Debug)]
pub struct Ask {
    pub actor: Actor,
    pub peer: IpAddr,
    pub request_id: String,
    /// The `If-Match` header, when given.
    pub if_match: Option<String>,
    pub now: UnixMillis,
}

/// A change to one existing key.
#[derive(Debug)]
pub enum Edit {
    Update(Changes),
    Rotate { grace_ms: u64 },
    Disable,
    Enable,
    Delete,
}

impl Edit {
    /// The audit event of the change.
    fn event(&self) -> &'static str {
        match self {
            Edit::Update(_) => "key_updated",
            Edit::Rotate { .. } => "key_rotated",
            Edit::Disable => "key_disabled",
            Edit::Enable => "key_enabled",
            Edit::Delete => "key_deleted",
        }
    }
}

/// `POST /keys`: adds the key, with an id and secret made once.
pub fn create(context: &Context, ask: &Ask, new: NewKey) -> Reply {
    let now = ask.now;
    let secret = generate_secret(&context.prefixes.secret, &mut OsRng, now);
    let actor = ask.actor.name();
    let record = KeyRecord {
        id: generate_id(&context.prefixes.id, &mut OsRng, now),
        secret_hash: Some(hash_secret(&secret).to_hex()),
        name: new.name,
        created_at: Some(format_timestamp(now)),
        created_by: Some(actor.clone()),
        updated_at: Some(format_timestamp(now)),
        updated_by: Some(actor),
        expires_at: new.expires_at,
        scopes: (!new.scopes.is_empty()).then_some(new.scopes),
        rate_limit: new.rate_limit,
        credits: new.credits,
        metadata: new
            .metadata
            .unwrap_or_else(|| KeyRecord::default().metadata),
        ..KeyRecord::default()
    };
    let written = context.update(|file: &mut Document| {
        if file.get(&record.id).is_none() {
            file.push(record.clone());
        }
        Ok::<(), Problem>(())
    });
    if let Err(problem) = written {
        return failed(ask, "key_create_failed", None, problem);
    }
    served(context);
    audit(ask, "key_created", &record.id, "");
    let mut reply = Reply::json(201, created_json(&record, &secret));
    reply.headers.push(("etag", record.etag()));
    reply.headers.push(("location", location(&record.id)));
    reply
}

/// Applies `edit` to the key `id`.
pub fn edit(context: &Context, ask: &Ask, id: &str, edit: Edit) -> Reply {
    let secret = match &edit {
        Edit::Rotate { .. } => Some(generate_secret(
            &context.prefixes.secret,
            &mut OsRng,
            ask.now,
        )),
        _ => None,
    };
    let new_hash = secret.as_deref().map(|s| hash_secret(s).to_hex());
    // What the edit saw and did: kept across the store's retries.
    let mut mine: Option<KeyRecord> = None;
    let mut before: Option<KeyRecord> = None;
    let mut fields: Vec<&'static str> = Vec::new();
    let mut replaced_previous = false;
    let actor = ask.actor.name();
    let written = context.update(|file: &mut Document| {
        let record = match file.get(id) {
            Some(Ok(record)) => record,
            Some(Err(e)) => return Err(Problem::unavailable(format!("the keys file: {e}"))),
            // Our own delete, read back.
            None if matches!(edit, Edit::Delete) && before.is_some() => return Ok(()),
            None => return Err(Problem::not_found(id)),
        };
        if mine.as_ref() == Some(&record) {
            // Our own write, read back: nothing left to do.
            return Ok(());
        }
        check_if_match(ask.if_match.as_deref(), id, &record)?;
        let after: &[String] = match &edit {
            Edit::Update(changes) => changes.scopes.as_deref().unwrap_or_default(),
            _ => &[],
        };
        may_touch(
            &ask.actor.scope_list(),
            record.scope_list().iter().map(String::as_str),
            after.iter().map(String::as_str),
        )
        .map_err(|denied| Problem::forbidden(denied.0))?;
        before = Some(record.clone());
        let edited = match &edit {
            Edit::Update(changes) => {
                with_changes(&record, changes, ask.now, &actor).map(|(edited, changed)| {
                    fields = changed;
                    edited
                })
            }
            Edit::Rotate { grace_ms } => {
                let hash = new_hash.as_deref().unwrap_or_default();
                with_new_secret(&record, hash, *grace_ms, ask.now, &actor).map(
                    |(edited, replaced)| {
                        replaced_previous = replaced;
                        edited
                    },
                )
            }
            Edit::Disable => with_disabled(&record, true, ask.now, &actor),
            Edit::Enable => with_disabled(&record, false, ask.now, &actor),
            Edit::Delete => {
                let _ = file.remove(id);
                return Ok(());
            }
        };
        match edited {
            Some(edited) => {
                file.replace(edited.clone());
                mine = Some(edited);
            }
            None => mine = None,
        }
        Ok(())
    });
    let changed = match written {
        Ok(changed) => changed,
        Err(problem) => return failed(ask, edit.event(), Some(id), problem),
    };
    let Some(before) = before else {
        return Problem::not_found(id).reply();
    };
    if changed {
        served(context);
        audit(ask, edit.event(), id, &fields.join(","));
    }
    let key = mine.unwrap_or_else(|| before.clone());
    let shown = |key: &KeyRecord| {
        let last_used = time_json(context.counts.usage.last_used(&key.id));
        with_member(&public_json(key, ask.now), "last_used_at", &last_used)
    };
    let public = shown(&key);
    let body = match &edit {
        Edit::Delete => format!("{{\"key\":{},\"deleted\":true}}", shown(&before)),
        Edit::Update(_) => {
            let changed: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
            format!("{{\"key\":{public},\"changed\":[{}]}}", changed.join(","))
        }
        Edit::Disable | Edit::Enable => format!("{{\"key\":{public},\"changed\":{changed}}}"),
        Edit::Rotate { .. } => {
            let mut body = String::from("{\"id\":");
            push_json_string(&mut body, &key.id);
            body.push_str(",\"secret\":");
            push_json_string(&mut body, secret.as_deref().unwrap_or_default());
            body.push_str(",\"name\":");
            push_json_string(&mut body, &key.name);
            body.push_str(",\"previous_expires_at\":");
            match &key.previous_expires_at {
                Some(at) => push_json_string(&mut body, at),
                None => body.push_str("null"),
            }
            body.push_str(&format!(
                ",\"replaced_previous\":{replaced_previous},\"key\":{public}}}"
            ));
            body
        }
    };
    let mut reply = Reply::json(200, body);
    if !matches!(edit, Edit::Delete) {
        reply.headers.push(("etag", key.etag()));
    }
    reply
}

/// Refuses a change to `record` when `If-Match` names none of its tags (`*` matches any key;
/// a weak tag never does, as If-Match compares strongly).
fn check_if_match(if_match: Option<&str>, id: &str, record: &KeyRecord) -> Result<(), Problem> {
    let Some(wanted) = if_match else {
        return Ok(());
    };
    let tag = record.etag();
    match wanted
        .split(',')
        .map(str::trim)
        .any(|w| w == "*" || w == tag)
    {
        true => Ok(()),
        false => Err(Problem::conflict(id, &tag)),
    }
}

/// Has this replica serve the change now; should the reload fail, the change is stored all the
/// same, and the next poll serves it.
fn served(context: &Context) {
    if let Err(e) = context.loader.reload_blocking() {
        log::error!(error:% = e; "change_not_yet_served");
    }
}

/// Logs a change made.
fn audit(ask: &Ask, event: &'static str, key_id: &str, changed: &str) {
    let (actor, peer) = (ask.actor.name(), ask.peer.to_canonical().to_string());
    log::info!(
        actor = actor.as_str(), peer = peer.as_str(), request_id = ask.request_id.as_str(),
        key_id = key_id, changed = changed;
        "{event}"
    );
}

/// Logs a change refused or failed, and answers it.
fn failed(ask: &Ask, event: &'static str, key_id: Option<&str>, problem: Problem) -> Reply {
    let (actor, peer) = (ask.actor.name(), ask.peer.to_canonical().to_string());
    log::warn!(
        actor = actor.as_str(), peer = peer.as_str(), request_id = ask.request_id.as_str(),
        key_id = key_id.unwrap_or_default(), operation = event, status = problem.status,
        code = problem.code, error = problem.message.as_str();
        "change_refused"
    );
    problem.reply()
}

/// `/keys/{id}`, the id percent-encoded.
pub fn location(id: &str) -> String {
    let mut path = String::from("/keys/");
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                path.push(char::from(b))
            }
            _ => path.push_str(&format!("%{b:02X}")),
        }
    }
    path
}
