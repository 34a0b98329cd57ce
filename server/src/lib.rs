//! heare-auth server: holds the key set in memory and answers `/verify` over HTTP.
//!
//! The library half also carries the key stores, which the admin CLI shares.

mod error;
pub mod store;

pub use error::Error;
