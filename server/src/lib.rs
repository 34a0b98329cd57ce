//! heare-auth server: holds the key set in memory and answers `/verify` over HTTP.

pub mod app;
pub mod config;
mod error;
pub mod keys;
pub mod loader;
pub mod logging;
pub mod metrics;
mod pace;
pub mod reply;
pub mod rlimit;
pub mod serve;
pub mod transport;

pub use error::Error;
