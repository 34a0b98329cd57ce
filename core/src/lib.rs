//! heare-auth core: parse, validate and verify an organisation's API keys, with no I/O and no clock.
//!
//! The keys file is JSON: `{"keys": [{"id", "secret" | "secret_hash", "name", "expires_at",
//! "metadata", ...}]}`. [`KeySet::from_json`] builds the verifier's index from it;
//! [`Document`] is the editable form the admin CLI reads and rewrites without losing fields it
//! does not know. [`verify_request`] is the `/verify` rule the server and the edge share, and
//! [`Route`] the table of what each path answers. Time comes in as Unix milliseconds and
//! randomness as a CSPRNG, so the same code runs natively and in WebAssembly.
//!
//! # Glossary
//!
//! - **keys file**: the JSON document above, one per deployment (a local file or an S3 object).
//! - **record**: one key's object in the keys file.
//! - [`KeyRecord`]: a record read whole for editing, every field typed, unknown ones kept.
//! - [`Document`]: the whole keys file read for editing; records are read only when asked for.
//! - [`KeySet`]: the verifier's index of a keys file, by the SHA-256 of each secret; immutable.
//! - [`Key`]: one key of a [`KeySet`], a borrowed view holding what verification returns.
//! - `RecordFields` (private): the fields of a record the verifier reads, before its rules.
//! - `Stored` (private): how a [`KeySet`] keeps one key, its strings as ranges of one text.
//! - [`Outcome`] and [`Code`]: what verifying a presented secret found; [`Rejection`]: the answer
//!   to a request too malformed to verify anything.
//! - In the server, `Live` holds the [`KeySet`] being served (a `Served`: the set and its
//!   rate-limit buckets); in the store, a `Snapshot` is the keys file's bytes as read, with
//!   their version.

mod auth;
mod bounds;
mod compact;
mod control;
mod crc32;
mod credits;
mod document;
mod duration;
mod edit;
mod encryption;
mod error;
mod etag;
mod format;
mod generate;
mod grant;
mod hash;
mod keyset;
mod limit;
mod metadata;
mod name;
mod outcome;
mod public;
mod record;
mod record_id;
mod rejection;
mod request;
mod route;
mod scope;
mod secret_field;
mod setting;
mod spend;
mod status;
mod timestamp;
mod usage;
mod walk;

pub use auth::{
    authorize, authorize_scopes, header_value, percent_decode, presented_key, required_scopes,
    Authorized, INVALID_TOKEN_CHALLENGE,
};
pub use bounds::{MetadataBound, MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
pub use compact::{compact_json, pretty_json};
pub use control::{is_control, visible};
pub use crc32::crc32;
pub use credits::{parse_amount, Credits, Interval, Period, Refill, MAX_COST, MAX_CREDITS};
pub use document::{Document, NEXT_CHANGE};
pub use duration::{parse_grace, parse_ttl, MAX_TTL_MS};
pub use edit::{stamp, with_changes, with_disabled, with_new_secret, Changes};
pub use encryption::{decrypt_file, encrypt_file, is_encrypted};
pub use error::{Error, Warning};
pub use format::{
    checksum, form, Form, Prefix, Prefixes, DEFAULT_ID_PREFIX, DEFAULT_SECRET_PREFIX,
    MAX_PREFIX_LEN,
};
pub use generate::{generate_id, generate_secret};
pub use grant::{may, may_touch, Access, Denied, KEYS_ADMIN, KEYS_READ, KEYS_WRITE};
pub use hash::{hash_secret, SecretHash};
pub use keyset::{CheckError, Checked, Key, KeySet};
pub use limit::{Bucket, RateLimit};
pub use metadata::check_metadata;
pub use name::{check_name, MAX_NAME_CHARS};
pub use outcome::{push_json_string, Code, Outcome};
pub use public::{created_json, public_json};
pub use record::KeyRecord;
pub use record_id::record_id;
pub use rejection::{Rejection, MAX_BODY};
pub use request::{check_headers, parse_body, verify_request, Verified, VerifyAsk};
pub use route::{key_id_segment, Manage, Route};
pub use scope::{check_scope, holds_all};
pub use setting::{parse_seconds, Zero};
pub use spend::spend;
pub use status::{Expiry, State, Status};
pub use timestamp::{format_timestamp, parse_timestamp, unix_millis};
pub use usage::{
    date_of, day_of, is_unused, time_json, totals, usage_json, usage_summary_json, with_member,
    Balance, DayCount,
};

/// Unix time in milliseconds, the unit of every `now` and timestamp in this crate.
pub type UnixMillis = i64;
