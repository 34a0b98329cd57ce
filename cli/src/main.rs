//! `heare-auth`, the admin CLI: parse, run one command on the store or through a server, and
//! exit 0, 1 or 2.

use std::process::ExitCode;

use heare_auth::context::Context;
use heare_auth::remote::client::Client;
use heare_auth::remote::target::Target;
use heare_auth::{args, remote, run, triage, CliError, Cmd, Invocation};

fn main() -> ExitCode {
    let inv = match args::parse(std::env::args_os().skip(1).collect()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("error: {e}\nRun 'heare-auth --help' for usage.");
            return ExitCode::from(e.exit_code());
        }
    };
    match target(inv, &Context::of_process()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the command where it runs: on the store, or through a server.
fn target(inv: Invocation, cx: &Context) -> Result<ExitCode, CliError> {
    match cx.target(&inv)? {
        Target::Store => dispatch(inv.cmd, cx),
        Target::Server(server) => remote::run::dispatch(inv.cmd, &Client::of(server)?, cx.now),
    }
}

/// Runs the command.
fn dispatch(cmd: Cmd, cx: &Context) -> Result<ExitCode, CliError> {
    match cmd {
        Cmd::Help(topic) => run::help(topic),
        Cmd::Version => run::version(),
        Cmd::Create(a) => run::create(cx, &a),
        Cmd::List {
            detailed,
            json,
            unused_since,
        } => run::list(cx, detailed, json, unused_since),
        Cmd::Show { id, json } => run::show(cx, &id, json),
        Cmd::Disable(a) => run::toggle(cx, &a, true),
        Cmd::Enable(a) => run::toggle(cx, &a, false),
        Cmd::Rotate(a) => run::rotate(cx, &a),
        Cmd::SetRateLimit(a) => run::set_rate_limit(cx, &a),
        Cmd::Update(a) => run::update(cx, &a),
        Cmd::Delete {
            id,
            yes,
            no_refresh,
        } => run::delete(cx, &id, yes, no_refresh),
        Cmd::Refresh { url } => run::refresh(cx, url.as_deref()),
        Cmd::Doctor { json } => run::doctor(cx, json),
        Cmd::Check { file, json } => run::check(cx, file, json),
        Cmd::Migrate { yes, no_refresh } => run::migrate(cx, yes, no_refresh),
        Cmd::Compact { no_refresh } => run::compact(cx, no_refresh),
        Cmd::Export { output } => run::export(cx, output),
        Cmd::Import {
            file,
            format,
            yes,
            no_refresh,
        } => run::import(cx, &file, format, yes, no_refresh),
        Cmd::Identify { json } => triage::identify(cx, json),
        Cmd::Scan(a) => triage::scan(cx, &a),
    }
}
