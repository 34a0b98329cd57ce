//! Commands sent to a running server's management API instead of the store: where a command
//! runs, the admin key, the HTTP client, each command's request, and its answer read back into
//! the values the store's commands return, so that both print through the same `output.rs`.

pub mod admin_key;
pub mod api;
pub mod client;
pub mod convert;
pub mod doctor;
pub mod run;
pub mod target;
