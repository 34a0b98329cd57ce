//! `heare-auth-server`: parse configuration, serve, and turn errors into one line and exit 1.

use std::process::ExitCode;

use heare_auth_server::config::{self, Command, USAGE};
use heare_auth_server::{logging, serve};

fn main() -> ExitCode {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let args = std::env::args_os().skip(1).collect();
    let config = match config::parse(args, |k| std::env::var(k).ok(), cores) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("heare-auth-server: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init();
    let result = serve::run(&config);
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heare-auth-server: {e}");
            ExitCode::FAILURE
        }
    }
}
