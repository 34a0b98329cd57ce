//! Server configuration from flags and environment variables (flags win), as a pure function.

use std::ffi::OsString;
use std::time::Duration;

use heare_auth_core::{parse_seconds, Prefixes, Zero};
use heare_auth_store::{CountersConfig, InvalidSetting, StoreConfig};

use crate::limits::Limits;
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
    /// What the transport allows each connection.
    pub limits: Limits,
    /// A second address serving only `/metrics`, to any peer (`METRICS_ADDR`): host and port.
    pub metrics_addr: Option<(String, u16)>,
    /// How the handlers answer (readiness, rate limits).
    pub settings: Settings,
    /// Where the counts replicas share are (`REDIS_URL`, `REDIS_PREFIX`); `None`: each
    /// replica counts alone.
    pub counters: Option<CountersConfig>,
}

/// Choices about answers, from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `/ready` answers 503 when the store was last read longer ago than this (`None`: never).
    pub ready_max_staleness: Option<Duration>,
    /// The status `/auth` gives a key over its rate limit (429; nginx needs 401 or 403).
    pub rate_limit_status: u16,
    /// Whether the management API (`/keys`) is served (`MANAGEMENT_API=1`).
    pub management: bool,
    /// The prefixes of the secrets and ids the management API makes (`SECRET_PREFIX`,
    /// `ID_PREFIX`).
    pub prefixes: Prefixes,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            ready_max_staleness: None,
            rate_limit_status: 429,
            management: false,
            prefixes: Prefixes::default(),
        }
    }
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
  FIRST_REQUEST_TIMEOUT seconds a new connection may wait before its first request (default 5)
  HEADER_TIMEOUT     seconds from a request's first byte to the end of its headers (default 10)
  BODY_TIMEOUT       seconds to receive a request body, else 408 (default 10)
  IDLE_TIMEOUT       seconds a keep-alive connection may sit idle (default 120)
  MAX_CONNECTIONS    open connections at most (default 4096, or fewer if the open-file limit
                     leaves less room); at the cap, the longest idle (then the slowest) close
                     to make room for a waiting client, else it waits in the backlog
  MAX_CONNECTIONS_PER_PEER open connections one client address may hold (default: no cap;
                     behind a proxy every client is the proxy)
  LISTEN_BACKLOG     connections queued by the kernel before accept (default 1024)
  SHUTDOWN_TIMEOUT   seconds SIGTERM waits for requests in flight (default 10)
  METRICS_ADDR       also serve /metrics, to any peer, on this address (e.g. 0.0.0.0:9090)
  READY_MAX_STALENESS seconds since the store was last read after which /ready says 503
                     (default 3 x REFRESH_INTERVAL; never when polling is off)
  RATE_LIMIT_STATUS  the status /auth gives a key over its rate limit: 429 (default), 403 or
                     401 (nginx turns 429 from auth_request into 500)
  MANAGEMENT_API     1 serves the management API (/keys), guarded by keys with the scopes
                     keys:read, keys:write or keys:admin (default 0: /keys answers 404)
  SECRET_PREFIX, ID_PREFIX
                     the prefixes of the secrets and ids the management API makes (default
                     sec_ and key_): 2 to 24 lowercase letters, digits and _, beginning with a
                     letter and ending in _ (acme_sk_); keys made under an earlier prefix keep
                     working
  REDIS_URL          redis:// or rediss:// ([[USER]:PASSWORD@]HOST[:PORT][/DB]): replicas share
                     rate limits, credits and usage there (default: each counts alone)
  REDIS_PREFIX       put before every Redis key, so deployments can share one (default
                     heare-auth:)
  REDIS_CA_FILE      with rediss://, a PEM file of the authorities the Redis server's
                     certificate must come from (default: the public ones)
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
                .map_err(|_| InvalidSetting::new(name, "a value", "").into())
        };
    let host = flag(&mut args, "--host")?;
    let port = flag(&mut args, "--port")?;
    let keys_file = flag(&mut args, "--keys-file")?;
    let threads = flag(&mut args, "--threads")?;
    if let Some(extra) = args.finish().first() {
        return Err(Error::Argument(extra.to_string_lossy().into_owned()));
    }
    let host = host
        .or_else(|| env("HOST"))
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = match port.or_else(|| env("PORT")) {
        None => 8080,
        Some(p) => p
            .parse()
            .map_err(|_| InvalidSetting::new("port", "a number from 0 to 65535", &p))?,
    };
    let count = |name: &str, value: Option<String>| -> Result<Option<usize>, Error> {
        match value {
            None => Ok(None),
            Some(text) => match text.parse() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(InvalidSetting::new(name, "a positive number", &text).into()),
            },
        }
    };
    let threads = count("threads", threads.or_else(|| env("THREADS")))?.unwrap_or(cores.max(1));
    let store = StoreConfig::from_env(|name| match name {
        "KEYS_FILE" => keys_file.clone().or_else(|| env(name)),
        _ => env(name),
    })?;
    let seconds = |name: &str, text: &str, zero: Zero| {
        parse_seconds(text, zero).ok_or_else(|| InvalidSetting::new(name, zero.expected(), text))
    };
    let seconds_or = |name: &str, zero: Zero, default: Duration| -> Result<Duration, Error> {
        match env(name) {
            None => Ok(default),
            Some(text) => Ok(seconds(name, &text, zero)?),
        }
    };
    let defaults = Limits::default();
    let limits = Limits {
        first_request_timeout: seconds_or(
            "FIRST_REQUEST_TIMEOUT",
            Zero::Refused,
            defaults.first_request_timeout,
        )?,
        header_timeout: seconds_or("HEADER_TIMEOUT", Zero::Refused, defaults.header_timeout)?,
        body_timeout: seconds_or("BODY_TIMEOUT", Zero::Refused, defaults.body_timeout)?,
        idle_timeout: seconds_or("IDLE_TIMEOUT", Zero::Refused, defaults.idle_timeout)?,
        max_connections: count("MAX_CONNECTIONS", env("MAX_CONNECTIONS"))?,
        max_connections_per_peer: count(
            "MAX_CONNECTIONS_PER_PEER",
            env("MAX_CONNECTIONS_PER_PEER"),
        )?,
        backlog: count("LISTEN_BACKLOG", env("LISTEN_BACKLOG"))?
            .map_or(defaults.backlog, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        shutdown_timeout: seconds_or("SHUTDOWN_TIMEOUT", Zero::Allowed, defaults.shutdown_timeout)?,
    };
    let thirty = Duration::from_secs(30);
    let refresh_interval =
        Some(seconds_or("REFRESH_INTERVAL", Zero::Allowed, thirty)?).filter(|d| !d.is_zero());
    let ready_max_staleness = match env("READY_MAX_STALENESS") {
        Some(text) => Some(seconds("READY_MAX_STALENESS", &text, Zero::Refused)?),
        None => refresh_interval.map(|i| i * 3),
    };
    let rate_limit_status = match env("RATE_LIMIT_STATUS").as_deref() {
        None | Some("429") => 429,
        Some("403") => 403,
        Some("401") => 401,
        Some(other) => {
            return Err(InvalidSetting::new("RATE_LIMIT_STATUS", "429, 403 or 401", other).into())
        }
    };
    let management = match env("MANAGEMENT_API").as_deref() {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(InvalidSetting::new("MANAGEMENT_API", "1 or 0", other).into());
        }
    };
    let prefixes = Prefixes::from_env(&env).map_err(Error::Prefix)?;
    let metrics_addr = match env("METRICS_ADDR").filter(|a| !a.is_empty()) {
        None => None,
        Some(addr) => Some(
            addr.rsplit_once(':')
                .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
                .ok_or_else(|| InvalidSetting::new("METRICS_ADDR", "HOST:PORT", &addr))?,
        ),
    };
    Ok(Command::Run(Box::new(Config {
        host,
        port,
        threads,
        store,
        refresh_interval,
        startup_timeout: seconds_or("STARTUP_TIMEOUT", Zero::Allowed, thirty)?,
        limits,
        metrics_addr,
        counters: CountersConfig::from_env(&env)?,
        settings: Settings {
            ready_max_staleness,
            rate_limit_status,
            management,
            prefixes,
        },
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
                limits: Limits::default(),
                metrics_addr: None,
                counters: None,
                settings: Settings {
                    ready_max_staleness: Some(Duration::from_secs(90)),
                    rate_limit_status: 429,
                    management: false,
                    prefixes: Prefixes::default(),
                },
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
            run(&[], &[("PORT", "http")]),
            Err(Error::Setting(InvalidSetting::new(
                "port",
                "a number from 0 to 65535",
                "http"
            )))
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
            run(&["--verbose"], &[]),
            Err(Error::Argument("--verbose".into()))
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

    #[test]
    fn operating_settings() {
        let Ok(Command::Run(c)) = run(
            &[],
            &[
                ("METRICS_ADDR", "0.0.0.0:9090"),
                ("READY_MAX_STALENESS", "5"),
                ("RATE_LIMIT_STATUS", "403"),
                ("MANAGEMENT_API", "1"),
                ("SECRET_PREFIX", "amp_live_"),
                ("ID_PREFIX", "amp_"),
            ],
        ) else {
            panic!()
        };
        assert_eq!(c.metrics_addr, Some(("0.0.0.0".to_string(), 9090)));
        let prefix = |setting, text| heare_auth_core::Prefix::parse(setting, text).unwrap();
        assert_eq!(
            c.settings,
            Settings {
                ready_max_staleness: Some(Duration::from_secs(5)),
                rate_limit_status: 403,
                management: true,
                prefixes: Prefixes {
                    secret: prefix("SECRET_PREFIX", "amp_live_"),
                    id: prefix("ID_PREFIX", "amp_"),
                },
            }
        );
        for (setting, bad) in [("SECRET_PREFIX", "Amp_"), ("ID_PREFIX", "amp")] {
            let message = run(&[], &[(setting, bad)]).unwrap_err().to_string();
            assert_eq!(
                message,
                format!(
                    "{setting}: expected 2 to 24 lowercase letters, digits and _, beginning \
                     with a letter and ending in _ (like acme_sk_), got '{bad}'"
                )
            );
        }
        assert_eq!(
            run(&[], &[("MANAGEMENT_API", "yes")]),
            Err(Error::Setting(InvalidSetting::new(
                "MANAGEMENT_API",
                "1 or 0",
                "yes"
            )))
        );
        let Ok(Command::Run(c)) = run(&[], &[("METRICS_ADDR", "[::1]:0")]) else {
            panic!()
        };
        assert_eq!(c.metrics_addr, Some(("::1".to_string(), 0)));
        assert_eq!(
            run(&[], &[("METRICS_ADDR", "9090")]),
            Err(Error::Setting(InvalidSetting::new(
                "METRICS_ADDR",
                "HOST:PORT",
                "9090"
            )))
        );
        let Ok(Command::Run(c)) = run(&[], &[("REFRESH_INTERVAL", "0")]) else {
            panic!()
        };
        assert_eq!(c.settings.ready_max_staleness, None);
        assert_eq!(
            run(&[], &[("RATE_LIMIT_STATUS", "500")]),
            Err(Error::Setting(InvalidSetting::new(
                "RATE_LIMIT_STATUS",
                "429, 403 or 401",
                "500"
            )))
        );
    }

    #[test]
    fn limits_come_from_the_environment() {
        let Ok(Command::Run(c)) = run(
            &[],
            &[
                ("FIRST_REQUEST_TIMEOUT", "1.5"),
                ("HEADER_TIMEOUT", "0.25"),
                ("BODY_TIMEOUT", "2"),
                ("IDLE_TIMEOUT", "3"),
                ("MAX_CONNECTIONS", "50"),
                ("MAX_CONNECTIONS_PER_PEER", "7"),
                ("LISTEN_BACKLOG", "64"),
                ("SHUTDOWN_TIMEOUT", "0"),
            ],
        ) else {
            panic!()
        };
        assert_eq!(
            c.limits,
            Limits {
                first_request_timeout: Duration::from_millis(1500),
                header_timeout: Duration::from_millis(250),
                body_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(3),
                max_connections: Some(50),
                max_connections_per_peer: Some(7),
                backlog: 64,
                shutdown_timeout: Duration::ZERO,
            }
        );
        let err = |env: &[(&str, &str)]| run(&[], env).unwrap_err().to_string();
        assert_eq!(
            run(&[], &[("IDLE_TIMEOUT", "0")]),
            Err(Error::Setting(InvalidSetting::new(
                "IDLE_TIMEOUT",
                "a positive number of seconds",
                "0"
            )))
        );
        assert_eq!(
            err(&[("MAX_CONNECTIONS", "lots")]),
            "MAX_CONNECTIONS: expected a positive number, got 'lots'"
        );
        assert_eq!(
            err(&[("HEADER_TIMEOUT", "soon")]),
            "HEADER_TIMEOUT: expected a positive number of seconds, got 'soon'"
        );
    }
}
