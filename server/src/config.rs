//! Server configuration from flags and environment variables (flags win), as a pure function.

use std::ffi::OsString;
use std::time::Duration;

use crate::store::StoreConfig;
use crate::Error;

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to bind (`HOST`, default `0.0.0.0`).
    pub host: String,
    /// Port to bind (`PORT`, default 8080; 0 picks a free one).
    pub port: u16,
    /// Worker threads (`THREADS`, default: the number of cores).
    pub threads: usize,
    /// Where the keys file lives.
    pub store: StoreConfig,
    /// How often to check the store for a changed file (`REFRESH_INTERVAL` seconds, default
    /// 30); `None` (0) disables polling.
    pub refresh_interval: Option<Duration>,
    /// How long start-up retries an unreadable store (`STARTUP_TIMEOUT` seconds, default 30).
    pub startup_timeout: Duration,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start serving.
    Run(Box<Config>),
    /// Print [`USAGE`].
    Help,
}

/// `heare-auth-server --help`.
pub const USAGE: &str = "\
heare-auth-server: answers POST /verify from an in-memory copy of the keys file

Usage: heare-auth-server [--host HOST] [--port PORT] [--keys-file PATH] [--threads N]

Options (each also read from the environment variable in brackets; flags win):
  --host HOST        address to listen on [HOST] (default 0.0.0.0)
  --port PORT        port to listen on [PORT] (default 8080)
  --keys-file PATH   local keys file [KEYS_FILE] (default ./keys.json; missing = no keys)
  --threads N        worker threads [THREADS] (default: number of cores)
  -h, --help         print this help

Environment only:
  S3_BUCKET, S3_KEY (keys.json), S3_REGION (us-east-1), S3_ENDPOINT or AWS_ENDPOINT_URL[_S3],
  S3_TIMEOUT (10 s), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
                     keep the keys file in S3 instead of a local file
  STORAGE_SECRET     decrypts (and the CLI encrypts) the keys file
  REFRESH_INTERVAL   seconds between checks for a changed keys file (default 30; 0 = never)
  STARTUP_TIMEOUT    seconds to retry an unreadable store at start-up (default 30)
  RUST_LOG           log level (default info); logs are JSON lines on stderr
";

/// Parses the command line; `env` reads environment variables and `cores` is the default
/// thread count.
pub fn parse(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
    cores: usize,
) -> Result<Command, Error> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    let flag =
        |args: &mut pico_args::Arguments, name: &'static str| -> Result<Option<String>, Error> {
            args.opt_value_from_str(name)
                .map_err(|e| Error::Config(format!("{name}: {e}")))
        };
    let host = flag(&mut args, "--host")?;
    let port = flag(&mut args, "--port")?;
    let keys_file = flag(&mut args, "--keys-file")?;
    let threads = flag(&mut args, "--threads")?;
    let rest = args.finish();
    if let Some(extra) = rest.first() {
        return Err(Error::Config(format!(
            "unexpected argument '{}' (see --help)",
            extra.to_string_lossy()
        )));
    }
    let host = host
        .or_else(|| env("HOST"))
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = match port.or_else(|| env("PORT")) {
        None => 8080,
        Some(p) => p.parse().map_err(|_| {
            Error::Config(format!(
                "port: expected a number from 0 to 65535, got '{p}'"
            ))
        })?,
    };
    let threads = match threads.or_else(|| env("THREADS")) {
        None => cores.max(1),
        Some(t) => match t.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Error::Config(format!(
                    "threads: expected a positive number, got '{t}'"
                )))
            }
        },
    };
    let store = StoreConfig::from_env(|name| match name {
        "KEYS_FILE" => keys_file.clone().or_else(|| env(name)),
        _ => env(name),
    })?;
    let seconds = |name: &str, default: f64| -> Result<Duration, Error> {
        let Some(text) = env(name) else {
            return Ok(Duration::from_secs_f64(default));
        };
        text.parse::<f64>()
            .ok()
            .filter(|s| *s >= 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{name}: expected a number of seconds, got '{text}'"
                ))
            })
    };
    let refresh_interval = Some(seconds("REFRESH_INTERVAL", 30.0)?).filter(|d| !d.is_zero());
    Ok(Command::Run(Box::new(Config {
        host,
        port,
        threads,
        store,
        refresh_interval,
        startup_timeout: seconds("STARTUP_TIMEOUT", 30.0)?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, Error> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(
            args.iter().map(OsString::from).collect(),
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            2,
        )
    }

    #[test]
    fn defaults_match_the_original() {
        assert_eq!(
            run(&[], &[]),
            Ok(Command::Run(Box::new(Config {
                host: "0.0.0.0".into(),
                port: 8080,
                threads: 2,
                store: StoreConfig::file("./keys.json"),
                refresh_interval: Some(Duration::from_secs(30)),
                startup_timeout: Duration::from_secs(30),
            })))
        );
    }

    #[test]
    fn flags_override_environment() {
        let env = [
            ("PORT", "9000"),
            ("HOST", "127.0.0.1"),
            ("KEYS_FILE", "/a.json"),
            ("THREADS", "3"),
        ];
        let Ok(Command::Run(c)) = run(&[], &env) else {
            panic!()
        };
        assert_eq!((c.host.as_str(), c.port, c.threads), ("127.0.0.1", 9000, 3));
        assert_eq!(c.store, StoreConfig::file("/a.json"));
        let Ok(Command::Run(c)) = run(
            &["--port", "1", "--keys-file", "/b.json", "--threads", "5"],
            &env,
        ) else {
            panic!()
        };
        assert_eq!((c.port, c.threads), (1, 5));
        assert_eq!(c.store, StoreConfig::file("/b.json"));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        let err = |args: &[&str], env: &[(&str, &str)]| run(args, env).unwrap_err().to_string();
        assert_eq!(
            err(&[], &[("PORT", "http")]),
            "port: expected a number from 0 to 65535, got 'http'"
        );
        assert_eq!(
            err(&["--port", "70000"], &[]),
            "port: expected a number from 0 to 65535, got '70000'"
        );
        assert_eq!(
            err(&["--threads", "0"], &[]),
            "threads: expected a positive number, got '0'"
        );
        assert_eq!(
            err(&["--verbose"], &[]),
            "unexpected argument '--verbose' (see --help)"
        );
        assert!(err(&["--port"], &[]).starts_with("--port: "));
        assert_eq!(
            err(&[], &[("REFRESH_INTERVAL", "-1")]),
            "REFRESH_INTERVAL: expected a number of seconds, got '-1'"
        );
        let Ok(Command::Run(c)) = run(
            &[],
            &[("REFRESH_INTERVAL", "0"), ("STARTUP_TIMEOUT", "0.5")],
        ) else {
            panic!()
        };
        assert_eq!(
            (c.refresh_interval, c.startup_timeout),
            (None, Duration::from_millis(500))
        );
    }
}
