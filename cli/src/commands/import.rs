//! `import FILE`: the keys of a keys file, a JSON array, JSON Lines or CSV, checked by the
//! server's rules, then against the store's keys, and added to it; each refusal names the key
//! by where it is in the file, and the key it clashes with.

use heare_auth_core::{
    check_name, parse_timestamp, visible, CheckError, Document, Error, KeyRecord, KeySet,
};
use heare_auth_store::Store;

use super::import_formats::{about, position, ImportFormat, Staged};
use super::read;
use super::secrets::{hashed, Named};
use crate::check::error_message;
use crate::CliError;

/// The keys of a file to import, plaintext secrets replaced by their hashes.
#[derive(Debug)]
pub struct Incoming {
    /// The keys, in file order.
    pub records: Vec<KeyRecord>,
    /// Where each key is in the file: `line 3` (JSON Lines, CSV), `keys[2]` (a keys file),
    /// `[2]` (a JSON array).
    pub places: Vec<String>,
    /// How many of them had a plaintext secret.
    pub hashed: usize,
}

/// The keys of a file to import (its plaintext, read from `location` as `format`), each
/// `secret_hash` in lowercase hex and plaintext secrets replaced by their hashes. Refuses,
/// naming every key at fault by its place, a file that cannot be read as `format`, keys the
/// server would refuse or that repeat an id or a secret, ids or names holding a control
/// character, and timestamps that cannot be read.
pub fn read_import(
    location: &str,
    bytes: &[u8],
    format: ImportFormat,
) -> Result<Incoming, CliError> {
    let refused = |errors| CliError::Unimportable {
        location: location.to_string(),
        errors,
    };
    let source = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(&bytes[..e.valid_up_to()]);
        refused(vec![format!(
            "invalid UTF-8 at line {line}, column {column}"
        )])
    })?;
    let staged = format.stage(source).map_err(refused)?;
    let mut errors: Vec<(Option<usize>, String)> = staged
        .problems
        .iter()
        .map(|(i, message)| (Some(*i), message.clone()))
        .collect();
    let at_fault = |i: &usize| staged.problems.iter().any(|(p, _)| p == i);
    for e in KeySet::check(staged.text.as_bytes()).errors {
        // A key with a problem of its own is named once, for that problem.
        if !e.index.as_ref().is_some_and(at_fault) {
            errors.push((e.index, in_file(&staged, &e)));
        }
    }
    let mut incoming = Incoming {
        records: Vec::with_capacity(staged.places.len()),
        places: staged.places.clone(),
        hashed: 0,
    };
    if errors.is_empty() {
        let file = Document::parse(staged.text.as_bytes()).map_err(CliError::keys(location))?;
        for (i, record) in file.records().enumerate() {
            let record = record.map_err(CliError::keys(location))?;
            if let Err(problem) = own_rules(&record) {
                errors.push((Some(i), format!("{}: {problem}", staged.about(i))));
            }
            incoming.records.push(match hashed(&record) {
                Some(edited) => {
                    incoming.hashed += 1;
                    edited
                }
                None => record,
            });
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|(i, _)| *i);
        return Err(refused(errors.into_iter().map(|(_, e)| e).collect()));
    }
    Ok(incoming)
}

/// What an import asks of a key beyond what the server loads: an id and a name a person may
/// give (no control character, not too long), as `create --name` does, and timestamps that can
/// be read (the server would load a key whose expiry cannot be, and never verify it).
fn own_rules(record: &KeyRecord) -> Result<(), String> {
    check_name("id", &record.id).map_err(|e| e.to_string())?;
    check_name("name", &record.name).map_err(|e| e.to_string())?;
    for (field, value) in [
        ("expires_at", &record.expires_at),
        ("created_at", &record.created_at),
    ] {
        if let Some(value) = value {
            parse_timestamp(value)
                .map_err(|e| format!("field `{field}` is not a timestamp: {e}"))?;
        }
    }
    Ok(())
}

/// The checker's error about a staged file, said of the imported file: each key named by its
/// place, a position where the file has one.
fn in_file(staged: &Staged, e: &CheckError) -> String {
    let first_with = |id: &str| staged.ids.iter().position(|i| i.as_deref() == Some(id));
    match (e.index, &e.error) {
        (Some(i), Error::DuplicateId { id }) => match first_with(id) {
            Some(first) => format!("{}: same id as {}", staged.about(i), staged.places[first]),
            None => format!("{}: {}", staged.about(i), e.error),
        },
        (Some(i), Error::DuplicateSecret { first, .. }) => match first_with(first) {
            Some(j) => format!(
                "{}: same secret as key {} ({})",
                staged.about(i),
                visible(first),
                staged.places[j]
            ),
            None => format!("{}: {}", staged.about(i), e.error),
        },
        (
            index,
            Error::Json {
                line,
                column,
                message,
            },
        ) => {
            let what = match staged.file_position(*line, *column) {
                Some((line, column)) => {
                    format!(
                        "invalid JSON at line {line}, column {column}: {}",
                        visible(message)
                    )
                }
                None => visible(message).into_owned(),
            };
            match index {
                Some(i) => format!("{}: {what}", staged.about(i)),
                None => what,
            }
        }
        // A key without an id: its place names it.
        (Some(i), Error::MissingField { key, field }) if *key == format!("keys[{i}]") => {
            format!("{}: missing field `{field}`", staged.places[i])
        }
        (Some(i), Error::InvalidField { key, field, reason }) if *key == format!("keys[{i}]") => {
            format!("{}: field `{field}` {}", staged.places[i], visible(reason))
        }
        (Some(i), error) => format!("{}: {error}", staged.places[i]),
        (None, _) => error_message(e),
    }
}

/// `import`: adds `incoming` to the store, or with `write` false only makes sure it could;
/// the keys added, or that would be. Refuses, writing nothing, when any of their ids or
/// secrets (previous ones included) is already in the store.
pub fn import(store: &Store, incoming: &Incoming, write: bool) -> Result<Vec<Named>, CliError> {
    if write {
        let mut added = false;
        store.update_whole(|file: &mut Document| {
            add_all(store.location(), file, incoming, &mut added)
        })?;
    } else {
        let bytes = read(store)?;
        let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
        refuse_clashes(store.location(), &file, incoming)?;
    }
    Ok(incoming.records.iter().map(Named::of).collect())
}

/// Adds `incoming` to `file` unless it clashes; `added` says that an earlier application did,
/// so that finding them all there again is our own write read back, not a clash.
fn add_all(
    location: &str,
    file: &mut Document,
    incoming: &Incoming,
    added: &mut bool,
) -> Result<(), CliError> {
    let present = |r: &KeyRecord| matches!(file.get(&r.id), Some(Ok(stored)) if stored == *r);
    if *added && incoming.records.iter().all(present) {
        return Ok(());
    }
    refuse_clashes(location, file, incoming)?;
    for record in &incoming.records {
        file.push(record.clone());
    }
    *added = true;
    Ok(())
}

/// Refuses keys whose ids or secrets are already in `file`, naming each by its place in the
/// imported file and the stored key it clashes with.
fn refuse_clashes(location: &str, file: &Document, incoming: &Incoming) -> Result<(), CliError> {
    let unwritable = |e: serde_json::Error| CliError::KeyJson(e.to_string());
    let mut both = String::from("{\"keys\": [");
    let mut stored = Vec::with_capacity(file.len());
    for record in file.records() {
        let record = record.map_err(CliError::keys(location))?;
        both.push_str(&serde_json::to_string(&record).map_err(unwritable)?);
        both.push(',');
        stored.push(record.id);
    }
    for record in &incoming.records {
        both.push_str(&serde_json::to_string(record).map_err(unwritable)?);
        both.push(',');
    }
    if both.ends_with(',') {
        both.pop();
    }
    both.push_str("]}");
    let checked = KeySet::check(both.as_bytes());
    if checked.errors.is_empty() {
        return Ok(());
    }
    let n = stored.len();
    let about_incoming = |i: usize| about(&incoming.places[i], Some(&incoming.records[i].id));
    let incoming_with = |id: &str| incoming.records.iter().position(|r| r.id == id);
    let errors = checked.errors.iter().map(|e| match (e.index, &e.error) {
        (Some(i), Error::DuplicateId { id }) if i >= n => {
            format!(
                "{}: the store has a key {} already",
                about_incoming(i - n),
                visible(id)
            )
        }
        // The imported key's secret is a stored key's (its current or previous one).
        (Some(i), Error::DuplicateSecret { first, .. }) if i >= n => format!(
            "{}: same secret as key {} in the store",
            about_incoming(i - n),
            visible(first)
        ),
        // A stored key's previous secret is an imported key's secret.
        (Some(_), Error::DuplicateSecret { first, second }) => match incoming_with(first) {
            Some(j) => format!(
                "{}: same secret as key {} in the store",
                about_incoming(j),
                visible(second)
            ),
            _ => format!("in the store: {}", error_message(e)),
        },
        (Some(i), _) if i >= n => format!("{}: {}", about_incoming(i - n), e.error),
        _ => format!("in the store: {}", error_message(e)),
    });
    Err(CliError::Clash {
        location: location.to_string(),
        errors: errors.collect(),
    })
}

#[cfg(test)]
mod tests;
