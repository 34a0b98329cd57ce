//! After a write: asking the server to reload, where a failure is only a warning.

use heare_auth_core::visible;

use crate::stdout::emit_line;
use crate::{commands, output, CliError};

/// Asks the server at `url` to reload after a write, unless `skip`; says how many keys it
/// loaded (on stderr when stdout holds JSON), or warns that it could not.
pub fn after_write(url: &str, skip: bool, json: bool) {
    if skip {
        return;
    }
    match commands::refresh(url) {
        Ok(n) if json => eprintln!("{}", output::refreshed(n)),
        Ok(n) => {
            let _ = emit_line(&output::refreshed(n));
        }
        Err(CliError::Refresh(reason)) => {
            eprintln!("Warning: Failed to refresh service: {}", visible(&reason))
        }
        Err(e) => eprintln!("Warning: Failed to refresh service: {e}"),
    }
}
