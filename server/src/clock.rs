//! The wall clock, read by the server alone (core takes the time as an argument).

use std::time::SystemTime;

use heare_auth_core::{unix_millis, UnixMillis};

/// Unix milliseconds now.
pub fn now_ms() -> UnixMillis {
    unix_millis(SystemTime::now())
}
