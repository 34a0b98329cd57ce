//! What the command line asks for: the commands and their arguments.

use heare_auth_core::{format_timestamp, Credits, RateLimit, Refill, UnixMillis};

use crate::commands::ImportFormat;
use crate::table::Command;

/// A parsed command line: the command, and where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// What to do.
    pub cmd: Cmd,
    /// `--url` and `--admin-key-file`, wherever on the line they were given.
    pub remote: RemoteFlags,
}

/// The options that send a command to a server's management API instead of the store; with
/// neither (and no `HEARE_AUTH_URL`), the command edits the store itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteFlags {
    /// `--url URL`: the server's base URL (`http://127.0.0.1:8080`), without a trailing `/`.
    pub url: Option<String>,
    /// `--admin-key-file PATH`: the file holding the admin key. The key itself is never an
    /// argument: every user of the machine can read a command line.
    pub admin_key_file: Option<String>,
}

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `create`: make a new key.
    Create(CreateArgs),
    /// `list`: all keys, without secrets.
    List {
        /// `--detailed`: also expiry, status, metadata and, when it is known, usage.
        detailed: bool,
        /// `--json`: a JSON array.
        json: bool,
        /// `--unused-since`: only the keys created before then and not used since.
        unused_since: Option<Since>,
    },
    /// `show ID`: one key, without its secret.
    Show {
        /// The key's id.
        id: String,
        /// `--json`: a JSON object.
        json: bool,
    },
    /// `disable ID`: keep the key but refuse it.
    Disable(KeyArgs),
    /// `enable ID`: undo `disable`.
    Enable(KeyArgs),
    /// `rotate ID`: a new secret, the old one kept for a grace period.
    Rotate(RotateArgs),
    /// `set-rate-limit ID LIMIT|none`: set or remove a key's rate limit.
    SetRateLimit(RateLimitArgs),
    /// `update ID`: change a key's name, metadata, scopes, expiry or credits.
    Update(UpdateArgs),
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
    /// `doctor`: check the store and report what was found.
    Doctor {
        /// `--json`: a JSON object.
        json: bool,
    },
    /// `check [FILE]`: every error and warning in a keys file, without a server.
    Check {
        /// The file to check; `None`: the configured store.
        file: Option<String>,
        /// `--json`: a JSON object.
        json: bool,
    },
    /// `migrate --hash-secrets`: replace every plaintext secret with its hash.
    Migrate {
        /// `--yes`/`-y`: write; without it, only say what would change.
        yes: bool,
        /// `--no-refresh`: do not ask the server to reload.
        no_refresh: bool,
    },
    /// `compact`: fold the changes stored beside the keys file into it.
    Compact {
        /// `--no-refresh`: do not ask the server to reload.
        no_refresh: bool,
    },
    /// `export`: the store's keys file, unencrypted, with hashes only.
    Export {
        /// `--output FILE`; `None`: standard output.
        output: Option<String>,
    },
    /// `import FILE`: add the keys of a keys file, or of a JSON, JSON Lines or CSV file of
    /// keys, to the store.
    Import {
        /// The file to import.
        file: String,
        /// `--format`, or what the file's extension tells.
        format: ImportFormat,
        /// `--yes`/`-y`: write; without it, only say what would be added.
        yes: bool,
        /// `--no-refresh`: do not ask the server to reload.
        no_refresh: bool,
    },
    /// `identify`: whose the secret read from standard input is, never showing it.
    Identify {
        /// `--json`: a JSON object.
        json: bool,
    },
    /// `scan PATH...`: the secrets of this deployment's format in files, masked.
    Scan(ScanArgs),
    /// Print the help of a command (`None`: the overview).
    Help(Option<&'static str>),
    /// Print the version.
    Version,
}

impl Cmd {
    /// The command of the table it is; `None` for help and the version.
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Cmd::Create(_) => Command::Create,
            Cmd::List { .. } => Command::List,
            Cmd::Show { .. } => Command::Show,
            Cmd::Disable(_) => Command::Disable,
            Cmd::Enable(_) => Command::Enable,
            Cmd::Rotate(_) => Command::Rotate,
            Cmd::SetRateLimit(_) => Command::SetRateLimit,
            Cmd::Update(_) => Command::Update,
            Cmd::Delete { .. } => Command::Delete,
            Cmd::Refresh { .. } => Command::Refresh,
            Cmd::Doctor { .. } => Command::Doctor,
            Cmd::Check { .. } => Command::Check,
            Cmd::Migrate { .. } => Command::Migrate,
            Cmd::Compact { .. } => Command::Compact,
            Cmd::Export { .. } => Command::Export,
            Cmd::Import { .. } => Command::Import,
            Cmd::Identify { .. } => Command::Identify,
            Cmd::Scan(_) => Command::Scan,
            Cmd::Help(_) | Cmd::Version => return None,
        })
    }
}

/// Arguments of `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateArgs {
    /// `--name`: not empty.
    pub name: String,
    /// Raw `--metadata` text; checked to be a JSON object before anything is written.
    pub metadata: Option<String>,
    /// `--scopes`: valid names, without duplicates, in the order given; empty: none.
    pub scopes: Vec<String>,
    /// `--expires-at` or `--ttl`; `None`: never expires.
    pub expires: Option<Expiry>,
    /// `--rate-limit`; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    /// `--credits` and `--refill`; `None`: no credits, unlimited use.
    pub credits: Option<NewCredits>,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
    /// `--json`: print the new key as one JSON object.
    pub json: bool,
}

/// The credits `--credits` and `--refill` give a key, counted from when the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewCredits {
    /// `--credits`: the balance to start from.
    pub amount: u64,
    /// `--refill`: what the balance is set back to, and when; `None`: never.
    pub refill: Option<Refill>,
}

impl NewCredits {
    /// The credits as set at `now`, which starts their count.
    pub fn at(self, now: UnixMillis) -> Credits {
        Credits {
            amount: self.amount,
            refill: self.refill,
            since: now,
        }
    }
}

/// Arguments of `scan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanArgs {
    /// The files and directories to scan, at least one, in the order given.
    pub paths: Vec<String>,
    /// `--any-prefix`: secrets of this format under any prefix, not only `SECRET_PREFIX`'s.
    pub any_prefix: bool,
    /// `--include-git`: also the `.git` directories met while walking.
    pub include_git: bool,
    /// `--no-store`: do not read the store; every secret found is "unknown".
    pub no_store: bool,
    /// `--json`: one JSON object.
    pub json: bool,
}

/// Arguments of `disable` and `enable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyArgs {
    /// The key's id.
    pub id: String,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
    /// `--json`: print the result as one JSON object.
    pub json: bool,
}

/// Arguments of `rotate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotateArgs {
    /// The key's id.
    pub id: String,
    /// `--grace`: how long the old secret keeps working, in milliseconds; 0: not at all.
    pub grace_ms: u64,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
    /// `--json`: print the new secret as one JSON object.
    pub json: bool,
}

/// Arguments of `set-rate-limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitArgs {
    /// The key's id.
    pub id: String,
    /// The new limit; `None` (`none`): no limit.
    pub limit: Option<RateLimit>,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
}

/// Arguments of `update`: at least one of the fields is `Some`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateArgs {
    /// The key's id.
    pub id: String,
    /// `--name`: the new name, not empty; `None`: kept.
    pub name: Option<String>,
    /// Raw `--metadata` text, checked as `create` checks it; `None`: kept.
    pub metadata: Option<String>,
    /// `--scopes`: the new scopes, as `create` reads them; `None`: kept.
    pub scopes: Option<Vec<String>>,
    /// `--expires-at`, `--ttl` or `--no-expiry`; `None`: kept.
    pub expires: Option<NewExpiry>,
    /// `--credits` (with `--refill`), or `Some(None)` for `--no-credits`; `None`: kept.
    pub credits: Option<Option<NewCredits>>,
    /// `--no-refresh`: do not ask the server to reload.
    pub no_refresh: bool,
    /// `--json`: print the updated key as `show --json` does.
    pub json: bool,
}

impl UpdateArgs {
    /// `update ID` changing nothing yet (each field kept), refreshing the server, printing
    /// text: the start the parser and the tests fill in.
    pub fn of(id: &str) -> UpdateArgs {
        UpdateArgs {
            id: id.into(),
            name: None,
            metadata: None,
            scopes: None,
            expires: None,
            credits: None,
            no_refresh: false,
            json: false,
        }
    }
}

/// The expiry `update` gives a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewExpiry {
    /// `--expires-at` or `--ttl` (counted from the update).
    At(Expiry),
    /// `--no-expiry`: the key never expires.
    Never,
}

/// How long the old secret keeps working after `rotate` when `--grace` is not given: an hour.
pub const DEFAULT_GRACE_MS: u64 = 3_600_000;

/// An instant given as how long before the command runs, or as a time: `--unused-since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// `90d`: milliseconds before the command runs.
    Ago(u64),
    /// An RFC 3339 time (Unix milliseconds).
    At(UnixMillis),
}

impl Since {
    /// The instant, for a command run at `now`.
    pub fn instant(self, now: UnixMillis) -> UnixMillis {
        match self {
            Since::Ago(ms) => now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX)),
            Since::At(at) => at,
        }
    }
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
