//! Running one command: what it reads, what it prints and its exit code, one function each,
//! called by the binary's dispatch.

use std::io::Write;
use std::process::ExitCode;

use heare_auth_core::{visible, Document};

use crate::cmd::{CreateArgs, KeyArgs, RateLimitArgs, RotateArgs, Since, UpdateArgs};
use crate::commands::ImportFormat;
use crate::context::Context;
use crate::listing::Listing;
use crate::reload::after_write;
use crate::stdout::{emit, emit_line, emit_secret, stream};
use crate::{check, commands, counts, doctor, fold, help, output, plural, prompt, CliError};

/// `help [COMMAND]`.
pub fn help(topic: Option<&str>) -> Result<ExitCode, CliError> {
    emit(help::help(topic))?;
    Ok(ExitCode::SUCCESS)
}

/// `--version`.
pub fn version() -> Result<ExitCode, CliError> {
    emit_line(concat!("heare-auth ", env!("CARGO_PKG_VERSION")))?;
    Ok(ExitCode::SUCCESS)
}

/// `create`: the new key, its secret printed once.
pub fn create(cx: &Context, a: &CreateArgs) -> Result<ExitCode, CliError> {
    let prefixes = cx.prefixes()?;
    let store = cx.open_for_writing()?;
    let created = commands::create(
        &store,
        a,
        cx.now,
        &cx.actor(),
        &prefixes,
        &mut rand_core::OsRng,
    )?;
    let text = match a.json {
        true => output::created_json(&created) + "\n",
        false => output::created_text(&created),
    };
    let id = &created.record.id;
    emit_secret(&text, &format!("delete {id} and create another"))?;
    after_write(&cx.refresh_url, a.no_refresh, a.json);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// Keys `list` reads and prints at a time: with usage counts, those of a batch are read at once.
const BATCH: usize = 1000;

/// `list`: the keys a batch at a time, so a large file is never held twice over; with usage
/// counts (`REDIS_URL`), each key's usage with `--detailed` and `--json`, and only the keys
/// unused since `unused_since` when it is given.
pub fn list(
    cx: &Context,
    detailed: bool,
    json: bool,
    unused_since: Option<Since>,
) -> Result<ExitCode, CliError> {
    let mut listing = Listing::new(detailed, json, cx.now);
    let since = unused_since.map(|s| s.instant(cx.now));
    let config = match since.is_some() || listing.shows_usage() {
        true => cx.counters()?,
        false => None,
    };
    if since.is_some() && config.is_none() {
        return Err(CliError::Usage(counts::NEEDS_COUNTS.into()));
    }
    let store = cx.open()?;
    let bytes = commands::read(&store)?;
    let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
    let mut counters = config.as_ref().map(counts::connect).transpose()?;
    let with_usage = listing.shows_usage();
    stream(|out| {
        let mut records = commands::records(&store, &file);
        loop {
            let batch = records
                .by_ref()
                .take(BATCH)
                .collect::<Result<Vec<_>, _>>()?;
            if batch.is_empty() {
                break;
            }
            let shown = match counters.as_mut() {
                Some(counters) => counts::read(counters, batch, since, with_usage, cx.now)?,
                None => batch.into_iter().map(|k| (k, None)).collect(),
            };
            for (record, usage) in &shown {
                out.write_all(listing.key(record, usage.as_ref()).as_bytes())?;
            }
        }
        out.write_all(listing.end().as_bytes())?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `show ID`, with the key's usage when `REDIS_URL` is set.
pub fn show(cx: &Context, id: &str, json: bool) -> Result<ExitCode, CliError> {
    let config = cx.counters()?;
    let key = commands::show(&cx.open()?, id)?;
    let usage = match &config {
        Some(config) => Some(counts::usage_of(
            &mut counts::connect(config)?,
            &key,
            cx.now,
        )?),
        None => None,
    };
    match json {
        true => emit_line(&output::key_json(&key, cx.now, usage.as_ref()))?,
        false => emit(&output::show_text(&key, cx.now, usage.as_ref()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `disable ID` (`disable` true) or `enable ID`.
pub fn toggle(cx: &Context, a: &KeyArgs, disable: bool) -> Result<ExitCode, CliError> {
    let store = cx.open_for_writing()?;
    let toggled = commands::set_disabled(&store, &a.id, disable, cx.now, &cx.actor())?;
    match a.json {
        true => emit_line(&output::toggled_json(&toggled))?,
        false => emit(&output::toggled_text(&toggled))?,
    }
    after_write(&cx.refresh_url, a.no_refresh, a.json);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// `rotate ID`: the new secret printed once.
pub fn rotate(cx: &Context, a: &RotateArgs) -> Result<ExitCode, CliError> {
    let prefixes = cx.prefixes()?;
    let store = cx.open_for_writing()?;
    let rotated = commands::rotate(
        &store,
        &a.id,
        a.grace_ms,
        cx.now,
        &cx.actor(),
        &prefixes.secret,
        &mut rand_core::OsRng,
    )?;
    let text = match a.json {
        true => output::rotated_json(&rotated) + "\n",
        false => output::rotated_text(&rotated, cx.now),
    };
    let again = format!("rotate {} again", visible(&rotated.record.id));
    emit_secret(&text, &again)?;
    after_write(&cx.refresh_url, a.no_refresh, a.json);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// `set-rate-limit ID LIMIT|none`.
pub fn set_rate_limit(cx: &Context, a: &RateLimitArgs) -> Result<ExitCode, CliError> {
    let store = cx.open_for_writing()?;
    let limited = commands::set_rate_limit(&store, &a.id, a.limit, cx.now, &cx.actor())?;
    emit(&output::limited_text(&limited))?;
    after_write(&cx.refresh_url, a.no_refresh, false);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// `update ID`: the key as `show` prints it with `--json`.
pub fn update(cx: &Context, a: &UpdateArgs) -> Result<ExitCode, CliError> {
    let store = cx.open_for_writing()?;
    let updated = commands::update(&store, a, cx.now, &cx.actor())?;
    match a.json {
        true => emit_line(&output::public_json(&updated.record, cx.now))?,
        false => emit(&output::updated_text(&updated))?,
    }
    after_write(&cx.refresh_url, a.no_refresh, a.json);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// `delete ID`, asking first unless `yes`.
pub fn delete(cx: &Context, id: &str, yes: bool, no_refresh: bool) -> Result<ExitCode, CliError> {
    let store = cx.open_for_writing()?;
    if !yes && !prompt::confirm(&store, id)? {
        emit_line("Cancelled.")?;
        return Ok(ExitCode::SUCCESS);
    }
    commands::delete(&store, id)?;
    emit_line("✓ Deleted successfully.")?;
    after_write(&cx.refresh_url, no_refresh, false);
    fold::if_due(&store);
    Ok(ExitCode::SUCCESS)
}

/// `refresh [--url URL]`.
pub fn refresh(cx: &Context, url: Option<&str>) -> Result<ExitCode, CliError> {
    let n = commands::refresh(url.unwrap_or(&cx.refresh_url))?;
    emit_line(&output::refreshed(n))?;
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: exits 1 when it found a problem.
pub fn doctor(cx: &Context, json: bool) -> Result<ExitCode, CliError> {
    let report = doctor::examine(&cx.config()?, std::time::SystemTime::now());
    match json {
        true => emit_line(&report.to_json())?,
        false => emit(&report.to_text())?,
    }
    Ok(exit(report.ok()))
}

/// `check [FILE]`: exits 1 when the server would refuse the file.
pub fn check(cx: &Context, file: Option<String>, json: bool) -> Result<ExitCode, CliError> {
    let (location, bytes) = match file {
        Some(path) => {
            let bytes = cx.read_file(&path)?;
            (path, bytes)
        }
        None => {
            // The keys file as it now is: the changes beside it applied, if they apply.
            let store = cx.open()?;
            let state = store.read()?;
            let pending = state.changes.iter().filter(|c| !c.is_note()).count();
            let location = match pending {
                0 => store.location().to_string(),
                n => format!("{} with {}", store.location(), plural::count(n, "change")),
            };
            let bytes = match state.folded() {
                Ok(folded) => folded.into_owned(),
                Err(e) => {
                    let mut report =
                        check::check(&location, state.snapshot.bytes_or_empty(), cx.now);
                    report.findings.insert(
                        0,
                        check::Finding {
                            severity: check::Severity::Error,
                            key: None,
                            message: format!("the changes beside the keys file do not apply: {e}"),
                        },
                    );
                    return finish_check(report, json);
                }
            };
            (location, bytes)
        }
    };
    finish_check(check::check(&location, &bytes, cx.now), json)
}

/// Prints a `check` report; the exit code says whether it found errors.
fn finish_check(report: check::Report, json: bool) -> Result<ExitCode, CliError> {
    match json {
        true => emit_line(&report.to_json())?,
        false => emit(&report.to_text())?,
    }
    Ok(exit(report.ok()))
}

/// `migrate --hash-secrets`: writes only with `yes`.
pub fn migrate(cx: &Context, yes: bool, no_refresh: bool) -> Result<ExitCode, CliError> {
    let store = match yes {
        true => cx.open_for_writing()?,
        false => cx.open()?,
    };
    let changed = commands::hash_secrets(&store, yes, cx.now, &cx.actor())?;
    emit(&output::migrated_text(&changed, !yes))?;
    if yes && !changed.is_empty() {
        after_write(&cx.refresh_url, no_refresh, false);
    }
    Ok(ExitCode::SUCCESS)
}

/// `compact`: folds the changes stored beside the keys file into it.
pub fn compact(cx: &Context, no_refresh: bool) -> Result<ExitCode, CliError> {
    let folded = cx.open_for_writing()?.compact()?;
    emit(&output::compacted_text(folded))?;
    if folded > 0 {
        after_write(&cx.refresh_url, no_refresh, false);
    }
    Ok(ExitCode::SUCCESS)
}

/// `export [--output FILE]`.
pub fn export(cx: &Context, to: Option<String>) -> Result<ExitCode, CliError> {
    let (text, keys) = commands::export(&cx.open()?)?;
    match to {
        None => emit(&text)?,
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| CliError::FileUnwritten {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            emit(&output::exported_text(&path, keys))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `import FILE`, read as `format`: writes only with `yes`.
pub fn import(
    cx: &Context,
    file: &str,
    format: ImportFormat,
    yes: bool,
    no_refresh: bool,
) -> Result<ExitCode, CliError> {
    let incoming = commands::read_import(file, &cx.read_file(file)?, format)?;
    let store = match yes {
        true => cx.open_for_writing()?,
        false => cx.open()?,
    };
    let added = commands::import(&store, &incoming, yes)?;
    emit(&output::imported_text(file, &added, incoming.hashed, !yes))?;
    if yes && !added.is_empty() {
        after_write(&cx.refresh_url, no_refresh, false);
    }
    Ok(ExitCode::SUCCESS)
}

/// 0 when all is well, 1 otherwise.
fn exit(ok: bool) -> ExitCode {
    match ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}
