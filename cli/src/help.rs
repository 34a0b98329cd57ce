//! The help texts: the overview and one per command.

use crate::table::Command;

/// Overview help.
pub const USAGE: &str = "\
heare-auth: manage the API keys that heare-auth-server verifies

Usage:
  heare-auth create --name NAME [--metadata JSON] [--scopes read,write] [--expires-at TIME | --ttl 90d] [--rate-limit 100/60s] [--credits N [--refill N/day]] [--no-refresh] [--json]
  heare-auth list [--detailed] [--json] [--unused-since 90d|TIME]
  heare-auth show ID [--json]
  heare-auth disable ID [--no-refresh] [--json]
  heare-auth enable ID [--no-refresh] [--json]
  heare-auth rotate ID [--grace 60m] [--no-refresh] [--json]
  heare-auth set-rate-limit ID 100/60s|none [--no-refresh]
  heare-auth update ID [--name NAME] [--metadata JSON] [--scopes read,write] [--expires-at TIME | --ttl 90d | --no-expiry] [--credits N [--refill N/day] | --no-credits] [--no-refresh] [--json]
  heare-auth delete ID [--yes] [--no-refresh]
  heare-auth refresh [--url URL]
  heare-auth doctor [--json]
  heare-auth check [FILE] [--json]
  heare-auth migrate --hash-secrets [--yes] [--no-refresh]
  heare-auth compact [--no-refresh]
  heare-auth export [--output FILE]
  heare-auth import FILE [--format json|jsonl|csv] [--yes] [--no-refresh]
  heare-auth identify [--json] < FILE_WITH_THE_SECRET
  heare-auth scan PATH... [--any-prefix] [--include-git] [--no-store] [--json]
  heare-auth COMMAND --help
  heare-auth --version

Options (before or after the command):
  --url URL              send the command to the management API of the heare-auth-server at URL
                         (http://127.0.0.1:8080; it serves it with MANAGEMENT_API=1) instead of
                         changing the store: create, list, show, disable, enable, rotate,
                         set-rate-limit, update, delete and doctor, with the same output and exit
                         codes; refresh, check, migrate, compact, export, import, identify and
                         scan
                         need the store itself.
                         --no-refresh changes nothing there: the server serves its changes at once.
                         (refresh --url is refresh's own: the refresh endpoint)
  --admin-key-file PATH  the file holding the admin key for --url, readable by its owner alone:
                         a key with keys:read (list, show, doctor), keys:write (changes) or
                         keys:admin (also keys holding keys: scopes)
  -h, --help             this help, or a command's
  -V, --version          the version

Environment:
  KEYS_FILE        the keys file (default ./keys.json)
  REFRESH_URL      where a change asks the server to reload (default http://localhost:8080/refresh)
  HEARE_AUTH_URL   the server to send commands to, as --url
  HEARE_AUTH_ADMIN_KEY
                   the admin key for --url or HEARE_AUTH_URL, unless --admin-key-file is given;
                   never give the key itself as an argument: every user can read those
  HEARE_AUTH_ACTOR who makes changes, stored as created_by/updated_by (default $USER@hostname)
  SECRET_PREFIX, ID_PREFIX
                   the prefixes of the secrets and ids create and rotate make (default sec_ and
                   key_; through --url, the server's): 2 to 24 lowercase letters, digits and _,
                   beginning with a letter and ending in _ (acme_sk_); scan looks for secrets
                   under SECRET_PREFIX
  S3_BUCKET, S3_KEY, S3_REGION, S3_ENDPOINT
                   keep the keys file in S3 instead (as the server does)
  S3_UNSAFE_WRITES=1
                   write to an S3 store that ignores conditional writes, without protection
                   against concurrent admins
  STORAGE_SECRET   encrypts the keys file when writing; needed to read an encrypted one
  REDIS_URL, REDIS_PREFIX
                   the Redis the replicas share counts in: show and list read each key's usage
                   there (when it was last used, its verifications, its credits left)
";

const CREATE: &str = "\
Usage: heare-auth create --name NAME [--metadata JSON] [--scopes SCOPES] [--expires-at TIME | --ttl DURATION] [--rate-limit LIMIT] [--credits N [--refill REFILL]] [--no-refresh] [--json]

Creates a key and prints its secret once; only the secret's SHA-256 is stored.
  --name NAME        human-readable name (required)
  --metadata JSON    a JSON object returned by /verify (default {})
  --scopes SCOPES    what the key may do, comma-separated (read,write); may be repeated. A request
                     that needs a scope the key lacks is refused (INSUFFICIENT_SCOPE)
  --expires-at TIME  RFC 3339 time or date when the key stops verifying (2027-01-31T00:00:00Z, 2027-01-31)
  --ttl DURATION     expire this long after creation: 3600s, 30m, 12h, 90d, 2w
  --rate-limit LIMIT at most this many verifications per period, per server: 100/60s, 5/1m,
                     1000/1h, 10/500ms (units ms, s, m, h, d); more are refused (RATE_LIMITED)
  --credits N        a balance of N credits (0 to 1000000000000) that each valid verification
                     spends (its cost, 1 unless the request says); once spent, the key is
                     refused (USAGE_EXCEEDED)
  --refill REFILL    with --credits: set the balance back to this at the start of each UTC day
                     or month: 1000/day, 50000/month
  --no-refresh       do not ask the server to reload
  --json             print the new key as JSON
";

const LIST: &str = "\
Usage: heare-auth list [--detailed] [--json] [--unused-since DURATION|TIME]

Lists all keys (never their secrets) with their status (active, rotating, expired, disabled)
and scopes.
  --detailed   also show expiry, when the key was disabled, until when a rotated key's previous
               secret verifies, the rate limit, the credits, who created and last changed it,
               metadata and, with usage counts, when the key was last used, its verifications
               today and over the last 30 days, and its credits left
  --json       print a JSON array; with usage counts, each key also has last_used_at, usage
               ({\"today\": {\"valid\", \"refused\"}, \"last_30_days\": {...}}) and, with credits,
               credits_left ({\"remaining\", \"refills_at\"})
  --unused-since DURATION|TIME
               only the keys created before then and not used since: 90d, 12h, 2w (that long
               ago) or an RFC 3339 time or date; needs usage counts

Usage counts are those of all replicas together: on the store, read from the Redis they share
(REDIS_URL, REDIS_PREFIX; an error if it does not answer); through --url, from the server, when
it has one. Without them, usage is not shown. (Through a server without Redis, --unused-since
goes by the uses that one replica has seen.)
";

const SHOW: &str = "\
Usage: heare-auth show ID [--json]

Shows one key (never its secret or hash): status, scopes, rate limit, credits (as set, with
their refill and when they were set), whether it is disabled, until when a rotated key's previous
secret verifies, and when and by whom it was created and last changed. With usage counts (as for
`list`: REDIS_URL on the store, a server with Redis through --url), also when it was last used,
its verifications today and over the last 30 days, and, for a key with credits, what is left of
them and when they are refilled.
  --json   print a JSON object; with usage counts, with last_used_at, usage and credits_left as
           `list --json` prints them
";

const DISABLE: &str = "\
Usage: heare-auth disable ID [--no-refresh] [--json]

Disables a key: it is kept, but every verification of it fails (DISABLED) until it is enabled
again. Disabling a disabled key changes nothing.
  --no-refresh   do not ask the server to reload
  --json         print the result as JSON
";

const ENABLE: &str = "\
Usage: heare-auth enable ID [--no-refresh] [--json]

Enables a disabled key. Enabling an enabled key changes nothing.
  --no-refresh   do not ask the server to reload
  --json         print the result as JSON
";

const ROTATE: &str = "\
Usage: heare-auth rotate ID [--grace DURATION] [--no-refresh] [--json]

Gives a key a new secret and prints it once; id, name, metadata, scopes and expiry stay. The old
secret keeps verifying for the grace period, so clients can move over. Only one previous secret
is kept: rotating a key still in its grace period stops the secret before the previous one at
once. A disabled key stays disabled.
  --grace DURATION   how long the old secret keeps verifying: 30m, 12h, 7d (default 60m);
                     0 stops it at once
  --no-refresh       do not ask the server to reload
  --json             print the new secret as JSON
";

const SET_RATE_LIMIT: &str = "\
Usage: heare-auth set-rate-limit ID LIMIT [--no-refresh]

Sets a key's rate limit, or removes it with `none`. LIMIT is REQUESTS/PERIOD: 100/60s, 5/1m,
1000/1h, 10/500ms (units ms, s, m, h, d). Each server allows the key that many verifications per
period, in bursts of up to REQUESTS; more are refused (429, RATE_LIMITED, with Retry-After).
Setting the limit a key already has changes nothing.
  --no-refresh   do not ask the server to reload
";

const UPDATE: &str = "\
Usage: heare-auth update ID [--name NAME] [--metadata JSON] [--scopes SCOPES] [--expires-at TIME | --ttl DURATION | --no-expiry] [--credits N [--refill REFILL] | --no-credits] [--no-refresh] [--json]

Changes a key's name, metadata, scopes, expiry or credits; give at least one. The secret, rate
limit and everything else stay, and the key keeps verifying with the same secret. Each value is
read as for `create`, and replaces the key's. Setting the values a key already has changes
nothing, but for credits: setting them starts their count again, from N.
  --name NAME        the new name
  --metadata JSON    the new metadata, a JSON object returned by /verify
  --scopes SCOPES    the new scopes, comma-separated (read,write); may be repeated
  --expires-at TIME  RFC 3339 time or date when the key stops verifying
  --ttl DURATION     expire this long after now: 3600s, 30m, 12h, 90d, 2w
  --no-expiry        never expire
  --credits N        a balance of N credits, counted from now
  --refill REFILL    with --credits: set the balance back to this each UTC day or month
                     (1000/day, 50000/month); without it, never
  --no-credits       remove the key's credits: unlimited use
  --no-refresh       do not ask the server to reload
  --json             print the updated key as `show --json` does
";

const DELETE: &str = "\
Usage: heare-auth delete ID [--yes] [--no-refresh]

Deletes a key. Asks for confirmation on a terminal; elsewhere --yes is required.
  -y, --yes      do not ask
  --no-refresh   do not ask the server to reload
";

const REFRESH: &str = "\
Usage: heare-auth refresh [--url URL]

Asks the running server to reload the keys file. Needs the store: not through a server's
management API (HEARE_AUTH_URL set, or --url before the command).
  --url URL   the server's refresh endpoint (default $REFRESH_URL or http://localhost:8080/refresh)
";

const DOCTOR: &str = "\
Usage: heare-auth doctor [--json]

Checks the store and reports what it found: where the keys file is, whether it exists, whether
it is encrypted, how many keys it holds and whether they load, whether the store honours
conditional writes (on a probe object of its own, never the keys file), and how far the
store's clock is from this one. Exits 0 when all is well, 1 otherwise.

With --url (or HEARE_AUTH_URL), checks the server instead: whether it answers (GET /health),
whether it accepts the admin key (GET /auth) and which of keys:read, keys:write and keys:admin
the key holds, and whether the management API is served. Exits 0 when the server answers and
the key may at least read, 1 otherwise.
  --json   print a JSON object
";

const CHECK: &str = "\
Usage: heare-auth check [FILE] [--json]

Checks a keys file without a server: FILE, or the store's (KEYS_FILE or S3, as for the other
commands); an encrypted file needs STORAGE_SECRET. Prints one line per finding, naming the key:
every error the server would refuse the file for (not only the first), and warnings: plaintext
secrets, expiries that cannot be read, keys expired more than 90 days ago, disabled keys, and
previous secrets whose grace period is over. Exits 1 when there are errors, 0 otherwise.
  --json   print a JSON object: the findings (severity, key, message) and their counts
";

const MIGRATE: &str = "\
Usage: heare-auth migrate --hash-secrets [--yes] [--no-refresh]

Replaces every plaintext `secret` in the store with its SHA-256 `secret_hash`; the keys verify
as before. Without --yes it only lists the keys that would change (ids and names) and writes
nothing. Running it again changes nothing.
  --hash-secrets   the migration to run (the only one)
  -y, --yes        write the change
  --no-refresh     do not ask the server to reload
";

const COMPACT: &str = "\
Usage: heare-auth compact [--no-refresh]

Folds the changes stored beside the keys file (keys.json.changes/, or S3_KEY.changes/ in S3) into
it, so that the file alone holds every key as it is: for a tool that reads only the file (an
older heare-auth, a backup, a hand edit). Changes are folded in as they accumulate anyway; each
is removed ten minutes after it was folded. Says how many it folded.
  --no-refresh    do not ask the server to reload
";

const EXPORT: &str = "\
Usage: heare-auth export [--output FILE]

Prints the store's keys file, unencrypted, with plaintext secrets replaced by their hashes:
a backup, or a file for `heare-auth import`. Refuses a file the server would refuse.
  --output FILE   write it to FILE instead
";

const IMPORT: &str = "\
Usage: heare-auth import FILE [--format json|jsonl|csv] [--yes] [--no-refresh]

Adds keys to the store with their ids: those of a keys file (FILE may be encrypted with
STORAGE_SECRET), a JSON array of keys, JSON Lines (a key a line) or CSV (a header row naming the
columns), in the fields of keys.json. A key may come with only the SHA-256 of its secret, as
other systems export it: secret_hash in hex, or in base64 (standard or URL-safe, padded or not);
it is stored as lowercase hex, and plaintext secrets as their hashes. CSV columns: id (required),
secret_hash (required), name, created_at, expires_at, scopes (comma-separated, or a JSON array)
and metadata (JSON); an empty cell is no value.
Refuses, writing nothing, a key without an id, one the server would refuse, a timestamp it cannot
read, and an id or secret (previous secrets included) repeated in FILE or already in the store,
naming each key by its line (or position) and the key it clashes with.
Without --yes it only lists the keys that would be added.
  --format FORMAT  json, jsonl or csv; by default the extension tells (.jsonl or .ndjson, .csv;
                   anything else is json)
  -y, --yes        write the change
  --no-refresh     do not ask the server to reload
";

const IDENTIFY: &str = "\
Usage: heare-auth identify [--json] < FILE_WITH_THE_SECRET

Says whose a leaked secret is, without showing it: reads one secret from standard input (one
trailing newline is dropped; never from the command line, which every user can read), and
prints its shape, masked (sec_1…(62 chars): the prefix and the length, nothing more), whether
it is in the checksummed format and its checksum is right (or an earlier or legacy form, which
has none), and the key in the store (KEYS_FILE or S3) whose secret it is, found by its SHA-256:
the key's id, name and status (active, rotating, expired, disabled), whether it is the key's
current secret or the previous one of a rotation (and whether its grace period is over), and
whether it verifies now. Exits 0 when the secret is a key's, 1 when it is none's (or the store
cannot be read), 2 on a usage error. Needs the store: not through a server's management API.
  --json   print a JSON object
";

const SCAN: &str = "\
Usage: heare-auth scan PATH... [--any-prefix] [--include-git] [--no-store] [--json]

Finds secrets in files and directories: strings in the checksummed format under this
deployment's prefix (SECRET_PREFIX, default sec_) whose checksum is right, so nearly nothing
else matches. Prints each as FILE:LINE:COLUMN, the secret masked (never whole), and the key it
belongs to in the store with the key's status, or \"unknown\". Files are read as bytes, a
piece at a time; a file with a NUL byte in its first 8 KiB is binary and skipped. Directories
are walked in name order; .git directories are skipped and symbolic links are not followed
(a link named on the command line is). If the store cannot be read, the secrets found are
still reported, as unknown, with a warning. Exits 1 when a secret was found (like grep, but
here 1 is the alarm), 0 when none was, 2 on a usage error or when a path could not be read
(and nothing was found). Needs the store to name keys: not through a server's management API.
  --any-prefix    secrets of this format under any prefix, not only SECRET_PREFIX's
  --include-git   also the .git directories
  --no-store      do not read the store: every secret found is unknown
  --json          print one JSON object: the findings, the files scanned and skipped
";

/// The help text for a command, or the overview.
pub fn help(topic: Option<&str>) -> &'static str {
    let Some(command) = topic.and_then(Command::named) else {
        return USAGE;
    };
    match command {
        Command::Create => CREATE,
        Command::List => LIST,
        Command::Show => SHOW,
        Command::Disable => DISABLE,
        Command::Enable => ENABLE,
        Command::Rotate => ROTATE,
        Command::SetRateLimit => SET_RATE_LIMIT,
        Command::Update => UPDATE,
        Command::Delete => DELETE,
        Command::Refresh => REFRESH,
        Command::Doctor => DOCTOR,
        Command::Check => CHECK,
        Command::Migrate => MIGRATE,
        Command::Compact => COMPACT,
        Command::Export => EXPORT,
        Command::Import => IMPORT,
        Command::Identify => IDENTIFY,
        Command::Scan => SCAN,
    }
}
