//! Each command's request to the management API, and its answer read back as the value the
//! same command on the store returns (a record, `Created`, `Toggled`, `Rotated`, `Updated`, a
//! key's usage).
//! Input is checked as the store's commands check it, before anything is sent.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use heare_auth_core::{format_timestamp, KeyRecord, RateLimit};

use crate::cmd::{CreateArgs, Expiry, NewCredits, NewExpiry, Since, UpdateArgs};
use crate::commands::{metadata_of, Created, Rotated, Toggled, Updated};
use crate::remote::client::{encode, key_path, Client, Reply};
use crate::remote::convert::{NewKey, PublicKey, ShownUsage};
use crate::usage::KeyUsage;
use crate::CliError;

/// How many keys `list` asks for at a time: the most a page holds.
pub const PAGE_LIMIT: u32 = 1000;

/// The fields of a key a request sets; `None`: not sent. `Some(None)` sends `null` (no expiry,
/// no rate limit, no credits).
#[derive(Debug, Default, Serialize)]
struct Fields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits: Option<Option<CreditsField>>,
}

/// Credits as the API takes them: `{"amount": N, "refill": "1000/day"}`, the refill left out
/// when there is none. The server sets them from its own clock.
#[derive(Debug, Serialize)]
struct CreditsField {
    amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refill: Option<String>,
}

impl From<NewCredits> for CreditsField {
    fn from(credits: NewCredits) -> CreditsField {
        CreditsField {
            amount: credits.amount,
            refill: credits.refill.map(|r| r.to_string()),
        }
    }
}

impl Fields<'_> {
    /// The body of a request, one line of JSON.
    fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Sets the expiry `--expires-at` or `--ttl` asks for: a TTL is sent as one, for the
    /// server to count from its own clock, as the store's commands count from theirs.
    fn expire(&mut self, expiry: &Expiry) {
        match *expiry {
            Expiry::At(at) => self.expires_at = Some(Some(format_timestamp(at))),
            Expiry::After(ms) => self.ttl = Some(duration(ms)),
        }
    }
}

/// The body of `POST /keys` for `create`; refuses metadata as the store's `create` does.
pub fn create_body(args: &CreateArgs) -> Result<String, CliError> {
    let mut fields = Fields {
        name: Some(&args.name),
        metadata: args.metadata.as_deref().map(metadata_of).transpose()?,
        scopes: (!args.scopes.is_empty()).then_some(&args.scopes[..]),
        rate_limit: args.rate_limit.map(|l| Some(l.to_string())),
        credits: args.credits.map(|c| Some(c.into())),
        ..Fields::default()
    };
    if let Some(expiry) = &args.expires {
        fields.expire(expiry);
    }
    Ok(fields.body())
}

/// The body of `PATCH /keys/{id}` for `update`: only the fields given.
pub fn update_body(args: &UpdateArgs) -> Result<String, CliError> {
    let mut fields = Fields {
        name: args.name.as_deref(),
        metadata: args.metadata.as_deref().map(metadata_of).transpose()?,
        scopes: args.scopes.as_deref(),
        credits: args.credits.map(|c| c.map(Into::into)),
        ..Fields::default()
    };
    match &args.expires {
        Some(NewExpiry::At(expiry)) => fields.expire(expiry),
        Some(NewExpiry::Never) => fields.expires_at = Some(None),
        None => {}
    }
    Ok(fields.body())
}

/// The body of `PATCH /keys/{id}` for `set-rate-limit`.
pub fn rate_limit_body(limit: Option<RateLimit>) -> String {
    Fields {
        rate_limit: Some(limit.map(|l| l.to_string())),
        ..Fields::default()
    }
    .body()
}

/// The body of `POST /keys/{id}/rotate`.
pub fn rotate_body(grace_ms: u64) -> String {
    let grace = match grace_ms {
        0 => "0".to_string(),
        ms => duration(ms),
    };
    serde_json::json!({ "grace": grace }).to_string()
}

/// Milliseconds as `--ttl` and `--grace` write them, in the largest unit that divides them
/// (`90d`, `60m`, `3601s`); the parser makes only whole seconds.
fn duration(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    let unit = [(604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(size, _)| secs > 0 && secs.is_multiple_of(*size));
    match unit {
        Some((size, unit)) => format!("{}{unit}", secs / size),
        None => format!("{secs}s"),
    }
}

/// Sends a request about the key `id` (if any) and reads its answer as `T`.
fn call<T: DeserializeOwned>(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&str>,
    id: Option<&str>,
) -> Result<(Reply, T), CliError> {
    let reply = client.send(method, path, body)?;
    let answer = reply.json(id)?;
    Ok((reply, answer))
}

/// A key of an answer as a record, or the answer refused as unreadable.
fn record(reply: &Reply, key: PublicKey) -> Result<KeyRecord, CliError> {
    key.into_record().map_err(|e| reply.unexpected(e))
}

/// One page of keys, in the store's order.
pub struct Page {
    /// Its keys.
    pub keys: Vec<KeyRecord>,
    /// Where the next page starts; `None`: this is the last.
    pub next: Option<String>,
}

/// The path of the page of keys from `cursor` (`None`: the first), of those unused since
/// `unused_since` when it is given.
pub fn page_path(cursor: Option<&str>, unused_since: Option<Since>) -> String {
    let mut path = format!("/keys?limit={PAGE_LIMIT}");
    if let Some(since) = unused_since {
        let since = match since {
            Since::Ago(ms) => duration(ms),
            Since::At(at) => format_timestamp(at),
        };
        path.push_str("&unused_since=");
        path.push_str(&encode(&since));
    }
    if let Some(cursor) = cursor {
        path.push_str("&cursor=");
        path.push_str(&encode(cursor));
    }
    path
}

/// The page of keys from `cursor` (`None`: the first), of those unused since `unused_since`
/// when it is given.
pub fn page(
    client: &Client,
    cursor: Option<&str>,
    unused_since: Option<Since>,
) -> Result<Page, CliError> {
    #[derive(Deserialize)]
    struct Answer {
        keys: Vec<PublicKey>,
        next_cursor: Option<String>,
    }
    let path = page_path(cursor, unused_since);
    let (reply, answer): (_, Answer) = call(client, "GET", &path, None, None)?;
    let keys = answer
        .keys
        .into_iter()
        .map(|key| record(&reply, key))
        .collect::<Result<_, _>>()?;
    if answer.next_cursor.is_some() && answer.next_cursor.as_deref() == cursor {
        return Err(reply.unexpected("the same cursor again, which would never end".into()));
    }
    Ok(Page {
        keys,
        next: answer.next_cursor,
    })
}

/// The key `id`.
pub fn show(client: &Client, id: &str) -> Result<KeyRecord, CliError> {
    let (reply, key) = call(client, "GET", &key_path(id, None), None, Some(id))?;
    record(&reply, key)
}

/// The usage of the key `id`, when the server counted it for all replicas; `None` when it
/// counted only its own.
pub fn usage(client: &Client, id: &str) -> Result<Option<KeyUsage>, CliError> {
    let path = key_path(id, Some("usage"));
    let (reply, shown): (_, ShownUsage) = call(client, "GET", &path, None, Some(id))?;
    shown.into_usage().map_err(|e| reply.unexpected(e))
}

/// Creates a key; its secret comes back once.
pub fn create(client: &Client, args: &CreateArgs) -> Result<Created, CliError> {
    let body = create_body(args)?;
    let (reply, new): (_, NewKey) = call(client, "POST", "/keys", Some(&body), None)?;
    new.into_created().map_err(|e| reply.unexpected(e))
}

/// A key and whether the request changed it.
#[derive(Deserialize)]
struct Changed<C> {
    key: PublicKey,
    changed: C,
}

/// The fields `PATCH` may say it changed, in its order.
const FIELDS: [&str; 6] = [
    "name",
    "metadata",
    "scopes",
    "expires_at",
    "rate_limit",
    "credits",
];

/// Sends `PATCH /keys/{id}` with `body`: the key as it now is, and the fields changed.
fn patch(client: &Client, id: &str, body: &str) -> Result<Updated, CliError> {
    let (reply, answer): (_, Changed<Vec<String>>) =
        call(client, "PATCH", &key_path(id, None), Some(body), Some(id))?;
    let changed = answer
        .changed
        .iter()
        .map(|field| {
            FIELDS.into_iter().find(|f| f == field).ok_or_else(|| {
                reply.unexpected(format!("a changed field this CLI does not know: {field}"))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Updated {
        record: record(&reply, answer.key)?,
        changed,
    })
}

/// Changes the fields `args` gives of the key `args.id`.
pub fn update(client: &Client, args: &UpdateArgs) -> Result<Updated, CliError> {
    patch(client, &args.id, &update_body(args)?)
}

/// Sets or removes a key's rate limit.
pub fn set_rate_limit(
    client: &Client,
    id: &str,
    limit: Option<RateLimit>,
) -> Result<Toggled, CliError> {
    let updated = patch(client, id, &rate_limit_body(limit))?;
    Ok(Toggled {
        changed: !updated.changed.is_empty(),
        record: updated.record,
    })
}

/// Disables a key (`disabled` true) or enables it.
pub fn set_disabled(client: &Client, id: &str, disabled: bool) -> Result<Toggled, CliError> {
    let action = if disabled { "disable" } else { "enable" };
    let path = key_path(id, Some(action));
    let (reply, answer): (_, Changed<bool>) = call(client, "POST", &path, Some("{}"), Some(id))?;
    Ok(Toggled {
        record: record(&reply, answer.key)?,
        changed: answer.changed,
    })
}

/// Gives a key a new secret, the old one verifying for `grace_ms` more.
pub fn rotate(client: &Client, id: &str, grace_ms: u64) -> Result<Rotated, CliError> {
    #[derive(Deserialize)]
    struct Answer {
        secret: String,
        replaced_previous: bool,
        key: PublicKey,
    }
    let path = key_path(id, Some("rotate"));
    let body = rotate_body(grace_ms);
    let (reply, answer): (_, Answer) = call(client, "POST", &path, Some(&body), Some(id))?;
    Ok(Rotated {
        record: record(&reply, answer.key)?,
        secret: answer.secret,
        replaced_previous: answer.replaced_previous,
    })
}

/// Deletes a key; the key as it was.
pub fn delete(client: &Client, id: &str) -> Result<KeyRecord, CliError> {
    #[derive(Deserialize)]
    struct Answer {
        key: PublicKey,
    }
    let (reply, answer): (_, Answer) = call(client, "DELETE", &key_path(id, None), None, Some(id))?;
    record(&reply, answer.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str) -> CreateArgs {
        CreateArgs {
            name: name.into(),
            metadata: None,
            scopes: Vec::new(),
            expires: None,
            rate_limit: None,
            credits: None,
            no_refresh: false,
            json: false,
        }
    }

    #[test]
    fn create_sends_only_what_was_given() {
        assert_eq!(create_body(&create("A")).unwrap(), r#"{"name":"A"}"#);
        let every = CreateArgs {
            metadata: Some(r#"{ "team": "payments", "n": 1.50 }"#.into()),
            scopes: vec!["read".into(), "write".into()],
            expires: Some(Expiry::After(90 * 86_400_000)),
            rate_limit: RateLimit::parse("100/60s").ok(),
            ..create("Billing \"service\"")
        };
        assert_eq!(
            create_body(&every).unwrap(),
            r#"{"name":"Billing \"service\"","metadata":{"team":"payments","n":1.50},"scopes":["read","write"],"ttl":"90d","rate_limit":"100/60s"}"#
        );
        let at = CreateArgs {
            expires: Some(Expiry::At(1_801_353_600_000)),
            ..create("A")
        };
        assert_eq!(
            create_body(&at).unwrap(),
            r#"{"name":"A","expires_at":"2027-01-31T00:00:00.000000Z"}"#
        );
    }

    #[test]
    fn bad_metadata_is_refused_before_anything_is_sent() {
        let bad = CreateArgs {
            metadata: Some("[1]".into()),
            ..create("A")
        };
        assert_eq!(
            create_body(&bad),
            Err(CliError::MetadataNotObject("an array"))
        );
        let update = UpdateArgs {
            metadata: Some("{nope".into()),
            ..UpdateArgs::of("key_a")
        };
        assert!(matches!(
            update_body(&update),
            Err(CliError::MetadataNotJson(_))
        ));
    }

    #[test]
    fn update_sends_only_the_fields_given_and_null_for_no_expiry() {
        let name = UpdateArgs {
            name: Some("B".into()),
            ..UpdateArgs::of("key_a")
        };
        assert_eq!(update_body(&name).unwrap(), r#"{"name":"B"}"#);
        let never = UpdateArgs {
            scopes: Some(Vec::new()),
            expires: Some(NewExpiry::Never),
            ..UpdateArgs::of("key_a")
        };
        assert_eq!(
            update_body(&never).unwrap(),
            r#"{"scopes":[],"expires_at":null}"#
        );
        let ttl = UpdateArgs {
            metadata: Some("{}".into()),
            expires: Some(NewExpiry::At(Expiry::After(3_600_000))),
            ..UpdateArgs::of("key_a")
        };
        assert_eq!(update_body(&ttl).unwrap(), r#"{"metadata":{},"ttl":"1h"}"#);
    }

    #[test]
    fn credits_are_sent_without_when_the_server_sets_them_and_null_removes_them() {
        let daily = NewCredits {
            amount: 1000,
            refill: heare_auth_core::Refill::parse("500/day").ok(),
        };
        let metered = CreateArgs {
            credits: Some(daily),
            ..create("A")
        };
        assert_eq!(
            create_body(&metered).unwrap(),
            r#"{"name":"A","credits":{"amount":1000,"refill":"500/day"}}"#
        );
        let once = UpdateArgs {
            credits: Some(Some(NewCredits {
                amount: 0,
                refill: None,
            })),
            ..UpdateArgs::of("key_a")
        };
        assert_eq!(update_body(&once).unwrap(), r#"{"credits":{"amount":0}}"#);
        let none = UpdateArgs {
            credits: Some(None),
            ..UpdateArgs::of("key_a")
        };
        assert_eq!(update_body(&none).unwrap(), r#"{"credits":null}"#);
    }

    #[test]
    fn a_page_asks_for_unused_keys_as_given() {
        assert_eq!(page_path(None, None), "/keys?limit=1000");
        assert_eq!(
            page_path(Some("3:key_c"), Some(Since::Ago(90 * 86_400_000))),
            "/keys?limit=1000&unused_since=90d&cursor=3%3Akey_c"
        );
        assert_eq!(
            page_path(None, Some(Since::At(1_796_549_400_000))),
            "/keys?limit=1000&unused_since=2026-12-06T09%3A30%3A00.000000Z"
        );
    }

    #[test]
    fn rate_limits_and_grace_periods() {
        assert_eq!(
            rate_limit_body(RateLimit::parse("10/500ms").ok()),
            r#"{"rate_limit":"10/500ms"}"#
        );
        assert_eq!(rate_limit_body(None), r#"{"rate_limit":null}"#);
        assert_eq!(rotate_body(0), r#"{"grace":"0"}"#);
        assert_eq!(rotate_body(3_600_000), r#"{"grace":"1h"}"#);
        for (ms, text) in [
            (1000, "1s"),
            (90_000, "90s"),
            (120_000, "2m"),
            (86_400_000, "1d"),
            (14 * 86_400_000, "2w"),
            (3_601_000, "3601s"),
        ] {
            assert_eq!(duration(ms), text, "{ms}");
            assert_eq!(crate::args::parse_ttl(text), Ok(ms), "{text}");
        }
    }
}
