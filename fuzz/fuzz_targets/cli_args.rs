//! Fuzzes the CLI's argument parser. Input: arguments apart by NUL (any bytes: an argument need
//! not be UTF-8). Parsing never panics and gives the same answer twice; a refusal is a usage
//! error whose message names what it refuses: an argument given, or the flag or word missing.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use heare_auth::args::parse;
use heare_auth::CliError;
use heare_auth_fuzz::SEP;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = match data {
        [] => Vec::new(),
        _ => data
            .split(|&b| b == SEP)
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect(),
    };
    let first = parse(args.clone());
    assert_eq!(first, parse(args.clone()), "parsed twice, answered twice");
    let Err(e) = first else {
        return;
    };
    let CliError::Usage(message) = &e else {
        panic!("a command line refused with {e:?}, not a usage error");
    };
    assert!(
        names_what_is_wrong(message, &args),
        "{message:?} for {args:?}"
    );
});

/// Whether a usage error names what is wrong: an argument given (quoted when empty, or a piece
/// of one, between `=` and `,`), or says what is missing (or that what was given, perhaps a
/// secret, is not shown).
fn names_what_is_wrong(message: &str, args: &[OsString]) -> bool {
    let given = args.iter().map(|a| a.to_string_lossy()).any(|arg| {
        let pieces = arg.split(['=', ',']).filter(|p| !p.is_empty());
        (!arg.is_empty() && message.contains(&*arg))
            || message.contains(&format!("'{arg}'"))
            || pieces.into_iter().any(|p| message.contains(p))
    });
    let missing = [
        "missing",
        "needs a value",
        "must not be empty",
        "not both",
        "given more than once",
        // What may be a secret is refused without being repeated.
        "not shown",
    ];
    given || missing.iter().any(|m| message.contains(m))
}
