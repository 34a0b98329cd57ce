//! `update`: a pure edit of a key's name, metadata, scopes and expiry, applied by [`edit_key`];
//! applied twice, it finds nothing left to do. Everything else about the key is kept.

use serde_json::value::RawValue;

use heare_auth_core::{KeyRecord, UnixMillis};
use heare_auth_store::Store;

use super::edit::{edit_key, stamp};
use super::metadata_of;
use crate::cmd::{NewExpiry, UpdateArgs};
use crate::CliError;

/// A key after `update`.
#[derive(Debug)]
pub struct Updated {
    /// The key as it now is.
    pub record: KeyRecord,
    /// The fields this command changed, in the order `name`, `metadata`, `scopes`,
    /// `expires_at`; empty: the key already was as asked.
    pub changed: Vec<&'static str>,
}

/// The new values of the fields `update` was given; `None`: kept.
struct Changes {
    name: Option<String>,
    metadata: Option<Box<RawValue>>,
    scopes: Option<Vec<String>>,
    /// `Some(None)`: the key never expires.
    expires_at: Option<Option<String>>,
}

/// Updates the fields `args` gives of the key `args.id` at `now`. Metadata is checked as
/// `create` checks it before anything is read or written.
pub fn update(
    store: &Store,
    args: &UpdateArgs,
    now: UnixMillis,
    actor: &str,
) -> Result<Updated, CliError> {
    let changes = Changes {
        name: args.name.clone(),
        metadata: args.metadata.as_deref().map(metadata_of).transpose()?,
        scopes: args.scopes.clone(),
        expires_at: args.expires.as_ref().map(|e| match e {
            NewExpiry::At(at) => Some(at.timestamp(now)),
            NewExpiry::Never => None,
        }),
    };
    let mut fields = Vec::new();
    let edited = edit_key(store, &args.id, |record| {
        // Applied again to its own write read back, it returns above: `fields` keeps what the
        // write changed.
        let (edited, changed) = with_changes(record, &changes, now, actor)?;
        fields = changed;
        Some(edited)
    })?;
    Ok(Updated {
        record: edited.record,
        changed: if edited.changed { fields } else { Vec::new() },
    })
}

/// `record` with `changes` and the fields that differ; `None` when it already has them.
fn with_changes(
    record: &KeyRecord,
    changes: &Changes,
    now: UnixMillis,
    actor: &str,
) -> Option<(KeyRecord, Vec<&'static str>)> {
    let mut edited = record.clone();
    let mut changed = Vec::new();
    if let Some(name) = changes.name.as_ref().filter(|&n| *n != record.name) {
        edited.name = name.clone();
        changed.push("name");
    }
    let metadata = changes.metadata.as_ref();
    if let Some(metadata) = metadata.filter(|m| m.get() != record.compact_metadata().get()) {
        edited.metadata = metadata.clone();
        changed.push("metadata");
    }
    if let Some(scopes) = changes
        .scopes
        .as_ref()
        .filter(|&s| record.scope_list() != s.as_slice())
    {
        edited.scopes = Some(scopes.clone());
        changed.push("scopes");
    }
    if let Some(expires_at) = changes
        .expires_at
        .as_ref()
        .filter(|&e| *e != record.expires_at)
    {
        edited.expires_at = expires_at.clone();
        changed.push("expires_at");
    }
    if changed.is_empty() {
        return None;
    }
    stamp(&mut edited, now, actor);
    Some((edited, changed))
}
