//! Standard output and what a failure to write it means: a reader that stopped reading
//! (`heare-auth list | head`) ends the output quietly, unless it held the only copy of a secret.

use std::io::{BufWriter, StdoutLock, Write};

use crate::CliError;

/// Writes `text` to stdout.
pub fn emit(text: &str) -> Result<(), CliError> {
    write_stdout(text).or_else(unwritten)
}

/// Writes `text` and a new line to stdout.
pub fn emit_line(text: &str) -> Result<(), CliError> {
    emit(&format!("{text}\n"))
}

/// Writes output holding the only copy of a new secret. Unlike [`emit`], a reader that has
/// gone is an error: the secret is lost with it, and `remedy` says what to do instead.
pub fn emit_secret(text: &str, remedy: &str) -> Result<(), CliError> {
    write_stdout(text).map_err(|e| CliError::SecretUnwritten {
        reason: e.to_string(),
        remedy: remedy.to_string(),
    })
}

/// Why streamed output stopped: it could not be written, or what it was writing failed.
#[derive(Debug)]
pub enum Stopped {
    /// Standard output could not be written.
    Write(std::io::Error),
    /// What was being written could not be read.
    Failed(CliError),
}

impl From<std::io::Error> for Stopped {
    fn from(e: std::io::Error) -> Stopped {
        Stopped::Write(e)
    }
}

impl From<CliError> for Stopped {
    fn from(e: CliError) -> Stopped {
        Stopped::Failed(e)
    }
}

/// Output written piece by piece by `write` through one buffer, so a long listing is never
/// held whole; what is buffered when a piece fails is still written.
pub fn stream(
    write: impl FnOnce(&mut BufWriter<StdoutLock<'static>>) -> Result<(), Stopped>,
) -> Result<(), CliError> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| Ok(out.flush()?)) {
        Err(Stopped::Write(e)) => unwritten(e),
        Err(Stopped::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A failure to write stdout, as the CLI reports it: a reader that stopped reading ends the
/// output without an error; anything else is one.
fn unwritten(e: std::io::Error) -> Result<(), CliError> {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(CliError::Output(e.to_string())),
    }
}
