//! A key's usage as `show` and `list` print it: when it was last used, its verifications today
//! and over the last 30 days, and its credits left. Printed only when it is known for all
//! replicas, so that the store and the server print the same.

use heare_auth_core::{
    day_of, format_timestamp, time_json, totals, usage_summary_json, with_member, Balance,
    DayCount, UnixMillis,
};

/// The days `show` and `list` count: today (UTC) and the 29 before.
pub const DAYS: i64 = 30;

/// What the replicas together counted of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// When the key was last used (Unix ms); `None`: never, as far as the counts know.
    pub last_used: Option<UnixMillis>,
    /// Its verifications per day (UTC); days without any may be left out.
    pub days: Vec<DayCount>,
    /// Its credits left, for a key with credits.
    pub credits: Option<Balance>,
}

/// The days to read for a command run at `now`, oldest first.
pub fn days_to_read(now: UnixMillis) -> Vec<i64> {
    let today = day_of(now);
    (today - DAYS + 1..=today).collect()
}

/// `2026-12-06T10:00:00.000000Z`, or `never`.
pub fn last_used_text(usage: &KeyUsage) -> String {
    usage
        .last_used
        .map_or_else(|| "never".into(), format_timestamp)
}

/// `today 12 valid, 1 refused; last 30 days 340 valid, 7 refused`, counted at `now`.
pub fn counts_text(usage: &KeyUsage, now: UnixMillis) -> String {
    let (today_valid, today_refused) = totals(&usage.days, now, 1);
    let (valid, refused) = totals(&usage.days, now, DAYS);
    format!(
        "today {today_valid} valid, {today_refused} refused; \
         last {DAYS} days {valid} valid, {refused} refused"
    )
}

/// `940, refilled at 2026-12-07T00:00:00.000000Z`, or `940, never refilled`.
pub fn credits_left_text(balance: Balance) -> String {
    match balance.refills_at {
        Some(at) => format!(
            "{}, refilled at {}",
            balance.remaining,
            format_timestamp(at)
        ),
        None => format!("{}, never refilled", balance.remaining),
    }
}

/// `json`, a key as `show --json` prints it, with `last_used_at` (a time or `null`), `usage`
/// (`{"today": {"valid", "refused"}, "last_30_days": {...}}` at `now`) and, for a key with
/// credits, `credits_left` (`{"remaining", "refills_at"}`).
pub fn with_usage(json: &str, usage: &KeyUsage, now: UnixMillis) -> String {
    let json = with_member(json, "last_used_at", &time_json(usage.last_used));
    let json = with_member(&json, "usage", &usage_summary_json(&usage.days, now));
    match usage.credits {
        Some(balance) => with_member(&json, "credits_left", &balance.to_json()),
        None => json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06T10:00:00Z.
    const NOW: UnixMillis = 1_796_551_200_000;

    fn used() -> KeyUsage {
        let today = day_of(NOW);
        let day = |ago: i64, valid, refused| DayCount {
            day: today - ago,
            valid,
            refused,
        };
        KeyUsage {
            last_used: Some(NOW - 60_000),
            days: vec![
                day(30, 1000, 1000),
                day(29, 300, 6),
                day(1, 28, 0),
                day(0, 12, 1),
            ],
            credits: Some(Balance {
                remaining: 940,
                refills_at: Some(NOW + 14 * 3_600_000),
            }),
        }
    }

    #[test]
    fn thirty_days_up_to_today() {
        let days = days_to_read(NOW);
        assert_eq!(days.len(), 30);
        assert_eq!(days.last(), Some(&day_of(NOW)));
        assert_eq!(days[0], day_of(NOW) - 29);
    }

    #[test]
    fn text_says_when_how_much_and_what_is_left() {
        let usage = used();
        assert_eq!(last_used_text(&usage), "2026-12-06T09:59:00.000000Z");
        assert_eq!(
            counts_text(&usage, NOW),
            "today 12 valid, 1 refused; last 30 days 340 valid, 7 refused"
        );
        assert_eq!(
            credits_left_text(usage.credits.unwrap()),
            "940, refilled at 2026-12-07T00:00:00.000000Z"
        );
        let never = KeyUsage::default();
        assert_eq!(last_used_text(&never), "never");
        assert_eq!(
            counts_text(&never, NOW),
            "today 0 valid, 0 refused; last 30 days 0 valid, 0 refused"
        );
        let once = Balance {
            remaining: 0,
            refills_at: None,
        };
        assert_eq!(credits_left_text(once), "0, never refilled");
    }

    #[test]
    fn json_gains_last_used_usage_and_credits_left_last() {
        assert_eq!(
            with_usage(r#"{"id":"key_a"}"#, &used(), NOW),
            r#"{"id":"key_a","last_used_at":"2026-12-06T09:59:00.000000Z","usage":{"today":{"valid":12,"refused":1},"last_30_days":{"valid":340,"refused":7}},"credits_left":{"remaining":940,"refills_at":"2026-12-07T00:00:00.000000Z"}}"#
        );
        assert_eq!(
            with_usage(r#"{"id":"key_a"}"#, &KeyUsage::default(), NOW),
            r#"{"id":"key_a","last_used_at":null,"usage":{"today":{"valid":0,"refused":0},"last_30_days":{"valid":0,"refused":0}}}"#
        );
    }
}
