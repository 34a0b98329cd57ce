//! `heare-auth`, the admin CLI: parse, run one command, print, and exit 0, 1 or 2.

mod args;
mod commands;
mod error;
mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use heare_auth_core::UnixMillis;
use heare_auth_server::store::{Store, StoreConfig};

use args::Cmd;
pub use error::CliError;

/// Where `create`/`delete` ask the server to reload when `REFRESH_URL` is not set.
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cmd: Cmd) -> Result<(), CliError> {
    let env = |k: &str| std::env::var(k).ok();
    let refresh_url = env("REFRESH_URL")
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_REFRESH_URL.into());
    let now = now_ms();
    let open = || StoreConfig::from_env(env)?.open();
    match cmd {
        Cmd::Help(topic) => print!("{}", args::help(topic)),
        Cmd::Version => println!("heare-auth {}", env!("CARGO_PKG_VERSION")),
        Cmd::Create(a) => {
            let store = open()?;
            let created = commands::create(&store, &a, now, &mut rand_core::OsRng)?;
            if a.json {
                println!("{}", output::created_json(&created));
            } else {
                print!("{}", output::created_text(&created));
            }
            after_write(&refresh_url, a.no_refresh, a.json);
        }
        Cmd::List { detailed, json } => {
            let keys = commands::list(&open()?)?;
            if json {
                println!("{}", output::list_json(&keys, now));
            } else {
                print!("{}", output::list_text(&keys, detailed, now));
            }
        }
        Cmd::Show { id, json } => {
            let key = commands::show(&open()?, &id)?;
            if json {
                println!("{}", output::public_json(&key, now));
            } else {
                print!("{}", output::show_text(&key, now));
            }
        }
        Cmd::Delete {
            id,
            yes,
            no_refresh,
        } => {
            let store = open()?;
            if !yes && !confirm(&store, &id)? {
                println!("Cancelled.");
                return Ok(());
            }
            commands::delete(&store, &id)?;
            println!("✓ Deleted successfully.");
            after_write(&refresh_url, no_refresh, false);
        }
        Cmd::Refresh { url } => {
            let n = commands::refresh(url.as_deref().unwrap_or(&refresh_url))?;
            println!("{}", output::refreshed(n));
        }
    }
    Ok(())
}

/// Asks the server to reload after a write; failure is only a warning.
fn after_write(url: &str, skip: bool, json: bool) {
    if skip {
        return;
    }
    match commands::refresh(url) {
        Ok(n) if json => eprintln!("{}", output::refreshed(n)),
        Ok(n) => println!("{}", output::refreshed(n)),
        Err(CliError::Refresh(reason)) => {
            eprintln!("Warning: Failed to refresh service: {reason}")
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
    print!("{}", output::delete_prompt(&key));
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Invalid(format!("cannot read the answer: {e}")))?;
    Ok(args::is_yes(&answer))
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as UnixMillis)
}
