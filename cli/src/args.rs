//! Command-line parsing: a pure function from arguments to a [`Cmd`].

use std::ffi::OsString;

use heare_auth_core::{check_name, check_scope, form, parse_timestamp, Error, Form, RateLimit};
pub use heare_auth_core::{parse_grace, parse_ttl, MAX_TTL_MS};

use crate::cmd::{
    Cmd, CreateArgs, Expiry, Invocation, KeyArgs, NewExpiry, RateLimitArgs, RemoteFlags,
    RotateArgs, ScanArgs, UpdateArgs, DEFAULT_GRACE_MS,
};
use crate::commands::ImportFormat;
use crate::remote::target::base_url;
use crate::table::Command;
use crate::CliError;
use credits::new_credits;
use since::since;

mod credits;
mod since;

/// The server's base URL, before the command or after it (`refresh --url` is refresh's own).
const URL: &str = "--url";
/// The file holding the admin key, before the command or after it.
const ADMIN_KEY_FILE: &str = "--admin-key-file";
/// What a user might type to give the admin key itself, which is refused.
const ADMIN_KEY: &str = "--admin-key";

/// Parses the arguments after the program name. Unknown flags are reported before missing or
/// invalid values, so a typo is named as such.
pub fn parse(args: Vec<OsString>) -> Result<Invocation, CliError> {
    // Named without its value: that would be the admin key, printed.
    if args.iter().any(|a| {
        a.to_str()
            .is_some_and(|a| a == ADMIN_KEY || a.starts_with("--admin-key="))
    }) {
        return Err(usage(format!(
            "{ADMIN_KEY}: the admin key is never taken on the command line, which every user \
             can read: set HEARE_AUTH_ADMIN_KEY or give {ADMIN_KEY_FILE} PATH"
        )));
    }
    // A secret on a command line is in the shell's history and every user's `ps`: refused
    // before any message that could repeat it, and not repeated in this one.
    if args.iter().any(|a| holds_secret(&a.to_string_lossy())) {
        return Err(usage(
            "an argument holds a secret (not shown): secrets are never taken on the command \
             line, which every user of the machine can read; to find whose it is, pipe it to \
             `heare-auth identify`"
                .into(),
        ));
    }
    if let Some(bad) = args.iter().find(|a| a.to_str().is_none()) {
        return Err(usage(format!(
            "'{}' is not UTF-8 text",
            bad.to_string_lossy()
        )));
    }
    let mut args: Vec<OsString> = args.into_iter().flat_map(split_scopes).collect();
    let leading = leading_remote_flags(&mut args)?;
    let mut args = pico_args::Arguments::from_vec(args);
    let first = args
        .subcommand()
        .map_err(|e| usage(format!("the command: {e}")))?;
    let which = match first.as_deref() {
        None => return invocation(parse_global(args)?, leading, None),
        Some("help") => return invocation(help_topic(args)?, leading, None),
        Some(c) => known(c)?,
    };
    let command = which.name();
    if args.contains(["-h", "--help"]) {
        return invocation(Cmd::Help(Some(command)), leading, None);
    }
    let trailing = RemoteFlags {
        // `refresh --url` is the refresh endpoint, not a server to send the command to.
        url: match which {
            Command::Refresh => None,
            _ => value(&mut args, command, URL)?,
        },
        admin_key_file: value(&mut args, command, ADMIN_KEY_FILE)?,
    };
    let cmd = parse_command(which, args)?;
    let remote = RemoteFlags {
        url: once(command, URL, leading.url, trailing.url)?,
        admin_key_file: once(
            command,
            ADMIN_KEY_FILE,
            leading.admin_key_file,
            trailing.admin_key_file,
        )?,
    };
    invocation(cmd, remote, Some(command))
}

/// `--url` and `--admin-key-file` given before the command word, taken out of `args`.
fn leading_remote_flags(args: &mut Vec<OsString>) -> Result<RemoteFlags, CliError> {
    let mut flags = RemoteFlags::default();
    while let Some(first) = args.first().and_then(|a| a.to_str()) {
        let (flag, inline) = match first.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (first, None),
        };
        let (slot, flag) = match flag {
            URL => (&mut flags.url, URL),
            ADMIN_KEY_FILE => (&mut flags.admin_key_file, ADMIN_KEY_FILE),
            _ => break,
        };
        let taken = match inline {
            // As pico-args reads `--flag=` after the command.
            Some(value) if value.is_empty() => return Err(usage(format!("{flag} needs a value"))),
            Some(value) => {
                args.remove(0);
                value
            }
            None => match args.get(1).and_then(|a| a.to_str()) {
                Some(value) if !value.starts_with("--") => {
                    let value = value.to_string();
                    args.drain(..2);
                    value
                }
                _ => return Err(usage(format!("{flag} needs a value"))),
            },
        };
        if slot.replace(taken).is_some() {
            return Err(usage(format!("{flag} given more than once")));
        }
    }
    Ok(flags)
}

/// A remote flag given before the command or after it, not both.
fn once(
    command: &str,
    flag: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<Option<String>, CliError> {
    match (before, after) {
        (Some(_), Some(_)) => Err(usage(format!("{command}: {flag} given more than once"))),
        (before, after) => Ok(before.or(after)),
    }
}

/// The invocation of `cmd` with `remote`, its `--url` checked and made a base URL; for help
/// and the version, which ignore them, as given. `command` names the command in an error.
fn invocation(
    cmd: Cmd,
    remote: RemoteFlags,
    command: Option<&str>,
) -> Result<Invocation, CliError> {
    if matches!(cmd, Cmd::Help(_) | Cmd::Version) {
        return Ok(Invocation { cmd, remote });
    }
    let at = command.map_or_else(String::new, |c| format!("{c}: "));
    let url = remote
        .url
        .map(|u| base_url(&u).map_err(|e| usage(format!("{at}{URL}: {e}"))))
        .transpose()?;
    if remote.admin_key_file.as_deref() == Some("") {
        return Err(usage(format!("{at}{ADMIN_KEY_FILE} must not be empty")));
    }
    Ok(Invocation {
        cmd,
        remote: RemoteFlags { url, ..remote },
    })
}

/// The command `which` names, from the arguments after its word.
fn parse_command(which: Command, mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    let command = which.name();
    let cmd = match which {
        Command::Create => parse_create(args)?,
        Command::List => {
            let detailed = switch(&mut args, &["--detailed"]);
            let json = switch(&mut args, &["--json"]);
            let unused_since = value(&mut args, command, "--unused-since")?;
            finish(args, command)?;
            Cmd::List {
                detailed,
                json,
                unused_since: unused_since
                    .map(|text| since(command, "--unused-since", &text))
                    .transpose()?,
            }
        }
        Command::Show => {
            let json = switch(&mut args, &["--json"]);
            let id = positional(&mut args, command)?;
            finish(args, command)?;
            Cmd::Show { id, json }
        }
        Command::Delete => {
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
        Command::Disable => Cmd::Disable(key_args(args, command)?),
        Command::Enable => Cmd::Enable(key_args(args, command)?),
        Command::Rotate => parse_rotate(args)?,
        Command::SetRateLimit => parse_set_rate_limit(args)?,
        Command::Update => parse_update(args)?,
        Command::Doctor => {
            let json = switch(&mut args, &["--json"]);
            finish(args, command)?;
            Cmd::Doctor { json }
        }
        Command::Check => {
            let json = switch(&mut args, &["--json"]);
            let file = optional_free(&mut args, command)?;
            finish(args, command)?;
            Cmd::Check { file, json }
        }
        Command::Migrate => {
            let hash_secrets = switch(&mut args, &["--hash-secrets"]);
            let yes = switch(&mut args, &["-y", "--yes"]);
            let no_refresh = switch(&mut args, &["--no-refresh"]);
            finish(args, command)?;
            if !hash_secrets {
                return Err(usage(
                    "migrate: missing required flag --hash-secrets".into(),
                ));
            }
            Cmd::Migrate { yes, no_refresh }
        }
        Command::Compact => {
            let no_refresh = switch(&mut args, &["--no-refresh"]);
            finish(args, command)?;
            Cmd::Compact { no_refresh }
        }
        Command::Export => {
            let output = value(&mut args, command, "--output")?;
            finish(args, command)?;
            Cmd::Export { output }
        }
        Command::Import => {
            let yes = switch(&mut args, &["-y", "--yes"]);
            let no_refresh = switch(&mut args, &["--no-refresh"]);
            let format = value(&mut args, command, "--format")?;
            let file = free(&mut args, command, "the file to import")?;
            finish(args, command)?;
            let format = match format {
                None => ImportFormat::of_file(&file),
                Some(word) => ImportFormat::named(&word).ok_or_else(|| {
                    usage(format!(
                        "{command}: --format: expected {}, got '{}'",
                        ImportFormat::WORDS,
                        word.escape_debug()
                    ))
                })?,
            };
            Cmd::Import {
                file,
                format,
                yes,
                no_refresh,
            }
        }
        Command::Refresh => {
            let url = value(&mut args, command, "--url")?;
            finish(args, command)?;
            Cmd::Refresh { url }
        }
        Command::Identify => {
            let json = switch(&mut args, &["--json"]);
            // Whatever is left may be the secret itself: refused, and never shown.
            if !args.finish().is_empty() {
                return Err(usage(format!(
                    "{command}: takes no argument but --json (what was given is not shown): \
                     the secret is read from standard input, never from the command line, \
                     which every user of the machine can read"
                )));
            }
            Cmd::Identify { json }
        }
        Command::Scan => parse_scan(args)?,
    };
    Ok(cmd)
}

/// `scan PATH...`: at least one path, none empty.
fn parse_scan(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = Command::Scan.name();
    let any_prefix = switch(&mut args, &["--any-prefix"]);
    let include_git = switch(&mut args, &["--include-git"]);
    let no_store = switch(&mut args, &["--no-store"]);
    let json = switch(&mut args, &["--json"]);
    let mut paths = Vec::new();
    while let Some(path) = optional_free(&mut args, C)? {
        if path.is_empty() {
            return Err(usage(format!("{C}: a path must not be empty")));
        }
        paths.push(path);
    }
    finish(args, C)?;
    if paths.is_empty() {
        return Err(usage(format!(
            "{C}: missing the files or directories to scan"
        )));
    }
    Ok(Cmd::Scan(ScanArgs {
        paths,
        any_prefix,
        include_git,
        no_store,
        json,
    }))
}

/// Whether an argument holds a secret of the checksummed format (checksum right or not): a
/// run of letters, digits and `_` that [`form`] recognises.
fn holds_secret(arg: &str) -> bool {
    arg.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| form(word) != Form::Other)
}

/// `--scopes=X` as `--scopes X`: pico-args finds the spaced form before the `=` form, and the
/// order of repeated `--scopes` is the order of the key's scopes.
fn split_scopes(arg: OsString) -> Vec<OsString> {
    match arg.to_str().and_then(|a| a.strip_prefix("--scopes=")) {
        Some(value) if !value.is_empty() => vec!["--scopes".into(), value.into()],
        _ => vec![arg],
    }
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
        None => Err(usage(format!(
            "missing command: expected {}",
            Command::every_name()
        ))),
        Some(flag) => Err(usage(format!("unknown flag {}", flag.to_string_lossy()))),
    }
}

/// `help [COMMAND]` and `--help [COMMAND]`.
fn help_topic(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    let topic = match args.subcommand() {
        Ok(None) => None,
        Ok(Some(c)) => Some(known(&c)?.name()),
        Err(e) => return Err(usage(format!("help: {e}"))),
    };
    finish(args, "help")?;
    Ok(Cmd::Help(topic))
}

fn parse_create(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = Command::Create.name();
    let name = value(&mut args, C, "--name")?;
    let metadata = value(&mut args, C, "--metadata")?;
    let scopes = values(&mut args, C, "--scopes")?;
    let expires_at = value(&mut args, C, "--expires-at")?;
    let ttl = value(&mut args, C, "--ttl")?;
    let rate_limit = value(&mut args, C, "--rate-limit")?;
    let credits = value(&mut args, C, "--credits")?;
    let refill = value(&mut args, C, "--refill")?;
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let json = switch(&mut args, &["--json"]);
    finish(args, C)?;
    let name = match name {
        Some(n) => checked_name(C, n)?,
        None => return Err(usage("create: missing required flag --name".into())),
    };
    let expires = expiry(C, expires_at, ttl)?;
    let scopes = parse_scopes(&scopes).map_err(|e| usage(format!("create: --scopes: {e}")))?;
    let rate_limit = match rate_limit {
        None => None,
        Some(r) => {
            Some(RateLimit::parse(&r).map_err(|e| usage(format!("create: --rate-limit: {e}")))?)
        }
    };
    let credits = new_credits(C, credits, refill)?;
    Ok(Cmd::Create(CreateArgs {
        name,
        metadata,
        scopes,
        expires,
        rate_limit,
        credits,
        no_refresh,
        json,
    }))
}

/// `update ID` and at least one field to change; the fields are read as `create` reads them,
/// and `--no-credits` removes the credits.
fn parse_update(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = Command::Update.name();
    let name = value(&mut args, C, "--name")?;
    let metadata = value(&mut args, C, "--metadata")?;
    let scopes = values(&mut args, C, "--scopes")?;
    let expires_at = value(&mut args, C, "--expires-at")?;
    let ttl = value(&mut args, C, "--ttl")?;
    let no_expiry = switch(&mut args, &["--no-expiry"]);
    let credits = value(&mut args, C, "--credits")?;
    let refill = value(&mut args, C, "--refill")?;
    let no_credits = switch(&mut args, &["--no-credits"]);
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let json = switch(&mut args, &["--json"]);
    let id = positional(&mut args, C)?;
    finish(args, C)?;
    let given = [expires_at.is_some(), ttl.is_some(), no_expiry];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(usage(format!(
            "{C}: give one of --expires-at, --ttl and --no-expiry, not more"
        )));
    }
    let expires = match no_expiry {
        true => Some(NewExpiry::Never),
        false => expiry(C, expires_at, ttl)?.map(NewExpiry::At),
    };
    let name = name.map(|n| checked_name(C, n)).transpose()?;
    let scopes = match scopes.is_empty() {
        true => None,
        false => Some(parse_scopes(&scopes).map_err(|e| usage(format!("{C}: --scopes: {e}")))?),
    };
    if no_credits && (credits.is_some() || refill.is_some()) {
        return Err(usage(format!(
            "{C}: give --credits (with --refill) or --no-credits, not both"
        )));
    }
    let credits = match no_credits {
        true => Some(None),
        false => new_credits(C, credits, refill)?.map(Some),
    };
    if name.is_none()
        && metadata.is_none()
        && scopes.is_none()
        && expires.is_none()
        && credits.is_none()
    {
        return Err(usage(format!(
            "{C}: nothing to change: give --name, --metadata, --scopes, --expires-at, --ttl, \
             --no-expiry, --credits or --no-credits"
        )));
    }
    Ok(Cmd::Update(UpdateArgs {
        id,
        name,
        metadata,
        scopes,
        expires,
        credits,
        no_refresh,
        json,
    }))
}

/// A `--name`: not blank, and no character that would steer a terminal or a log.
fn checked_name(command: &str, name: String) -> Result<String, CliError> {
    if name.trim().is_empty() {
        return Err(usage(format!("{command}: --name must not be empty")));
    }
    check_name("name", &name).map_err(|e| usage(format!("{command}: --name: {e}")))?;
    Ok(name)
}

/// The expiry `--expires-at` or `--ttl` (not both) gives, if either is given.
fn expiry(
    command: &str,
    expires_at: Option<String>,
    ttl: Option<String>,
) -> Result<Option<Expiry>, CliError> {
    match (expires_at, ttl) {
        (Some(_), Some(_)) => Err(usage(format!(
            "{command}: give --expires-at or --ttl, not both"
        ))),
        (Some(at), None) => {
            Ok(Some(Expiry::At(parse_timestamp(&at).map_err(|e| {
                usage(format!("{command}: --expires-at: {e}"))
            })?)))
        }
        (None, Some(ttl)) => Ok(Some(Expiry::After(
            parse_ttl(&ttl).map_err(|e| usage(format!("{command}: --ttl: {e}")))?,
        ))),
        (None, None) => Ok(None),
    }
}

/// `disable ID` and `enable ID`.
fn key_args(mut args: pico_args::Arguments, command: &str) -> Result<KeyArgs, CliError> {
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let json = switch(&mut args, &["--json"]);
    let id = positional(&mut args, command)?;
    finish(args, command)?;
    Ok(KeyArgs {
        id,
        no_refresh,
        json,
    })
}

fn parse_rotate(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = Command::Rotate.name();
    let grace = value(&mut args, C, "--grace")?;
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let json = switch(&mut args, &["--json"]);
    let id = positional(&mut args, C)?;
    finish(args, C)?;
    let grace_ms = match grace {
        None => DEFAULT_GRACE_MS,
        Some(g) => parse_grace(&g).map_err(|e| usage(format!("{C}: --grace: {e}")))?,
    };
    Ok(Cmd::Rotate(RotateArgs {
        id,
        grace_ms,
        no_refresh,
        json,
    }))
}

/// `set-rate-limit ID LIMIT`, `LIMIT` being `none` or what [`RateLimit::parse`] reads.
fn parse_set_rate_limit(mut args: pico_args::Arguments) -> Result<Cmd, CliError> {
    const C: &str = Command::SetRateLimit.name();
    let no_refresh = switch(&mut args, &["--no-refresh"]);
    let id = positional(&mut args, C)?;
    let limit = free(
        &mut args,
        C,
        "the rate limit (REQUESTS/PERIOD like 100/60s, or none)",
    )?;
    finish(args, C)?;
    let limit = match limit.as_str() {
        "none" => None,
        text => Some(RateLimit::parse(text).map_err(|e| usage(format!("{C}: {e}")))?),
    };
    Ok(Cmd::SetRateLimit(RateLimitArgs {
        id,
        limit,
        no_refresh,
    }))
}

/// The scope names of every `--scopes` value (each comma-separated), checked, first
/// occurrence kept.
fn parse_scopes(values: &[String]) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for value in values {
        for name in value.split(',') {
            if let Err(problem) = check_scope(name) {
                return Err(scope_error(&problem, name, value));
            }
            if !scopes.iter().any(|s| s == name) {
                scopes.push(name.to_string());
            }
        }
    }
    Ok(scopes)
}

/// A scope's problem, naming the scope when the problem does not (an empty one by the whole
/// value it came from).
fn scope_error(problem: &Error, name: &str, value: &str) -> String {
    if let Error::ScopeCharacter { .. } = problem {
        return problem.to_string();
    }
    let shown = if name.is_empty() { value } else { name };
    format!("{problem}, got '{}'", shown.escape_debug())
}

/// The command a word names.
fn known(word: &str) -> Result<Command, CliError> {
    Command::named(word).ok_or_else(|| usage(format!("unknown command '{word}'")))
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

/// A flag with a value that may be given more than once: every value, in order.
fn values(
    args: &mut pico_args::Arguments,
    command: &str,
    flag: &'static str,
) -> Result<Vec<String>, CliError> {
    let all: Vec<String> = args.values_from_str(flag).map_err(|e| match e {
        pico_args::Error::OptionWithoutAValue(_) => {
            usage(format!("{command}: {flag} needs a value"))
        }
        e => usage(format!("{command}: {flag}: {e}")),
    })?;
    if all.iter().any(|v| v.starts_with("--")) {
        return Err(usage(format!("{command}: {flag} needs a value")));
    }
    Ok(all)
}

/// The key ID, the next free argument.
fn positional(args: &mut pico_args::Arguments, command: &str) -> Result<String, CliError> {
    free(args, command, "the key ID")
}

/// The next free argument, `what` it is named in an error when it is missing.
fn free(args: &mut pico_args::Arguments, command: &str, what: &str) -> Result<String, CliError> {
    optional_free(args, command)?.ok_or_else(|| usage(format!("{command}: missing {what}")))
}

/// The next free argument, if there is one; a flag left over is an unknown one.
fn optional_free(
    args: &mut pico_args::Arguments,
    command: &str,
) -> Result<Option<String>, CliError> {
    match args.opt_free_from_str::<String>() {
        Ok(Some(flag)) if flag.starts_with('-') => {
            Err(usage(format!("{command}: unknown flag {flag}")))
        }
        Ok(free) => Ok(free),
        Err(e) => Err(usage(format!("{command}: {e}"))),
    }
}

fn finish(args: pico_args::Arguments, command: &str) -> Result<(), CliError> {
    match args.finish().first() {
        None => Ok(()),
        Some(extra) => {
            let extra = extra.to_string_lossy();
            let what = match extra.starts_with('-') {
                true => "unknown flag",
                false => "unexpected argument",
            };
            // An empty argument is shown as one, so that the message still names it.
            let extra = if extra.is_empty() { "''".into() } else { extra };
            Err(usage(format!("{command}: {what} {extra}")))
        }
    }
}

#[cfg(test)]
mod tests;
