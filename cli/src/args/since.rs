//! `--unused-since 90d|TIME`: an instant given as how long ago, or as a time.

use heare_auth_core::{parse_timestamp, parse_ttl};

use super::usage;
use crate::cmd::Since;
use crate::CliError;

/// The instant `text`, the value of `flag` of `command`, names: a duration as `--ttl` takes it
/// (`90d`, `12h`, `2w`: that long before the command runs), or else an RFC 3339 time or date,
/// read in that order as the management API reads `unused_since`.
pub(super) fn since(command: &str, flag: &str, text: &str) -> Result<Since, CliError> {
    if let Ok(ms) = parse_ttl(text) {
        return Ok(Since::Ago(ms));
    }
    parse_timestamp(text).map(Since::At).map_err(|_| {
        usage(format!(
            "{command}: {flag}: expected a duration (90d, 12h, 2w) or an RFC 3339 time, got '{}'",
            text.escape_debug()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Since, String> {
        since("list", "--unused-since", text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_duration_or_a_time() {
        assert_eq!(read("90d"), Ok(Since::Ago(90 * 86_400_000)));
        assert_eq!(read("12h"), Ok(Since::Ago(12 * 3_600_000)));
        assert_eq!(read("2w"), Ok(Since::Ago(14 * 86_400_000)));
        assert_eq!(
            read("2026-12-06T09:30:00Z"),
            Ok(Since::At(1_796_549_400_000))
        );
        assert_eq!(read("2026-12-06"), Ok(Since::At(1_796_515_200_000)));
        assert_eq!(Since::Ago(1000).instant(5000), 4000);
        assert_eq!(Since::At(7).instant(5000), 7);
    }

    #[test]
    fn anything_else_is_named_with_the_flag() {
        for bad in ["", "0d", "90", "ninety days", "10y", "2026-13-01", "-1d"] {
            assert_eq!(
                read(bad),
                Err(format!(
                    "list: --unused-since: expected a duration (90d, 12h, 2w) or an RFC 3339 \
                     time, got '{bad}'"
                )),
                "{bad}"
            );
        }
    }
}
