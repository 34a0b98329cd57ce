//! Running one command through a server's management API: the same output, through the same
//! `output.rs` functions, and the same exit codes as on the store. No reload is asked for: the
//! server serves its own changes at once, so `--no-refresh` changes nothing here.

use std::io::Write;
use std::process::ExitCode;

use heare_auth_core::{visible, UnixMillis};

use crate::cmd::{Cmd, CreateArgs, KeyArgs, RateLimitArgs, RotateArgs, Since, UpdateArgs};
use crate::listing::Listing;
use crate::remote::client::Client;
use crate::remote::{api, doctor, target};
use crate::stdout::{emit, emit_line, emit_secret, stream};
use crate::{output, prompt, run, CliError};

/// Runs `cmd` through the API `client` reaches, `now` deciding each key's status as it does on
/// the store.
pub fn dispatch(cmd: Cmd, client: &Client, now: UnixMillis) -> Result<ExitCode, CliError> {
    match cmd {
        Cmd::Help(topic) => run::help(topic),
        Cmd::Version => run::version(),
        Cmd::Create(a) => create(client, &a),
        Cmd::List {
            detailed,
            json,
            unused_since,
        } => list(client, detailed, json, unused_since, now),
        Cmd::Show { id, json } => show(client, &id, json, now),
        Cmd::Disable(a) => toggle(client, &a, true),
        Cmd::Enable(a) => toggle(client, &a, false),
        Cmd::Rotate(a) => rotate(client, &a, now),
        Cmd::SetRateLimit(a) => set_rate_limit(client, &a),
        Cmd::Update(a) => update(client, &a, now),
        Cmd::Delete { id, yes, .. } => delete(client, &id, yes),
        Cmd::Doctor { json } => doctor(client, json),
        Cmd::Refresh { .. }
        | Cmd::Check { .. }
        | Cmd::Migrate { .. }
        | Cmd::Compact { .. }
        | Cmd::Export { .. }
        | Cmd::Import { .. }
        | Cmd::Identify { .. }
        | Cmd::Scan(_) => {
            let name = cmd.command().map_or("this command", |c| c.name());
            Err(CliError::Usage(target::store_only(name)))
        }
    }
}

/// `create`: the new key, its secret printed once.
fn create(client: &Client, a: &CreateArgs) -> Result<ExitCode, CliError> {
    let created = api::create(client, a)?;
    let text = match a.json {
        true => output::created_json(&created) + "\n",
        false => output::created_text(&created),
    };
    let id = &created.record.id;
    emit_secret(&text, &format!("delete {id} and create another"))?;
    Ok(ExitCode::SUCCESS)
}

/// `list`: page after page, each written as it comes, in the store's order; the server keeps
/// only the keys unused since `unused_since` when it is given. With `--detailed` and `--json`,
/// each key's usage when the server counts it for all replicas (which the first key's tells).
fn list(
    client: &Client,
    detailed: bool,
    json: bool,
    unused_since: Option<Since>,
    now: UnixMillis,
) -> Result<ExitCode, CliError> {
    let mut listing = Listing::new(detailed, json, now);
    // Asked while the server says it counts for all replicas (every key's answer says the same).
    let mut shared = listing.shows_usage();
    let mut page = api::page(client, None, unused_since)?;
    stream(|out| {
        loop {
            for record in &page.keys {
                let usage = match shared {
                    true => match api::usage(client, &record.id) {
                        Ok(usage) => {
                            shared = usage.is_some();
                            usage
                        }
                        // Deleted since the page was read.
                        Err(CliError::NotFound(_)) => None,
                        Err(e) => return Err(e.into()),
                    },
                    false => None,
                };
                out.write_all(listing.key(record, usage.as_ref()).as_bytes())?;
            }
            let Some(cursor) = page.next.take() else {
                break;
            };
            page = api::page(client, Some(&cursor), unused_since)?;
        }
        out.write_all(listing.end().as_bytes())?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `show ID`, with the key's usage when the server counts it for all replicas.
fn show(client: &Client, id: &str, json: bool, now: UnixMillis) -> Result<ExitCode, CliError> {
    let key = api::show(client, id)?;
    let usage = api::usage(client, id)?;
    match json {
        true => emit_line(&output::key_json(&key, now, usage.as_ref()))?,
        false => emit(&output::show_text(&key, now, usage.as_ref()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `disable ID` (`disable` true) or `enable ID`.
fn toggle(client: &Client, a: &KeyArgs, disable: bool) -> Result<ExitCode, CliError> {
    let toggled = api::set_disabled(client, &a.id, disable)?;
    match a.json {
        true => emit_line(&output::toggled_json(&toggled))?,
        false => emit(&output::toggled_text(&toggled))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `rotate ID`: the new secret printed once.
fn rotate(client: &Client, a: &RotateArgs, now: UnixMillis) -> Result<ExitCode, CliError> {
    let rotated = api::rotate(client, &a.id, a.grace_ms)?;
    let text = match a.json {
        true => output::rotated_json(&rotated) + "\n",
        false => output::rotated_text(&rotated, now),
    };
    let again = format!("rotate {} again", visible(&rotated.record.id));
    emit_secret(&text, &again)?;
    Ok(ExitCode::SUCCESS)
}

/// `set-rate-limit ID LIMIT|none`.
fn set_rate_limit(client: &Client, a: &RateLimitArgs) -> Result<ExitCode, CliError> {
    let limited = api::set_rate_limit(client, &a.id, a.limit)?;
    emit(&output::limited_text(&limited))?;
    Ok(ExitCode::SUCCESS)
}

/// `update ID`: the key as `show` prints it with `--json`.
fn update(client: &Client, a: &UpdateArgs, now: UnixMillis) -> Result<ExitCode, CliError> {
    let updated = api::update(client, a)?;
    match a.json {
        true => emit_line(&output::public_json(&updated.record, now))?,
        false => emit(&output::updated_text(&updated))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `delete ID`, asking first unless `yes`.
fn delete(client: &Client, id: &str, yes: bool) -> Result<ExitCode, CliError> {
    if !yes && !prompt::ask(&api::show(client, id)?)? {
        emit_line("Cancelled.")?;
        return Ok(ExitCode::SUCCESS);
    }
    api::delete(client, id)?;
    emit_line("✓ Deleted successfully.")?;
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: exits 1 when it found a problem.
fn doctor(client: &Client, json: bool) -> Result<ExitCode, CliError> {
    let report = doctor::examine(client);
    match json {
        true => emit_line(&report.to_json())?,
        false => emit(&report.to_text())?,
    }
    Ok(match report.ok() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}
