//! Argument parsing tests: argument arrays in, commands or usage errors out.

use super::*;

fn p(args: &[&str]) -> Result<Cmd, CliError> {
    parse(args.iter().map(OsString::from).collect())
}

fn usage_error(args: &[&str]) -> String {
    match p(args) {
        Err(CliError::Usage(m)) => m,
        other => panic!("{args:?} gave {other:?}"),
    }
}

#[test]
fn create_with_every_flag() {
    assert_eq!(
        p(&[
            "create",
            "--name",
            "Billing",
            "--metadata",
            r#"{"a":1}"#,
            "--ttl",
            "90d",
            "--no-refresh",
            "--json"
        ]),
        Ok(Cmd::Create(CreateArgs {
            name: "Billing".into(),
            metadata: Some(r#"{"a":1}"#.into()),
            expires: Some(Expiry::After(90 * 86_400_000)),
            no_refresh: true,
            json: true,
        }))
    );
    assert_eq!(
        p(&["create", "--expires-at", "2027-01-31", "--name=X"]),
        Ok(Cmd::Create(CreateArgs {
            name: "X".into(),
            metadata: None,
            expires: Some(Expiry::At(1_801_353_600_000)),
            no_refresh: false,
            json: false,
        }))
    );
}

#[test]
fn other_commands() {
    assert_eq!(
        p(&["list"]),
        Ok(Cmd::List {
            detailed: false,
            json: false
        })
    );
    assert_eq!(
        p(&["list", "--json", "--detailed"]),
        Ok(Cmd::List {
            detailed: true,
            json: true
        })
    );
    assert_eq!(
        p(&["show", "key_1", "--json"]),
        Ok(Cmd::Show {
            id: "key_1".into(),
            json: true
        })
    );
    assert_eq!(
        p(&["delete", "-y", "key_1"]),
        Ok(Cmd::Delete {
            id: "key_1".into(),
            yes: true,
            no_refresh: false
        })
    );
    assert_eq!(
        p(&["delete", "key_1", "--yes", "--no-refresh"]),
        Ok(Cmd::Delete {
            id: "key_1".into(),
            yes: true,
            no_refresh: true
        })
    );
    assert_eq!(p(&["refresh"]), Ok(Cmd::Refresh { url: None }));
    assert_eq!(
        p(&["refresh", "--url", "http://127.0.0.1:9/refresh"]),
        Ok(Cmd::Refresh {
            url: Some("http://127.0.0.1:9/refresh".into())
        })
    );
}

#[test]
fn help_and_version() {
    assert_eq!(p(&[]), Ok(Cmd::Help(None)));
    assert_eq!(p(&["--help"]), Ok(Cmd::Help(None)));
    assert_eq!(p(&["help", "delete"]), Ok(Cmd::Help(Some("delete"))));
    assert_eq!(p(&["--version"]), Ok(Cmd::Version));
    for c in ["create", "list", "show", "delete", "refresh"] {
        assert_eq!(p(&[c, "--help"]), Ok(Cmd::Help(Some(c))));
        assert!(help(Some(c)).starts_with(&format!("Usage: heare-auth {c}")));
    }
    assert!(help(None).contains("KEYS_FILE"));
}

#[test]
fn usage_errors_name_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unknown command 'frobnicate'"),
        (&["create"], "create: missing required flag --name"),
        (&["create", "--name", " "], "create: --name must not be empty"),
        (&["create", "--name"], "create: --name needs a value"),
        (&["create", "--nme", "x"], "create: missing required flag --name"),
        (&["create", "--name", "x", "--nme", "y"], "create: unknown flag --nme"),
        (&["create", "--name", "x", "--ttl", "5d", "--expires-at", "2027-01-01"], "create: give --expires-at or --ttl, not both"),
        (&["create", "--name", "x", "--ttl", "soon"], "create: --ttl: expected a positive number and a unit (s, m, h, d, w) like 90d, got 'soon'"),
        (&["create", "--name", "x", "--expires-at", "tomorrow"], "create: --expires-at: expected an RFC 3339 timestamp or a date (2026-01-31T12:00:00Z, 2026-01-31), got 'tomorrow'"),
        (&["show"], "show: missing the key ID"),
        (&["show", "--json"], "show: missing the key ID"),
        (&["show", "a", "b"], "show: unexpected argument b"),
        (&["delete"], "delete: missing the key ID"),
        (&["delete", "--force", "k"], "delete: unknown flag --force"),
        (&["list", "--all"], "list: unknown flag --all"),
        (&["refresh", "--url"], "refresh: --url needs a value"),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(args), *want, "{args:?}");
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
    }
}

#[test]
fn ttl_units() {
    assert_eq!(parse_ttl("3600s"), Ok(3_600_000));
    assert_eq!(parse_ttl("30m"), Ok(1_800_000));
    assert_eq!(parse_ttl("12h"), Ok(43_200_000));
    assert_eq!(parse_ttl("2w"), Ok(1_209_600_000));
    for bad in ["", "0d", "d", "5", "5y", "-5d", "1.5h"] {
        assert!(parse_ttl(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_ttl("99999999999999999w"),
        Err("'99999999999999999w' is too long".into())
    );
}
