//! A key's usage as shown: when it was last used, its valid and refused verifications today,
//! over the last 30 days and per day (UTC), its credits left, and whether it counts as unused,
//! as the API and the CLI give them.

use crate::{format_timestamp, parse_timestamp, push_json_string, Credits, UnixMillis};

/// Verifications of one key on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayCount {
    /// Days since the epoch (UTC).
    pub day: i64,
    /// Valid verifications.
    pub valid: u64,
    /// Refused ones.
    pub refused: u64,
}

const DAY_MS: UnixMillis = 86_400_000;

/// The day (UTC) of `at`, in days since the epoch.
pub fn day_of(at: UnixMillis) -> i64 {
    at.div_euclid(DAY_MS)
}

/// `2026-12-06`: the date of a day since the epoch.
pub fn date_of(day: i64) -> String {
    let mut stamp = format_timestamp(day.saturating_mul(DAY_MS));
    stamp.truncate(10);
    stamp
}

/// Valid and refused verifications in `days` over the `span` days up to and including the day
/// of `now`.
pub fn totals(days: &[DayCount], now: UnixMillis, span: i64) -> (u64, u64) {
    let today = day_of(now);
    days.iter()
        .filter(|d| d.day > today - span && d.day <= today)
        .fold((0, 0), |(v, r), d| (v + d.valid, r + d.refused))
}

fn push_totals(out: &mut String, (valid, refused): (u64, u64)) {
    out.push_str(&format!("{{\"valid\":{valid},\"refused\":{refused}}}"));
}

fn push_time(out: &mut String, at: Option<UnixMillis>) {
    match at {
        Some(t) => push_json_string(out, &format_timestamp(t)),
        None => out.push_str("null"),
    }
}

/// `{"today": {"valid", "refused"}, "last_30_days": {...}}`: the `usage` of a shown key.
pub fn usage_summary_json(days: &[DayCount], now: UnixMillis) -> String {
    let mut out = String::from("{\"today\":");
    push_totals(&mut out, totals(days, now, 1));
    out.push_str(",\"last_30_days\":");
    push_totals(&mut out, totals(days, now, 30));
    out.push('}');
    out
}

/// What is left of a key's credits, and when they are next refilled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    /// Credits left.
    pub remaining: u64,
    /// When the balance is set back (Unix ms); `None`: never.
    pub refills_at: Option<UnixMillis>,
}

impl Balance {
    /// The balance of `credits` at `now`, `spent` being what the count of the current period
    /// ([`Credits::pool`]) holds.
    pub fn of(credits: &Credits, now: UnixMillis, spent: u64) -> Balance {
        let period = credits.period(now);
        Balance {
            remaining: credits.allowance(period).saturating_sub(spent),
            refills_at: credits.period_end(period),
        }
    }

    /// `{"remaining": N, "refills_at": "2026-12-07T..." or null}`.
    pub fn to_json(self) -> String {
        let mut out = format!("{{\"remaining\":{},\"refills_at\":", self.remaining);
        push_time(&mut out, self.refills_at);
        out.push('}');
        out
    }
}

/// Whether a key created at `created_at` (unreadable or absent: long ago) and last used at
/// `last_used` counts as unused since `since`: created before then, and not used since.
pub fn is_unused(
    created_at: Option<&str>,
    last_used: Option<UnixMillis>,
    since: UnixMillis,
) -> bool {
    let created = created_at.and_then(|t| parse_timestamp(t).ok());
    created.is_none_or(|c| c < since) && last_used.is_none_or(|t| t < since)
}

/// The answer of `GET /keys/{id}/usage`: `{"key_id", "last_used_at", "counted", "today",
/// "last_30_days", "days": [{"date", "valid", "refused"}] (newest first, days with
/// verifications only), "credits": {"remaining", "refills_at"} or null}`. `counted` says
/// whose verifications these are: `all_replicas` or `this_replica`.
pub fn usage_json(
    key_id: &str,
    last_used: Option<UnixMillis>,
    days: &[DayCount],
    now: UnixMillis,
    counted: &str,
    credits: Option<Balance>,
) -> String {
    let mut out = String::from("{\"key_id\":");
    push_json_string(&mut out, key_id);
    out.push_str(",\"last_used_at\":");
    push_time(&mut out, last_used);
    out.push_str(",\"counted\":");
    push_json_string(&mut out, counted);
    out.push_str(",\"today\":");
    push_totals(&mut out, totals(days, now, 1));
    out.push_str(",\"last_30_days\":");
    push_totals(&mut out, totals(days, now, 30));
    out.push_str(",\"days\":[");
    let mut shown: Vec<&DayCount> = days.iter().filter(|d| d.valid + d.refused > 0).collect();
    shown.sort_by_key(|d| std::cmp::Reverse(d.day));
    for (i, d) in shown.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"date\":");
        push_json_string(&mut out, &date_of(d.day));
        out.push_str(&format!(
            ",\"valid\":{},\"refused\":{}}}",
            d.valid, d.refused
        ));
    }
    out.push_str("],\"credits\":");
    match credits {
        None => out.push_str("null"),
        Some(balance) => out.push_str(&balance.to_json()),
    }
    out.push('}');
    out
}

/// `json`, a JSON object's text, with `name` set to `value` (JSON text) last.
pub fn with_member(json: &str, name: &str, value: &str) -> String {
    let body = json.trim_end().strip_suffix('}').unwrap_or(json);
    let mut out = String::with_capacity(json.len() + name.len() + value.len() + 4);
    out.push_str(body);
    if !body.trim_end().ends_with('{') {
        out.push(',');
    }
    push_json_string(&mut out, name);
    out.push(':');
    out.push_str(value);
    out.push('}');
    out
}

/// `"2026-12-06T..."` or `null`: a last use as JSON.
pub fn time_json(at: Option<UnixMillis>) -> String {
    let mut out = String::new();
    push_time(&mut out, at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_6: UnixMillis = 1_796_515_200_000;

    #[test]
    fn the_answer_counts_today_and_thirty_days_and_lists_days_newest_first() {
        let today = day_of(DEC_6);
        let days = [
            DayCount {
                day: today - 40,
                valid: 100,
                refused: 0,
            },
            DayCount {
                day: today - 29,
                valid: 3,
                refused: 1,
            },
            DayCount {
                day: today,
                valid: 2,
                refused: 5,
            },
        ];
        let json = usage_json(
            "key_a",
            Some(DEC_6 + 1),
            &days,
            DEC_6 + 3_600_000,
            "all_replicas",
            Some(Balance {
                remaining: 7,
                refills_at: None,
            }),
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["last_used_at"], "2026-12-06T00:00:00.001000Z");
        assert_eq!(v["today"], serde_json::json!({"valid": 2, "refused": 5}));
        assert_eq!(
            v["last_30_days"],
            serde_json::json!({"valid": 5, "refused": 6})
        );
        assert_eq!(v["days"][0]["date"], "2026-12-06");
        assert_eq!(v["days"][2]["date"], "2026-10-27");
        assert_eq!(
            v["credits"],
            serde_json::json!({"remaining": 7, "refills_at": null})
        );
        assert_eq!(
            usage_summary_json(&days, DEC_6),
            r#"{"today":{"valid":2,"refused":5},"last_30_days":{"valid":5,"refused":6}}"#
        );
    }

    #[test]
    fn a_balance_is_the_periods_allowance_less_what_was_spent() {
        let daily = Credits {
            amount: 50,
            refill: crate::Refill::parse("1000/day").ok(),
            since: DEC_6,
        };
        // The day they were set: the amount; the next days: the refill.
        assert_eq!(
            Balance::of(&daily, DEC_6 + 1, 20),
            Balance {
                remaining: 30,
                refills_at: Some(DEC_6 + DAY_MS)
            }
        );
        assert_eq!(
            Balance::of(&daily, DEC_6 + DAY_MS, 2000).remaining,
            0,
            "never below 0"
        );
        assert_eq!(Balance::of(&daily, DEC_6 + DAY_MS, 1).remaining, 999);
        let once = Credits {
            refill: None,
            ..daily
        };
        let balance = Balance::of(&once, DEC_6 + 5 * DAY_MS, 7);
        assert_eq!(
            balance,
            Balance {
                remaining: 43,
                refills_at: None
            }
        );
        assert_eq!(balance.to_json(), r#"{"remaining":43,"refills_at":null}"#);
        assert_eq!(
            Balance::of(&daily, DEC_6, 0).to_json(),
            r#"{"remaining":50,"refills_at":"2026-12-07T00:00:00.000000Z"}"#
        );
    }

    #[test]
    fn unused_keys_were_made_before_the_cutoff_and_not_used_since() {
        let made = Some("2026-12-06T00:00:00Z");
        assert!(is_unused(made, None, DEC_6 + 1));
        assert!(is_unused(made, Some(DEC_6), DEC_6 + 1));
        // Made at the cutoff or later, or used then or later: not unused.
        assert!(!is_unused(made, None, DEC_6));
        assert!(!is_unused(made, Some(DEC_6 + 1), DEC_6 + 1));
        // Without a readable creation time, a key is as old as can be.
        assert!(is_unused(None, None, 0));
        assert!(is_unused(Some("soon"), Some(-1), 0));
    }

    #[test]
    fn a_member_is_added_last() {
        assert_eq!(
            with_member(r#"{"a":1}"#, "b", "null"),
            r#"{"a":1,"b":null}"#
        );
        assert_eq!(with_member("{}", "b", "2"), r#"{"b":2}"#);
    }
}
