//! `GET /keys`: a page of keys in file order, filtered by status, scope, name prefix or lack of
//! use, each with when it was last used, and an opaque cursor for the next page. Each page reads a bounded number of keys, so that no
//! request can hold a worker for long whatever the filters and the size of the set.

use heare_auth_core::{
    is_unused, parse_timestamp, parse_ttl, percent_decode, public_json, push_json_string,
    time_json, with_member, KeyRecord, UnixMillis,
};

use super::problem::Problem;
use crate::catalog::Catalog;

/// Keys on a page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Keys a page reads at most: with filters that few keys match, a page may hold fewer than
/// `limit` keys (even none) and still have a next one.
pub const MAX_SCANNED: usize = 10_000;

/// What a listing asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    limit: Option<usize>,
    cursor: Option<String>,
    status: Option<String>,
    scope: Option<String>,
    name: Option<String>,
    /// Keys created before this instant (Unix ms) and not used since.
    unused_since: Option<UnixMillis>,
}

impl Query {
    fn parse(query: Option<&str>, now: UnixMillis) -> Result<Query, Problem> {
        let mut parsed = Query::default();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, true);
            let value = percent_decode(value, true);
            let slot = match name.as_str() {
                "limit" => {
                    let limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            Problem::invalid(
                                "limit",
                                format!("limit must be a number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                    if parsed.limit.replace(limit).is_some() {
                        return Err(twice("limit"));
                    }
                    continue;
                }
                "cursor" => &mut parsed.cursor,
                "status" => {
                    if !["active", "rotating", "expired", "disabled"].contains(&value.as_str()) {
                        return Err(Problem::invalid(
                            "status",
                            "status must be active, rotating, expired or disabled",
                        ));
                    }
                    &mut parsed.status
                }
                "unused_since" => {
                    let since = unused_since(&value, now)?;
                    if parsed.unused_since.replace(since).is_some() {
                        return Err(twice("unused_since"));
                    }
                    continue;
                }
                "scope" => &mut parsed.scope,
                "name" => &mut parsed.name,
                _ => {
                    let mut message = String::from("unknown query parameter ");
                    push_json_string(&mut message, &name);
                    message.push_str(" (limit, cursor, status, scope, name, unused_since)");
                    return Err(Problem::invalid(&name, message));
                }
            };
            if slot.replace(value).is_some() {
                return Err(twice(&name));
            }
        }
        Ok(parsed)
    }

    fn matches(&self, key: &KeyRecord, now: UnixMillis, last_used: Option<UnixMillis>) -> bool {
        let unused = |since| is_unused(key.created_at.as_deref(), last_used, since);
        self.unused_since.is_none_or(unused)
            && self
                .status
                .as_ref()
                .is_none_or(|s| key.status(now).word() == s)
            && self
                .scope
                .as_ref()
                .is_none_or(|s| key.scope_list().contains(s))
            && self.name.as_ref().is_none_or(|p| key.name.starts_with(p))
    }
}

fn twice(name: &str) -> Problem {
    Problem::invalid(name, format!("{name} is given more than once"))
}

/// `90d` (that long before `now`) or an RFC 3339 time: the instant of `unused_since`.
fn unused_since(value: &str, now: UnixMillis) -> Result<UnixMillis, Problem> {
    let ago = parse_ttl(value).ok().and_then(|ms| i64::try_from(ms).ok());
    ago.map(|ms| now.saturating_sub(ms))
        .or_else(|| parse_timestamp(value).ok())
        .ok_or_else(|| {
            Problem::invalid(
                "unused_since",
                "unused_since must be a duration (90d, 12h) or an RFC 3339 time",
            )
        })
}

/// The page of `catalog` that `query` asks for, at `now`, as the JSON answer; `last_used`
/// tells when a key was last used.
pub fn page(
    catalog: &Catalog,
    query: Option<&str>,
    now: UnixMillis,
    last_used: &dyn Fn(&str) -> Option<UnixMillis>,
) -> Result<String, Problem> {
    let query = Query::parse(query, now)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let start = match &query.cursor {
        None => 0,
        Some(cursor) => resume(catalog, cursor)?,
    };
    let mut body = String::from("{\"keys\":[");
    let (mut found, mut position) = (0, start);
    let end = catalog.len().min(start.saturating_add(MAX_SCANNED));
    let mut last = None;
    while position < end && found < limit {
        if let Some(key) = catalog.get(position) {
            let used = last_used(&key.id);
            if query.matches(&key, now, used) {
                if found > 0 {
                    body.push(',');
                }
                let shown = public_json(&key, now);
                body.push_str(&with_member(&shown, "last_used_at", &time_json(used)));
                found += 1;
            }
            last = Some((position, key.id));
        }
        position += 1;
    }
    body.push_str("],\"next_cursor\":");
    match last.filter(|_| position < catalog.len()) {
        Some((at, id)) => push_json_string(&mut body, &cursor(at, &id)),
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(body)
}

/// The cursor after the key `id`, at `position`: opaque to clients (hex of both).
fn cursor(position: usize, id: &str) -> String {
    format!("{position}:{id}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the page after `cursor` starts: after its key, wherever that key now is; if it was
/// deleted, at its old position.
fn resume(catalog: &Catalog, cursor: &str) -> Result<usize, Problem> {
    let invalid = || Problem::invalid("cursor", "cursor is not one this API gave");
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (position, id) = text.split_once(':').ok_or_else(invalid)?;
    let position: usize = position.parse().map_err(|_| invalid())?;
    Ok(match catalog.position(id) {
        Some(now_at) => now_at + 1,
        None => position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn catalog(n: usize) -> Catalog {
        let keys: Vec<String> = (0..n)
            .map(|i| {
                let scope = if i % 3 == 0 { "[\"read\"]" } else { "[]" };
                let disabled = if i % 5 == 0 { "true" } else { "false" };
                format!(
                    r#"{{"id": "key_{i:04}", "secret_hash": "{:064x}", "name": "N{i}", "scopes": {scope}, "disabled": {disabled}}}"#,
                    i
                )
            })
            .collect();
        let text = format!("{{\"keys\": [{}]}}", keys.join(","));
        Catalog::new(text.into_bytes(), &mut || {}).unwrap()
    }

    /// Keys used: key_0002 a day ago, key_0004 an hour ago.
    fn used(id: &str) -> Option<UnixMillis> {
        match id {
            "key_0002" => Some(NOW - 86_400_000),
            "key_0004" => Some(NOW - 3_600_000),
            _ => None,
        }
    }

    fn get(catalog: &Catalog, query: &str) -> Value {
        serde_json::from_str(&page(catalog, Some(query), NOW, &used).unwrap()).unwrap()
    }

    fn ids(page: &Value) -> Vec<String> {
        page["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages_follow_each_other_to_the_end_without_a_gap() {
        let catalog = catalog(25);
        let mut seen = Vec::new();
        let mut query = "limit=10".to_string();
        loop {
            let page = get(&catalog, &query);
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => query = format!("limit=10&cursor={next}"),
                None => break,
            }
        }
        let all: Vec<String> = (0..25).map(|i| format!("key_{i:04}")).collect();
        assert_eq!(seen, all);
        let first = get(&catalog, "");
        assert_eq!(ids(&first).len(), 25);
        assert!(first["next_cursor"].is_null());
        assert!(first["keys"][0].get("secret_hash").is_none());
    }

    #[test]
    fn filters_combine() {
        let catalog = catalog(30);
        let page = get(&catalog, "scope=read&status=disabled");
        assert_eq!(ids(&page), ["key_0000", "key_0015"]);
        let page = get(&catalog, "name=N1&limit=3");
        assert_eq!(ids(&page), ["key_0001", "key_0010", "key_0011"]);
        assert_eq!(
            get(&catalog, "name=N%31&limit=1")["keys"][0]["id"],
            "key_0001"
        );
    }

    #[test]
    fn keys_show_when_they_were_last_used_and_unused_ones_are_found() {
        let catalog = catalog(6);
        let page = get(&catalog, "");
        assert_eq!(
            page["keys"][2]["last_used_at"],
            "2026-11-24T01:17:14.316000Z"
        );
        assert!(page["keys"][0]["last_used_at"].is_null());
        let page = get(&catalog, "unused_since=2h");
        assert_eq!(
            ids(&page),
            ["key_0000", "key_0001", "key_0002", "key_0003", "key_0005"]
        );
        let page = get(&catalog, "unused_since=2d");
        assert_eq!(ids(&page).len(), 4);
        let page = get(&catalog, "unused_since=2026-11-24T00:00:00Z");
        assert_eq!(ids(&page).len(), 4);
    }

    #[test]
    fn bad_parameters_are_named() {
        let catalog = catalog(3);
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("status=gone", "status"),
            ("cursor=zz", "cursor"),
            ("cursor=3a", "cursor"),
            ("sort=name", "sort"),
            ("name=a&name=b", "name"),
            ("unused_since=soon", "unused_since"),
            ("unused_since=1d&unused_since=2d", "unused_since"),
        ] {
            let problem = page(&catalog, Some(query), NOW, &used).unwrap_err();
            assert_eq!(problem.field.as_deref(), Some(field), "{query}");
        }
    }
}
