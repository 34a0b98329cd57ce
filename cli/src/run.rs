//! Running one command: what it reads, what it prints and its exit code, one function each,
//! called by the binary's dispatch.

use std::io::Write;
use std::process::ExitCode;

use heare_auth_core::{visible, Document, UnixMillis};
use heare_auth_store::Store;

use crate::cmd::{CreateArgs, KeyArgs, RateLimitArgs, RotateArgs, UpdateArgs};
use crate::commands::ImportFormat;
use crate::context::Context;
use crate::reload::after_write;
use crate::stdout::{emit, emit_line, emit_secret, stream, Stopped};
use crate::{check, commands, doctor, help, output, prompt, CliError};

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
    Ok(ExitCode::SUCCESS)
}

/// `list`: the keys one at a time, so a large file is never held twice over.
pub fn list(cx: &Context, detailed: bool, json: bool) -> Result<ExitCode, CliError> {
    let store = cx.open()?;
    let bytes = commands::read(&store)?;
    let file = Document::parse(&bytes).map_err(CliError::keys(store.location()))?;
    stream(|out| write_list(out, &store, &file, detailed, json, cx.now))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the listing of `file` to `out`.
fn write_list<W: Write>(
    out: &mut W,
    store: &Store,
    file: &Document,
    detailed: bool,
    json: bool,
    now: UnixMillis,
) -> Result<(), Stopped> {
    let write = |out: &mut W, text: &str| out.write_all(text.as_bytes());
    if json {
        write(out, "[")?;
        for (i, record) in commands::records(store, file).enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write(out, separator)?;
            write(out, &output::public_json(&record?, now))?;
        }
        write(out, "]\n")?;
    } else if file.is_empty() {
        write(out, output::NO_KEYS)?;
    } else {
        write(out, &output::list_header())?;
        for record in commands::records(store, file) {
            write(out, &output::list_row(&record?, detailed, now))?;
        }
        write(out, &output::list_footer(file.len()))?;
    }
    Ok(())
}

/// `show ID`.
pub fn show(cx: &Context, id: &str, json: bool) -> Result<ExitCode, CliError> {
    let key = commands::show(&cx.open()?, id)?;
    match json {
        true => emit_line(&output::public_json(&key, cx.now))?,
        false => emit(&output::show_text(&key, cx.now))?,
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
    Ok(ExitCode::SUCCESS)
}

/// `set-rate-limit ID LIMIT|none`.
pub fn set_rate_limit(cx: &Context, a: &RateLimitArgs) -> Result<ExitCode, CliError> {
    let store = cx.open_for_writing()?;
    let limited = commands::set_rate_limit(&store, &a.id, a.limit, cx.now, &cx.actor())?;
    emit(&output::limited_text(&limited))?;
    after_write(&cx.refresh_url, a.no_refresh, false);
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
            let store = cx.open()?;
            let bytes = store.load()?.bytes_or_empty().to_vec();
            (store.location().to_string(), bytes)
        }
    };
    let report = check::check(&location, &bytes, cx.now);
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
