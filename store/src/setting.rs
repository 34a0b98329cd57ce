//! Reading settings from their text: the one parser of "a number of seconds" that the server
//! and the store share.

use std::time::Duration;

use crate::InvalidSetting;

/// Whether zero is an acceptable number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zero {
    /// Zero is allowed (it usually means "never" or "no wait").
    Allowed,
    /// Only positive durations.
    Refused,
}

/// A number of seconds, fractions allowed (`0.5`, `30`).
pub fn seconds(name: &str, text: &str, zero: Zero) -> Result<Duration, InvalidSetting> {
    let expected = match zero {
        Zero::Allowed => "a number of seconds",
        Zero::Refused => "a positive number of seconds",
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (*s > 0.0 || (zero == Zero::Allowed && *s == 0.0)))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| InvalidSetting::new(name, expected, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_the_rest() {
        assert_eq!(
            seconds("T", "0.5", Zero::Refused),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(seconds("T", "0", Zero::Allowed), Ok(Duration::ZERO));
        for bad in ["0", "-1", "soon", "inf", "NaN", ""] {
            assert_eq!(
                seconds("T", bad, Zero::Refused),
                Err(InvalidSetting::new(
                    "T",
                    "a positive number of seconds",
                    bad
                )),
                "{bad}"
            );
        }
        assert_eq!(
            seconds("T", "-1", Zero::Allowed).unwrap_err().to_string(),
            "T: expected a number of seconds, got '-1'"
        );
    }
}
