//! What the CLI prints, as pure functions of the data: the original's text layout, or JSON.

use serde::Serialize;
use serde_json::{json, Value};

use heare_auth_core::{KeyRecord, UnixMillis};

use crate::commands::Created;

const RULE: &str =
    "━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━";

/// The block `create` prints, the only place a secret is ever shown.
pub fn created_text(c: &Created) -> String {
    let r = &c.record;
    let mut out = format!(
        "\nCreated API key:\n  ID:     {}\n  Secret: {}\n  Name:   {}\n  Created: {}\n",
        r.id,
        c.secret,
        r.name,
        r.created_at.as_deref().unwrap_or_default()
    );
    if let Some(expires) = &r.expires_at {
        out.push_str(&format!("  Expires: {expires}\n"));
    }
    out.push_str("\n⚠️  Save the SECRET securely - it will not be shown again!\n");
    out.push_str("    Use the ID for reference and logging.\n");
    out
}

/// `create --json`.
pub fn created_json(c: &Created) -> String {
    let r = &c.record;
    json!({
        "id": r.id, "secret": c.secret, "name": r.name, "created_at": r.created_at,
        "expires_at": r.expires_at, "metadata": r.metadata,
    })
    .to_string()
}

/// What `refresh` (and `create`/`delete` after writing) print when the server reloaded.
pub fn refreshed(keys_loaded: u64) -> String {
    format!("✓ Service refreshed - {keys_loaded} keys loaded")
}

/// The question `delete` asks on a terminal (no newline: the answer follows on the same line).
pub fn delete_prompt(r: &KeyRecord) -> String {
    format!("Delete API key '{}' ({})? [y/N]: ", r.id, r.name)
}

/// A key as `list --json` and `show --json` print it: never its secret or hash.
#[derive(Serialize)]
struct Public<'a> {
    id: &'a str,
    name: &'a str,
    created_at: &'a Option<String>,
    updated_at: &'a Option<String>,
    expires_at: &'a Option<String>,
    metadata: &'a Value,
    expired: bool,
}

/// One key as `list --json` and `show --json` print it: never its secret or hash.
pub fn public_json(r: &KeyRecord, now: UnixMillis) -> String {
    let public = Public {
        id: &r.id,
        name: &r.name,
        created_at: &r.created_at,
        updated_at: &r.updated_at,
        expires_at: &r.expires_at,
        metadata: &r.metadata,
        expired: !r.status(now).is_active(),
    };
    serde_json::to_string(&public).unwrap_or_default()
}

/// The head of the `list` table.
pub fn list_header() -> String {
    format!(
        "\nAPI Keys:\n{RULE}\n{:<30} {:<35} {:<15}\n{RULE}\n",
        "Name", "Key ID", "Created"
    )
}

/// One key's lines of the `list` table; `detailed` adds expiry, status and metadata.
pub fn list_row(k: &KeyRecord, detailed: bool, now: UnixMillis) -> String {
    let created: String = k
        .created_at
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(10)
        .collect();
    let mut out = format!("{:<30} {:<35} {:<15}\n", k.name, k.id, created);
    if detailed {
        let expires = k.expires_at.as_deref().unwrap_or("never");
        out.push_str(&format!(
            "    Status: {}   Expires: {expires}\n",
            k.status(now)
        ));
        out.push_str(&format!("    Metadata: {}\n", k.metadata));
    }
    out
}

/// The foot of the `list` table.
pub fn list_footer(total: usize) -> String {
    format!("{RULE}\nTotal: {total} keys\n\n")
}

/// What `list` prints when there are no keys.
pub const NO_KEYS: &str = "No API keys found.\n";

/// `list`: the original's table with a Total line (the CLI writes it row by row).
#[cfg(test)]
pub fn list_text(keys: &[KeyRecord], detailed: bool, now: UnixMillis) -> String {
    if keys.is_empty() {
        return NO_KEYS.into();
    }
    let rows: String = keys.iter().map(|k| list_row(k, detailed, now)).collect();
    list_header() + &rows + &list_footer(keys.len())
}

/// `list --json`: a JSON array on one line (the CLI writes it key by key).
#[cfg(test)]
pub fn list_json(keys: &[KeyRecord], now: UnixMillis) -> String {
    let items: Vec<String> = keys.iter().map(|k| public_json(k, now)).collect();
    format!("[{}]", items.join(","))
}

/// `show`: one key, with how its secret is stored but never the secret.
pub fn show_text(r: &KeyRecord, now: UnixMillis) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let stored = if r.secret.is_some() {
        "stored in plaintext (legacy)"
    } else {
        "stored hashed (SHA-256)"
    };
    let metadata = serde_json::to_string_pretty(&r.metadata)
        .unwrap_or_default()
        .replace('\n', "\n  ");
    format!(
        "\nAPI key:\n  ID:      {}\n  Name:    {}\n  Created: {}\n  Updated: {}\n  Expires: {}\n  Status:  {}\n  Secret:  {stored}\n  Metadata: {metadata}\n",
        r.id,
        r.name,
        or_dash(&r.created_at),
        or_dash(&r.updated_at),
        r.expires_at.clone().unwrap_or_else(|| "never".into()),
        r.status(now),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn record(id: &str, name: &str, expires: Option<&str>) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some("ab".repeat(32)),
            name: name.into(),
            created_at: Some("2026-11-25T01:17:14.316000Z".into()),
            expires_at: expires.map(String::from),
            metadata: json!({"team": "core"}),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn table_matches_the_original_layout() {
        let keys = [
            record("key_a", "Billing", None),
            record("key_b", "Zoë ✓", Some("2020-01-01")),
        ];
        // Python's f"{name:<30} {id:<35} {created:<15}", trailing padding included.
        let want = format!(
            "\nAPI Keys:\n{RULE}\nName                           Key ID                              Created        \n{RULE}\n\
             Billing                        key_a                               2026-11-25     \n\
             Zoë ✓                          key_b                               2026-11-25     \n\
             {RULE}\nTotal: 2 keys\n\n"
        );
        assert_eq!(list_text(&keys, false, NOW), want);
        assert_eq!(RULE.chars().count(), 80);
        assert_eq!(list_text(&[], false, NOW), "No API keys found.\n");
        let detailed = list_text(&keys, true, NOW);
        assert!(
            detailed.contains("    Status: expired   Expires: 2020-01-01\n"),
            "{detailed}"
        );
        assert!(detailed
            .contains("    Status: active   Expires: never\n    Metadata: {\"team\":\"core\"}\n"));
    }

    #[test]
    fn nothing_but_create_shows_a_secret() {
        let mut legacy = record("key_l", "Legacy", Some("soon"));
        legacy.secret = Some("sec_TOPSECRET".into());
        let keys = [legacy.clone(), record("key_h", "Hashed", None)];
        for text in [
            list_text(&keys, true, NOW),
            list_json(&keys, NOW),
            show_text(&legacy, NOW),
            public_json(&legacy, NOW),
        ] {
            assert!(
                !text.contains("TOPSECRET") && !text.contains(&"ab".repeat(32)),
                "{text}"
            );
        }
        assert!(show_text(&legacy, NOW).contains("Secret:  stored in plaintext (legacy)"));
        assert!(show_text(&keys[1], NOW).contains("Secret:  stored hashed (SHA-256)"));
        assert_eq!(
            legacy.status(NOW).to_string(),
            "expired (unreadable expires_at)"
        );
    }

    #[test]
    fn refresh_line_and_delete_prompt() {
        assert_eq!(refreshed(3), "✓ Service refreshed - 3 keys loaded");
        assert_eq!(
            delete_prompt(&record("key_a", "Billing", None)),
            "Delete API key 'key_a' (Billing)? [y/N]: "
        );
    }

    #[test]
    fn created_block_and_json() {
        let c = Created {
            record: record("key_n", "New", Some("2027-01-01T00:00:00.000000Z")),
            secret: "sec_0abc".into(),
        };
        assert_eq!(
            created_text(&c),
            "\nCreated API key:\n  ID:     key_n\n  Secret: sec_0abc\n  Name:   New\n  Created: 2026-11-25T01:17:14.316000Z\n  \
             Expires: 2027-01-01T00:00:00.000000Z\n\n⚠️  Save the SECRET securely - it will not be shown again!\n    \
             Use the ID for reference and logging.\n"
        );
        let v: Value = serde_json::from_str(&created_json(&c)).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["secret"].as_str()),
            (Some("key_n"), Some("sec_0abc"))
        );
        assert_eq!(v["metadata"], json!({"team": "core"}));
        let p: Value = serde_json::from_str(&public_json(&c.record, NOW)).unwrap();
        assert_eq!(p["expired"], false);
        assert!(p.get("secret_hash").is_none() && p.get("secret").is_none());
    }
}
