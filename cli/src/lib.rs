//! heare-auth, the admin CLI, as a library: the argument parser, what each command does and
//! what it prints, as functions the binary (`main.rs`: I/O and exit codes only), the tests and
//! the fuzz target (`fuzz/fuzz_targets/cli_args.rs`) call.

pub mod actor;
pub mod args;
pub mod check;
pub mod cmd;
pub mod commands;
pub mod doctor;
pub mod error;
pub mod help;
pub mod output;
pub mod plural;
pub mod table;

pub use cmd::Cmd;
pub use error::CliError;
