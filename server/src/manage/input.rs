//! The bodies of the management API's writes: JSON objects whose fields are read one by one,
//! each checked as the CLI checks its flags, so that an error names the field at fault.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use heare_auth_core::{
    check_metadata, check_name, check_scope, compact_json, format_timestamp, parse_amount,
    parse_grace, parse_timestamp, parse_ttl, Changes, Credits, RateLimit, Refill, UnixMillis,
    MAX_CREDITS,
};

use super::problem::Problem;

/// A new key, as `POST /keys` describes it.
#[derive(Debug)]
pub struct NewKey {
    pub name: String,
    pub metadata: Option<Box<RawValue>>,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub credits: Option<Credits>,
}

/// The grace period of a rotation when none is given: as `heare-auth rotate`'s.
pub const DEFAULT_GRACE_MS: u64 = 60 * 60_000;

/// Every field a write may carry, as the JSON text given (`null` included), each read by
/// [`field`] functions below. A field that is not one of these, or is given twice, is refused.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(borrow, default, deserialize_with = "given")]
    name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    scopes: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    expires_at: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    ttl: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    rate_limit: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    credits: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "given")]
    grace: Option<&'a RawValue>,
}

/// A field present in the body, `null` too.
fn given<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Fields<'a> {
    /// The body's fields; an empty body has none.
    fn of(body: &'a [u8]) -> Result<Fields<'a>, Problem> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| Problem::invalid("body", "the body is not UTF-8"))?;
        if !text.trim_start().starts_with('{') {
            return Err(Problem::invalid("body", "the body must be a JSON object"));
        }
        serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let field = named_field(&message).unwrap_or("body");
            Problem::invalid(field, format!("the body is not a valid request: {message}"))
        })
    }

    /// Refuses every field but `allowed` (what this operation takes).
    fn only(&self, operation: &str, allowed: &[&str]) -> Result<(), Problem> {
        let present = [
            ("name", self.name.is_some()),
            ("metadata", self.metadata.is_some()),
            ("scopes", self.scopes.is_some()),
            ("expires_at", self.expires_at.is_some()),
            ("ttl", self.ttl.is_some()),
            ("rate_limit", self.rate_limit.is_some()),
            ("credits", self.credits.is_some()),
            ("grace", self.grace.is_some()),
        ];
        match present
            .iter()
            .find(|(name, given)| *given && !allowed.contains(name))
        {
            None => Ok(()),
            Some((name, _)) => Err(Problem::invalid(
                name,
                format!("{operation} does not take the field {name}"),
            )),
        }
    }
}

/// The serde error about an unknown or repeated field names it between backticks.
fn named_field(message: &str) -> Option<&str> {
    let name = message.split('`').nth(1)?;
    let about_a_field =
        message.starts_with("unknown field") || message.starts_with("duplicate field");
    about_a_field.then_some(name)
}

/// `POST /keys`: `name` (required), `metadata`, `scopes`, `expires_at` or `ttl`, `rate_limit`,
/// `credits` (counted from `now`).
pub fn new_key(body: &[u8], now: UnixMillis) -> Result<NewKey, Problem> {
    let fields = Fields::of(body)?;
    fields.only(
        "creating a key",
        &[
            "name",
            "metadata",
            "scopes",
            "expires_at",
            "ttl",
            "rate_limit",
            "credits",
        ],
    )?;
    let name = match fields.name {
        Some(raw) if raw.get() != "null" => name(raw)?,
        _ => return Err(Problem::invalid("name", "a new key needs a name")),
    };
    Ok(NewKey {
        name,
        metadata: nullable(fields.metadata).map(metadata).transpose()?,
        scopes: nullable(fields.scopes)
            .map(scopes)
            .transpose()?
            .unwrap_or_default(),
        expires_at: expiry(fields.expires_at, fields.ttl, now)?.flatten(),
        rate_limit: nullable(fields.rate_limit).map(rate_limit).transpose()?,
        credits: nullable(fields.credits)
            .map(|raw| credits(raw, now))
            .transpose()?,
    })
}

/// `PATCH /keys/{id}`: any of `name`, `metadata`, `scopes`, `expires_at` or `ttl` (`null`
/// expires never), `rate_limit` (`null` removes it), `credits` (set from `now`, which starts
/// their count again; `null` removes them); at least one.
pub fn changes(body: &[u8], now: UnixMillis) -> Result<Changes, Problem> {
    let fields = Fields::of(body)?;
    fields.only(
        "changing a key",
        &[
            "name",
            "metadata",
            "scopes",
            "expires_at",
            "ttl",
            "rate_limit",
            "credits",
        ],
    )?;
    let changes = Changes {
        name: not_null("name", fields.name)?.map(name).transpose()?,
        metadata: not_null("metadata", fields.metadata)?
            .map(metadata)
            .transpose()?,
        scopes: not_null("scopes", fields.scopes)?.map(scopes).transpose()?,
        expires_at: expiry(fields.expires_at, fields.ttl, now)?,
        rate_limit: fields
            .rate_limit
            .map(|raw| nullable(Some(raw)).map(rate_limit).transpose())
            .transpose()?,
        credits: fields
            .credits
            .map(|raw| nullable(Some(raw)).map(|r| credits(r, now)).transpose())
            .transpose()?,
    };
    match changes.is_empty() {
        true => Err(Problem::invalid(
            "body",
            "give at least one of name, metadata, scopes, expires_at, ttl, rate_limit, credits",
        )),
        false => Ok(changes),
    }
}

/// `POST /keys/{id}/rotate`: the `grace` period (default 60m; `0` for none).
pub fn grace(body: &[u8]) -> Result<u64, Problem> {
    let fields = Fields::of(body)?;
    fields.only("rotating a key", &["grace"])?;
    match nullable(fields.grace) {
        None => Ok(DEFAULT_GRACE_MS),
        Some(raw) => parse_grace(&string("grace", raw)?).map_err(|e| Problem::invalid("grace", e)),
    }
}

/// `POST /keys/{id}/disable` and `/enable`, and `DELETE /keys/{id}`: no field.
pub fn nothing(body: &[u8], operation: &str) -> Result<(), Problem> {
    Fields::of(body)?.only(operation, &[])
}

/// A field that may be left out but not be `null`.
fn not_null<'a>(field: &str, raw: Option<&'a RawValue>) -> Result<Option<&'a RawValue>, Problem> {
    match raw {
        Some(raw) if raw.get() == "null" => Err(Problem::invalid(
            field,
            format!("{field} cannot be null; leave it out to keep it"),
        )),
        other => Ok(other),
    }
}

/// A field given as anything but `null`.
fn nullable(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get() != "null")
}

fn string(field: &str, raw: &RawValue) -> Result<String, Problem> {
    serde_json::from_str(raw.get())
        .map_err(|_| Problem::invalid(field, format!("{field} must be a string")))
}

fn name(raw: &RawValue) -> Result<String, Problem> {
    let name = string("name", raw)?;
    check_name("name", &name).map_err(|e| Problem::invalid("name", e.to_string()))?;
    Ok(name)
}

fn metadata(raw: &RawValue) -> Result<Box<RawValue>, Problem> {
    if !raw.get().starts_with('{') {
        return Err(Problem::invalid(
            "metadata",
            "metadata must be a JSON object",
        ));
    }
    check_metadata(raw.get()).map_err(|e| Problem::invalid("metadata", e.to_string()))?;
    Ok(compact_json(raw))
}

fn scopes(raw: &RawValue) -> Result<Vec<String>, Problem> {
    let given: Vec<String> = serde_json::from_str(raw.get())
        .map_err(|_| Problem::invalid("scopes", "scopes must be an array of strings"))?;
    let mut scopes: Vec<String> = Vec::with_capacity(given.len());
    for scope in given {
        check_scope(&scope).map_err(|e| {
            Problem::invalid(
                "scopes",
                format!("{e}, got {:?}", scope.escape_debug().to_string()),
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

fn rate_limit(raw: &RawValue) -> Result<RateLimit, Problem> {
    RateLimit::parse(&string("rate_limit", raw)?)
        .map_err(|e| Problem::invalid("rate_limit", e.to_string()))
}

/// `{"amount": N, "refill": "1000/day"}` (`refill` absent or `null`: never refilled), set at
/// `now`; an error names the field within (`credits.amount`, `credits.refill`).
fn credits(raw: &RawValue, now: UnixMillis) -> Result<Credits, Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Within<'a> {
        #[serde(borrow, default, deserialize_with = "given")]
        amount: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "given")]
        refill: Option<&'a RawValue>,
    }
    const SHAPE: &str = r#"credits must be {"amount": N, "refill": "1000/day"}, or null"#;
    if !raw.get().starts_with('{') {
        return Err(Problem::invalid("credits", SHAPE));
    }
    let within: Within = serde_json::from_str(raw.get()).map_err(|e| {
        let message = e.to_string();
        match named_field(&message) {
            Some(name) => {
                Problem::invalid(&format!("credits.{name}"), format!("{SHAPE}: {message}"))
            }
            None => Problem::invalid("credits", SHAPE),
        }
    })?;
    let amount = nullable(within.amount)
        .and_then(|raw| parse_amount(raw.get()))
        .ok_or_else(|| {
            Problem::invalid(
                "credits.amount",
                format!("credits.amount must be a whole number from 0 to {MAX_CREDITS}"),
            )
        })?;
    let refill = nullable(within.refill)
        .map(|raw| {
            Refill::parse(&string("credits.refill", raw)?)
                .map_err(|e| Problem::invalid("credits.refill", e.to_string()))
        })
        .transpose()?;
    Ok(Credits {
        amount,
        refill,
        since: now,
    })
}

/// The new `expires_at` from `expires_at` or `ttl` (not both): `None` when neither is given,
/// `Some(None)` for `"expires_at": null` (never).
fn expiry(
    at: Option<&RawValue>,
    ttl: Option<&RawValue>,
    now: UnixMillis,
) -> Result<Option<Option<String>>, Problem> {
    match (at, nullable(ttl)) {
        (Some(_), Some(_)) => Err(Problem::invalid("ttl", "give expires_at or ttl, not both")),
        (Some(raw), None) if raw.get() == "null" => Ok(Some(None)),
        (Some(raw), None) => {
            let text = string("expires_at", raw)?;
            let at = parse_timestamp(&text)
                .map_err(|e| Problem::invalid("expires_at", e.to_string()))?;
            Ok(Some(Some(format_timestamp(at))))
        }
        (None, Some(raw)) => {
            let ms = parse_ttl(&string("ttl", raw)?).map_err(|e| Problem::invalid("ttl", e))?;
            Ok(Some(Some(format_timestamp(
                now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)),
            ))))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn field_of(problem: Problem) -> String {
        assert_eq!(problem.status, 422, "{problem:?}");
        problem.field.unwrap()
    }

    #[test]
    fn a_new_key_reads_every_field_as_the_cli_does() {
        let body = br#"{"name": "Billing", "metadata": {"team": "core", "n": 1.50},
            "scopes": ["read", "write", "read"], "ttl": "1h", "rate_limit": "100/60s",
            "credits": {"amount": 1000, "refill": "500/day"}}"#;
        let key = new_key(body, NOW).unwrap();
        assert_eq!(key.name, "Billing");
        assert_eq!(key.metadata.unwrap().get(), r#"{"team":"core","n":1.50}"#);
        assert_eq!(key.scopes, ["read", "write"]);
        assert_eq!(key.expires_at, Some(format_timestamp(NOW + 3_600_000)));
        assert_eq!(key.rate_limit, Some(RateLimit::parse("100/60s").unwrap()));
        assert_eq!(
            key.credits,
            Some(Credits {
                amount: 1000,
                refill: Refill::parse("500/day").ok(),
                since: NOW
            })
        );
        let bare = new_key(br#"{"name": "A", "expires_at": "2030-01-31"}"#, NOW).unwrap();
        assert_eq!(bare.credits, None);
        for body in [
            br#"{"name": "A", "credits": null}"#.as_slice(),
            br#"{"name": "A", "credits": {"amount": 0, "refill": null}}"#,
        ] {
            let credits = new_key(body, NOW).unwrap().credits;
            assert!(credits.is_none_or(|c| c.amount == 0 && c.refill.is_none()));
        }
        assert_eq!(
            bare.expires_at,
            Some(format_timestamp(parse_timestamp("2030-01-31").unwrap()))
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(&[u8], &str); 25] = [
            (b"{}", "name"),
            (br#"{"name": null}"#, "name"),
            (br#"{"name": 5}"#, "name"),
            (b"{\"name\": \"a\\u001b[2J\"}", "name"),
            (br#"{"name": "a", "metadata": [1]}"#, "metadata"),
            (br#"{"name": "a", "scopes": "read"}"#, "scopes"),
            (br#"{"name": "a", "scopes": ["a b"]}"#, "scopes"),
            (br#"{"name": "a", "ttl": "5 days"}"#, "ttl"),
            (
                br#"{"name": "a", "ttl": "1h", "expires_at": "2030-01-01"}"#,
                "ttl",
            ),
            (br#"{"name": "a", "expires_at": "soon"}"#, "expires_at"),
            (br#"{"name": "a", "rate_limit": "fast"}"#, "rate_limit"),
            (br#"{"name": "a", "admin": true}"#, "admin"),
            (br#"{"name": "a", "name": "b"}"#, "name"),
            (br#"{"name": "a", "grace": "1h"}"#, "grace"),
            (br#"{"name": "a", "credits": 1000}"#, "credits"),
            (br#"{"name": "a", "credits": "1000/day"}"#, "credits"),
            (br#"{"name": "a", "credits": {}}"#, "credits.amount"),
            (
                br#"{"name": "a", "credits": {"amount": -1}}"#,
                "credits.amount",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 1.5}}"#,
                "credits.amount",
            ),
            (
                br#"{"name": "a", "credits": {"amount": "5"}}"#,
                "credits.amount",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 1000000000001}}"#,
                "credits.amount",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 5, "refill": "5/week"}}"#,
                "credits.refill",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 5, "refill": 5}}"#,
                "credits.refill",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 5, "since": "2026-01-01"}}"#,
                "credits.since",
            ),
            (
                br#"{"name": "a", "credits": {"amount": 5, "amount": 6}}"#,
                "credits.amount",
            ),
        ];
        for (body, field) in cases {
            let text = String::from_utf8_lossy(body);
            assert_eq!(field_of(new_key(body, NOW).unwrap_err()), field, "{text}");
        }
        assert_eq!(field_of(new_key(b"[1]", NOW).unwrap_err()), "body");
        assert_eq!(field_of(new_key(b"{\"name\":", NOW).unwrap_err()), "body");
        // Nested far past serde_json's recursion limit, and past the metadata bound.
        for depth in [200, 30_000] {
            let deep = format!(
                "{{\"name\": \"a\", \"metadata\": {{\"a\": {}{}}}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let field = field_of(new_key(deep.as_bytes(), NOW).unwrap_err());
            assert!(field == "metadata" || field == "body", "{depth}: {field}");
        }
        let deep = format!(
            "{{\"name\": \"a\", \"metadata\": {{\"a\": {}{}}}}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(
            field_of(new_key(deep.as_bytes(), NOW).unwrap_err()),
            "metadata"
        );
    }

    #[test]
    fn a_change_needs_a_field_and_null_means_never_or_none() {
        assert_eq!(field_of(changes(b"{}", NOW).unwrap_err()), "body");
        assert_eq!(field_of(changes(b"", NOW).unwrap_err()), "body");
        assert_eq!(
            field_of(changes(br#"{"name": null}"#, NOW).unwrap_err()),
            "name"
        );
        let c = changes(br#"{"expires_at": null, "rate_limit": null}"#, NOW).unwrap();
        assert_eq!((c.expires_at, c.rate_limit), (Some(None), Some(None)));
        let c = changes(br#"{"scopes": []}"#, NOW).unwrap();
        assert_eq!(c.scopes, Some(vec![]));
        let c = changes(br#"{"credits": null}"#, NOW).unwrap();
        assert_eq!(c.credits, Some(None));
        let c = changes(br#"{"credits": {"amount": 7, "refill": "7/month"}}"#, NOW).unwrap();
        assert_eq!(
            c.credits,
            Some(Some(Credits {
                amount: 7,
                refill: Refill::parse("7/month").ok(),
                since: NOW
            }))
        );
        let empty = changes(b"{}", NOW).unwrap_err();
        assert_eq!(
            empty.message,
            "give at least one of name, metadata, scopes, expires_at, ttl, rate_limit, credits"
        );
        assert_eq!(
            field_of(changes(br#"{"credits": {"refill": "1/day"}}"#, NOW).unwrap_err()),
            "credits.amount"
        );
    }

    #[test]
    fn credits_errors_say_what_is_expected() {
        let message = |body: &[u8]| new_key(body, NOW).unwrap_err().message;
        assert_eq!(
            message(br#"{"name": "a", "credits": {"amount": -1}}"#),
            "credits.amount must be a whole number from 0 to 1000000000000"
        );
        assert_eq!(
            message(br#"{"name": "a", "credits": {"amount": 1, "refill": "often"}}"#),
            "expected AMOUNT/day or AMOUNT/month like 1000/day, got 'often'"
        );
        assert_eq!(
            message(br#"{"name": "a", "credits": [1]}"#),
            r#"credits must be {"amount": N, "refill": "1000/day"}, or null"#
        );
        assert!(message(br#"{"name": "a", "credits": {"amount": 1, "every": "day"}}"#)
            .starts_with(r#"credits must be {"amount": N, "refill": "1000/day"}, or null: unknown field `every`"#));
    }

    #[test]
    fn rotation_takes_a_grace_period_and_the_toggles_take_nothing() {
        assert_eq!(grace(b""), Ok(DEFAULT_GRACE_MS));
        assert_eq!(grace(br#"{"grace": "0"}"#), Ok(0));
        assert_eq!(grace(br#"{"grace": "2h"}"#), Ok(7_200_000));
        assert_eq!(field_of(grace(br#"{"grace": 5}"#).unwrap_err()), "grace");
        assert_eq!(nothing(b"{}", "disabling a key"), Ok(()));
        assert_eq!(
            field_of(nothing(br#"{"name": "x"}"#, "disabling a key").unwrap_err()),
            "name"
        );
    }
}
