//! What the CLI prints, as pure functions of the data: the original's text layout, every text
//! from the keys file in it shown through [`visible`] (a control character in a name cannot
//! steer the terminal), or JSON, exact.

use serde_json::json;

use heare_auth_core::{
    format_timestamp, pretty_json, visible, Expiry, KeyRecord, Status, UnixMillis,
};

use crate::commands::{Created, Named, Rotated, Toggled, Updated};
use crate::plural::count;
use crate::usage::{self, KeyUsage};

const RULE: &str =
    "━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━";

/// The warning under a new secret.
const SAVE_IT: &str = "⚠️  Save the SECRET securely - it will not be shown again!\n    \
                       Use the ID for reference and logging.\n";

/// The block `create` prints; `create` and `rotate` are the only places a secret is shown.
pub fn created_text(c: &Created) -> String {
    let r = &c.record;
    let mut out = format!(
        "\nCreated API key:\n  ID:     {}\n  Secret: {}\n  Name:   {}\n",
        visible(&r.id),
        c.secret,
        visible(&r.name)
    );
    if !r.scope_list().is_empty() {
        out.push_str(&format!("  Scopes: {}\n", scopes_text(r)));
    }
    if let Some(limit) = r.rate_limit {
        out.push_str(&format!("  Rate limit: {limit}\n"));
    }
    if r.credits.is_some() {
        out.push_str(&format!("  Credits: {}\n", credits_text(r)));
    }
    out.push_str(&format!(
        "  Created: {}\n",
        visible(r.created_at.as_deref().unwrap_or_default())
    ));
    if let Some(expires) = &r.expires_at {
        out.push_str(&format!("  Expires: {}\n", visible(expires)));
    }
    out + "\n" + SAVE_IT
}

/// `create --json`: the management API's answer to a create (see [`created_json`]).
pub fn created_json(c: &Created) -> String {
    heare_auth_core::created_json(&c.record, &c.secret)
}

/// The block `rotate` prints: the new secret, and until when the old one still verifies.
pub fn rotated_text(rotated: &Rotated, now: UnixMillis) -> String {
    let r = &rotated.record;
    let mut out = format!(
        "\nRotated API key:\n  ID:     {}\n  Secret: {}\n  Name:   {}\n",
        visible(&r.id),
        rotated.secret,
        visible(&r.name)
    );
    out.push_str(&match &r.previous_expires_at {
        Some(until) => format!("  Previous secret valid until: {}\n", visible(until)),
        None => "  Previous secret: stopped working now (no grace period)\n".into(),
    });
    out.push('\n');
    if rotated.replaced_previous {
        out.push_str(
            "⚠️  The key was still rotating: the secret before the previous one stopped working now.\n",
        );
    }
    match r.status(now) {
        Status::Disabled => out.push_str(
            "⚠️  The key is disabled: neither secret verifies until it is enabled again.\n",
        ),
        s if !s.is_active() => out.push_str("⚠️  The key has expired: neither secret verifies.\n"),
        _ => {}
    }
    out + SAVE_IT
}

/// `rotate --json`.
pub fn rotated_json(rotated: &Rotated) -> String {
    let r = &rotated.record;
    json!({
        "id": r.id, "secret": rotated.secret, "name": r.name,
        "previous_expires_at": r.previous_expires_at,
        "replaced_previous": rotated.replaced_previous,
    })
    .to_string()
}

/// What `disable` and `enable` print.
pub fn toggled_text(t: &Toggled) -> String {
    let r = &t.record;
    let (id, name) = (visible(&r.id), visible(&r.name));
    let (done, state) = match r.disabled == Some(true) {
        true => ("Disabled", "disabled"),
        false => ("Enabled", "enabled"),
    };
    match t.changed {
        true => format!("✓ {done} API key '{}' ({}).\n", id, name),
        false => format!("API key '{id}' ({name}) is already {state}; nothing changed.\n"),
    }
}

/// `disable --json` and `enable --json`.
pub fn toggled_json(t: &Toggled) -> String {
    let r = &t.record;
    json!({
        "id": r.id, "name": r.name, "disabled": r.disabled == Some(true),
        "disabled_at": r.disabled_at, "changed": t.changed,
    })
    .to_string()
}

/// What `set-rate-limit` prints.
pub fn limited_text(t: &Toggled) -> String {
    let r = &t.record;
    let (id, name) = (visible(&r.id), visible(&r.name));
    match (t.changed, r.rate_limit) {
        (true, Some(limit)) => {
            format!("✓ Set the rate limit of API key '{id}' ({name}) to {limit}.\n")
        }
        (true, None) => format!("✓ Removed the rate limit of API key '{id}' ({name}).\n"),
        (false, Some(limit)) => format!(
            "API key '{id}' ({name}) already has the rate limit {limit}; nothing changed.\n"
        ),
        (false, None) => {
            format!("API key '{id}' ({name}) already has no rate limit; nothing changed.\n")
        }
    }
}

/// What `update` prints: the fields it changed.
pub fn updated_text(u: &Updated) -> String {
    let r = &u.record;
    let (id, name) = (visible(&r.id), visible(&r.name));
    match u.changed.is_empty() {
        false => format!(
            "✓ Updated API key '{id}' ({name}): {}.\n",
            u.changed.join(", ")
        ),
        true => format!("API key '{id}' ({name}) already has these values; nothing changed.\n"),
    }
}

/// Keys one per line, id and name, for what a bulk command did or would do.
fn named_lines(keys: &[Named]) -> String {
    keys.iter()
        .map(|k| format!("  {:<35} {}\n", visible(&k.id), visible(&k.name)))
        .collect()
}

/// What `compact` prints.
pub fn compacted_text(folded: usize) -> String {
    match folded {
        0 => "Nothing to fold: the keys file holds every change\n".to_string(),
        n => format!(
            "Folded {} into the keys file\n",
            crate::plural::count(n, "change")
        ),
    }
}

/// What `migrate --hash-secrets` prints: the keys changed, or with `dry_run` that would be.
pub fn migrated_text(changed: &[Named], dry_run: bool) -> String {
    match (changed.len(), dry_run) {
        (0, _) => "No plaintext secrets: nothing to change.\n".into(),
        (n, true) => format!(
            "Would replace {} with {}:\n{}Nothing written; run again with --yes to write.\n",
            count(n, "plaintext secret"),
            their_hashes(n),
            named_lines(changed)
        ),
        (n, false) => format!(
            "✓ Replaced {} with {}:\n{}",
            count(n, "plaintext secret"),
            their_hashes(n),
            named_lines(changed)
        ),
    }
}

/// `its SHA-256 hash`, `their SHA-256 hashes`.
fn their_hashes(n: usize) -> &'static str {
    match n {
        1 => "its SHA-256 hash",
        _ => "their SHA-256 hashes",
    }
}

/// What `import` prints: the keys added from `file`, or with `dry_run` that would be; `hashed`
/// of them had plaintext secrets, stored as their hashes.
pub fn imported_text(file: &str, added: &[Named], hashed: usize, dry_run: bool) -> String {
    let file = visible(file);
    if added.is_empty() {
        return format!("No keys in {file}: nothing to import.\n");
    }
    let hashed = match hashed {
        0 => String::new(),
        n => format!(
            "{} stored as {}.\n",
            count(n, "plaintext secret"),
            their_hashes(n)
        ),
    };
    match dry_run {
        true => format!(
            "Would add {} from {file}:\n{}{hashed}Nothing written; run again with --yes to write.\n",
            count(added.len(), "key"),
            named_lines(added)
        ),
        false => format!(
            "✓ Imported {} from {file}:\n{}{hashed}",
            count(added.len(), "key"),
            named_lines(added)
        ),
    }
}

/// What `export --output FILE` prints.
pub fn exported_text(file: &str, keys: usize) -> String {
    format!(
        "✓ Exported {} to {} (hashes only, unencrypted).\n",
        count(keys, "key"),
        visible(file)
    )
}

/// What `refresh` (and `create`/`delete` after writing) print when the server reloaded.
pub fn refreshed(keys_loaded: u64) -> String {
    format!("✓ Service refreshed - {keys_loaded} keys loaded")
}

/// The question `delete` asks on a terminal (no newline: the answer follows on the same line).
pub fn delete_prompt(r: &KeyRecord) -> String {
    format!(
        "Delete API key '{}' ({})? [y/N]: ",
        visible(&r.id),
        visible(&r.name)
    )
}

/// One key as `list --json` and `show --json` print it, and as the management API answers:
/// never its secret or hash.
pub fn public_json(r: &KeyRecord, now: UnixMillis) -> String {
    heare_auth_core::public_json(r, now)
}

/// The rate limit as `--rate-limit` takes it, or `none`.
fn limit_text(r: &KeyRecord) -> String {
    r.rate_limit
        .map_or_else(|| "none".into(), |l| l.to_string())
}

/// The credits as `--credits` and `--refill` set them, and when (their count starts there):
/// `1000, refilled to 1000/day (set T)`, `50, never refilled (set T)`, or `none`. What is left of
/// them is counted by the servers, not in the keys file.
fn credits_text(r: &KeyRecord) -> String {
    let Some(credits) = r.credits else {
        return "none".into();
    };
    let refill = match credits.refill {
        Some(refill) => format!("refilled to {refill}"),
        None => "never refilled".into(),
    };
    let since = format_timestamp(credits.since);
    format!("{}, {refill} (set {since})", credits.amount)
}

/// The scopes comma-separated, as `--scopes` takes them; `-` when none.
fn scopes_text(r: &KeyRecord) -> String {
    match r.scope_list() {
        [] => "-".into(),
        scopes => visible(&scopes.join(",")).into_owned(),
    }
}

/// `T by ACTOR`, `T`, or `-`: when a key was created or changed, and by whom.
fn at_by(at: &Option<String>, by: &Option<String>) -> String {
    let (at, by) = (at.as_deref().map(visible), by.as_deref().map(visible));
    match (at, by) {
        (Some(at), Some(by)) => format!("{at} by {by}"),
        (Some(at), None) => at.into_owned(),
        (None, Some(by)) => format!("- by {by}"),
        (None, None) => "-".into(),
    }
}

/// Until when a rotated key's previous secret verifies; `None` when it has none.
fn previous_text(r: &KeyRecord, now: UnixMillis) -> Option<String> {
    r.previous_secret_hash.as_ref()?;
    let until = visible(r.previous_expires_at.as_deref().unwrap_or("-"));
    Some(match r.state().previous {
        Some(Expiry::Unreadable) => {
            format!("previous secret never verifies (unreadable previous_expires_at {until})")
        }
        Some(end) if end.has_passed(now) => format!("previous secret stopped at {until}"),
        _ => format!("previous secret valid until {until}"),
    })
}

/// The head of the `list` table.
pub fn list_header() -> String {
    format!(
        "\nAPI Keys:\n{RULE}\n{:<30} {:<35} {:<15} {:<10} {}\n{RULE}\n",
        "Name", "Key ID", "Created", "Status", "Scopes"
    )
}

/// One key's lines of the `list` table; `detailed` adds expiry, status, metadata and the key's
/// `usage` when it is known.
pub fn list_row(
    k: &KeyRecord,
    detailed: bool,
    now: UnixMillis,
    usage: Option<&KeyUsage>,
) -> String {
    let created: String = k
        .created_at
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(10)
        .collect();
    let created = visible(&created);
    let status = k.status(now);
    let mut out = format!(
        "{:<30} {:<35} {:<15} {:<10} {}\n",
        visible(&k.name),
        visible(&k.id),
        created,
        status.word(),
        scopes_text(k)
    );
    if detailed {
        let expires = visible(k.expires_at.as_deref().unwrap_or("never"));
        out.push_str(&format!("    Status: {status}   Expires: {expires}\n"));
        if let Some(at) = &k.disabled_at {
            out.push_str(&format!("    Disabled at: {}\n", visible(at)));
        }
        if let Some(previous) = previous_text(k, now) {
            out.push_str(&format!("    Rotation: {previous}\n"));
        }
        out.push_str(&format!("    Rate limit: {}\n", limit_text(k)));
        out.push_str(&format!("    Credits: {}\n", credits_text(k)));
        out.push_str(&credits_left_line(usage, "    Credits left: "));
        out.push_str(&format!(
            "    Created: {}   Updated: {}\n",
            at_by(&k.created_at, &k.created_by),
            at_by(&k.updated_at, &k.updated_by)
        ));
        out.push_str(&usage_lines(usage, now, ["    Last used: ", "    Usage: "]));
        let metadata = k.compact_metadata();
        out.push_str(&format!("    Metadata: {}\n", visible(metadata.get())));
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
    let rows: String = keys
        .iter()
        .map(|k| list_row(k, detailed, now, None))
        .collect();
    list_header() + &rows + &list_footer(keys.len())
}

/// `list --json`: a JSON array on one line (the CLI writes it key by key).
#[cfg(test)]
pub fn list_json(keys: &[KeyRecord], now: UnixMillis) -> String {
    let items: Vec<String> = keys.iter().map(|k| public_json(k, now)).collect();
    format!("[{}]", items.join(","))
}

/// The `Credits left:` line (after `label`) of a key with credits whose `usage` is known.
fn credits_left_line(usage: Option<&KeyUsage>, label: &str) -> String {
    match usage.and_then(|u| u.credits) {
        Some(balance) => format!("{label}{}\n", usage::credits_left_text(balance)),
        None => String::new(),
    }
}

/// The `Last used:` and `Usage:` lines (after `labels`) of a key whose `usage` is known.
fn usage_lines(usage: Option<&KeyUsage>, now: UnixMillis, labels: [&str; 2]) -> String {
    let Some(usage) = usage else {
        return String::new();
    };
    let [last, counts] = labels;
    format!(
        "{last}{}\n{counts}{}\n",
        usage::last_used_text(usage),
        usage::counts_text(usage, now)
    )
}

/// One key as `list --json` and `show --json` print it: [`public_json`], and with its `usage`
/// when it is known (see [`usage::with_usage`]).
pub fn key_json(r: &KeyRecord, now: UnixMillis, usage: Option<&KeyUsage>) -> String {
    let json = public_json(r, now);
    match usage {
        Some(usage) => usage::with_usage(&json, usage, now),
        None => json,
    }
}

/// `show`: one key, with how its secret is stored but never the secret, and its `usage` when it
/// is known.
pub fn show_text(r: &KeyRecord, now: UnixMillis, usage: Option<&KeyUsage>) -> String {
    let stored = if r.secret.is_some() {
        "stored in plaintext (legacy)"
    } else {
        "stored hashed (SHA-256)"
    };
    // Its line breaks are the layout's (JSON writes those in strings as `\n`), each line shown
    // through `visible`.
    let pretty = pretty_json(&r.metadata);
    let lines: Vec<_> = pretty.split('\n').map(visible).collect();
    let metadata = lines.join("\n  ");
    let disabled = match (r.disabled == Some(true), &r.disabled_at) {
        (true, Some(at)) => format!("yes, since {}", visible(at)),
        (true, None) => "yes".into(),
        (false, _) => "no".into(),
    };
    let credits_left = credits_left_line(usage, "  Credits left: ");
    let usage = usage_lines(usage, now, ["  Last used: ", "  Usage:   "]);
    format!(
        "\nAPI key:\n  ID:      {}\n  Name:    {}\n  Created: {}\n  Updated: {}\n  Expires: {}\n  Status:  {}\n  Scopes:  {}\n  Rate limit: {}\n  Credits:    {}\n{credits_left}  Disabled: {disabled}\n  Rotation: {}\n  Secret:  {stored}\n{usage}  Metadata: {metadata}\n",
        visible(&r.id),
        visible(&r.name),
        at_by(&r.created_at, &r.created_by),
        at_by(&r.updated_at, &r.updated_by),
        visible(r.expires_at.as_deref().unwrap_or("never")),
        r.status(now),
        scopes_text(r),
        limit_text(r),
        credits_text(r),
        previous_text(r, now).unwrap_or_else(|| "-".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::{Credits, RateLimit, Refill};
    use serde_json::value::RawValue;
    use serde_json::Value;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn record(id: &str, name: &str, expires: Option<&str>) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some("ab".repeat(32)),
            name: name.into(),
            created_at: Some("2026-11-25T01:17:14.316000Z".into()),
            expires_at: expires.map(String::from),
            metadata: RawValue::from_string(r#"{"team": "core"}"#.into()).unwrap(),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn table_matches_the_original_layout() {
        let keys = [
            record("key_a", "Billing", None),
            record("key_b", "Zoë ✓", Some("2020-01-01")),
        ];
        // Python's f"{name:<30} {id:<35} {created:<15}", then status and scopes.
        let want = format!(
            "\nAPI Keys:\n{RULE}\nName                           Key ID                              Created         Status     Scopes\n{RULE}\n\
             Billing                        key_a                               2026-11-25      active     -\n\
             Zoë ✓                          key_b                               2026-11-25      expired    -\n\
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
        assert!(detailed.contains(
            "    Status: active   Expires: never\n    Rate limit: none\n    Credits: none\n    Created: 2026-11-25T01:17:14.316000Z   Updated: -\n    Metadata: {\"team\":\"core\"}\n"
        ));
    }

    /// A key in every lifecycle state at once: scoped, rotated, disabled, changed by someone.
    fn lifecycle(previous_until: &str) -> KeyRecord {
        KeyRecord {
            scopes: Some(vec!["read".into(), "keys:write".into()]),
            created_by: Some("ann@build-01".into()),
            updated_at: Some("2026-11-25T01:20:00.000000Z".into()),
            updated_by: Some("bob@build-02".into()),
            previous_secret_hash: Some("cd".repeat(32)),
            previous_expires_at: Some(previous_until.into()),
            rate_limit: RateLimit::parse("100/60s").ok(),
            ..record("key_r", "Rotated", None)
        }
    }

    #[test]
    fn list_shows_each_status_and_the_scopes() {
        let rotating = lifecycle("2026-11-25T02:17:14.316000Z");
        let disabled = KeyRecord {
            disabled: Some(true),
            disabled_at: Some("2026-11-25T01:19:00.000000Z".into()),
            ..record("key_d", "Off", None)
        };
        let unreadable = record("key_u", "Odd", Some("soon"));
        let keys = [
            record("key_a", "On", None),
            rotating.clone(),
            disabled,
            unreadable,
        ];
        let text = list_text(&keys, false, NOW);
        let pad = |s: &str, n: usize| format!("{s:<n$}");
        for (name, id, status, scopes) in [
            ("On", "key_a", "active", "-"),
            ("Rotated", "key_r", "rotating", "read,keys:write"),
            ("Off", "key_d", "disabled", "-"),
            ("Odd", "key_u", "expired", "-"),
        ] {
            let row = format!(
                "{} {} {} {} {scopes}\n",
                pad(name, 30),
                pad(id, 35),
                pad("2026-11-25", 15),
                pad(status, 10)
            );
            assert!(text.contains(&row), "{row}{text}");
        }
        let detailed = list_text(&keys, true, NOW);
        for line in [
            "    Rotation: previous secret valid until 2026-11-25T02:17:14.316000Z\n    Rate limit: 100/60s\n",
            "    Created: 2026-11-25T01:17:14.316000Z by ann@build-01   Updated: 2026-11-25T01:20:00.000000Z by bob@build-02\n",
            "    Status: disabled   Expires: never\n    Disabled at: 2026-11-25T01:19:00.000000Z\n",
            "    Status: expired (unreadable expires_at)   Expires: soon\n",
        ] {
            assert!(detailed.contains(line), "{line}{detailed}");
        }
        // After its grace period a previous secret is shown as stopped; the key is active.
        let over = [lifecycle("2026-11-25T00:00:00Z")];
        assert!(list_text(&over, false, NOW).contains(" active     read,keys:write\n"));
        assert!(list_text(&over, true, NOW)
            .contains("    Rotation: previous secret stopped at 2026-11-25T00:00:00Z\n"));
    }

    #[test]
    fn json_has_the_lifecycle_fields_but_no_hash() {
        let mut key = lifecycle("2026-11-25T02:17:14.316000Z");
        key.disabled = Some(true);
        key.disabled_at = Some("2026-11-25T01:19:00.000000Z".into());
        let v: Value = serde_json::from_str(&public_json(&key, NOW)).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "key_r", "name": "Rotated", "status": "disabled",
                "scopes": ["read", "keys:write"], "rate_limit": "100/60s", "credits": null,
                "created_at": "2026-11-25T01:17:14.316000Z", "created_by": "ann@build-01",
                "updated_at": "2026-11-25T01:20:00.000000Z", "updated_by": "bob@build-02",
                "expires_at": null, "expired": false, "disabled": true,
                "disabled_at": "2026-11-25T01:19:00.000000Z",
                "previous_expires_at": "2026-11-25T02:17:14.316000Z",
                "stored_as": "sha256",
                "metadata": {"team": "core"},
            })
        );
        let plain: Value =
            serde_json::from_str(&public_json(&record("key_a", "A", None), NOW)).unwrap();
        assert_eq!(
            (&plain["status"], &plain["scopes"], &plain["disabled"]),
            (&json!("active"), &json!([]), &json!(false))
        );
        assert_eq!(plain["previous_expires_at"], Value::Null);
        assert_eq!(plain["rate_limit"], Value::Null);
    }

    #[test]
    fn show_tells_the_whole_lifecycle() {
        let mut key = lifecycle("2026-11-25T02:17:14.316000Z");
        assert_eq!(
            show_text(&key, NOW, None),
            "\nAPI key:\n  ID:      key_r\n  Name:    Rotated\n  \
             Created: 2026-11-25T01:17:14.316000Z by ann@build-01\n  \
             Updated: 2026-11-25T01:20:00.000000Z by bob@build-02\n  Expires: never\n  \
             Status:  rotating\n  Scopes:  read,keys:write\n  Rate limit: 100/60s\n  \
             Credits:    none\n  Disabled: no\n  \
             Rotation: previous secret valid until 2026-11-25T02:17:14.316000Z\n  \
             Secret:  stored hashed (SHA-256)\n  Metadata: {\n    \"team\": \"core\"\n  }\n"
        );
        key.disabled = Some(true);
        key.disabled_at = Some("2026-11-25T01:19:00.000000Z".into());
        key.previous_expires_at = Some("later".into());
        let text = show_text(&key, NOW, None);
        assert!(text.contains("  Status:  disabled\n"), "{text}");
        assert!(
            text.contains("  Disabled: yes, since 2026-11-25T01:19:00.000000Z\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  Rotation: previous secret never verifies (unreadable previous_expires_at later)\n"
            ),
            "{text}"
        );
        let plain = show_text(&record("key_a", "A", None), NOW, None);
        for line in [
            "  Scopes:  -\n",
            "  Rate limit: none\n",
            "  Disabled: no\n",
            "  Rotation: -\n",
            "  Updated: -\n",
        ] {
            assert!(plain.contains(line), "{line}{plain}");
        }
    }

    #[test]
    fn nothing_but_create_and_rotate_shows_a_secret() {
        let mut legacy = record("key_l", "Legacy", Some("soon"));
        legacy.secret = Some("sec_TOPSECRET".into());
        let rotated = lifecycle("2026-11-25T02:17:14.316000Z");
        let keys = [
            legacy.clone(),
            record("key_h", "Hashed", None),
            rotated.clone(),
        ];
        for text in [
            list_text(&keys, false, NOW),
            list_text(&keys, true, NOW),
            list_json(&keys, NOW),
            show_text(&legacy, NOW, None),
            show_text(&rotated, NOW, None),
            public_json(&legacy, NOW),
            public_json(&rotated, NOW),
            toggled_text(&Toggled {
                record: rotated.clone(),
                changed: true,
            }),
            toggled_json(&Toggled {
                record: rotated.clone(),
                changed: true,
            }),
        ] {
            assert!(
                !text.contains("TOPSECRET")
                    && !text.contains(&"ab".repeat(32))
                    && !text.contains(&"cd".repeat(32)),
                "{text}"
            );
        }
        assert!(show_text(&legacy, NOW, None).contains("Secret:  stored in plaintext (legacy)"));
        assert!(show_text(&keys[1], NOW, None).contains("Secret:  stored hashed (SHA-256)"));
        assert_eq!(
            legacy.status(NOW).to_string(),
            "expired (unreadable expires_at)"
        );
    }

    #[test]
    fn rotated_block_and_json() {
        let rotated = Rotated {
            record: lifecycle("2026-11-25T02:17:14.316000Z"),
            secret: "sec_0new".into(),
            replaced_previous: false,
        };
        assert_eq!(
            rotated_text(&rotated, NOW),
            "\nRotated API key:\n  ID:     key_r\n  Secret: sec_0new\n  Name:   Rotated\n  \
             Previous secret valid until: 2026-11-25T02:17:14.316000Z\n\n\
             ⚠️  Save the SECRET securely - it will not be shown again!\n    \
             Use the ID for reference and logging.\n"
        );
        let v: Value = serde_json::from_str(&rotated_json(&rotated)).unwrap();
        assert_eq!(
            v,
            json!({"id": "key_r", "secret": "sec_0new", "name": "Rotated",
                   "previous_expires_at": "2026-11-25T02:17:14.316000Z", "replaced_previous": false})
        );
        let mut again = Rotated {
            replaced_previous: true,
            ..rotated
        };
        again.record.previous_secret_hash = None;
        again.record.previous_expires_at = None;
        again.record.disabled = Some(true);
        let text = rotated_text(&again, NOW);
        for line in [
            "  Previous secret: stopped working now (no grace period)\n\n",
            "⚠️  The key was still rotating: the secret before the previous one stopped working now.\n",
            "⚠️  The key is disabled: neither secret verifies until it is enabled again.\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        let v: Value = serde_json::from_str(&rotated_json(&again)).unwrap();
        assert_eq!(
            (&v["previous_expires_at"], &v["replaced_previous"]),
            (&Value::Null, &json!(true))
        );
    }

    #[test]
    fn updated_names_the_fields_it_changed() {
        let mut u = Updated {
            record: record("key_a", "Billing service", None),
            changed: vec!["name", "scopes"],
        };
        assert_eq!(
            updated_text(&u),
            "✓ Updated API key 'key_a' (Billing service): name, scopes.\n"
        );
        u.changed.clear();
        assert_eq!(
            updated_text(&u),
            "API key 'key_a' (Billing service) already has these values; nothing changed.\n"
        );
    }

    #[test]
    fn toggled_says_what_changed() {
        let mut off = Toggled {
            record: KeyRecord {
                disabled: Some(true),
                disabled_at: Some("2026-11-25T01:19:00.000000Z".into()),
                ..record("key_a", "Billing", None)
            },
            changed: true,
        };
        assert_eq!(
            toggled_text(&off),
            "✓ Disabled API key 'key_a' (Billing).\n"
        );
        let v: Value = serde_json::from_str(&toggled_json(&off)).unwrap();
        assert_eq!(
            v,
            json!({"id": "key_a", "name": "Billing", "disabled": true,
                   "disabled_at": "2026-11-25T01:19:00.000000Z", "changed": true})
        );
        off.changed = false;
        assert_eq!(
            toggled_text(&off),
            "API key 'key_a' (Billing) is already disabled; nothing changed.\n"
        );
        let on = Toggled {
            record: record("key_a", "Billing", None),
            changed: true,
        };
        assert_eq!(toggled_text(&on), "✓ Enabled API key 'key_a' (Billing).\n");
        let still = Toggled {
            changed: false,
            ..on
        };
        assert_eq!(
            toggled_text(&still),
            "API key 'key_a' (Billing) is already enabled; nothing changed.\n"
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
    fn created_json_prints_metadata_of_any_depth_it_holds() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let c = Created {
            record: KeyRecord {
                metadata: RawValue::from_string(deep.clone()).unwrap(),
                ..record("key_n", "New", None)
            },
            secret: "sec_0abc".into(),
        };
        let printed = created_json(&c);
        assert!(
            printed.starts_with(r#"{"id":"key_n","secret":"sec_0abc","name":"New","#),
            "{printed}"
        );
        assert!(
            printed.ends_with(&format!(r#""metadata":{deep}}}"#)),
            "{printed}"
        );
    }

    /// Terminal controls: a title change, a screen clear, line breaks, DEL, a C1 CSI, and bidi
    /// overrides.
    const CONTROLS: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n\t\u{7f}\u{9b}\u{202e}\u{2066}";

    /// A key whose every text field ends in `mark`.
    fn marked(mark: &str) -> KeyRecord {
        let text = |s: &str| format!("{s}{mark}");
        KeyRecord {
            id: text("key_e"),
            name: text("Evil"),
            created_by: Some(text("ann")),
            updated_at: Some(text("2026")),
            updated_by: Some(text("bob")),
            expires_at: Some(text("soon")),
            disabled: Some(true),
            disabled_at: Some(text("then")),
            previous_secret_hash: Some("cd".repeat(32)),
            previous_expires_at: Some(text("later")),
            metadata: RawValue::from_string(format!(
                "{{\"t\": \"x{}y\", \"e\": \"\\u001b[2J\\n\"}}",
                mark.replace(['\r', '\n', '\t', '\u{1b}', '\u{7}'], "")
            ))
            .unwrap(),
            ..record("key_e", "Evil", None)
        }
    }

    /// Whether `text` has a control character other than the line breaks it is laid out with.
    fn obeys_controls(text: &str) -> bool {
        text.chars()
            .any(|c| c != '\n' && heare_auth_core::is_control(c))
    }

    #[test]
    fn text_output_shows_control_characters_and_json_keeps_them_exact() {
        let evil = marked(CONTROLS);
        let plain = marked("");
        let toggled = |record: &KeyRecord| Toggled {
            record: record.clone(),
            changed: false,
        };
        let named = |r: &KeyRecord| {
            vec![Named {
                id: r.id.clone(),
                name: r.name.clone(),
            }]
        };
        let outputs = |r: &KeyRecord| {
            let created = Created {
                record: r.clone(),
                secret: "sec_0abc".into(),
            };
            let rotated = Rotated {
                record: r.clone(),
                secret: "sec_0new".into(),
                replaced_previous: false,
            };
            vec![
                list_text(std::slice::from_ref(r), false, NOW),
                list_text(std::slice::from_ref(r), true, NOW),
                show_text(r, NOW, None),
                delete_prompt(r),
                toggled_text(&toggled(r)),
                limited_text(&toggled(r)),
                created_text(&created),
                rotated_text(&rotated, NOW),
                migrated_text(&named(r), true),
                imported_text("b.json", &named(r), 0, false),
            ]
        };
        for (shown, laid_out) in outputs(&evil).iter().zip(outputs(&plain)) {
            assert!(!obeys_controls(shown), "{shown:?}");
            // Not one line more than the same output for a key without them.
            assert_eq!(shown.lines().count(), laid_out.lines().count(), "{shown}");
            assert!(
                shown.contains(
                    "Evil\\x1b]0;pwned\\x07\\x1b[2J\\r\\n\\t\\x7f\\u{9b}\\u{202e}\\u{2066}"
                ),
                "{shown}"
            );
        }
        let show = show_text(&evil, NOW, None);
        for line in [
            "  ID:      key_e\\x1b]0;pwned",
            "  Created: 2026-11-25T01:17:14.316000Z by ann\\x1b]0;pwned",
            "  Disabled: yes, since then\\x1b]0;",
            "    \"t\": \"x]0;pwned[2J\\x7f\\u{9b}\\u{202e}\\u{2066}y\",\n",
            "    \"e\": \"\\u001b[2J\\n\"\n",
        ] {
            assert!(show.contains(line), "{line}\n{show}");
        }
        let detailed = list_text(std::slice::from_ref(&evil), true, NOW);
        assert!(
            detailed
                .contains("    Metadata: {\"t\":\"x]0;pwned[2J\\x7f\\u{9b}\\u{202e}\\u{2066}y\""),
            "{detailed}"
        );
        // JSON is exact: its own escapes show these characters, and they read back as they were.
        let v: Value = serde_json::from_str(&public_json(&evil, NOW)).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["name"].as_str()),
            (Some(evil.id.as_str()), Some(evil.name.as_str()))
        );
        assert_eq!(v["created_by"].as_str(), evil.created_by.as_deref());
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
        assert_eq!(v["scopes"], json!([]));
        let p: Value = serde_json::from_str(&public_json(&c.record, NOW)).unwrap();
        assert_eq!(p["expired"], false);
        assert!(p.get("secret_hash").is_none() && p.get("secret").is_none());
        let scoped = Created {
            record: KeyRecord {
                scopes: Some(vec!["read".into(), "write".into()]),
                ..c.record
            },
            ..c
        };
        assert!(created_text(&scoped).contains(
            "  Name:   New\n  Scopes: read,write\n  Created: 2026-11-25T01:17:14.316000Z\n"
        ));
        let v: Value = serde_json::from_str(&created_json(&scoped)).unwrap();
        assert_eq!(v["scopes"], json!(["read", "write"]));
    }

    #[test]
    fn a_rate_limit_is_shown_where_it_is_set() {
        let c = Created {
            record: KeyRecord {
                rate_limit: RateLimit::parse("2/60s").ok(),
                ..record("key_n", "New", None)
            },
            secret: "sec_0abc".into(),
        };
        assert!(created_text(&c).contains("  Name:   New\n  Rate limit: 2/60s\n  Created: "));
        let v: Value = serde_json::from_str(&created_json(&c)).unwrap();
        assert_eq!(v["rate_limit"], "2/60s");
        let unlimited = Created {
            record: record("key_n", "New", None),
            secret: "sec_0abc".into(),
        };
        assert!(!created_text(&unlimited).contains("Rate limit"));
        let v: Value = serde_json::from_str(&created_json(&unlimited)).unwrap();
        assert_eq!(v["rate_limit"], Value::Null);
    }

    #[test]
    fn credits_are_shown_with_their_refill_and_when_they_were_set() {
        let set = 1_796_549_400_000; // 2026-12-06T09:30:00Z
        let daily = KeyRecord {
            credits: Some(Credits {
                amount: 1000,
                refill: Refill::parse("1000/day").ok(),
                since: set,
            }),
            ..record("key_c", "Metered", None)
        };
        let once = KeyRecord {
            credits: Some(Credits {
                amount: 50,
                refill: None,
                since: set,
            }),
            ..record("key_o", "Trial", None)
        };
        let show = show_text(&daily, NOW, None);
        assert!(
            show.contains(
                "  Rate limit: none\n  Credits:    1000, refilled to 1000/day (set 2026-12-06T09:30:00.000000Z)\n  Disabled: no\n"
            ),
            "{show}"
        );
        assert!(show_text(&once, NOW, None)
            .contains("  Credits:    50, never refilled (set 2026-12-06T09:30:00.000000Z)\n"));
        let detailed = list_text(&[daily.clone(), once.clone()], true, NOW);
        for line in [
            "    Rate limit: none\n    Credits: 1000, refilled to 1000/day (set 2026-12-06T09:30:00.000000Z)\n",
            "    Credits: 50, never refilled (set 2026-12-06T09:30:00.000000Z)\n",
        ] {
            assert!(detailed.contains(line), "{line}{detailed}");
        }
        // Not in the plain table, which has a column per field and none for them.
        assert!(!list_text(std::slice::from_ref(&daily), false, NOW).contains("Credits"));
        let created = Created {
            record: daily.clone(),
            secret: "sec_0abc".into(),
        };
        assert!(created_text(&created).contains(
            "  Name:   Metered\n  Credits: 1000, refilled to 1000/day (set 2026-12-06T09:30:00.000000Z)\n  Created: "
        ));
        let v: Value = serde_json::from_str(&created_json(&created)).unwrap();
        assert_eq!(
            v["credits"],
            json!({"amount": 1000, "refill": "1000/day", "since": "2026-12-06T09:30:00.000000Z"})
        );
        let v: Value = serde_json::from_str(&public_json(&once, NOW)).unwrap();
        assert_eq!(
            v["credits"],
            json!({"amount": 50, "refill": null, "since": "2026-12-06T09:30:00.000000Z"})
        );
        let plain = Created {
            record: record("key_n", "New", None),
            secret: "sec_0abc".into(),
        };
        assert!(!created_text(&plain).contains("Credits"));
        let v: Value = serde_json::from_str(&public_json(&plain.record, NOW)).unwrap();
        assert_eq!(v["credits"], Value::Null);
    }

    #[test]
    fn usage_is_shown_beside_the_credits_and_before_the_metadata() {
        let daily = KeyRecord {
            credits: Some(Credits {
                amount: 1000,
                refill: Refill::parse("1000/day").ok(),
                since: NOW,
            }),
            ..record("key_c", "Metered", None)
        };
        let usage = KeyUsage {
            last_used: Some(NOW - 60_000),
            days: vec![heare_auth_core::DayCount {
                day: heare_auth_core::day_of(NOW),
                valid: 12,
                refused: 1,
            }],
            credits: Some(heare_auth_core::Balance {
                remaining: 940,
                refills_at: Some(1_795_651_200_000),
            }),
        };
        assert_eq!(
            show_text(&daily, NOW, Some(&usage)),
            "\nAPI key:\n  ID:      key_c\n  Name:    Metered\n  \
             Created: 2026-11-25T01:17:14.316000Z\n  Updated: -\n  Expires: never\n  \
             Status:  active\n  Scopes:  -\n  Rate limit: none\n  \
             Credits:    1000, refilled to 1000/day (set 2026-11-25T01:17:14.316000Z)\n  \
             Credits left: 940, refilled at 2026-11-26T00:00:00.000000Z\n  Disabled: no\n  \
             Rotation: -\n  Secret:  stored hashed (SHA-256)\n  \
             Last used: 2026-11-25T01:16:14.316000Z\n  \
             Usage:   today 12 valid, 1 refused; last 30 days 12 valid, 1 refused\n  \
             Metadata: {\n    \"team\": \"core\"\n  }\n"
        );
        let row = list_row(&daily, true, NOW, Some(&usage));
        assert!(
            row.contains(
                "    Credits: 1000, refilled to 1000/day (set 2026-11-25T01:17:14.316000Z)\n    \
                 Credits left: 940, refilled at 2026-11-26T00:00:00.000000Z\n    \
                 Created: 2026-11-25T01:17:14.316000Z   Updated: -\n    \
                 Last used: 2026-11-25T01:16:14.316000Z\n    \
                 Usage: today 12 valid, 1 refused; last 30 days 12 valid, 1 refused\n    \
                 Metadata: {\"team\":\"core\"}\n"
            ),
            "{row}"
        );
        // Without credits, no line for them; the plain table has no room for usage.
        let plain = record("key_a", "A", None);
        let usage = KeyUsage {
            credits: None,
            ..usage
        };
        let shown = show_text(&plain, NOW, Some(&usage));
        assert!(!shown.contains("Credits left"), "{shown}");
        assert_eq!(
            shown.lines().count(),
            show_text(&plain, NOW, None).lines().count() + 2
        );
        assert_eq!(
            list_row(&plain, false, NOW, Some(&usage)),
            list_row(&plain, false, NOW, None)
        );
        let v: Value = serde_json::from_str(&key_json(&plain, NOW, Some(&usage))).unwrap();
        assert_eq!(v["last_used_at"], "2026-11-25T01:16:14.316000Z");
        assert_eq!(v["usage"]["today"], json!({"valid": 12, "refused": 1}));
        assert!(v.get("credits_left").is_none());
        assert_eq!(key_json(&daily, NOW, None), public_json(&daily, NOW));
    }

    #[test]
    fn set_rate_limit_says_what_changed() {
        let mut t = Toggled {
            record: KeyRecord {
                rate_limit: RateLimit::parse("10/500ms").ok(),
                ..record("key_a", "Billing", None)
            },
            changed: true,
        };
        assert_eq!(
            limited_text(&t),
            "✓ Set the rate limit of API key 'key_a' (Billing) to 10/500ms.\n"
        );
        t.changed = false;
        assert_eq!(
            limited_text(&t),
            "API key 'key_a' (Billing) already has the rate limit 10/500ms; nothing changed.\n"
        );
        t.record.rate_limit = None;
        assert_eq!(
            limited_text(&t),
            "API key 'key_a' (Billing) already has no rate limit; nothing changed.\n"
        );
        t.changed = true;
        assert_eq!(
            limited_text(&t),
            "✓ Removed the rate limit of API key 'key_a' (Billing).\n"
        );
    }

    fn named(pairs: &[(&str, &str)]) -> Vec<Named> {
        pairs
            .iter()
            .map(|(id, name)| Named {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect()
    }

    #[test]
    fn migrate_and_import_list_ids_and_names() {
        let one = named(&[("key_a", "Legacy A")]);
        let two = named(&[("key_a", "Legacy A"), ("key_b", "Legacy B")]);
        let row = |id: &str, name: &str| format!("  {id:<35} {name}\n");
        assert_eq!(
            migrated_text(&two, true),
            format!(
                "Would replace 2 plaintext secrets with their SHA-256 hashes:\n{}{}\
                 Nothing written; run again with --yes to write.\n",
                row("key_a", "Legacy A"),
                row("key_b", "Legacy B")
            )
        );
        assert_eq!(
            migrated_text(&one, false),
            format!(
                "✓ Replaced 1 plaintext secret with its SHA-256 hash:\n{}",
                row("key_a", "Legacy A")
            )
        );
        for dry_run in [true, false] {
            assert_eq!(
                migrated_text(&[], dry_run),
                "No plaintext secrets: nothing to change.\n"
            );
            assert_eq!(
                imported_text("b.json", &[], 0, dry_run),
                "No keys in b.json: nothing to import.\n"
            );
        }
        assert_eq!(
            imported_text("b.json", &two, 1, true),
            format!(
                "Would add 2 keys from b.json:\n{}{}1 plaintext secret stored as its SHA-256 \
                 hash.\nNothing written; run again with --yes to write.\n",
                row("key_a", "Legacy A"),
                row("key_b", "Legacy B")
            )
        );
        assert_eq!(
            imported_text("b.json", &one, 0, false),
            format!(
                "✓ Imported 1 key from b.json:\n{}",
                row("key_a", "Legacy A")
            )
        );
        assert_eq!(
            exported_text("b.json", 3),
            "✓ Exported 3 keys to b.json (hashes only, unencrypted).\n"
        );
    }
}
