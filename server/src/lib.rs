//! heare-auth server: holds the key set in memory and answers `/verify` over HTTP.

pub mod app;
mod catalog;
mod changes;
mod clock;
pub mod config;
pub mod counts;
mod error;
pub mod health;
pub mod limits;
pub mod live;
pub mod loader;
pub mod logging;
pub mod manage;
pub mod metrics;
mod pace;
pub mod reload;
pub mod reply;
pub mod request_id;
pub mod rlimit;
pub mod serve;
pub mod transport;

pub use error::Error;
