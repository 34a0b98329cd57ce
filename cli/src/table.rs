//! The table of commands: every command the CLI knows and the word that names it, the one list
//! the parser, the help and the usage messages read.

/// A command, as its first argument names it: each is the command of the same name (see
/// [`Command::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Create,
    List,
    Show,
    Disable,
    Enable,
    Rotate,
    SetRateLimit,
    Update,
    Delete,
    Refresh,
    Doctor,
    Check,
    Migrate,
    Compact,
    Export,
    Import,
    Identify,
    Scan,
}

impl Command {
    /// Every command, in the order the help lists them.
    pub const ALL: [Command; 18] = [
        Command::Create,
        Command::List,
        Command::Show,
        Command::Disable,
        Command::Enable,
        Command::Rotate,
        Command::SetRateLimit,
        Command::Update,
        Command::Delete,
        Command::Refresh,
        Command::Doctor,
        Command::Check,
        Command::Migrate,
        Command::Compact,
        Command::Export,
        Command::Import,
        Command::Identify,
        Command::Scan,
    ];

    /// The word that names it on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Create => "create",
            Command::List => "list",
            Command::Show => "show",
            Command::Disable => "disable",
            Command::Enable => "enable",
            Command::Rotate => "rotate",
            Command::SetRateLimit => "set-rate-limit",
            Command::Update => "update",
            Command::Delete => "delete",
            Command::Refresh => "refresh",
            Command::Doctor => "doctor",
            Command::Check => "check",
            Command::Migrate => "migrate",
            Command::Compact => "compact",
            Command::Export => "export",
            Command::Import => "import",
            Command::Identify => "identify",
            Command::Scan => "scan",
        }
    }

    /// Whether it runs against a server's management API too (`--url`, `HEARE_AUTH_URL`);
    /// the others read or write the whole keys file, ask the server to reload it, or look
    /// secrets up by their hashes (which the API never shows), and need the store itself.
    pub const fn remote(self) -> bool {
        !matches!(
            self,
            Command::Refresh
                | Command::Check
                | Command::Migrate
                | Command::Compact
                | Command::Export
                | Command::Import
                | Command::Identify
                | Command::Scan
        )
    }

    /// The command `word` names, if any.
    pub fn named(word: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == word)
    }

    /// Every command's name, for a message: `create, list, ... export or import`.
    pub fn every_name() -> String {
        let names: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_command_once_in_its_own_order() {
        for (i, command) in Command::ALL.into_iter().enumerate() {
            assert_eq!(command as usize, i, "{command:?}");
            assert_eq!(Command::named(command.name()), Some(command));
        }
        assert_eq!(Command::Scan as usize + 1, Command::ALL.len());
        assert_eq!(Command::named("help"), None);
        assert_eq!(Command::named("Create"), None);
    }

    #[test]
    fn only_the_whole_file_commands_refresh_and_triage_need_the_store() {
        let local: Vec<&str> = Command::ALL
            .into_iter()
            .filter(|c| !c.remote())
            .map(Command::name)
            .collect();
        assert_eq!(
            local,
            ["refresh", "check", "migrate", "compact", "export", "import", "identify", "scan"]
        );
    }

    #[test]
    fn every_name_ends_with_or() {
        assert_eq!(
            Command::every_name(),
            "create, list, show, disable, enable, rotate, set-rate-limit, update, delete, \
             refresh, doctor, check, migrate, compact, export, import, identify or scan"
        );
    }
}
