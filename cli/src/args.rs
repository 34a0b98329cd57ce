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
    List {
        /// `--detailed`: also expiry, status and metadata.
        detailed: bool,
        /// `--json`: a JSON array.
        json: bool,
    },
    /// `show ID`: one key, without its secret.
    Show {
        /// The key's id.
        id: String,
        /// `--json`: a JSON object.
        json: bool,
    },
    /// `delete ID`.
    Delete {
        /// The key's id.
        id: String,
        /// `--yes`/`-y`: do not ask for confirmation.
        yes: bool,
        /// `--no-refresh`: do not ask the server to reload.
        no_refresh: bool,
    },
    /// `refresh`: ask the server to reload.
    Refresh {
        /// `--url`; `None`: `REFRESH_URL` or the default.
        url: Option<String>,
    },
    /// Print the help of a command (`None`: the overview).
    Help(Option<&'static str>),
    /// Print the version.
    Version,
}

/// Arguments of `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    /// `--name`: not empty.
    pub name: String,
    /// Raw `--metadata` text; checked to be a JSON object before anything is written.
    pub metadata: Option<String>,
    /// `--expires-at` or `--ttl`; `None`: never expires.
    pub expires: Option<Expiry>,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
    /// `--json`: print the new key as one JSON object.
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
  heare-auth --version

Environment:
  KEYS_FILE        the keys file (default ./keys.json)
  REFRESH_URL      where create/delete ask the server to reload (default http://localhost:8080/refresh)
  S3_BUCKET, S3_KEY, S3_REGION, S3_ENDPOINT
                   keep the keys file in S3 instead (as the server does)
  STORAGE_SECRET   encrypts the keys file when writing; needed to read an encrypted one
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

/// Parses the arguments after the program name. Unknown flags are reported before missing or
/// invalid values, so a typo is named as such.
pub fn parse(args: Vec<OsString>) -> Result<Cmd, CliError> {
    let mut args = pico_args::Arguments::from_vec(args);
    let first = args
        .subcommand()
        .map_err(|e| usage(format!("the command: {e}")))?;
    let command = match first.as_deref() {
        None => return parse_global(args),
        Some("help") => return help_topic(args),
        Some(c) => known(c).ok_or_else(|| usage(format!("unknown command '{c}'")))?,
    };
    if args.contains(["-h", "--help"]) {
        return Ok(Cmd::Help(Some(command)));
    }
    let cmd = match command {
        "create" => parse_create(args)?,
        "list" => {
            let detailed = switch(&mut args, &["--detailed"]);
            let json = switch(&mut args, &["--json"]);
            finish(args, command)?;
            Cmd::List { detailed, json }
        }
        "show" => {
            let json = switch(&mut args, &["--json"]);
            let id = positional(&mut args, command)?;
            finish(args, command)?;
            Cmd::Show { id, json }
        }
        "delete" => {
            let yes = switch(&mut args, &["-y", "--yes"]);
            let no_refresh = switch(&mut args, &["--no-refresh"]);
            let id = positional(&mut args, command)?;
            finish(args, command)?;
            Cmd::Delete {
                id,
                yes,
                no_refresh,
            }
        }
        _ => {
            let url = value(&mut args, command, "--url")?;
            finish(args, command)?;
            Cmd::Refresh { url }
        }
    };
    Ok(cmd)
}

/// No command word: only `--help` and `--version` may stand alone.
fn parse_global(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    if args.contains(["-h", "--help"]) {
        return help_topic(args);
    }
    if args.contains(["-V", "--version"]) {
        finish(args, "--version")?;
        return Ok(Cmd::Version);
    }
    match args.finish().first() {
        None => Err(usage(
            "missing command: expected create, list, show, delete or refresh".into(),
        )),
        Some(flag) => Err(usage(format!("unknown flag {}", flag.to_string_lossy()))),
    }
}

/// `help [COMMAND]` and `--help [COMMAND]`.
fn help_topic(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    let topic = match args.subcommand() {
        Ok(None) => None,
        Ok(Some(c)) => Some(known(&c).ok_or_else(|| usage(format!("unknown command '{c}'")))?),
        Err(e) => return Err(usage(format!("help: {e}"))),
    };
    finish(args, "help")?;
    Ok(Cmd::Help(topic))
}

fn parse_create(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = "create";
    let name = value(&mut args, C, "--name")?;
    let metadata = value(&mut args, C, "--metadata")?;
    let expires_at = value(&mut args, C, "--expires-at")?;
    let ttl = value(&mut args, C, "--ttl")?;
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let json = switch(&mut args, &["--json"]);
    finish(args, C)?;
    let name = match name {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) => return Err(usage("create: --name must not be empty".into())),
        None => return Err(usage("create: missing required flag --name".into())),
    };
    let expires = match (expires_at, ttl) {
        (Some(_), Some(_)) => {
            return Err(usage("create: give --expires-at or --ttl, not both".into()))
        }
        (Some(at), None) => Some(Expiry::At(
            parse_timestamp(&at).map_err(|e| usage(format!("create: --expires-at: {e}")))?,
        )),
        (None, Some(ttl)) => Some(Expiry::After(
            parse_ttl(&ttl).map_err(|e| usage(format!("create: --ttl: {e}")))?,
        )),
        (None, None) => None,
    };
    Ok(Cmd::Create(CreateArgs {
        name,
        metadata,
        expires,
        no_refresh,
        json,
    }))
}

fn known(command: &str) -> Option<&'static str> {
    ["create", "list", "show", "delete", "refresh"]
        .into_iter()
        .find(|&c| c == command)
}

fn usage(message: String) -> CliError {
    CliError::Usage(message)
}

/// A boolean flag; repeating it is harmless.
fn switch(args: &mut pico_args::Arguments, spellings: &[&'static str]) -> bool {
    let mut seen = false;
    for &flag in spellings {
        while args.contains(flag) {
            seen = true;
        }
    }
    seen
}

/// A flag with a value, given at most once. A following flag is not taken as the value, so
/// `--name --json` reports the missing name rather than creating a key called `--json`.
fn value(
    args: &mut pico_args::Arguments,
    command: &str,
    flag: &'static str,
) -> Result<Option<String>, CliError> {
    let mut next = || {
        args.opt_value_from_str::<_, String>(flag)
            .map_err(|e| match e {
                pico_args::Error::OptionWithoutAValue(_) => {
                    usage(format!("{command}: {flag} needs a value"))
                }
                e => usage(format!("{command}: {flag}: {e}")),
            })
    };
    let first = next()?;
    if first.as_deref().is_some_and(|v| v.starts_with("--")) {
        return Err(usage(format!("{command}: {flag} needs a value")));
    }
    if next()?.is_some() {
        return Err(usage(format!("{command}: {flag} given more than once")));
    }
    Ok(first)
}

fn positional(args: &mut pico_args::Arguments, command: &str) -> Result<String, CliError> {
    match args.opt_free_from_str::<String>() {
        Ok(Some(id)) if !id.starts_with('-') => Ok(id),
        Ok(Some(flag)) => Err(usage(format!("{command}: unknown flag {flag}"))),
        Ok(None) => Err(usage(format!("{command}: missing the key ID"))),
        Err(e) => Err(usage(format!("{command}: {e}"))),
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

/// Whether an answer to a yes/no prompt is yes (`y` or `yes`, any case); the default is no.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The longest `--ttl`: far enough for "never" in practice, and keeps `now + ttl` a valid date.
const MAX_TTL_MS: u64 = 1000 * 365 * 86_400_000;

/// Parses a duration such as `3600s`, `30m`, `12h`, `90d` or `2w` into milliseconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let expected =
        || format!("expected a positive number and a unit (s, m, h, d, w) like 90d, got '{text}'");
    let too_long = || format!("expected at most 1000 years, got '{text}'");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let unit_ms: u64 = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(expected()),
    };
    // All digits, so a parse failure can only be overflow.
    let n: u64 = number.parse().map_err(|_| too_long())?;
    if n == 0 {
        return Err(expected());
    }
    n.checked_mul(unit_ms)
        .filter(|&ms| ms <= MAX_TTL_MS)
        .ok_or_else(too_long)
}

#[cfg(test)]
mod tests;
