//! Credits (quotas): a balance that each valid verification spends, refilled at the start of
//! each UTC day or month, with time passed in.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::request::json_string;
use crate::timestamp::{civil_from_days, days_to_month, DAY_MS};
use crate::{format_timestamp, parse_timestamp, Error, UnixMillis};

/// The most credits a key may hold or be refilled with.
pub const MAX_CREDITS: u64 = 1_000_000_000_000;

/// The most credits one request may spend (`cost` in a `/verify` body).
pub const MAX_COST: u64 = 1_000_000;

/// A key's credits: `amount` from `since`, set back to the refill's amount at the start of
/// each of its periods (UTC) when it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Credits {
    /// The balance when the credits were set.
    pub amount: u64,
    /// What the balance is set back to, and when.
    pub refill: Option<Refill>,
    /// When the credits were set (Unix ms): spending is counted from here, so setting them
    /// again starts a new count.
    pub since: UnixMillis,
}

/// A refill: the balance becomes `amount` at the start of every period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refill {
    /// The balance each period starts with.
    pub amount: u64,
    /// How often.
    pub every: Interval,
}

/// A refill's period, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interval {
    /// From midnight UTC.
    Day,
    /// From the first of the month, midnight UTC.
    Month,
}

/// The period a balance belongs to: spending in one never counts against another.
pub type Period = i64;

impl Interval {
    /// `day` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Month => "month",
        }
    }

    /// The period `now` is in: days or months since the epoch.
    fn period(self, now: UnixMillis) -> Period {
        let days = now.div_euclid(DAY_MS);
        match self {
            Interval::Day => days,
            Interval::Month => {
                let (year, month, _) = civil_from_days(days);
                (year - 1970) * 12 + month - 1
            }
        }
    }

    /// When `period` ends (Unix ms).
    fn end(self, period: Period) -> UnixMillis {
        let next = period.saturating_add(1);
        let days = match self {
            Interval::Day => next,
            Interval::Month => {
                // Far past any year a timestamp has; bounded so that the days cannot overflow.
                let next = next.clamp(-(1 << 40), 1 << 40);
                days_to_month(1970 + next.div_euclid(12), next.rem_euclid(12) + 1)
            }
        };
        days.saturating_mul(DAY_MS)
    }
}

impl Refill {
    /// Reads `1000/day` or `50000/month`.
    pub fn parse(text: &str) -> Result<Refill, Error> {
        let expected = || Error::CreditsFormat {
            text: text.to_string(),
        };
        let (amount, every) = text.split_once('/').ok_or_else(expected)?;
        let every = match every.trim() {
            "day" | "d" | "daily" => Interval::Day,
            "month" | "mo" | "monthly" => Interval::Month,
            _ => return Err(expected()),
        };
        Ok(Refill {
            amount: parse_amount(amount.trim()).ok_or_else(expected)?,
            every,
        })
    }
}

/// `1000/day`: how [`Refill::parse`] reads it.
impl fmt::Display for Refill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.amount, self.every.as_str())
    }
}

/// A balance of 0 to [`MAX_CREDITS`].
pub fn parse_amount(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|&n| n <= MAX_CREDITS)
}

impl Credits {
    /// The period `now` is in (0 for credits that are never refilled).
    pub fn period(&self, now: UnixMillis) -> Period {
        match self.refill {
            None => 0,
            Some(refill) => refill.every.period(now),
        }
    }

    /// What the balance of `period` starts at: `amount` in the period the credits were set,
    /// the refill's amount in every later one.
    pub fn allowance(&self, period: Period) -> u64 {
        match self.refill {
            Some(refill) if period > refill.every.period(self.since) => refill.amount,
            _ => self.amount,
        }
    }

    /// When `period` ends and the balance is refilled; `None` when it never is.
    pub fn period_end(&self, period: Period) -> Option<UnixMillis> {
        self.refill.map(|refill| refill.every.end(period))
    }

    /// A name for the count of `period`'s spending, the same wherever it is computed: the key's
    /// id, when the credits were set, and the period.
    pub fn pool(&self, key_id: &str, period: Period) -> String {
        format!("{key_id}:{}:{period}", self.since)
    }
}

/// Credits as a keys file writes them; read back by [`Credits::from_stored`].
#[derive(serde::Serialize)]
struct Stored {
    amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refill: Option<StoredRefill>,
    since: String,
}

#[derive(serde::Serialize)]
struct StoredRefill {
    amount: u64,
    every: &'static str,
}

/// The members of a JSON object, each name with its value's JSON text, in order. Read by hand
/// rather than by a derived `Deserialize`: the WebAssembly verifier reads credits too, and one
/// small visitor for both objects costs a fraction of two derived ones.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// The values of the object `json` named in `names`, in that order, `null` as absent; `None`
/// when `json` is no object, or has a member not named or named twice.
fn fields<'a, const N: usize>(json: &'a str, names: [&str; N]) -> Option<[Option<&'a str>; N]> {
    let Members(members) = serde_json::from_str(json).ok()?;
    let mut values = [None; N];
    let mut seen = [false; N];
    for (name, value) in members {
        let i = names.iter().position(|n| *n == name)?;
        if std::mem::replace(&mut seen[i], true) {
            return None;
        }
        values[i] = Some(value.get()).filter(|v| *v != "null");
    }
    Some(values)
}

impl Credits {
    /// Reads a keys file's `credits` value (its JSON text), or says why it is not one, as the
    /// `reason` of the loader's [`Error::InvalidField`].
    pub(crate) fn from_stored(json: &str) -> Result<Credits, String> {
        let shape = || {
            r#"is not {"amount": N, "refill": {"amount": N, "every": "day"|"month"}, "since": TIME}"#
                .to_string()
        };
        // A JSON integer's text is its digits, which `parse` reads; floats and signs it refuses.
        let whole = |text: Option<&str>| text.and_then(|t| t.parse::<u64>().ok()).ok_or_else(shape);
        let too_many = |n: u64| format!("is not valid: at most {MAX_CREDITS} credits, got {n}");
        let [amount, refill, since] =
            fields(json, ["amount", "refill", "since"]).ok_or_else(shape)?;
        let amount = whole(amount)?;
        if amount > MAX_CREDITS {
            return Err(too_many(amount));
        }
        let refill = match refill {
            None => None,
            Some(json) => {
                let [amount, every] = fields(json, ["amount", "every"]).ok_or_else(shape)?;
                let amount = whole(amount)?;
                if amount > MAX_CREDITS {
                    return Err(too_many(amount));
                }
                let every = match every.and_then(json_string).as_deref() {
                    Some("day") => Interval::Day,
                    Some("month") => Interval::Month,
                    _ => return Err(shape()),
                };
                Some(Refill { amount, every })
            }
        };
        let since = match since {
            None => 0,
            Some(json) => {
                let text = json_string(json).ok_or_else(shape)?;
                parse_timestamp(&text).map_err(|e| format!("is not valid: {e}"))?
            }
        };
        Ok(Credits {
            amount,
            refill,
            since,
        })
    }

    /// The credits as a keys file stores them; [`Credits::from_stored`] reads them back.
    pub(crate) fn to_stored(self) -> impl serde::Serialize {
        Stored {
            amount: self.amount,
            refill: self.refill.map(|r| StoredRefill {
                amount: r.amount,
                every: r.every.as_str(),
            }),
            since: format_timestamp(self.since),
        }
    }
}

/// `1000`, or `1000 (refilled to 500/day)`.
impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.amount)?;
        if let Some(refill) = self.refill {
            write!(f, " (refilled to {refill})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_6: UnixMillis = 1_796_515_200_000; // 2026-12-06T00:00:00Z

    #[test]
    fn refills_read_and_print() {
        let r = Refill::parse("1000/day").unwrap();
        assert_eq!(r.to_string(), "1000/day");
        assert_eq!(Refill::parse("5/month").unwrap().every, Interval::Month);
        for bad in [
            "",
            "1000",
            "/day",
            "x/day",
            "1000/week",
            "-1/day",
            "1000000000001/day",
        ] {
            assert!(Refill::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Refill::parse("10/week").unwrap_err().to_string(),
            "expected AMOUNT/day or AMOUNT/month like 1000/day, got '10/week'"
        );
    }

    #[test]
    fn periods_start_at_midnight_utc_and_on_the_first_of_the_month() {
        let credits = |every| Credits {
            amount: 10,
            refill: Some(Refill { amount: 5, every }),
            since: DEC_6 + 3_600_000,
        };
        let daily = credits(Interval::Day);
        let today = daily.period(DEC_6 + 3_600_000);
        assert_eq!(daily.period(DEC_6), today);
        assert_eq!(daily.period(DEC_6 + DAY_MS - 1), today);
        assert_eq!(daily.period(DEC_6 + DAY_MS), today + 1);
        assert_eq!(daily.period_end(today), Some(DEC_6 + DAY_MS));
        // The day the credits were set has their amount; later ones the refill's.
        assert_eq!(daily.allowance(today), 10);
        assert_eq!(daily.allowance(today + 1), 5);

        let monthly = credits(Interval::Month);
        let december = monthly.period(DEC_6);
        assert_eq!(december, (2026 - 1970) * 12 + 11);
        let jan_1 = 1_798_761_600_000; // 2027-01-01T00:00:00Z
        assert_eq!(monthly.period_end(december), Some(jan_1));
        assert_eq!(monthly.period(jan_1 - 1), december);
        assert_eq!(monthly.period(jan_1), december + 1);
        assert_eq!(monthly.allowance(december), 10);
        assert_eq!(monthly.allowance(december + 1), 5);

        let once = Credits {
            amount: 7,
            refill: None,
            since: DEC_6,
        };
        assert_eq!(once.period(DEC_6 + 400 * DAY_MS), 0);
        assert_eq!(once.allowance(0), 7);
        assert_eq!(once.period_end(0), None);
        assert_eq!(once.pool("key_a", 0), format!("key_a:{DEC_6}:0"));
        // No period is too far out to end, nor does its end overflow.
        for every in [Interval::Day, Interval::Month] {
            for period in [Period::MIN, -1, Period::MAX] {
                let _ = credits(every).period_end(period);
            }
        }
        assert_eq!(monthly.period_end(Period::MAX), Some(UnixMillis::MAX));
    }

    #[test]
    fn the_stored_form_reads_back_as_written() {
        let credits = Credits {
            amount: 1000,
            refill: Some(Refill::parse("100/month").unwrap()),
            since: DEC_6,
        };
        let json = serde_json::to_string(&credits.to_stored()).unwrap();
        assert_eq!(
            json,
            r#"{"amount":1000,"refill":{"amount":100,"every":"month"},"since":"2026-12-06T00:00:00.000000Z"}"#
        );
        assert_eq!(Credits::from_stored(&json), Ok(credits));
        assert_eq!(
            Credits::from_stored(r#"{"amount": 3}"#),
            Ok(Credits {
                amount: 3,
                refill: None,
                since: 0
            })
        );
        for bad in [
            r#"{"amount": -1}"#,
            r#"{"amount": 1, "refill": {"amount": 1, "every": "week"}}"#,
            r#"{"amount": 1, "extra": 1}"#,
            r#"{"amount": 1, "since": "yesterday"}"#,
            r#"{"amount": 1000000000001}"#,
            r#"1000"#,
        ] {
            assert!(Credits::from_stored(bad).is_err(), "{bad}");
        }
    }
}
