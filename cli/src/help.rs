//! The help texts: the overview and one per command.

/// Overview help.
pub const USAGE: &str = "\
heare-auth: manage the API keys that heare-auth-server verifies

Usage:
  heare-auth create --name NAME [--metadata JSON] [--expires-at TIME | --ttl 90d] [--no-refresh] [--json]
  heare-auth list [--detailed] [--json]
  heare-auth show ID [--json]
  heare-auth delete ID [--yes] [--no-refresh]
  heare-auth refresh [--url URL]
  heare-auth doctor [--json]
  heare-auth COMMAND --help
  heare-auth --version

Environment:
  KEYS_FILE        the keys file (default ./keys.json)
  REFRESH_URL      where create/delete ask the server to reload (default http://localhost:8080/refresh)
  S3_BUCKET, S3_KEY, S3_REGION, S3_ENDPOINT
                   keep the keys file in S3 instead (as the server does)
  S3_UNSAFE_WRITES=1
                   write to an S3 store that ignores conditional writes, without protection
                   against concurrent admins
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

const DOCTOR: &str = "\
Usage: heare-auth doctor [--json]

Checks the store and reports what it found: where the keys file is, whether it exists, whether
it is encrypted, how many keys it holds and whether they load, whether the store honours
conditional writes (on a probe object of its own, never the keys file), and how far the
store's clock is from this one. Exits 0 when all is well, 1 otherwise.
  --json   print a JSON object
";

/// The help text for a command, or the overview.
pub fn help(topic: Option<&str>) -> &'static str {
    match topic {
        Some("create") => CREATE,
        Some("list") => LIST,
        Some("show") => SHOW,
        Some("delete") => DELETE,
        Some("refresh") => REFRESH,
        Some("doctor") => DOCTOR,
        _ => USAGE,
    }
}
