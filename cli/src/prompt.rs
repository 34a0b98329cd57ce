//! The question `delete` asks before deleting, on a terminal only.

use std::io::{BufRead, IsTerminal};

use heare_auth_core::KeyRecord;
use heare_auth_store::Store;

use crate::stdout::emit;
use crate::{commands, output, CliError};

/// Asks `Delete API key 'ID' (NAME)? [y/N]` on a terminal; refuses without one.
pub fn confirm(store: &Store, id: &str) -> Result<bool, CliError> {
    ask(&commands::show(store, id)?)
}

/// Asks whether to delete `key` on a terminal; refuses without one.
pub fn ask(key: &KeyRecord) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "refusing to delete without confirmation: stdin is not a terminal; pass --yes".into(),
        ));
    }
    emit(&output::delete_prompt(key))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Answer(e.to_string()))?;
    Ok(is_yes(&answer))
}

/// Whether an answer to a yes/no prompt is yes (`y` or `yes`, any case); the default is no.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y\n", "Y", " yes \r\n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yeah", "y y", "ja"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
