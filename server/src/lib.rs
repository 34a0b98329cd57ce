//! heare-auth server: holds the key set in memory and answers `/verify` over HTTP.
//!
//! The library half also carries the key stores, which the admin CLI shares.

pub mod app;
pub mod config;
mod error;
pub mod keys;
pub mod loader;
pub mod logging;
pub mod reply;
pub mod rlimit;
pub mod serve;
pub mod store;
pub mod transport;

pub use error::Error;
