//! heare-auth, the admin CLI, as a library: the argument parser, what each command does, on the
//! store or through a server's management API, what it prints and how it meets the process
//! (environment, stdout, the delete prompt, the reload after a write), as functions the binary
//! (`main.rs`: dispatch and exit codes only), the tests and the fuzz target
//! (`fuzz/fuzz_targets/cli_args.rs`) call.

pub mod actor;
pub mod args;
pub mod check;
pub mod cmd;
pub mod commands;
pub mod context;
pub mod counts;
pub mod doctor;
pub mod error;
pub mod fold;
pub mod help;
pub mod listing;
pub mod output;
pub mod plural;
pub mod prompt;
pub mod reload;
pub mod remote;
pub mod run;
pub mod stdout;
pub mod table;
pub mod triage;
pub mod usage;

pub use cmd::{Cmd, Invocation};
pub use error::CliError;
