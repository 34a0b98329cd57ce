//! Leak triage: `identify` (whose is this secret?) and `scan` (which secrets are in these
//! files?), on the store, never showing a secret: what they read, print and exit with.

mod output;
pub mod walk;

pub use output::Tally;

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use heare_auth_core::Document;
use heare_auth_store::Store;

use crate::cmd::ScanArgs;
use crate::commands::identify::{Owners, Reading};
use crate::context::Context;
use crate::stdout::{emit, emit_line, stream, Stopped};
use crate::{commands, CliError};
use walk::{Met, Walk};

/// The longest standard input `identify` reads: far more than any secret.
pub const MAX_INPUT: usize = 4096;

/// The exit code of a scan that found nothing but could not read everything.
const INCOMPLETE: u8 = 2;

/// The secret in what `identify` read: one line, one trailing newline (`\n` or `\r\n`)
/// dropped. Refusals never repeat what was read.
pub fn secret_of(input: &[u8]) -> Result<&str, CliError> {
    let refuse = |why: &str| Err(CliError::Usage(format!("identify: {why}")));
    if input.len() > MAX_INPUT {
        return refuse(&format!(
            "standard input is longer than any secret ({MAX_INPUT} bytes at most): give one \
             secret, on one line"
        ));
    }
    let line = input.strip_suffix(b"\n").unwrap_or(input);
    let line = match input.len() - line.len() {
        1 => line.strip_suffix(b"\r").unwrap_or(line),
        _ => line,
    };
    let Ok(secret) = std::str::from_utf8(line) else {
        return refuse("standard input is not UTF-8 text");
    };
    if secret.is_empty() {
        return refuse(
            "no secret on standard input: pipe one in (heare-auth identify < FILE), or type \
             it on a terminal",
        );
    }
    if secret.contains(['\n', '\r']) {
        return refuse("standard input holds more than one line: give one secret");
    }
    Ok(secret)
}

/// Standard input as `identify` reads it: one line on a terminal, else all of it (up to just
/// past [`MAX_INPUT`]).
fn read_input() -> Result<Vec<u8>, CliError> {
    let stdin = std::io::stdin();
    let unread = |e: std::io::Error| CliError::Answer(e.to_string());
    let mut input = Vec::new();
    if stdin.is_terminal() {
        eprintln!(
            "Paste the secret and press Enter (the terminal shows it as you type: pipe it in \
             to avoid that):"
        );
        stdin.lock().read_until(b'\n', &mut input).map_err(unread)?;
    } else {
        let limit = MAX_INPUT as u64 + 1;
        stdin
            .lock()
            .take(limit)
            .read_to_end(&mut input)
            .map_err(unread)?;
    }
    Ok(input)
}

/// Every key in `store`, by the hashes of its secrets.
fn owners(store: &Store) -> Result<Owners, CliError> {
    let bytes = commands::read(store)?;
    let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
    let records = commands::records(store, &file).collect::<Result<Vec<_>, _>>()?;
    Ok(Owners::of(records))
}

/// `identify`: exits 0 when the secret is a key's, 1 when it is none's.
pub fn identify(cx: &Context, json: bool) -> Result<ExitCode, CliError> {
    let prefix = cx.prefixes()?.secret;
    let input = read_input()?;
    let secret = secret_of(&input)?;
    let reading = Reading::of(secret, &prefix);
    let store = cx.open()?;
    let owners = owners(&store)?;
    let owner = owners.owner(secret);
    match json {
        true => emit_line(&output::identity_json(
            &reading,
            owner,
            store.location(),
            cx.now,
        ))?,
        false => emit(&output::identity_text(
            &reading,
            owner,
            store.location(),
            cx.now,
        ))?,
    }
    Ok(match owner {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    })
}

/// The keys `scan` names the secrets it finds by: read from the store at the first finding,
/// once; on failure (or with `--no-store`) none, and every secret is unknown.
enum Keys {
    /// Not read yet.
    Unread,
    /// Not to be read (`--no-store`).
    Off,
    /// Read from this store.
    Read(Owners, String),
    /// The store could not be read, for this reason.
    Failed(String),
}

impl Keys {
    /// The keys, read now if they were not yet; a store that cannot be read is said once, on
    /// standard error.
    fn get(&mut self, cx: &Context) -> Option<&Owners> {
        if let Keys::Unread = self {
            *self = match cx.open().and_then(|s| Ok((owners(&s)?, s))) {
                Ok((owners, store)) => Keys::Read(owners, store.location().to_string()),
                Err(e) => {
                    eprintln!(
                        "Warning: cannot read the store ({e}): the secrets found are shown as \
                         unknown"
                    );
                    Keys::Failed(e.to_string())
                }
            };
        }
        match self {
            Keys::Read(owners, _) => Some(owners),
            _ => None,
        }
    }

    /// Where the keys were read from, and why they could not be.
    fn json(&self) -> (serde_json::Value, serde_json::Value) {
        match self {
            Keys::Unread | Keys::Off => (json!(null), json!(null)),
            Keys::Read(_, location) => (json!(location), json!(null)),
            Keys::Failed(why) => (json!(null), json!(why)),
        }
    }
}

/// `scan PATH...`: exits 1 when a secret was found, else 2 when a path could not be read, else
/// 0.
pub fn scan(cx: &Context, a: &ScanArgs) -> Result<ExitCode, CliError> {
    let prefix = cx.prefixes()?.secret;
    let walk = Walk {
        wanted: (!a.any_prefix).then_some(prefix),
        include_git: a.include_git,
    };
    let mut keys = match a.no_store {
        true => Keys::Off,
        false => Keys::Unread,
    };
    let mut tally = Tally::default();
    let (mut findings, mut binary, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    stream(|out| {
        for path in &a.paths {
            walk.path(
                Path::new(path),
                &mut |met: Met<'_>| -> Result<(), Stopped> {
                    match met {
                        Met::File(path, found) => {
                            tally.files += 1;
                            if found.is_empty() {
                                return Ok(());
                            }
                            tally.files_with += 1;
                            let shown = path.to_string_lossy();
                            let owners = keys.get(cx);
                            for f in &found {
                                let owner = owners.and_then(|o| o.owner(f.secret()));
                                tally.found += 1;
                                match owner {
                                    None => tally.unknown += 1,
                                    Some(o) if o.verifies(cx.now) => tally.verifying += 1,
                                    Some(_) => {}
                                }
                                match a.json {
                                    true => findings
                                        .push(output::finding_json(&shown, f, owner, cx.now)),
                                    false => out.write_all(
                                        output::finding_text(&shown, f, owner, cx.now).as_bytes(),
                                    )?,
                                }
                            }
                        }
                        Met::Binary(path) => {
                            tally.binary += 1;
                            binary.push(path.to_string_lossy().into_owned());
                        }
                        Met::Unreadable(path, reason) => {
                            tally.unreadable += 1;
                            let shown = path.to_string_lossy();
                            eprintln!(
                                "scan: cannot read {}: {reason}",
                                heare_auth_core::visible(&shown)
                            );
                            unreadable.push(json!({"path": shown, "reason": reason}));
                        }
                    }
                    Ok(())
                },
            )?;
        }
        if a.json {
            let (store, store_error) = keys.json();
            let report = json!({
                "findings": findings,
                "files_read": tally.files,
                "binary_skipped": binary,
                "unreadable": unreadable,
                "store": store,
                "store_error": store_error,
            });
            out.write_all(format!("{report}\n").as_bytes())?;
        }
        Ok(())
    })?;
    tally.looked_up = matches!(keys, Keys::Read(..));
    if !a.json {
        eprint!("{}", output::tally_text(&tally));
    }
    Ok(match (tally.found, tally.unreadable) {
        (0, 0) => ExitCode::SUCCESS,
        (0, _) => ExitCode::from(INCOMPLETE),
        _ => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_one_line_with_one_newline_dropped() {
        assert_eq!(secret_of(b"sec_abc\n"), Ok("sec_abc"));
        assert_eq!(secret_of(b"sec_abc\r\n"), Ok("sec_abc"));
        assert_eq!(secret_of(b"sec_abc"), Ok("sec_abc"));
        // Only one newline is dropped, and nothing else: a space is part of what was given.
        assert_eq!(secret_of(b" sec_abc \n"), Ok(" sec_abc "));
        let refused = |input: &[u8]| match secret_of(input) {
            Err(CliError::Usage(m)) => m,
            other => panic!("{input:?} gave {other:?}"),
        };
        assert!(refused(b"").contains("no secret on standard input"));
        assert!(refused(b"\n").contains("no secret on standard input"));
        assert!(refused(b"sec_abc\n\n").contains("more than one line"));
        assert!(refused(b"sec_a\nsec_b").contains("more than one line"));
        assert!(refused(b"sec_a\rb").contains("more than one line"));
        assert!(refused(b"sec_\xff").contains("not UTF-8"));
        let long = vec![b'a'; MAX_INPUT + 1];
        assert!(refused(&long).contains("longer than any secret"));
        assert_eq!(secret_of(&long[..MAX_INPUT]).map(str::len), Ok(MAX_INPUT));
        // No refusal repeats the input.
        for input in [&b"sec_topsecret\nsec_other"[..], b"sec_topsecret\xff"] {
            assert!(!refused(input).contains("topsecret"));
        }
    }
}
