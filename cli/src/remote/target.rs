//! Where a command runs: on the store, or through a server's management API, decided from the
//! command line and the environment (`HEARE_AUTH_URL`, `HEARE_AUTH_ADMIN_KEY`), with no I/O.

use crate::cmd::Invocation;
use crate::remote::admin_key::AdminKey;
use crate::CliError;

/// The variable that sends commands to a server, as `--url` does.
pub const URL_VAR: &str = "HEARE_AUTH_URL";
/// The variable holding the admin key.
pub const ADMIN_KEY_VAR: &str = "HEARE_AUTH_ADMIN_KEY";

/// Where a command runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// On the store (`KEYS_FILE` or S3), as without a server.
    Store,
    /// Through the management API of the server at this base URL.
    Server(Server),
}

/// A server's management API and the admin key to use it with.
#[derive(Debug, PartialEq, Eq)]
pub struct Server {
    /// The base URL, without a trailing `/` (`http://127.0.0.1:8080`).
    pub url: String,
    /// Where the admin key comes from.
    pub key: KeySource,
}

/// Where the admin key comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `HEARE_AUTH_ADMIN_KEY`, already read.
    Env(AdminKey),
    /// `--admin-key-file PATH`, to be read.
    File(String),
}

/// Where `inv` runs, `var` reading the environment: through a server when `--url` is given or
/// `HEARE_AUTH_URL` is set (not empty), else on the store. Through a server, a command that
/// needs the store is refused, and so is any command without an admin key (`--admin-key-file`
/// wins over `HEARE_AUTH_ADMIN_KEY`); all of them usage errors. Help and the version run
/// anywhere.
pub fn choose(inv: &Invocation, var: impl Fn(&str) -> Option<String>) -> Result<Target, CliError> {
    let Some(command) = inv.cmd.command() else {
        return Ok(Target::Store);
    };
    let usage = CliError::Usage;
    let (url, source) = match (&inv.remote.url, var(URL_VAR).filter(|u| !u.is_empty())) {
        (Some(url), _) => (url.clone(), "--url"),
        (None, Some(url)) => (
            base_url(&url).map_err(|e| usage(format!("{URL_VAR}: {e}")))?,
            URL_VAR,
        ),
        (None, None) => {
            return match inv.remote.admin_key_file {
                Some(_) => Err(usage(format!(
                    "{}: --admin-key-file is for a server's management API: give --url URL \
                     or set {URL_VAR} too",
                    command.name()
                ))),
                None => Ok(Target::Store),
            };
        }
    };
    if !command.remote() {
        let without = match source {
            "--url" => "without --url".to_string(),
            _ => format!("with {URL_VAR} unset"),
        };
        return Err(usage(format!(
            "{} ({source}): run it {without}, where KEYS_FILE or S3_BUCKET reaches the store",
            store_only(command.name())
        )));
    }
    let key = match (&inv.remote.admin_key_file, var(ADMIN_KEY_VAR)) {
        (Some(path), _) => KeySource::File(path.clone()),
        (None, Some(text)) => match AdminKey::new(&text, ADMIN_KEY_VAR)? {
            Some(key) => KeySource::Env(key),
            None => return Err(no_key(command.name())),
        },
        (None, None) => return Err(no_key(command.name())),
    };
    Ok(Target::Server(Server { url, key }))
}

/// Why the command `name` cannot run through a server.
pub fn store_only(name: &str) -> String {
    format!("{name} needs the keys store itself and cannot run through a server's management API")
}

/// The refusal of a command sent to a server without an admin key.
fn no_key(command: &str) -> CliError {
    CliError::Usage(format!(
        "{command} through a server's management API needs an admin key: set \
         {ADMIN_KEY_VAR} or give --admin-key-file PATH (never the key itself as an argument, \
         which every user can read)"
    ))
}

/// A server's base URL as given: `http://` or `https://`, a host, perhaps a port and a path
/// (a proxy's prefix), no query, fragment or `user:password@`; trailing `/` removed. The error
/// reads after the name of what gave it.
pub fn base_url(text: &str) -> Result<String, String> {
    let expected = || {
        format!(
            "expected http://HOST[:PORT] or https://HOST[:PORT], got '{}'",
            text.escape_debug()
        )
    };
    let lower = text.to_ascii_lowercase();
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &text[scheme.len()..]))
        .ok_or_else(expected)?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // Not echoed: it may hold a password.
        return Err(
            "a URL with user:password@ is refused: the admin key is the only \
                    credential sent"
                .into(),
        );
    }
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#';
    if authority.is_empty() || text.contains(bad_char) {
        return Err(expected());
    }
    Ok(text.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Cmd, RemoteFlags};

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn inv(cmd: Cmd, url: Option<&str>, file: Option<&str>) -> Invocation {
        Invocation {
            cmd,
            remote: RemoteFlags {
                url: url.map(String::from),
                admin_key_file: file.map(String::from),
            },
        }
    }

    fn list() -> Cmd {
        Cmd::List {
            detailed: false,
            json: false,
            unused_since: None,
        }
    }

    fn key(text: &str) -> KeySource {
        KeySource::Env(AdminKey::new(text, ADMIN_KEY_VAR).unwrap().unwrap())
    }

    fn usage(result: Result<Target, CliError>) -> String {
        match result {
            Err(CliError::Usage(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_store_without_a_url_a_server_with_one() {
        assert_eq!(
            choose(&inv(list(), None, None), env(&[])),
            Ok(Target::Store)
        );
        let blank = [(URL_VAR, ""), (ADMIN_KEY_VAR, "sec_admin")];
        assert_eq!(
            choose(&inv(list(), None, None), env(&blank)),
            Ok(Target::Store)
        );
        let vars = [(URL_VAR, "http://h:8080/"), (ADMIN_KEY_VAR, " sec_admin\n")];
        assert_eq!(
            choose(&inv(list(), None, None), env(&vars)),
            Ok(Target::Server(Server {
                url: "http://h:8080".into(),
                key: key("sec_admin"),
            }))
        );
        // The flag wins over the variable, and the file over the key in the environment.
        assert_eq!(
            choose(&inv(list(), Some("http://other"), Some("/k")), env(&vars)),
            Ok(Target::Server(Server {
                url: "http://other".into(),
                key: KeySource::File("/k".into()),
            }))
        );
    }

    #[test]
    fn help_and_the_version_run_anywhere() {
        let vars = [(URL_VAR, "http://h")];
        for cmd in [Cmd::Help(None), Cmd::Version, Cmd::Help(Some("check"))] {
            assert_eq!(
                choose(&inv(cmd, Some("http://h"), None), env(&vars)),
                Ok(Target::Store)
            );
        }
    }

    #[test]
    fn commands_that_need_the_store_are_refused_naming_why() {
        let check = || Cmd::Check {
            file: None,
            json: false,
        };
        let key = (ADMIN_KEY_VAR, "sec_admin");
        assert_eq!(
            usage(choose(&inv(check(), Some("http://h"), None), env(&[key]))),
            "check needs the keys store itself and cannot run through a server's management \
             API (--url): run it without --url, where KEYS_FILE or S3_BUCKET reaches the store"
        );
        let message = usage(choose(
            &inv(Cmd::Refresh { url: None }, None, None),
            env(&[(URL_VAR, "http://h"), key]),
        ));
        assert!(
            message.starts_with("refresh needs the keys store itself")
                && message.contains(&format!("({URL_VAR}): run it with {URL_VAR} unset")),
            "{message}"
        );
        // Refused for what it is before the key is asked for.
        let message = usage(choose(&inv(check(), Some("http://h"), None), env(&[])));
        assert!(
            message.starts_with("check needs the keys store"),
            "{message}"
        );
    }

    #[test]
    fn a_server_without_a_key_is_a_usage_error() {
        let want = "list through a server's management API needs an admin key: set \
                    HEARE_AUTH_ADMIN_KEY or give --admin-key-file PATH (never the key itself \
                    as an argument, which every user can read)";
        for vars in [&[][..], &[(ADMIN_KEY_VAR, " \n")][..]] {
            assert_eq!(
                usage(choose(&inv(list(), Some("http://h"), None), env(vars))),
                want
            );
        }
        assert_eq!(
            usage(choose(&inv(list(), None, Some("/k")), env(&[]))),
            "list: --admin-key-file is for a server's management API: give --url URL or set \
             HEARE_AUTH_URL too"
        );
        let bad = usage(choose(
            &inv(list(), None, None),
            env(&[(URL_VAR, "localhost:8080")]),
        ));
        assert_eq!(
            bad,
            "HEARE_AUTH_URL: expected http://HOST[:PORT] or https://HOST[:PORT], got \
             'localhost:8080'"
        );
    }

    #[test]
    fn base_urls() {
        for (given, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            (
                "HTTPS://auth.example.com/admin//",
                "HTTPS://auth.example.com/admin",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(base_url(given).as_deref(), Ok(want), "{given}");
        }
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http:///keys",
            "http://h/?x=1",
            "http://h#top",
            "http://h x",
            "http://h\n",
        ] {
            let e = base_url(bad).unwrap_err();
            assert!(
                e.starts_with("expected http://HOST[:PORT] or https://HOST[:PORT], got '"),
                "{bad}: {e}"
            );
        }
        let e = base_url("http://admin:hunter2@h").unwrap_err();
        assert!(
            !e.contains("hunter2") && e.contains("user:password@"),
            "{e}"
        );
    }
}
