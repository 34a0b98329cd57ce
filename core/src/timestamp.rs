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
/// parsed timestamp is, come out as the epoch. Written by hand rather than with `time`'s
/// formatting, which would take 3 KB more of the WebAssembly package's budget; the tests hold it
/// to `time`'s output.
pub fn format_timestamp(ms: UnixMillis) -> String {
    let ms = if (FIRST..=LAST).contains(&ms) { ms } else { 0 };
    let (days, of_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (of_day / 3_600_000, of_day / 60_000 % 60);
    let (second, milli) = (of_day / 1000 % 60, of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}000Z")
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: UnixMillis = 86_400_000;

/// The proleptic Gregorian date (year, month 1 to 12, day 1 to 31) `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The days from 1970-01-01 to the first of `month` (1 to 12) of `year`, proleptic Gregorian
/// (Howard Hinnant's `days_from_civil`, for the first of a month).
pub(crate) fn days_to_month(year: i64, month: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        assert_eq!(format_timestamp(FIRST), "0000-01-01T00:00:00.000000Z");
        assert_eq!(format_timestamp(LAST), "9999-12-31T23:59:59.999000Z");
        for outside in [FIRST - 1, LAST + 1, UnixMillis::MIN, UnixMillis::MAX] {
            assert_eq!(format_timestamp(outside), "1970-01-01T00:00:00.000000Z");
        }
    }

    /// What `time` writes for `ms`, which the hand-written [`format_timestamp`] must match.
    fn with_time(ms: UnixMillis) -> String {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        t.format(&fmt).unwrap()
    }

    #[test]
    fn formats_as_time_does_across_the_years() {
        // Every day boundary of the leap years around 2000 and 1900, then a stride through the
        // whole range that lands on every time of day and every day of the month.
        let mut checked = 0;
        for start in [-2_209_075_200_000, 946_684_800_000 - 2 * 366 * DAY_MS] {
            for day in 0..5 * 366 {
                for offset in [0, 1, DAY_MS - 1] {
                    let ms = start + day * DAY_MS + offset;
                    assert_eq!(format_timestamp(ms), with_time(ms), "{ms}");
                    checked += 1;
                }
            }
        }
        let mut ms = FIRST;
        while ms <= LAST {
            assert_eq!(format_timestamp(ms), with_time(ms), "{ms}");
            ms += 3_999_999_937;
            checked += 1;
        }
        assert!(checked > 60_000, "{checked}");
    }

    #[test]
    fn months_start_where_the_calendar_says() {
        for (year, month, days) in [
            (1970, 1, 0),
            (1970, 3, 59),
            (2000, 3, 11_017),
            (1969, 12, -31),
        ] {
            assert_eq!(days_to_month(year, month), days, "{year}-{month}");
            assert_eq!(civil_from_days(days), (year, month, 1));
        }
        for days in (-800_000..3_000_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_to_month(year, month) + day - 1, days);
        }
    }
}
