//! RFC 3339 / ISO 8601 timestamps as the keys file writes them, to and from Unix milliseconds.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::{Error, UnixMillis};

/// The first and last instants [`format_timestamp`] writes, in milliseconds:
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z (RFC 3339 has four-digit years).
const FIRST: UnixMillis = -62_167_219_200_000;
const LAST: UnixMillis = 253_402_300_799_999;

/// Parses `2026-11-25T01:27:14.316985Z`, `...+00:00`, a bare date `2025-12-31` (midnight UTC),
/// or a date-time with no offset (taken as UTC). A space may stand for the `T`. Instants outside
/// the years 0000 to 9999 (UTC) are refused, so every timestamp read can be written back.
pub fn parse_timestamp(value: &str) -> Result<UnixMillis, Error> {
    let err = || Error::Timestamp {
        value: value.to_string(),
    };
    let s = value.trim();
    let parsed = if s.len() == 10 {
        Date::parse(s, format_description!("[year]-[month]-[day]"))
            .map(|date| date.midnight().assume_utc())
    } else {
        let normalised;
        let s = if s.as_bytes().get(10) == Some(&b' ') {
            normalised = format!("{}T{}", &s[..10], &s[11..]);
            normalised.as_str()
        } else {
            s
        };
        OffsetDateTime::parse(s, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
            .or_else(|_| PrimitiveDateTime::parse(s, &Iso8601::DEFAULT).map(|t| t.assume_utc()))
    };
    parsed
        .map(to_millis)
        .ok()
        .filter(|t| (FIRST..=LAST).contains(t))
        .ok_or_else(err)
}

/// Unix milliseconds of `time`: the clock is read by the caller, so that core never reads one.
/// Times before 1970 are 0.
pub fn unix_millis(time: std::time::SystemTime) -> UnixMillis {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| {
        UnixMillis::try_from(d.as_millis()).unwrap_or(UnixMillis::MAX)
    })
}

/// Formats Unix milliseconds as RFC 3339 in UTC with microseconds, as the original service wrote
/// them: `2026-11-25T01:27:14.316000Z`. Instants outside the years 0000 to 9999, which no
/// parsed timestamp is, come out as the epoch.
pub fn format_timestamp(ms: UnixMillis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(&fmt).unwrap_or_default()
}

/// Whole milliseconds, rounded down (before 1970 too), so an expiry is never moved later.
fn to_millis(t: OffsetDateTime) -> UnixMillis {
    t.unix_timestamp_nanos().div_euclid(1_000_000) as UnixMillis
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z

    #[test]
    fn parses_every_form_the_original_wrote() {
        assert_eq!(parse_timestamp("2026-11-25T01:17:14.316985Z"), Ok(T));
        assert_eq!(parse_timestamp("2026-11-25T01:17:14.316985+00:00"), Ok(T));
        assert_eq!(parse_timestamp("2026-11-25T01:17:14.316985"), Ok(T));
        assert_eq!(parse_timestamp("2026-11-25 01:17:14.316985"), Ok(T));
        assert_eq!(parse_timestamp("2026-11-25T03:17:14.316+02:00"), Ok(T));
        assert_eq!(parse_timestamp("2026-11-25T01:17:14Z"), Ok(T - 316));
        assert_eq!(
            parse_timestamp("2026-11-25"),
            Ok(T - (3600 + 17 * 60 + 14) * 1000 - 316)
        );
        assert_eq!(parse_timestamp(" 1970-01-01 "), Ok(0));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-02-30",
            "1795569434",
            "2026-11-25T25:00:00Z",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(Error::Timestamp {
                    value: bad.to_string()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_timestamp(T), "2026-11-25T01:17:14.316000Z");
        assert_eq!(parse_timestamp(&format_timestamp(T)), Ok(T));
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
    }
}
