//! Durations as a person writes them (`90d`, `60m`): a key's time to live and a rotation's
//! grace period, for the CLI's flags and the management API's fields alike.

/// The longest time to live or grace period: far enough for "never" in practice, and keeps
/// `now + ttl` a valid date.
pub const MAX_TTL_MS: u64 = 1000 * 365 * 86_400_000;

/// Parses a time to live such as `3600s`, `30m`, `12h`, `90d` or `2w` into milliseconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    match duration(text) {
        Some(Ok(0)) | None => Err(format!(
            "expected a positive number and a unit (s, m, h, d, w) like 90d, got '{text}'"
        )),
        Some(ms) => ms,
    }
}

/// Parses a grace period: a duration as for [`parse_ttl`], or `0` (also `0s`, `0m`, ...) for none.
pub fn parse_grace(text: &str) -> Result<u64, String> {
    match text {
        "0" => Ok(0),
        _ => duration(text).unwrap_or_else(|| {
            Err(format!(
                "expected 0 or a number and a unit (s, m, h, d, w) like 60m, got '{text}'"
            ))
        }),
    }
}

/// Digits and a unit in milliseconds; `None` when the text is not digits and a unit.
fn duration(text: &str) -> Option<Result<u64, String>> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)?;
    let (number, unit) = text.split_at(split);
    let unit_ms: u64 = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    let too_long = || format!("expected at most 1000 years, got '{text}'");
    // All digits, so a parse failure can only be overflow.
    let ms = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .filter(|&ms| ms <= MAX_TTL_MS)
        .ok_or_else(too_long);
    Some(ms)
}
