//! A number of seconds as a setting writes it (`0.5`, `30`): the one rule that the server's
//! settings and the store's share. The caller names the setting in its own error.

use std::time::Duration;

/// Whether zero is an acceptable number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zero {
    /// Zero is allowed (it usually means "never" or "no wait").
    Allowed,
    /// Only positive durations.
    Refused,
}

impl Zero {
    /// What a setting read with this rule should be, for an error message.
    pub fn expected(self) -> &'static str {
        match self {
            Zero::Allowed => "a number of seconds",
            Zero::Refused => "a positive number of seconds",
        }
    }
}

/// A number of seconds, fractions allowed; `None` for anything else, a negative or non-finite
/// number, or zero when `zero` refuses it.
pub fn parse_seconds(text: &str, zero: Zero) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (*s > 0.0 || (zero == Zero::Allowed && *s == 0.0)))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions_and_refuse_the_rest() {
        assert_eq!(
            parse_seconds("0.5", Zero::Refused),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_seconds(" 30 ", Zero::Refused),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_seconds("0", Zero::Allowed), Some(Duration::ZERO));
        for bad in ["0", "-1", "soon", "inf", "NaN", ""] {
            assert_eq!(parse_seconds(bad, Zero::Refused), None, "{bad}");
        }
        assert_eq!(parse_seconds("-1", Zero::Allowed), None);
        assert_eq!(Zero::Refused.expected(), "a positive number of seconds");
    }
}
