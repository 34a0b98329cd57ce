//! What `identify` and `scan` print, as pure functions: a secret only ever masked, every text
//! from the keys file or a path through [`visible`], or JSON.

use serde_json::{json, Value};

use heare_auth_core::{visible, UnixMillis};

use crate::commands::identify::{Matched, Owner, Reading, Shape};
use crate::commands::scan::Found;
use crate::plural::count;

/// What `identify` prints: the secret masked, its form, and whose it is in `store`.
pub fn identity_text(
    reading: &Reading,
    owner: Option<Owner<'_>>,
    store: &str,
    now: UnixMillis,
) -> String {
    let mut out = format!(
        "Secret:   {}\nFormat:   {}\n",
        reading.masked(),
        format_text(reading)
    );
    let Some(owner) = owner else {
        out.push_str(&format!(
            "Key:      none: no key in {} has this secret, as its current or previous one\n",
            visible(store)
        ));
        return out;
    };
    let r = owner.record;
    out.push_str(&format!(
        "Key:      {} ({})\n",
        visible(&r.id),
        visible(&r.name)
    ));
    out.push_str(&match owner.matched {
        Matched::Current => "Matches:  its current secret\n".to_string(),
        Matched::Previous => {
            let until = visible(
                r.previous_expires_at
                    .as_deref()
                    .unwrap_or("an unreadable time"),
            )
            .into_owned();
            let grace = match owner.grace_over(now) {
                true => format!("its grace period ended at {until}"),
                false => format!("its grace period lasts until {until}"),
            };
            format!("Matches:  its previous secret, replaced by a rotation; {grace}\n")
        }
    });
    out.push_str(&format!("Status:   {}\n", owner.status(now)));
    out.push_str(match owner.verifies(now) {
        true => "Verifies: yes: rotate the key (or disable it) to stop this secret working\n",
        false => "Verifies: no\n",
    });
    out
}

/// The `Format:` line of `identify`.
fn format_text(reading: &Reading) -> String {
    let prefix = || {
        let prefix = reading.prefix.as_deref().unwrap_or_default();
        match reading.deployment {
            true => format!("prefix {prefix}, this deployment's"),
            false => format!("prefix {prefix}, not this deployment's"),
        }
    };
    match reading.shape {
        Shape::Checksummed => format!("checksummed ({}), checksum right", prefix()),
        Shape::BadChecksum => format!(
            "checksummed ({}), checksum WRONG: a mistyped or made-up secret, which no server \
             accepts",
            prefix()
        ),
        Shape::Earlier => {
            "earlier (sec_0…, made before secrets had a checksum): no checksum to check".into()
        }
        Shape::Other => {
            "not one heare-auth makes (a legacy or imported secret, or not a secret at all): \
             no checksum to check"
                .into()
        }
    }
}

/// `identify --json`.
pub fn identity_json(
    reading: &Reading,
    owner: Option<Owner<'_>>,
    store: &str,
    now: UnixMillis,
) -> String {
    let checksum = match reading.shape {
        Shape::Checksummed => Some("right"),
        Shape::BadChecksum => Some("wrong"),
        Shape::Earlier | Shape::Other => None,
    };
    json!({
        "masked": reading.masked(),
        "length": reading.chars,
        "format": reading.shape.word(),
        "checksum": checksum,
        "prefix": reading.prefix,
        "deployment_prefix": reading.deployment,
        "store": store,
        "key": owner.map(|o| key_json(o, now)),
    })
    .to_string()
}

/// The key a secret belongs to, as `identify --json` and `scan --json` give it.
fn key_json(owner: Owner<'_>, now: UnixMillis) -> Value {
    let r = owner.record;
    let mut key = json!({
        "id": r.id,
        "name": r.name,
        "status": owner.status(now).word(),
        "matches": owner.matched.word(),
        "verifies": owner.verifies(now),
    });
    if owner.matched == Matched::Previous {
        key["previous_expires_at"] = json!(r.previous_expires_at);
        key["grace_over"] = json!(owner.grace_over(now));
    }
    key
}

/// One line of `scan`: `PATH:LINE:COLUMN: MASKED ID (NAME) STATUS`, or `unknown`.
pub fn finding_text(
    path: &str,
    found: &Found,
    owner: Option<Owner<'_>>,
    now: UnixMillis,
) -> String {
    let whose = match owner {
        None => "unknown".to_string(),
        Some(o) => {
            let r = o.record;
            let mut whose = format!(
                "{} ({}) {}",
                visible(&r.id),
                visible(&r.name),
                o.status(now).word()
            );
            if o.matched == Matched::Previous {
                whose.push_str(match o.grace_over(now) {
                    true => ", its previous secret (grace period over)",
                    false => ", its previous secret (in its grace period)",
                });
            }
            whose
        }
    };
    format!(
        "{}:{}:{}: {} {whose}\n",
        visible(path),
        found.line,
        found.column,
        found.masked()
    )
}

/// One finding of `scan --json`.
pub fn finding_json(path: &str, found: &Found, owner: Option<Owner<'_>>, now: UnixMillis) -> Value {
    json!({
        "path": path,
        "line": found.line,
        "column": found.column,
        "masked": found.masked(),
        "prefix": found.prefix(),
        "key": owner.map(|o| key_json(o, now)),
    })
}

/// What `scan` found, in numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files read to their end.
    pub files: u64,
    /// Binary files skipped.
    pub binary: u64,
    /// Paths that could not be read.
    pub unreadable: u64,
    /// Secrets found.
    pub found: u64,
    /// Files they were found in.
    pub files_with: u64,
    /// Secrets found that verify now.
    pub verifying: u64,
    /// Secrets found that belong to no key in the store (or the store was not read).
    pub unknown: u64,
    /// Whether the store was read to name the keys.
    pub looked_up: bool,
}

/// The line `scan` ends with, on standard error.
pub fn tally_text(t: &Tally) -> String {
    let mut out = match t.found {
        0 => "scan: no secret found".to_string(),
        n => format!(
            "scan: {} found in {}",
            count(n as usize, "secret"),
            count(t.files_with as usize, "file")
        ),
    };
    out.push_str(&format!(" ({} read", count(t.files as usize, "file")));
    if t.binary > 0 {
        out.push_str(&format!(", {} binary skipped", t.binary));
    }
    if t.unreadable > 0 {
        out.push_str(&format!(", {} unreadable", t.unreadable));
    }
    out.push(')');
    if t.found > 0 && t.looked_up {
        out.push_str(&format!(
            "; {} of a known key, {} still verifying",
            t.found - t.unknown,
            t.verifying
        ));
    }
    out + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::identify::Owners;
    use crate::commands::scan::find_all;
    use heare_auth_core::{format_timestamp, generate_secret, hash_secret, KeyRecord, Prefix};
    use rand_core::OsRng;

    const NOW: UnixMillis = 1_795_569_434_316;

    #[test]
    fn identify_never_shows_more_than_the_prefix() {
        let secret = generate_secret(&Prefix::secret(), &mut OsRng, NOW);
        let old = generate_secret(&Prefix::secret(), &mut OsRng, NOW);
        let owners = Owners::of(vec![KeyRecord {
            id: "key_a".into(),
            name: "Billing\x1b[2J".into(),
            secret_hash: Some(hash_secret(&secret).to_hex()),
            previous_secret_hash: Some(hash_secret(&old).to_hex()),
            previous_expires_at: Some(format_timestamp(NOW - 1)),
            disabled: Some(true),
            ..KeyRecord::default()
        }]);
        let reading = Reading::of(&secret, &Prefix::secret());
        let text = identity_text(&reading, owners.owner(&secret), "./keys.json", NOW);
        assert_eq!(
            text,
            "Secret:   sec_1…(62 chars)\n\
             Format:   checksummed (prefix sec_, this deployment's), checksum right\n\
             Key:      key_a (Billing\\x1b[2J)\n\
             Matches:  its current secret\n\
             Status:   disabled\n\
             Verifies: no\n"
        );
        let previous = identity_text(&reading, owners.owner(&old), "./keys.json", NOW);
        assert!(previous.contains(
            "Matches:  its previous secret, replaced by a rotation; its grace period ended at \
             2026-11-25T01:17:14.315000Z\n"
        ));
        let none = identity_text(&reading, None, "./keys.json", NOW);
        assert!(none.ends_with(
            "Key:      none: no key in ./keys.json has this secret, as its current or previous \
             one\n"
        ));
        let json: Value = serde_json::from_str(&identity_json(
            &reading,
            owners.owner(&old),
            "s3://b/k",
            NOW,
        ))
        .unwrap();
        assert_eq!(
            json,
            json!({
                "masked": "sec_1…(62 chars)", "length": 62, "format": "checksummed",
                "checksum": "right", "prefix": "sec_", "deployment_prefix": true,
                "store": "s3://b/k",
                "key": {"id": "key_a", "name": "Billing\x1b[2J", "status": "disabled",
                        "matches": "previous", "verifies": false,
                        "previous_expires_at": "2026-11-25T01:17:14.315000Z", "grace_over": true},
            })
        );
        for text in [text, previous, none, json.to_string()] {
            assert!(!text.contains(&secret[5..]) && !text.contains(&old[5..]));
        }
    }

    #[test]
    fn a_finding_is_a_grep_like_line_with_the_secret_masked() {
        let secret = generate_secret(&Prefix::secret(), &mut OsRng, NOW);
        let found = find_all(None, format!("x = {secret}").as_bytes(), 4096).remove(0);
        let owners = Owners::of(vec![KeyRecord {
            id: "key_a".into(),
            name: "A".into(),
            secret_hash: Some(hash_secret(&secret).to_hex()),
            ..KeyRecord::default()
        }]);
        assert_eq!(
            finding_text("src/a\n.py", &found, owners.owner(&secret), NOW),
            "src/a\\n.py:1:5: sec_1…(62 chars) key_a (A) active\n"
        );
        assert_eq!(
            finding_text("b", &found, None, NOW),
            "b:1:5: sec_1…(62 chars) unknown\n"
        );
        let json = finding_json("b", &found, None, NOW);
        assert_eq!(
            json,
            json!({"path": "b", "line": 1, "column": 5, "masked": "sec_1…(62 chars)",
                   "prefix": "sec_", "key": null})
        );
    }

    #[test]
    fn the_tally_says_what_was_found_and_skipped() {
        let mut t = Tally {
            files: 12,
            ..Tally::default()
        };
        assert_eq!(tally_text(&t), "scan: no secret found (12 files read)\n");
        t = Tally {
            files: 3,
            binary: 1,
            unreadable: 2,
            found: 4,
            files_with: 2,
            verifying: 1,
            unknown: 2,
            looked_up: true,
        };
        assert_eq!(
            tally_text(&t),
            "scan: 4 secrets found in 2 files (3 files read, 1 binary skipped, 2 unreadable); \
             2 of a known key, 1 still verifying\n"
        );
        t.looked_up = false;
        assert_eq!(
            tally_text(&t),
            "scan: 4 secrets found in 2 files (3 files read, 1 binary skipped, 2 unreadable)\n"
        );
    }
}
