//! Argument parsing tests: argument arrays in, commands or usage errors out.

use super::*;
use crate::cmd::{NewCredits, Since};
use crate::commands::ImportFormat;
use crate::help::{help, USAGE};
use heare_auth_core::UnixMillis;
use heare_auth_core::{RateLimit, Refill};

/// The command of a line without remote flags.
fn p(args: &[&str]) -> Result<Cmd, CliError> {
    parse_line(args).map(|inv| {
        assert_eq!(inv.remote, RemoteFlags::default(), "{args:?}");
        inv.cmd
    })
}

fn parse_line(args: &[&str]) -> Result<Invocation, CliError> {
    parse(args.iter().map(OsString::from).collect())
}

fn usage_error(args: &[&str]) -> String {
    match parse_line(args) {
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
            "--rate-limit",
            "100/60s",
            "--credits",
            "1000",
            "--refill=500/day",
            "--no-refresh",
            "--json"
        ]),
        Ok(Cmd::Create(CreateArgs {
            name: "Billing".into(),
            metadata: Some(r#"{"a":1}"#.into()),
            scopes: Vec::new(),
            expires: Some(Expiry::After(90 * 86_400_000)),
            rate_limit: Some(RateLimit {
                requests: 100,
                per_ms: 60_000
            }),
            credits: Some(NewCredits {
                amount: 1000,
                refill: Refill::parse("500/day").ok(),
            }),
            no_refresh: true,
            json: true,
        }))
    );
    assert_eq!(
        p(&["create", "--expires-at", "2027-01-31", "--name=X"]),
        Ok(Cmd::Create(CreateArgs {
            name: "X".into(),
            metadata: None,
            scopes: Vec::new(),
            expires: Some(Expiry::At(1_801_353_600_000)),
            rate_limit: None,
            credits: None,
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
            json: false,
            unused_since: None
        })
    );
    assert_eq!(
        p(&["list", "--json", "--detailed"]),
        Ok(Cmd::List {
            detailed: true,
            json: true,
            unused_since: None
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
fn list_finds_unused_keys_with_its_other_flags() {
    assert_eq!(
        p(&["list", "--unused-since", "90d"]),
        Ok(Cmd::List {
            detailed: false,
            json: false,
            unused_since: Some(Since::Ago(90 * 86_400_000))
        })
    );
    assert_eq!(
        p(&["list", "--json", "--unused-since=2026-12-06", "--detailed"]),
        Ok(Cmd::List {
            detailed: true,
            json: true,
            unused_since: Some(Since::At(1_796_515_200_000))
        })
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["list", "--unused-since"],
            "list: --unused-since needs a value",
        ),
        (
            &["list", "--unused-since", "--json"],
            "list: --unused-since needs a value",
        ),
        (
            &["list", "--unused-since", "1d", "--unused-since", "2d"],
            "list: --unused-since given more than once",
        ),
        (
            &["list", "--unused-since", "lately"],
            "list: --unused-since: expected a duration (90d, 12h, 2w) or an RFC 3339 time, \
             got 'lately'",
        ),
        // An unknown flag is named before a bad value.
        (
            &["list", "--unused-since", "lately", "--frob"],
            "list: unknown flag --frob",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(args), *want, "{args:?}");
    }
    assert!(help(Some("list")).contains("--unused-since DURATION|TIME"));
}

#[test]
fn rate_limits_and_whole_file_commands() {
    let limit = |text: &str| RateLimit::parse(text).ok();
    let set = |limit, no_refresh| {
        Ok(Cmd::SetRateLimit(RateLimitArgs {
            id: "k".into(),
            limit,
            no_refresh,
        }))
    };
    assert_eq!(
        p(&["set-rate-limit", "k", "100/60s"]),
        set(limit("100/60s"), false)
    );
    assert_eq!(
        p(&["set-rate-limit", "--no-refresh", "k", "10/500ms"]),
        set(limit("10/500ms"), true)
    );
    assert_eq!(
        p(&["set-rate-limit", "k", "none", "--no-refresh"]),
        set(None, true)
    );
    let Ok(Cmd::Create(a)) = p(&["create", "--name", "x", "--rate-limit=5/1m"]) else {
        panic!("not a create")
    };
    assert_eq!(a.rate_limit, limit("5/60s"));

    assert_eq!(
        p(&["check"]),
        Ok(Cmd::Check {
            file: None,
            json: false
        })
    );
    assert_eq!(
        p(&["check", "--json", "backup.json"]),
        Ok(Cmd::Check {
            file: Some("backup.json".into()),
            json: true
        })
    );
    assert_eq!(
        p(&["migrate", "--hash-secrets"]),
        Ok(Cmd::Migrate {
            yes: false,
            no_refresh: false
        })
    );
    assert_eq!(
        p(&["migrate", "-y", "--no-refresh", "--hash-secrets"]),
        Ok(Cmd::Migrate {
            yes: true,
            no_refresh: true
        })
    );
    assert_eq!(p(&["export"]), Ok(Cmd::Export { output: None }));
    assert_eq!(
        p(&["export", "--output=backup.json"]),
        Ok(Cmd::Export {
            output: Some("backup.json".into())
        })
    );
    assert_eq!(
        p(&["import", "backup.json"]),
        Ok(Cmd::Import {
            file: "backup.json".into(),
            format: ImportFormat::Json,
            yes: false,
            no_refresh: false
        })
    );
    assert_eq!(
        p(&["import", "--yes", "--no-refresh", "backup.json"]),
        Ok(Cmd::Import {
            file: "backup.json".into(),
            format: ImportFormat::Json,
            yes: true,
            no_refresh: true
        })
    );
}

#[test]
fn import_reads_the_format_from_the_extension_or_format() {
    let format = |args: &[&str]| match p(args) {
        Ok(Cmd::Import { format, .. }) => format,
        other => panic!("{args:?} gave {other:?}"),
    };
    for (file, want) in [
        ("keys.csv", ImportFormat::Csv),
        ("EXPORT.CSV", ImportFormat::Csv),
        ("keys.jsonl", ImportFormat::JsonLines),
        ("keys.ndjson", ImportFormat::JsonLines),
        ("keys.json", ImportFormat::Json),
        ("backup", ImportFormat::Json),
        ("dir.csv/backup", ImportFormat::Json),
        ("keys.csv.enc", ImportFormat::Json),
    ] {
        assert_eq!(format(&["import", file]), want, "{file}");
    }
    for (word, want) in [
        ("json", ImportFormat::Json),
        ("jsonl", ImportFormat::JsonLines),
        ("ndjson", ImportFormat::JsonLines),
        ("csv", ImportFormat::Csv),
    ] {
        assert_eq!(format(&["import", "--format", word, "keys.json"]), want);
        assert_eq!(
            format(&["import", "keys.txt", &format!("--format={word}")]),
            want
        );
    }
    assert_eq!(
        usage_error(&["import", "--format", "xml", "keys.xml"]),
        "import: --format: expected json, jsonl or csv, got 'xml'"
    );
    assert_eq!(
        usage_error(&["import", "keys.csv", "--format"]),
        "import: --format needs a value"
    );
}

#[test]
fn help_and_version() {
    assert_eq!(p(&["--help"]), Ok(Cmd::Help(None)));
    assert_eq!(p(&["-h"]), Ok(Cmd::Help(None)));
    assert_eq!(p(&["help"]), Ok(Cmd::Help(None)));
    assert_eq!(p(&["help", "delete"]), Ok(Cmd::Help(Some("delete"))));
    assert_eq!(p(&["--help", "show"]), Ok(Cmd::Help(Some("show"))));
    assert_eq!(p(&["--version"]), Ok(Cmd::Version));
    assert_eq!(p(&["-V"]), Ok(Cmd::Version));
    for c in [
        "create",
        "list",
        "show",
        "disable",
        "enable",
        "rotate",
        "set-rate-limit",
        "update",
        "delete",
        "refresh",
        "doctor",
        "check",
        "migrate",
        "export",
        "import",
        "identify",
        "scan",
    ] {
        assert_eq!(p(&[c, "--help"]), Ok(Cmd::Help(Some(c))));
        assert_eq!(p(&[c, "-h"]), Ok(Cmd::Help(Some(c))));
        assert_eq!(p(&["help", c]), Ok(Cmd::Help(Some(c))));
        assert!(help(Some(c)).starts_with(&format!("Usage: heare-auth {c}")));
        assert!(USAGE.contains(&format!("\n  heare-auth {c}")), "{c}");
    }
    // Help wins over whatever else is on the line, even an incomplete command.
    assert_eq!(
        p(&["create", "--nme", "x", "--help"]),
        Ok(Cmd::Help(Some("create")))
    );
    assert_eq!(p(&["delete", "--help"]), Ok(Cmd::Help(Some("delete"))));
    assert_eq!(help(None), USAGE);
    for needle in [
        "KEYS_FILE",
        "REFRESH_URL",
        "STORAGE_SECRET",
        "heare-auth create",
        "\n  HEARE_AUTH_URL ",
        "\n  HEARE_AUTH_ADMIN_KEY\n",
        "\n  --url URL ",
        "\n  --admin-key-file PATH ",
    ] {
        assert!(USAGE.contains(needle), "{needle}");
    }
    assert!(help(Some("doctor")).contains("\nWith --url (or HEARE_AUTH_URL), checks the server"));
    assert!(help(Some("refresh")).contains("Needs the store: not through a server's"));
}

#[test]
fn create_scopes_are_checked_split_and_deduplicated() {
    let scopes = |args: &[&str]| match p(args) {
        Ok(Cmd::Create(a)) => a.scopes,
        other => panic!("{args:?} gave {other:?}"),
    };
    assert_eq!(
        scopes(&["create", "--name", "x", "--scopes", "read,write"]),
        ["read", "write"]
    );
    assert_eq!(
        scopes(&[
            "create",
            "--scopes=write,keys:admin",
            "--name",
            "x",
            "--scopes",
            "read,write",
            "--scopes",
            "write"
        ]),
        ["write", "keys:admin", "read"]
    );
    assert!(scopes(&["create", "--name", "x"]).is_empty());
    let long = "a".repeat(129);
    assert_eq!(
        usage_error(&["create", "--name", "x", "--scopes", &format!("read,{long}")]),
        format!("create: --scopes: a scope has at most 128 characters, got '{long}'")
    );
}

#[test]
fn disable_enable_and_rotate() {
    let key = |id: &str, no_refresh, json| KeyArgs {
        id: id.into(),
        no_refresh,
        json,
    };
    assert_eq!(
        p(&["disable", "k"]),
        Ok(Cmd::Disable(key("k", false, false)))
    );
    assert_eq!(
        p(&["disable", "--json", "k", "--no-refresh"]),
        Ok(Cmd::Disable(key("k", true, true)))
    );
    assert_eq!(
        p(&["enable", "k", "--json"]),
        Ok(Cmd::Enable(key("k", false, true)))
    );
    let rotate = |grace_ms, no_refresh, json| {
        Ok(Cmd::Rotate(RotateArgs {
            id: "k".into(),
            grace_ms,
            no_refresh,
            json,
        }))
    };
    assert_eq!(p(&["rotate", "k"]), rotate(DEFAULT_GRACE_MS, false, false));
    assert_eq!(DEFAULT_GRACE_MS, 60 * 60_000);
    assert_eq!(
        p(&["rotate", "--grace", "2h", "k", "--no-refresh", "--json"]),
        rotate(7_200_000, true, true)
    );
    for none in ["0", "0s", "0m", "00h"] {
        assert_eq!(
            p(&["rotate", "k", "--grace", none]),
            rotate(0, false, false),
            "{none}"
        );
    }
    assert_eq!(
        p(&["rotate", "k", "--grace=90s"]),
        rotate(90_000, false, false)
    );
}

#[test]
fn repeated_switches_are_harmless() {
    assert_eq!(
        p(&["list", "--json", "--json"]),
        Ok(Cmd::List {
            detailed: false,
            json: true,
            unused_since: None
        })
    );
    assert_eq!(
        p(&["delete", "k", "-y", "--yes"]),
        Ok(Cmd::Delete {
            id: "k".into(),
            yes: true,
            no_refresh: false
        })
    );
}

#[test]
fn usage_errors_name_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command: expected create, list, show, disable, enable, rotate, set-rate-limit, update, delete, refresh, doctor, check, migrate, compact, export, import, identify or scan"),
        (&["--json"], "unknown flag --json"),
        (&["--version", "x"], "--version: unexpected argument x"),
        // Found by the cli_args fuzz target: an empty argument was named by nothing.
        (&["-V", ""], "--version: unexpected argument ''"),
        (&["frobnicate"], "unknown command 'frobnicate'"),
        (&["help", "frobnicate"], "unknown command 'frobnicate'"),
        (&["help", "list", "show"], "help: unexpected argument show"),
        (&["create"], "create: missing required flag --name"),
        (&["create", "--name", " "], "create: --name must not be empty"),
        (&["create", "--name"], "create: --name needs a value"),
        (&["create", "--name", "--json"], "create: --name needs a value"),
        (&["create", "--name=", "x"], "create: --name needs a value"),
        (&["create", "--name", "a", "--name", "b"], "create: --name given more than once"),
        (&["create", "--nme", "x"], "create: unknown flag --nme"),
        (&["create", "--name", "x", "--nme", "y"], "create: unknown flag --nme"),
        (&["create", "--name", "x", "extra"], "create: unexpected argument extra"),
        (&["create", "--name", "x", "--metadata"], "create: --metadata needs a value"),
        (&["create", "--name", "x", "--ttl"], "create: --ttl needs a value"),
        (&["create", "--name", "x", "--expires-at"], "create: --expires-at needs a value"),
        (&["create", "--name", "x", "--ttl", "5d", "--expires-at", "2027-01-01"], "create: give --expires-at or --ttl, not both"),
        (&["create", "--name", "x", "--ttl", "soon"], "create: --ttl: expected a positive number and a unit (s, m, h, d, w) like 90d, got 'soon'"),
        (&["create", "--name", "x", "--ttl", "2000000d"], "create: --ttl: expected at most 1000 years, got '2000000d'"),
        (&["create", "--name", "x", "--expires-at", "tomorrow"], "create: --expires-at: expected an RFC 3339 timestamp or a date (2026-01-31T12:00:00Z, 2026-01-31), got 'tomorrow'"),
        (&["list", "--all"], "list: unknown flag --all"),
        (&["list", "extra"], "list: unexpected argument extra"),
        (&["show"], "show: missing the key ID"),
        (&["show", "--json"], "show: missing the key ID"),
        (&["show", "--jsn", "k"], "show: unknown flag --jsn"),
        (&["show", "a", "b"], "show: unexpected argument b"),
        (&["delete"], "delete: missing the key ID"),
        (&["delete", "-y"], "delete: missing the key ID"),
        (&["delete", "--force", "k"], "delete: unknown flag --force"),
        (&["delete", "k", "--force"], "delete: unknown flag --force"),
        (&["refresh", "--url"], "refresh: --url needs a value"),
        (&["refresh", "--url", "http://a", "--url", "http://b"], "refresh: --url given more than once"),
        (&["refresh", "now"], "refresh: unexpected argument now"),
        (&["create", "--name", "x", "--scopes"], "create: --scopes needs a value"),
        (&["create", "--name", "x", "--scopes", "--json"], "create: --scopes needs a value"),
        (&["create", "--name", "x", "--scopes", "read", "--scopes"], "create: --scopes needs a value"),
        (&["create", "--name", "x", "--scopes", "read write"], "create: --scopes: scope 'read write' contains a space: use letters, digits and ASCII punctuation other than \" \\ ,"),
        (&["create", "--name", "x", "--scopes", "read,wr\"ite"], "create: --scopes: scope 'wr\\\"ite' contains '\\\"': use letters, digits and ASCII punctuation other than \" \\ ,"),
        (&["create", "--name", "x", "--scopes", "read,,write"], "create: --scopes: a scope must not be empty, got 'read,,write'"),
        (&["create", "--name", "x", "--scopes", ""], "create: --scopes: a scope must not be empty, got ''"),
        (&["create", "--name", "x", "--scopes="], "create: --scopes needs a value"),
        (&["create", "--name", "x", "--scopes", "read,"], "create: --scopes: a scope must not be empty, got 'read,'"),
        (&["create", "--name", "x", "--scopes", "lé"], "create: --scopes: scope 'lé' contains 'é': use letters, digits and ASCII punctuation other than \" \\ ,"),
        (&["disable"], "disable: missing the key ID"),
        (&["disable", "--json"], "disable: missing the key ID"),
        (&["disable", "--yes", "k"], "disable: unknown flag --yes"),
        (&["disable", "a", "b"], "disable: unexpected argument b"),
        (&["enable"], "enable: missing the key ID"),
        (&["enable", "k", "--force"], "enable: unknown flag --force"),
        (&["rotate"], "rotate: missing the key ID"),
        (&["rotate", "--grace", "1h"], "rotate: missing the key ID"),
        (&["rotate", "k", "--grace"], "rotate: --grace needs a value"),
        (&["rotate", "k", "--grace", "--json"], "rotate: --grace needs a value"),
        (&["rotate", "k", "--grace", "1h", "--grace", "2h"], "rotate: --grace given more than once"),
        (&["rotate", "k", "--grace", "soon"], "rotate: --grace: expected 0 or a number and a unit (s, m, h, d, w) like 60m, got 'soon'"),
        (&["rotate", "k", "--grace", "-1m"], "rotate: --grace: expected 0 or a number and a unit (s, m, h, d, w) like 60m, got '-1m'"),
        (&["rotate", "k", "--grace", "2000000d"], "rotate: --grace: expected at most 1000 years, got '2000000d'"),
        (&["rotate", "k", "--ttl", "1h"], "rotate: unknown flag --ttl"),
        (&["create", "--name", "x", "--rate-limit"], "create: --rate-limit needs a value"),
        (&["create", "--name", "x", "--rate-limit", "--json"], "create: --rate-limit needs a value"),
        (&["create", "--name", "x", "--rate-limit", "1/1s", "--rate-limit", "2/1s"], "create: --rate-limit given more than once"),
        (&["create", "--name", "x", "--rate-limit", "fast"], "create: --rate-limit: expected REQUESTS/PERIOD like 100/60s or 5/1m, got 'fast'"),
        (&["create", "--name", "x", "--rate-limit", "100/60"], "create: --rate-limit: expected REQUESTS/PERIOD like 100/60s or 5/1m, got '100/60'"),
        (&["create", "--name", "x", "--rate-limit", "0/60s"], "create: --rate-limit: expected 1 to 4294967295 requests, got 0"),
        (&["create", "--name", "x", "--rate-limit", "1/31d"], "create: --rate-limit: expected a period of 1 ms to 30 days, got 2678400000 ms"),
        (&["create", "--name", "x", "--rate-limit", "none"], "create: --rate-limit: expected REQUESTS/PERIOD like 100/60s or 5/1m, got 'none'"),
        (&["create", "--name", "x", "--credits"], "create: --credits needs a value"),
        (&["create", "--name", "x", "--credits", "--json"], "create: --credits needs a value"),
        (&["create", "--name", "x", "--credits", "1", "--credits", "2"], "create: --credits given more than once"),
        (&["create", "--name", "x", "--credits", "-5"], "create: --credits: expected a whole number from 0 to 1000000000000, got '-5'"),
        (&["create", "--name", "x", "--credits", "1.5"], "create: --credits: expected a whole number from 0 to 1000000000000, got '1.5'"),
        (&["create", "--name", "x", "--credits", "1000000000001"], "create: --credits: expected a whole number from 0 to 1000000000000, got '1000000000001'"),
        (&["create", "--name", "x", "--refill", "1000/day"], "create: --refill needs --credits, the balance to start from"),
        (&["create", "--name", "x", "--credits", "5", "--refill"], "create: --refill needs a value"),
        (&["create", "--name", "x", "--credits", "5", "--refill", "1000/week"], "create: --refill: expected AMOUNT/day or AMOUNT/month like 1000/day, got '1000/week'"),
        (&["create", "--name", "x", "--credits", "5", "--refill", "5/day", "--refill", "5/day"], "create: --refill given more than once"),
        (&["create", "--name", "x", "--no-credits"], "create: unknown flag --no-credits"),
        (&["set-rate-limit"], "set-rate-limit: missing the key ID"),
        (&["set-rate-limit", "k"], "set-rate-limit: missing the rate limit (REQUESTS/PERIOD like 100/60s, or none)"),
        (&["set-rate-limit", "k", "--json"], "set-rate-limit: unknown flag --json"),
        (&["set-rate-limit", "k", "fast"], "set-rate-limit: expected REQUESTS/PERIOD like 100/60s or 5/1m, got 'fast'"),
        (&["set-rate-limit", "k", "0/1s"], "set-rate-limit: expected 1 to 4294967295 requests, got 0"),
        (&["set-rate-limit", "k", "1/1s", "extra"], "set-rate-limit: unexpected argument extra"),
        (&["set-rate-limit", "k", "-5/1s"], "set-rate-limit: unknown flag -5/1s"),
        (&["check", "a.json", "b.json"], "check: unexpected argument b.json"),
        (&["check", "--all"], "check: unknown flag --all"),
        (&["check", "a.json", "--yes"], "check: unknown flag --yes"),
        (&["migrate"], "migrate: missing required flag --hash-secrets"),
        (&["migrate", "--yes"], "migrate: missing required flag --hash-secrets"),
        (&["migrate", "--hash-secrets", "--json"], "migrate: unknown flag --json"),
        (&["migrate", "--hash-secrets", "now"], "migrate: unexpected argument now"),
        (&["migrate", "--hash-secret"], "migrate: unknown flag --hash-secret"),
        (&["export", "--output"], "export: --output needs a value"),
        (&["export", "--output", "--json"], "export: --output needs a value"),
        (&["export", "--output", "a", "--output", "b"], "export: --output given more than once"),
        (&["export", "a.json"], "export: unexpected argument a.json"),
        (&["export", "--json"], "export: unknown flag --json"),
        (&["import"], "import: missing the file to import"),
        (&["import", "--yes"], "import: missing the file to import"),
        (&["import", "a.json", "b.json"], "import: unexpected argument b.json"),
        (&["import", "--force", "a.json"], "import: unknown flag --force"),
        (&["import", "a.json", "--output", "x"], "import: unknown flag --output"),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(args), *want, "{args:?}");
    }
}

#[test]
fn ttl_units() {
    assert_eq!(parse_ttl("3600s"), Ok(3_600_000));
    assert_eq!(parse_ttl("30m"), Ok(1_800_000));
    assert_eq!(parse_ttl("12h"), Ok(43_200_000));
    assert_eq!(parse_ttl("90d"), Ok(7_776_000_000));
    assert_eq!(parse_ttl("2w"), Ok(1_209_600_000));
    assert_eq!(parse_ttl("365000d"), Ok(MAX_TTL_MS));
    for bad in [
        "", "0d", "d", "5", "5y", "-5d", "+5d", "1.5h", "5 d", "5D", "05x",
    ] {
        assert_eq!(
            parse_ttl(bad),
            Err(format!(
                "expected a positive number and a unit (s, m, h, d, w) like 90d, got '{bad}'"
            )),
            "{bad}"
        );
    }
    for long in ["365001d", "99999999999999999w", "99999999999999999999999s"] {
        assert_eq!(
            parse_ttl(long),
            Err(format!("expected at most 1000 years, got '{long}'")),
            "{long}"
        );
    }
}

#[test]
fn grace_is_a_ttl_or_zero() {
    assert_eq!(parse_grace("0"), Ok(0));
    assert_eq!(parse_grace("0s"), Ok(0));
    assert_eq!(parse_grace("0m"), Ok(0));
    assert_eq!(parse_grace("30m"), Ok(1_800_000));
    assert_eq!(parse_grace("7d"), Ok(604_800_000));
    for bad in ["", "m", "5", "0x", "-0", "1.5h", "5 m", "00"] {
        assert_eq!(
            parse_grace(bad),
            Err(format!(
                "expected 0 or a number and a unit (s, m, h, d, w) like 60m, got '{bad}'"
            )),
            "{bad}"
        );
    }
    assert_eq!(
        parse_grace("365001d"),
        Err("expected at most 1000 years, got '365001d'".into())
    );
}

#[test]
fn expiry_is_stored_normalised() {
    const NOW: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z
    assert_eq!(
        Expiry::After(3_600_000).timestamp(NOW),
        "2026-11-25T02:17:14.316000Z"
    );
    let Ok(Cmd::Create(a)) = p(&[
        "create",
        "--name",
        "x",
        "--expires-at",
        "2027-01-31 12:00:00+02:00",
    ]) else {
        panic!("not a create")
    };
    assert_eq!(
        a.expires.map(|e| e.timestamp(NOW)).as_deref(),
        Some("2027-01-31T10:00:00.000000Z")
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_usage_errors() {
    use std::os::unix::ffi::OsStringExt;
    let bad = || OsString::from_vec(vec![0x66, 0xff]);
    let named = || Err(CliError::Usage("'f\u{fffd}' is not UTF-8 text".into()));
    assert_eq!(parse(vec![bad()]), named());
    assert_eq!(
        parse(vec!["create".into(), "--name".into(), bad()]),
        named()
    );
    assert_eq!(parse(vec!["show".into(), bad()]), named());
    // Found by the cli_args fuzz target: the message did not say which argument it was.
    let found = OsString::from_vec(b"l\x95\x8C\x8B\xFF--detailed".to_vec());
    assert_eq!(
        parse(vec![found, "--json".into()]),
        Err(CliError::Usage(
            "'l\u{fffd}\u{fffd}\u{fffd}\u{fffd}--detailed' is not UTF-8 text".into()
        ))
    );
}

#[test]
fn a_name_with_a_control_character_is_refused_naming_where() {
    for (name, shown, at) in [
        ("Billing\u{1b}]0;pwned\u{7}", "\\x1b", 8),
        ("\u{1b}[2J", "\\x1b", 1),
        ("a\rb", "\\r", 2),
        ("a\nb", "\\n", 2),
        ("tab\there", "\\t", 4),
        ("del\u{7f}", "\\x7f", 4),
        ("c1\u{9b}31m", "\\u{9b}", 3),
        ("gpj.\u{202e}exe", "\\u{202e}", 5),
        ("iso\u{2066}late", "\\u{2066}", 4),
    ] {
        assert_eq!(
            p(&["create", "--name", name]),
            Err(CliError::Usage(format!(
                "create: --name: field `name` has a control character ({shown}) at character {at}"
            ))),
            "{name:?}"
        );
    }
    assert!(p(&["create", "--name", "Zoë ✓ \"quoted\" \\ back"]).is_ok());
}

/// `update key_a` with only what each test names given.
fn update(id: &str) -> UpdateArgs {
    UpdateArgs::of(id)
}

#[test]
fn update_reads_each_field_as_create_does() {
    assert_eq!(
        p(&[
            "update",
            "key_a",
            "--name",
            "Billing service",
            "--metadata",
            r#"{"a":1}"#,
            "--scopes",
            "read,write",
            "--scopes=read,admin",
            "--ttl",
            "90d",
            "--no-refresh",
            "--json"
        ]),
        Ok(Cmd::Update(UpdateArgs {
            name: Some("Billing service".into()),
            metadata: Some(r#"{"a":1}"#.into()),
            scopes: Some(vec!["read".into(), "write".into(), "admin".into()]),
            expires: Some(NewExpiry::At(Expiry::After(90 * 86_400_000))),
            no_refresh: true,
            json: true,
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "--name=X", "key_a"]),
        Ok(Cmd::Update(UpdateArgs {
            name: Some("X".into()),
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "key_a", "--expires-at", "2027-01-31"]),
        Ok(Cmd::Update(UpdateArgs {
            expires: Some(NewExpiry::At(Expiry::At(1_801_353_600_000))),
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "key_a", "--no-expiry"]),
        Ok(Cmd::Update(UpdateArgs {
            expires: Some(NewExpiry::Never),
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "key_a", "--credits", "0", "--refill", "100/month"]),
        Ok(Cmd::Update(UpdateArgs {
            credits: Some(Some(NewCredits {
                amount: 0,
                refill: Refill::parse("100/month").ok(),
            })),
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "--credits=7", "key_a"]),
        Ok(Cmd::Update(UpdateArgs {
            credits: Some(Some(NewCredits {
                amount: 7,
                refill: None,
            })),
            ..update("key_a")
        }))
    );
    assert_eq!(
        p(&["update", "key_a", "--no-credits"]),
        Ok(Cmd::Update(UpdateArgs {
            credits: Some(None),
            ..update("key_a")
        }))
    );
    // Metadata is checked, as for `create`, when the command runs.
    assert_eq!(
        p(&["update", "key_a", "--metadata", "[1]"]),
        Ok(Cmd::Update(UpdateArgs {
            metadata: Some("[1]".into()),
            ..update("key_a")
        }))
    );
}

#[test]
fn update_errors_name_what_is_wrong() {
    let nothing = "update: nothing to change: give --name, --metadata, --scopes, --expires-at, \
                   --ttl, --no-expiry, --credits or --no-credits";
    let cases: &[(&[&str], &str)] = &[
        (&["update", "key_a"], nothing),
        (&["update", "key_a", "--no-refresh", "--json"], nothing),
        (&["update", "--name", "X"], "update: missing the key ID"),
        (
            &["update", "key_a", "--name"],
            "update: --name needs a value",
        ),
        (
            &["update", "key_a", "--name", "--json"],
            "update: --name needs a value",
        ),
        (
            &["update", "key_a", "--name", "  "],
            "update: --name must not be empty",
        ),
        (
            &["update", "key_a", "--name", "a\u{1b}[2J"],
            "update: --name: field `name` has a control character (\\x1b) at character 2",
        ),
        (
            &["update", "key_a", "--name", "A", "--name", "B"],
            "update: --name given more than once",
        ),
        (
            &["update", "key_a", "--scopes", "read,write all"],
            "update: --scopes: scope 'write all' contains a space",
        ),
        (
            &["update", "key_a", "--scopes", "read,"],
            "update: --scopes: a scope must not be empty, got 'read,'",
        ),
        (
            &["update", "key_a", "--expires-at", "someday"],
            "update: --expires-at: expected an RFC 3339 timestamp",
        ),
        (
            &["update", "key_a", "--ttl", "10y"],
            "update: --ttl: expected a positive number",
        ),
        (
            &[
                "update",
                "key_a",
                "--ttl",
                "1d",
                "--expires-at",
                "2027-01-31",
            ],
            "update: give one of --expires-at, --ttl and --no-expiry, not more",
        ),
        (
            &["update", "key_a", "--ttl", "1d", "--no-expiry"],
            "update: give one of --expires-at, --ttl and --no-expiry, not more",
        ),
        (
            &[
                "update",
                "key_a",
                "--expires-at",
                "2027-01-31",
                "--no-expiry",
            ],
            "update: give one of --expires-at, --ttl and --no-expiry, not more",
        ),
        (
            &["update", "key_a", "--name", "X", "--rate-limit", "1/1s"],
            "update: unknown flag --rate-limit",
        ),
        (
            &["update", "key_a", "key_b", "--name", "X"],
            "update: unexpected argument key_b",
        ),
        (
            &["update", "key_a", "--refill", "5/day"],
            "update: --refill needs --credits, the balance to start from",
        ),
        (
            &["update", "key_a", "--credits", "5", "--no-credits"],
            "update: give --credits (with --refill) or --no-credits, not both",
        ),
        (
            &["update", "key_a", "--refill", "5/day", "--no-credits"],
            "update: give --credits (with --refill) or --no-credits, not both",
        ),
        (
            &["update", "key_a", "--credits", "lots"],
            "update: --credits: expected a whole number from 0 to 1000000000000, got 'lots'",
        ),
        (
            &["update", "key_a", "--credits", "5", "--refill", "5/week"],
            "update: --refill: expected AMOUNT/day or AMOUNT/month like 1000/day, got '5/week'",
        ),
    ];
    for (args, want) in cases {
        let got = usage_error(args);
        assert!(got.starts_with(want), "{args:?}: {got}");
        assert_eq!(p(args).unwrap_err().exit_code(), 2);
    }
}

fn remote(url: Option<&str>, file: Option<&str>) -> RemoteFlags {
    RemoteFlags {
        url: url.map(String::from),
        admin_key_file: file.map(String::from),
    }
}

#[test]
fn url_and_admin_key_file_go_before_or_after_the_command() {
    let list = || Cmd::List {
        detailed: false,
        json: false,
        unused_since: None,
    };
    let at = |cmd, url, file| {
        Ok(Invocation {
            cmd,
            remote: remote(url, file),
        })
    };
    assert_eq!(
        parse_line(&["--url", "http://h:8080/", "list"]),
        at(list(), Some("http://h:8080"), None)
    );
    assert_eq!(
        parse_line(&["list", "--url=http://h:8080", "--admin-key-file", "/k"]),
        at(list(), Some("http://h:8080"), Some("/k"))
    );
    assert_eq!(
        parse_line(&[
            "--admin-key-file=/k",
            "--url",
            "http://h",
            "show",
            "key_a",
            "--json"
        ]),
        at(
            Cmd::Show {
                id: "key_a".into(),
                json: true
            },
            Some("http://h"),
            Some("/k")
        )
    );
    // --no-refresh stays accepted: through a server it has nothing to skip.
    assert_eq!(
        parse_line(&["disable", "key_a", "--no-refresh", "--url", "http://h"]),
        at(
            Cmd::Disable(KeyArgs {
                id: "key_a".into(),
                no_refresh: true,
                json: false
            }),
            Some("http://h"),
            None
        )
    );
}

#[test]
fn refresh_keeps_its_own_url() {
    assert_eq!(
        p(&["refresh", "--url", "http://h:8080/refresh"]),
        Ok(Cmd::Refresh {
            url: Some("http://h:8080/refresh".into())
        })
    );
    // Before the command it is the server's, which refresh then refuses (it needs the store).
    assert_eq!(
        parse_line(&["--url", "http://h", "refresh", "--url", "http://h/refresh"]),
        Ok(Invocation {
            cmd: Cmd::Refresh {
                url: Some("http://h/refresh".into())
            },
            remote: remote(Some("http://h"), None),
        })
    );
}

#[test]
fn help_wins_over_remote_flags_as_over_the_rest() {
    assert_eq!(
        parse_line(&["--url", "nope", "--help"]),
        Ok(Invocation {
            cmd: Cmd::Help(None),
            remote: remote(Some("nope"), None),
        })
    );
    assert_eq!(
        parse_line(&["list", "--url", "nope", "--help"]).map(|i| i.cmd),
        Ok(Cmd::Help(Some("list")))
    );
    assert_eq!(
        parse_line(&["--admin-key-file", "/k", "--version"]).map(|i| i.cmd),
        Ok(Cmd::Version)
    );
}

#[test]
fn remote_flag_errors_name_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["--url"], "--url needs a value"),
        (&["--url", "--json", "list"], "--url needs a value"),
        (&["--admin-key-file"], "--admin-key-file needs a value"),
        (&["list", "--url"], "list: --url needs a value"),
        (
            &["list", "--admin-key-file", "--json"],
            "list: --admin-key-file needs a value",
        ),
        (
            &["--url", "http://a", "--url", "http://b", "list"],
            "--url given more than once",
        ),
        (
            &["--url", "http://a", "list", "--url=http://b"],
            "list: --url given more than once",
        ),
        (
            &[
                "--admin-key-file",
                "/a",
                "show",
                "k",
                "--admin-key-file",
                "/b",
            ],
            "show: --admin-key-file given more than once",
        ),
        (
            &["list", "--url", "ftp://h"],
            "list: --url: expected http://HOST[:PORT] or https://HOST[:PORT], got 'ftp://h'",
        ),
        (&["--url=", "list"], "--url needs a value"),
        (
            &["list", "--admin-key-file="],
            "list: --admin-key-file needs a value",
        ),
        (
            &["list", "--admin-key-file", ""],
            "list: --admin-key-file must not be empty",
        ),
        (
            &["list", "--url", ""],
            "list: --url: expected http://HOST[:PORT] or https://HOST[:PORT], got ''",
        ),
        (&["--url", "http://h", "--frob"], "unknown flag --frob"),
        (
            &["--url", "http://h"],
            "missing command: expected create, list, show, disable, \
            enable, rotate, set-rate-limit, update, delete, refresh, doctor, check, migrate, \
            compact, export, import, identify or scan",
        ),
        // An unknown flag is named before a bad value.
        (
            &["list", "--url", "ftp://h", "--frob"],
            "list: unknown flag --frob",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(args), *want, "{args:?}");
    }
}

#[test]
fn the_admin_key_itself_is_refused_without_being_shown() {
    let want = "--admin-key: the admin key is never taken on the command line, which every \
                user can read: set HEARE_AUTH_ADMIN_KEY or give --admin-key-file PATH";
    for args in [
        &["--admin-key", "sec_topsecret", "list"][..],
        &["list", "--admin-key=sec_topsecret"][..],
        &["create", "--name", "x", "--admin-key"][..],
    ] {
        let message = usage_error(args);
        assert_eq!(message, want, "{args:?}");
        assert!(!message.contains("sec_topsecret"));
    }
    // The file flag is not the key.
    assert!(parse_line(&["list", "--admin-key-file", "/k"]).is_ok());
}

fn scan(paths: &[&str]) -> ScanArgs {
    ScanArgs {
        paths: paths.iter().map(|p| p.to_string()).collect(),
        any_prefix: false,
        include_git: false,
        no_store: false,
        json: false,
    }
}

#[test]
fn identify_reads_nothing_but_json_from_the_command_line() {
    assert_eq!(p(&["identify"]), Ok(Cmd::Identify { json: false }));
    assert_eq!(p(&["identify", "--json"]), Ok(Cmd::Identify { json: true }));
    // Anything else may be the secret: refused, and not shown.
    for extra in [
        "sec_N3J8dNcKZqg-7bXk_Tr2f3fQh4Gf9t2vQxk3oXa1vQ0",
        "--jsn",
        "-x",
        "",
        "a b",
    ] {
        let message = usage_error(&["identify", extra]);
        assert!(
            message.starts_with(
                "identify: takes no argument but --json (what was given is not shown)"
            ),
            "{message}"
        );
        assert!(extra.is_empty() || !message.contains(extra), "{message}");
    }
    assert!(help(Some("identify")).contains("from standard input"));
}

#[test]
fn scan_takes_paths_and_its_flags_in_any_order() {
    assert_eq!(p(&["scan", "."]), Ok(Cmd::Scan(scan(&["."]))));
    assert_eq!(
        p(&[
            "scan",
            "--json",
            "src",
            "--any-prefix",
            "README.md",
            "--include-git",
            "--no-store"
        ]),
        Ok(Cmd::Scan(ScanArgs {
            any_prefix: true,
            include_git: true,
            no_store: true,
            json: true,
            ..scan(&["src", "README.md"])
        }))
    );
    let cases: &[(&[&str], &str)] = &[
        (&["scan"], "scan: missing the files or directories to scan"),
        (
            &["scan", "--json"],
            "scan: missing the files or directories to scan",
        ),
        (&["scan", "a", ""], "scan: a path must not be empty"),
        (&["scan", "a", "--all"], "scan: unknown flag --all"),
    ];
    for (args, want) in cases {
        assert_eq!(usage_error(args), *want, "{args:?}");
    }
}

#[test]
fn a_secret_anywhere_on_the_line_is_refused_without_being_shown() {
    // Secrets of the checksummed format, checksum right or wrong, under any prefix.
    let mut rng = rand_core::OsRng;
    let now = 1_795_569_434_316;
    let ours = heare_auth_core::generate_secret(&heare_auth_core::Prefix::secret(), &mut rng, now);
    let acme = heare_auth_core::Prefix::parse("SECRET_PREFIX", "acme_sk_").unwrap();
    let theirs = heare_auth_core::generate_secret(&acme, &mut rng, now);
    let typo = format!("{}x", &ours[..ours.len() - 1]);
    let lines: Vec<Vec<String>> = vec![
        vec!["identify".into(), ours.clone()],
        vec!["scan".into(), theirs.clone()],
        vec!["create".into(), "--name".into(), typo.clone()],
        vec!["create".into(), format!("--name={ours}")],
        vec![
            "create".into(),
            "--metadata".into(),
            format!("{{\"k\": \"{ours}\"}}"),
        ],
        vec!["--url".into(), format!("http://h/{theirs}"), "list".into()],
        vec![ours.clone()],
    ];
    for line in lines {
        let args: Vec<&str> = line.iter().map(String::as_str).collect();
        let message = usage_error(&args);
        assert!(
            message.starts_with("an argument holds a secret (not shown)"),
            "{message}"
        );
        for secret in [&ours, &theirs, &typo] {
            assert!(!message.contains(&secret[5..]), "{message}");
        }
    }
    // The admin key given as an argument is named as such, and not shown either.
    let message = usage_error(&["--admin-key", &ours, "list"]);
    assert!(
        message.starts_with("--admin-key: the admin key is never taken"),
        "{message}"
    );
    assert!(!message.contains(&ours[5..]));
    // Other words of the shape are not secrets.
    assert!(p(&["show", "key_0VbwYMJg3kQz8LxR2nT5vWcA"]).is_ok());
    assert!(p(&["create", "--name", &ours[..ours.len() - 1]]).is_ok());
}
