//! The wall clock, read here for the server and the CLI (the core takes time as a parameter).

use std::time::{SystemTime, UNIX_EPOCH};

use heare_auth_core::UnixMillis;

/// Now, in Unix milliseconds.
pub fn now_ms() -> UnixMillis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        UnixMillis::try_from(d.as_millis()).unwrap_or(UnixMillis::MAX)
    })
}
