//! heare-auth core: parse, validate and verify an organisation's API keys, with no I/O and no clock.
//!
//! The keys file is JSON: `{"keys": [{"id", "secret" | "secret_hash", "name", "expires_at",
//! "metadata", ...}]}`. [`KeySet::from_json`] builds the verifier's index from it;
//! [`KeyFile`] is the editable document the admin CLI reads and rewrites without losing fields it
//! does not know. [`verify_request`] is the `/verify` rule and [`Route::of`] the route table
//! that the server and the edge share. Time comes in as Unix milliseconds and randomness as a
//! CSPRNG, so the same code runs natively and in WebAssembly.

mod auth;
mod compact;
mod control;
mod document;
mod encryption;
mod error;
mod generate;
mod hash;
mod keyset;
mod limit;
mod metadata;
mod outcome;
mod record;
mod record_id;
mod rejection;
mod request;
mod route;
mod scope;
mod secret_field;
mod setting;
mod status;
mod timestamp;
mod walk;

pub use auth::{
    authorize, authorize_scopes, header_value, presented_key, required_scopes, Authorized,
    INVALID_TOKEN_CHALLENGE,
};
pub use compact::{compact_json, pretty_json};
pub use control::{check_name, is_control, visible};
pub use document::KeyFile;
pub use encryption::{decrypt_file, encrypt_file, is_encrypted};
pub use error::{Error, Warning};
pub use generate::{generate_id, generate_secret};
pub use hash::{hash_secret, SecretHash};
pub use keyset::{CheckError, Checked, Key, KeySet};
pub use limit::{Bucket, RateLimit};
pub use metadata::{check_metadata, MetadataBound, MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
pub use outcome::{push_json_string, Code, Outcome};
pub use record::KeyRecord;
pub use record_id::record_id;
pub use rejection::{Rejection, MAX_BODY};
pub use request::{check_headers, parse_body, verify_request, Verified, VerifyAsk};
pub use route::Route;
pub use scope::{check_scope, holds_all};
pub use setting::{parse_seconds, Zero};
pub use status::{Expiry, State, Status};
pub use timestamp::{format_timestamp, parse_timestamp, unix_millis};

/// Unix time in milliseconds, the unit of every `now` and timestamp in this crate.
pub type UnixMillis = i64;
