//! Command-line parsing: a pure function from arguments to a [`Cmd`].

use std::ffi::OsString;

use heare_auth_core::{format_timestamp, parse_timestamp, UnixMillis};

use crate::CliError;

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `create`: make a new key.
    Create(CreateArgs),
    /// `list`: all keys, without secrets.
    List { detailed: bool, json: bool },
    /// `show ID`: one key, without its secret.
    Show { id: String, json: bool },
    /// `delete ID`.
    Delete {
        id: String,
        yes: bool,
        no_refresh: bool,
    },
    /// `refresh`: ask the server to reload.
    Refresh { url: Option<String> },
    /// Print the help of a command (`None`: the overview).
    Help(Option<&'static str>),
    /// Print the version.
    Version,
}

/// Arguments of `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    pub name: String,
    /// Raw `--metadata` text; checked to be a JSON object before anything is written.
    pub metadata: Option<String>,
    pub expires: Option<Expiry>,
    pub no_refresh: bool,
    pub json: bool,
}

/// When a new key expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `--expires-at`: an instant (Unix milliseconds).
    At(UnixMillis),
    /// `--ttl`: milliseconds after creation.
    After(u64),
}

impl Expiry {
    /// The `expires_at` to store for a key created at `now`.
    pub fn timestamp(&self, now: UnixMillis) -> String {
        match *self {
            Expiry::At(t) => format_timestamp(t),
            Expiry::After(ms) => format_timestamp(now.saturating_add(ms as i64)),
        }
    }
}

/// Overview help.
pub const USAGE: &str = "\
heare-auth: manage the API keys that heare-auth-server verifies

Usage:
  heare-auth create --name NAME [--metadata JSON] [--expires-at TIME | --ttl 90d] [--no-refresh] [--json]
  heare-auth list [--detailed] [--json]
  heare-auth show ID [--json]
  heare-auth delete ID [--yes] [--no-refresh]
  heare-auth refresh [--url URL]
  heare-auth COMMAND --help

Environment:
  KEYS_FILE     the keys file (default ./keys.json)
  REFRESH_URL   where create/delete ask the server to reload (default http://localhost:8080/refresh)
";

const CREATE: &str = "\
Usage: heare-auth create --name NAME [--metadata JSON] [--expires-at TIME | --ttl DURATION] [--no-refresh] [--json]

Creates a key and prints its secret once; only the secret's SHA-256 is stored.
  --name NAME        human-readable name (required)
  --metadata JSON    a JSON object returned by /verify (default {})
  --expires-at TIME  RFC 3339 time or date when the key stops verifying (2027-01-31T00:00:00Z, 2027-01-31)
  --ttl DURATION     expire this long after creation: 3600s, 30m, 12h, 90d, 2w
  --no-refresh       do not ask the server to reload
  --json             print the new key as JSON
";

const LIST: &str = "\
Usage: heare-auth list [--detailed] [--json]

Lists all keys (never their secrets).
  --detailed   also show expiry, status and metadata
  --json       print a JSON array
";

const SHOW: &str = "\
Usage: heare-auth show ID [--json]

Shows one key (never its secret).
  --json   print a JSON object
";

const DELETE: &str = "\
Usage: heare-auth delete ID [--yes] [--no-refresh]

Deletes a key. Asks for confirmation on a terminal; elsewhere --yes is required.
  -y, --yes      do not ask
  --no-refresh   do not ask the server to reload
";

const REFRESH: &str = "\
Usage: heare-auth refresh [--url URL]

Asks the running server to reload the keys file.
  --url URL   the server's refresh endpoint (default $REFRESH_URL or http://localhost:8080/refresh)
";

/// The help text for a command, or the overview.
pub fn help(topic: Option<&str>) -> &'static str {
    match topic {
        Some("create") => CREATE,
        Some("list") => LIST,
        Some("show") => SHOW,
        Some("delete") => DELETE,
        Some("refresh") => REFRESH,
        _ => USAGE,
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Cmd, CliError> {
    let mut args = pico_args::Arguments::from_vec(args);
    let command = match args.subcommand() {
        Ok(c) => c,
        Err(e) => return Err(usage(format!("{e}"))),
    };
    let command: &'static str = match command.as_deref() {
        None if args.contains(["-V", "--version"]) => return Ok(Cmd::Version),
        None | Some("-h" | "--help" | "help") => {
            let topic = args.subcommand().ok().flatten();
            return Ok(Cmd::Help(topic.as_deref().and_then(known)));
        }
        Some(c) => known(c).ok_or_else(|| usage(format!("unknown command '{c}'")))?,
    };
    if args.contains(["-h", "--help"]) {
        return Ok(Cmd::Help(Some(command)));
    }
    let cmd = match command {
        "create" => {
            let name: Option<String> = value(&mut args, command, "--name")?;
            let metadata = value(&mut args, command, "--metadata")?;
            let expires_at: Option<String> = value(&mut args, command, "--expires-at")?;
            let ttl: Option<String> = value(&mut args, command, "--ttl")?;
            let expires = match (expires_at, ttl) {
                (Some(_), Some(_)) => {
                    return Err(usage("create: give --expires-at or --ttl, not both".into()))
                }
                (Some(at), None) => Some(Expiry::At(
                    parse_timestamp(&at)
                        .map_err(|e| usage(format!("create: --expires-at: {e}")))?,
                )),
                (None, Some(ttl)) => Some(Expiry::After(
                    parse_ttl(&ttl).map_err(|e| usage(format!("create: --ttl: {e}")))?,
                )),
                (None, None) => None,
            };
            let name = match name {
                Some(n) if !n.trim().is_empty() => n,
                Some(_) => return Err(usage("create: --name must not be empty".into())),
                None => return Err(usage("create: missing required flag --name".into())),
            };
            Cmd::Create(CreateArgs {
                name,
                metadata,
                expires,
                no_refresh: args.contains("--no-refresh"),
                json: args.contains("--json"),
            })
        }
        "list" => Cmd::List {
            detailed: args.contains("--detailed"),
            json: args.contains("--json"),
        },
        "show" => {
            let json = args.contains("--json");
            Cmd::Show {
                id: positional(&mut args, command)?,
                json,
            }
        }
        "delete" => {
            let yes = args.contains(["-y", "--yes"]);
            let no_refresh = args.contains("--no-refresh");
            Cmd::Delete {
                id: positional(&mut args, command)?,
                yes,
                no_refresh,
            }
        }
        _ => Cmd::Refresh {
            url: value(&mut args, command, "--url")?,
        },
    };
    finish(args, command)?;
    Ok(cmd)
}

fn known(command: &str) -> Option<&'static str> {
    ["create", "list", "show", "delete", "refresh"]
        .into_iter()
        .find(|&c| c == command)
}

fn usage(message: String) -> CliError {
    CliError::Usage(message)
}

fn value(
    args: &mut pico_args::Arguments,
    command: &str,
    flag: &'static str,
) -> Result<Option<String>, CliError> {
    args.opt_value_from_str(flag).map_err(|e| match e {
        pico_args::Error::OptionWithoutAValue(_) => {
            usage(format!("{command}: {flag} needs a value"))
        }
        e => usage(format!("{command}: {flag}: {e}")),
    })
}

fn positional(args: &mut pico_args::Arguments, command: &str) -> Result<String, CliError> {
    match args.opt_free_from_str::<String>() {
        Ok(Some(id)) if !id.starts_with('-') => Ok(id),
        Ok(Some(flag)) => Err(usage(format!("{command}: unknown flag {flag}"))),
        _ => Err(usage(format!("{command}: missing the key ID"))),
    }
}

fn finish(args: pico_args::Arguments, command: &str) -> Result<(), CliError> {
    match args.finish().first() {
        None => Ok(()),
        Some(extra) => {
            let extra = extra.to_string_lossy();
            let what = if extra.starts_with('-') {
                "unknown flag"
            } else {
                "unexpected argument"
            };
            Err(usage(format!("{command}: {what} {extra}")))
        }
    }
}

/// Parses a duration such as `3600s`, `30m`, `12h`, `90d` or `2w` into milliseconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let expected =
        || format!("expected a positive number and a unit (s, m, h, d, w) like 90d, got '{text}'");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(expected)?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    n.checked_mul(unit_secs * 1000)
        .filter(|&ms| ms < i64::MAX as u64 / 2)
        .ok_or_else(|| format!("'{text}' is too long"))
}

#[cfg(test)]
mod tests;
