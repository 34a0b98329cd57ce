//! `heare-auth`, the admin CLI: parse, run one command, print, and exit 0, 1 or 2.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use heare_auth::cmd::{Cmd, KeyArgs};
use heare_auth::{actor, args, check, commands, doctor, help, output, CliError};
use heare_auth_core::{visible, KeyFile, UnixMillis};
use heare_auth_store::{now_ms, Location, Store, StoreConfig};

/// Where a change asks the server to reload when `REFRESH_URL` is not set.
const DEFAULT_REFRESH_URL: &str = "http://localhost:8080/refresh";

fn main() -> ExitCode {
    let cmd = match args::parse(std::env::args_os().skip(1).collect()) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("error: {e}\nRun 'heare-auth --help' for usage.");
            return ExitCode::from(e.exit_code());
        }
    };
    match run(cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cmd: Cmd) -> Result<ExitCode, CliError> {
    let env = |k: &str| std::env::var(k).ok();
    let refresh_url = env("REFRESH_URL")
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_REFRESH_URL.into());
    let now = now_ms();
    let config = || StoreConfig::from_env(env);
    let actor = || actor::actor(env, hostname);
    match cmd {
        Cmd::Help(topic) => emit(help::help(topic))?,
        Cmd::Version => emit_line(concat!("heare-auth ", env!("CARGO_PKG_VERSION")))?,
        Cmd::Create(a) => {
            let store = open_for_writing(&config()?)?;
            let created = commands::create(&store, &a, now, &actor(), &mut rand_core::OsRng)?;
            let text = match a.json {
                true => output::created_json(&created) + "\n",
                false => output::created_text(&created),
            };
            let id = &created.record.id;
            emit_secret(&text, &format!("delete {id} and create another"))?;
            after_write(&refresh_url, a.no_refresh, a.json);
        }
        Cmd::List { detailed, json } => list(&config()?.open()?, detailed, json, now)?,
        Cmd::Show { id, json } => {
            let key = commands::show(&config()?.open()?, &id)?;
            if json {
                emit_line(&output::public_json(&key, now))?;
            } else {
                emit(&output::show_text(&key, now))?;
            }
        }
        Cmd::Disable(a) => toggle(&config()?, &a, true, now, &actor(), &refresh_url)?,
        Cmd::Enable(a) => toggle(&config()?, &a, false, now, &actor(), &refresh_url)?,
        Cmd::Rotate(a) => {
            let store = open_for_writing(&config()?)?;
            let rotated = commands::rotate(
                &store,
                &a.id,
                a.grace_ms,
                now,
                &actor(),
                &mut rand_core::OsRng,
            )?;
            let text = match a.json {
                true => output::rotated_json(&rotated) + "\n",
                false => output::rotated_text(&rotated, now),
            };
            let again = format!("rotate {} again", visible(&rotated.record.id));
            emit_secret(&text, &again)?;
            after_write(&refresh_url, a.no_refresh, a.json);
        }
        Cmd::SetRateLimit(a) => {
            let store = open_for_writing(&config()?)?;
            let limited = commands::set_rate_limit(&store, &a.id, a.limit, now, &actor())?;
            emit(&output::limited_text(&limited))?;
            after_write(&refresh_url, a.no_refresh, false);
        }
        Cmd::Delete {
            id,
            yes,
            no_refresh,
        } => {
            let store = open_for_writing(&config()?)?;
            if !yes && !confirm(&store, &id)? {
                emit_line("Cancelled.")?;
                return Ok(ExitCode::SUCCESS);
            }
            commands::delete(&store, &id)?;
            emit_line("✓ Deleted successfully.")?;
            after_write(&refresh_url, no_refresh, false);
        }
        Cmd::Refresh { url } => {
            let n = commands::refresh(url.as_deref().unwrap_or(&refresh_url))?;
            emit_line(&output::refreshed(n))?;
        }
        Cmd::Doctor { json } => {
            let report = doctor::examine(&config()?, std::time::SystemTime::now());
            if json {
                emit_line(&report.to_json())?;
            } else {
                emit(&report.to_text())?;
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Check { file, json } => {
            let (location, bytes) = match file {
                Some(path) => {
                    let bytes = read_file(&path, env("STORAGE_SECRET"))?;
                    (path, bytes)
                }
                None => {
                    let store = config()?.open()?;
                    let bytes = store.load()?.bytes_or_empty().to_vec();
                    (store.location().to_string(), bytes)
                }
            };
            let report = check::check(&location, &bytes, now);
            if json {
                emit_line(&report.to_json())?;
            } else {
                emit(&report.to_text())?;
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Migrate { yes, no_refresh } => {
            let store = match yes {
                true => open_for_writing(&config()?)?,
                false => config()?.open()?,
            };
            let changed = commands::hash_secrets(&store, yes, now, &actor())?;
            emit(&output::migrated_text(&changed, !yes))?;
            if yes && !changed.is_empty() {
                after_write(&refresh_url, no_refresh, false);
            }
        }
        Cmd::Export { output: to } => {
            let (text, keys) = commands::export(&config()?.open()?)?;
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
        }
        Cmd::Import {
            file,
            yes,
            no_refresh,
        } => {
            let incoming = commands::read_import(&file, &read_file(&file, env("STORAGE_SECRET"))?)?;
            let store = match yes {
                true => open_for_writing(&config()?)?,
                false => config()?.open()?,
            };
            let added = commands::import(&store, &incoming.records, yes)?;
            emit(&output::imported_text(&file, &added, incoming.hashed, !yes))?;
            if yes && !added.is_empty() {
                after_write(&refresh_url, no_refresh, false);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The plaintext of a keys file named on the command line, decrypted with `storage_secret` when
/// it is encrypted.
fn read_file(path: &str, storage_secret: Option<String>) -> Result<Vec<u8>, CliError> {
    let config = StoreConfig {
        location: Location::File(path.to_string()),
        storage_secret: storage_secret.filter(|s| !s.is_empty()),
    };
    config
        .open()?
        .load()?
        .bytes
        .ok_or_else(|| CliError::NoSuchFile(path.to_string()))
}

/// `disable` (`disable` true) or `enable`: the change, what it did, and the server's reload.
fn toggle(
    config: &StoreConfig,
    a: &KeyArgs,
    disable: bool,
    now: UnixMillis,
    actor: &str,
    refresh_url: &str,
) -> Result<(), CliError> {
    let store = open_for_writing(config)?;
    let toggled = commands::set_disabled(&store, &a.id, disable, now, actor)?;
    if a.json {
        emit_line(&output::toggled_json(&toggled))?;
    } else {
        emit(&output::toggled_text(&toggled))?;
    }
    after_write(refresh_url, a.no_refresh, a.json);
    Ok(())
}

/// The machine's name, for the default actor.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
}

/// Opens the store for a command that writes, saying on stderr when writes are unprotected.
fn open_for_writing(config: &StoreConfig) -> Result<Store, CliError> {
    if let Location::S3(s3) = &config.location {
        if s3.unsafe_writes {
            eprintln!(
                "Warning: S3_UNSAFE_WRITES=1: writing {} without conditional writes; \
                 an admin writing at the same time could drop this change or theirs.",
                s3.location()
            );
        }
    }
    Ok(config.open()?)
}

/// `list`: the keys one at a time, so a large file is never held twice over.
fn list(store: &Store, detailed: bool, json: bool, now: UnixMillis) -> Result<(), CliError> {
    let bytes = commands::read(store)?;
    let file = KeyFile::parse(&bytes).map_err(CliError::keys(store.location()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write_list(&mut out, store, &file, detailed, json, now) {
        Err(ListError::Write(e)) => unwritten(e),
        Err(ListError::Key(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

/// Why a listing stopped: its output could not be written, or a key could not be read.
enum ListError {
    Write(std::io::Error),
    Key(CliError),
}

impl From<std::io::Error> for ListError {
    fn from(e: std::io::Error) -> ListError {
        ListError::Write(e)
    }
}

impl From<CliError> for ListError {
    fn from(e: CliError) -> ListError {
        ListError::Key(e)
    }
}

/// Writes the listing of `file` to `out`, flushed.
fn write_list<W: Write>(
    out: &mut W,
    store: &Store,
    file: &KeyFile,
    detailed: bool,
    json: bool,
    now: UnixMillis,
) -> Result<(), ListError> {
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
    Ok(out.flush()?)
}

/// Writes `text` to stdout.
fn emit(text: &str) -> Result<(), CliError> {
    write_stdout(text).or_else(unwritten)
}

/// Writes `text` and a new line to stdout.
fn emit_line(text: &str) -> Result<(), CliError> {
    emit(&format!("{text}\n"))
}

/// Writes output holding the only copy of a new secret. Unlike [`emit`], a reader that has
/// gone is an error: the secret is lost with it, and `remedy` says what to do instead.
fn emit_secret(text: &str, remedy: &str) -> Result<(), CliError> {
    write_stdout(text).map_err(|e| CliError::SecretUnwritten {
        reason: e.to_string(),
        remedy: remedy.to_string(),
    })
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A failure to write stdout, as the CLI reports it: a reader that stopped reading
/// (`heare-auth list | head`) ends the output without an error; anything else is one.
fn unwritten(e: std::io::Error) -> Result<(), CliError> {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(CliError::Output(e.to_string())),
    }
}

/// Asks the server to reload after a write; failure is only a warning.
fn after_write(url: &str, skip: bool, json: bool) {
    if skip {
        return;
    }
    match commands::refresh(url) {
        Ok(n) if json => eprintln!("{}", output::refreshed(n)),
        Ok(n) => {
            let _ = emit_line(&output::refreshed(n));
        }
        Err(CliError::Refresh(reason)) => {
            eprintln!("Warning: Failed to refresh service: {}", visible(&reason))
        }
        Err(e) => eprintln!("Warning: Failed to refresh service: {e}"),
    }
}

/// Asks `Delete API key 'ID' (NAME)? [y/N]` on a terminal; refuses without one.
fn confirm(store: &Store, id: &str) -> Result<bool, CliError> {
    let key = commands::show(store, id)?;
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "refusing to delete without confirmation: stdin is not a terminal; pass --yes".into(),
        ));
    }
    emit(&output::delete_prompt(&key))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Answer(e.to_string()))?;
    Ok(args::is_yes(&answer))
}
