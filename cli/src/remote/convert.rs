//! A key as the management API shows it (core's `public_json`) read back into a [`KeyRecord`],
//! and its usage into a [`KeyUsage`], so that a key from a server prints through the same
//! `output.rs` functions, byte for byte, as the same key read from the store.

use serde::Deserialize;
use serde_json::value::RawValue;

use heare_auth_core::{
    day_of, parse_timestamp, visible, Balance, Credits, DayCount, KeyRecord, RateLimit, Refill,
};

use crate::commands::Created;
use crate::usage::KeyUsage;

/// Stands in for the hash of a rotated key's previous secret, which the API never shows: the
/// record needs one beside `previous_expires_at` for its status (`rotating`) and its rotation
/// line, as the store's record has. Never printed: no output shows a hash.
const PREVIOUS_SECRET_PLACEHOLDER: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Stands in for a legacy plaintext secret (`"stored_as": "plaintext"`), so that `show`
/// says how the secret is kept, as for the store's record. Never printed: no output shows a
/// secret but a new one.
const PLAINTEXT_SECRET_PLACEHOLDER: &str = "(kept in plaintext on the server; not shown)";

/// One key as the API shows it: never its secret or hash. `status` and `expired` are left
/// out: the output works them out from the rest, at the CLI's own `now`, as for the store.
#[derive(Debug, Deserialize)]
pub struct PublicKey {
    id: String,
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    rate_limit: Option<String>,
    /// Absent from a server older than credits.
    #[serde(default)]
    credits: Option<ShownCredits>,
    created_at: Option<String>,
    created_by: Option<String>,
    updated_at: Option<String>,
    updated_by: Option<String>,
    expires_at: Option<String>,
    #[serde(default)]
    disabled: bool,
    disabled_at: Option<String>,
    previous_expires_at: Option<String>,
    /// `plaintext` for a legacy secret kept as it is; `sha256` otherwise.
    #[serde(default)]
    stored_as: Option<String>,
    metadata: Box<RawValue>,
}

impl PublicKey {
    /// The key as a record, or why it cannot be one (a rate limit or credits that do not read).
    ///
    /// What the API does not show cannot come back: fields this version does not know are
    /// absent, and are in no output.
    pub fn into_record(self) -> Result<KeyRecord, String> {
        let rate_limit = match &self.rate_limit {
            None => None,
            Some(text) => Some(
                RateLimit::parse(text)
                    .map_err(|e| format!("key {}: rate_limit {e}", visible(&self.id)))?,
            ),
        };
        let credits = self
            .credits
            .map(|c| c.into_credits())
            .transpose()
            .map_err(|e| format!("key {}: credits {e}", visible(&self.id)))?;
        let previous_secret_hash = self
            .previous_expires_at
            .as_ref()
            .map(|_| PREVIOUS_SECRET_PLACEHOLDER.to_string());
        Ok(KeyRecord {
            id: self.id,
            name: self.name,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            expires_at: self.expires_at,
            scopes: (!self.scopes.is_empty()).then_some(self.scopes),
            rate_limit,
            credits,
            disabled: self.disabled.then_some(true),
            disabled_at: self.disabled_at,
            previous_secret_hash,
            previous_expires_at: self.previous_expires_at,
            secret: (self.stored_as.as_deref() == Some("plaintext"))
                .then(|| PLAINTEXT_SECRET_PLACEHOLDER.to_string()),
            metadata: self.metadata,
            ..KeyRecord::default()
        })
    }
}

/// Credits as the API shows them: `{"amount", "refill" ("1000/day" or null), "since"}`.
#[derive(Debug, Deserialize)]
struct ShownCredits {
    amount: u64,
    refill: Option<String>,
    since: String,
}

impl ShownCredits {
    /// The credits, or why they do not read.
    fn into_credits(self) -> Result<Credits, String> {
        Ok(Credits {
            amount: self.amount,
            refill: self
                .refill
                .map(|r| Refill::parse(&r))
                .transpose()
                .map_err(|e| e.to_string())?,
            since: parse_timestamp(&self.since).map_err(|e| e.to_string())?,
        })
    }
}

/// A key's usage as `GET /keys/{id}/usage` answers: `{"key_id", "last_used_at", "counted",
/// "today", "last_30_days", "days": [{"date", "valid", "refused"}], "credits": {"remaining",
/// "refills_at"} or null}`. The totals are left out: the output counts them from the days, at
/// the CLI's own `now`, as for the store.
#[derive(Debug, Deserialize)]
pub struct ShownUsage {
    last_used_at: Option<String>,
    counted: String,
    days: Vec<ShownDay>,
    credits: Option<ShownBalance>,
}

/// One day of a key's usage.
#[derive(Debug, Deserialize)]
struct ShownDay {
    date: String,
    valid: u64,
    refused: u64,
}

/// A key's credits left.
#[derive(Debug, Deserialize)]
struct ShownBalance {
    remaining: u64,
    refills_at: Option<String>,
}

impl ShownUsage {
    /// The usage, when the server counted it for all replicas (`None` when only for itself);
    /// or why it does not read.
    pub fn into_usage(self) -> Result<Option<KeyUsage>, String> {
        if self.counted != "all_replicas" {
            return Ok(None);
        }
        let time = |field: &str, text: &str| {
            parse_timestamp(text).map_err(|e| format!("usage {field}: {e}"))
        };
        let last_used = match &self.last_used_at {
            Some(at) => Some(time("last_used_at", at)?),
            None => None,
        };
        let days = self
            .days
            .iter()
            .map(|d| {
                Ok(DayCount {
                    day: day_of(time("date", &d.date)?),
                    valid: d.valid,
                    refused: d.refused,
                })
            })
            .collect::<Result<_, String>>()?;
        let credits = match self.credits {
            Some(b) => Some(Balance {
                remaining: b.remaining,
                refills_at: match &b.refills_at {
                    Some(at) => Some(time("refills_at", at)?),
                    None => None,
                },
            }),
            None => None,
        };
        Ok(Some(KeyUsage {
            last_used,
            days,
            credits,
        }))
    }
}

/// A key just created, as `POST /keys` answers (and `create --json` prints): with its secret.
#[derive(Debug, Deserialize)]
pub struct NewKey {
    id: String,
    secret: String,
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    rate_limit: Option<String>,
    #[serde(default)]
    credits: Option<ShownCredits>,
    created_at: Option<String>,
    expires_at: Option<String>,
    metadata: Box<RawValue>,
}

impl NewKey {
    /// The key as a record, and its secret; or why it cannot be a record.
    pub fn into_created(self) -> Result<Created, String> {
        let record = PublicKey {
            id: self.id,
            name: self.name,
            scopes: self.scopes,
            rate_limit: self.rate_limit,
            credits: self.credits,
            created_at: self.created_at,
            created_by: None,
            updated_at: None,
            updated_by: None,
            expires_at: self.expires_at,
            disabled: false,
            disabled_at: None,
            previous_expires_at: None,
            stored_as: None,
            metadata: self.metadata,
        }
        .into_record()?;
        Ok(Created {
            record,
            secret: self.secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::{public_json, UnixMillis};

    use crate::commands::{Rotated, Toggled, Updated};
    use crate::output;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn metadata(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.into()).unwrap()
    }

    fn base(id: &str, name: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some("ab".repeat(32)),
            name: name.into(),
            created_at: Some("2026-11-25T01:17:14.316000Z".into()),
            created_by: Some("ann@build-01".into()),
            updated_at: Some("2026-11-25T01:20:00.000000Z".into()),
            updated_by: Some("bob@build-02".into()),
            metadata: metadata(r#"{"team":"payments","n":1.50,"big":12345678901234567890123}"#),
            ..KeyRecord::default()
        }
    }

    /// A key in each state, with scopes, rate limits, credits, metadata and text a terminal must
    /// not obey.
    fn keys() -> Vec<KeyRecord> {
        let limit = |text: &str| RateLimit::parse(text).ok();
        let credits = |amount, refill: &str, since| {
            Some(Credits {
                amount,
                refill: Refill::parse(refill).ok(),
                since,
            })
        };
        vec![
            KeyRecord {
                scopes: Some(vec!["read".into(), "keys:write".into()]),
                rate_limit: limit("100/60s"),
                credits: credits(1000, "1000/day", NOW),
                expires_at: Some("2027-02-23T01:17:14.316000Z".into()),
                ..base("key_active", "Billing service")
            },
            KeyRecord {
                previous_secret_hash: Some("cd".repeat(32)),
                previous_expires_at: Some("2026-11-25T02:17:14.316000Z".into()),
                rate_limit: limit("10/500ms"),
                credits: credits(0, "never", 0),
                ..base("key_rotating", "Rotating \u{1b}[31m")
            },
            KeyRecord {
                previous_secret_hash: Some("cd".repeat(32)),
                previous_expires_at: Some("2026-11-25T00:00:00Z".into()),
                ..base("key_rotated", "Grace over")
            },
            KeyRecord {
                expires_at: Some("2020-01-01".into()),
                ..base("key_expired", "Old")
            },
            KeyRecord {
                expires_at: Some("soon".into()),
                ..base("key_unreadable", "Odd")
            },
            KeyRecord {
                disabled: Some(true),
                disabled_at: Some("2026-11-25T01:19:00.000000Z".into()),
                previous_secret_hash: Some("cd".repeat(32)),
                previous_expires_at: Some("later".into()),
                ..base("key_disabled", "Off")
            },
            KeyRecord {
                disabled: Some(false),
                scopes: Some(Vec::new()),
                created_by: None,
                updated_at: None,
                updated_by: None,
                metadata: metadata("{}"),
                ..base("key_bare", "Zoë ✓\n")
            },
        ]
    }

    /// `record` as the API shows it, read back.
    fn round_trip(record: &KeyRecord) -> KeyRecord {
        let shown: PublicKey = serde_json::from_str(&public_json(record, NOW)).unwrap();
        shown.into_record().unwrap()
    }

    /// Everything the CLI prints about a key that is not a new secret.
    fn printed(r: &KeyRecord) -> Vec<String> {
        let toggled = |changed| Toggled {
            record: r.clone(),
            changed,
        };
        let updated = Updated {
            record: r.clone(),
            changed: vec!["name", "scopes"],
        };
        let rotated = Rotated {
            record: r.clone(),
            secret: "sec_new".into(),
            replaced_previous: true,
        };
        vec![
            output::list_header()
                + &output::list_row(r, false, NOW, None)
                + &output::list_footer(1),
            output::list_row(r, true, NOW, None),
            output::show_text(r, NOW, None),
            output::public_json(r, NOW),
            output::toggled_text(&toggled(true)),
            output::toggled_text(&toggled(false)),
            output::toggled_json(&toggled(true)),
            output::limited_text(&toggled(true)),
            output::limited_text(&toggled(false)),
            output::updated_text(&updated),
            output::rotated_text(&rotated, NOW),
            output::rotated_json(&rotated),
            output::delete_prompt(r),
        ]
    }

    #[test]
    fn a_key_shown_by_the_api_prints_as_the_stored_key_does() {
        for key in keys() {
            let back = round_trip(&key);
            assert_eq!(printed(&back), printed(&key), "{}", key.id);
            assert_eq!(back.status(NOW), key.status(NOW), "{}", key.id);
            // Never a secret or a real hash.
            assert_eq!(back.secret_hash, None);
            assert!(
                back.secret.is_none()
                    || back.secret.as_deref() == Some(PLAINTEXT_SECRET_PLACEHOLDER)
            );
            if key.previous_secret_hash.is_some() {
                assert_ne!(back.previous_secret_hash, key.previous_secret_hash);
            }
        }
    }

    #[test]
    fn metadata_comes_back_token_for_token() {
        let back = round_trip(&keys()[0]);
        assert_eq!(
            back.metadata.get(),
            r#"{"team":"payments","n":1.50,"big":12345678901234567890123}"#
        );
    }

    #[test]
    fn a_legacy_plaintext_secret_is_shown_as_such_but_never_itself() {
        let legacy = KeyRecord {
            secret: Some("sec_legacy".into()),
            secret_hash: None,
            ..base("key_legacy", "Legacy")
        };
        let back = round_trip(&legacy);
        assert_eq!(printed(&back), printed(&legacy));
        let shown = output::show_text(&back, NOW, None);
        assert!(
            shown.contains("  Secret:  stored in plaintext (legacy)\n"),
            "{shown}"
        );
        assert!(!printed(&back).concat().contains("sec_legacy"));
    }

    #[test]
    fn a_new_key_prints_as_one_created_on_the_store() {
        for key in keys() {
            let created = Created {
                record: key,
                secret: "sec_0VbwYMJgq7M3".into(),
            };
            let answer = heare_auth_core::created_json(&created.record, &created.secret);
            let new: NewKey = serde_json::from_str(&answer).unwrap();
            let back = new.into_created().unwrap();
            assert_eq!(output::created_json(&back), answer);
            assert_eq!(output::created_text(&back), output::created_text(&created));
        }
    }

    #[test]
    fn credits_come_back_as_set() {
        for key in &keys()[..2] {
            assert!(key.credits.is_some());
            assert_eq!(round_trip(key).credits, key.credits, "{}", key.id);
        }
        // A server older than credits does not show them: none.
        let mut shown: serde_json::Value =
            serde_json::from_str(&public_json(&keys()[0], NOW)).unwrap();
        shown.as_object_mut().unwrap().remove("credits");
        let shown: PublicKey = serde_json::from_str(&shown.to_string()).unwrap();
        assert_eq!(shown.into_record().unwrap().credits, None);
    }

    #[test]
    fn credits_that_do_not_read_are_refused() {
        for (field, value) in [("refill", "often"), ("since", "yesterday")] {
            let mut shown: serde_json::Value =
                serde_json::from_str(&public_json(&keys()[0], NOW)).unwrap();
            shown["credits"][field] = value.into();
            let shown: PublicKey = serde_json::from_str(&shown.to_string()).unwrap();
            let err = shown.into_record().unwrap_err();
            assert!(
                err.starts_with("key key_active: credits expected "),
                "{err}"
            );
        }
    }

    #[test]
    fn usage_counted_for_all_replicas_comes_back_as_read_from_redis() {
        let today = day_of(NOW);
        let usage = KeyUsage {
            last_used: Some(NOW - 1),
            days: vec![
                DayCount {
                    day: today - 40,
                    valid: 9,
                    refused: 9,
                },
                DayCount {
                    day: today - 3,
                    valid: 300,
                    refused: 6,
                },
                DayCount {
                    day: today,
                    valid: 12,
                    refused: 1,
                },
            ],
            credits: Some(Balance {
                remaining: 940,
                refills_at: Some(NOW + 3_600_000),
            }),
        };
        let answer = |counted: &str, usage: &KeyUsage| {
            heare_auth_core::usage_json(
                "key_a",
                usage.last_used,
                &usage.days,
                NOW,
                counted,
                usage.credits,
            )
        };
        let read = |answer: &str| {
            serde_json::from_str::<ShownUsage>(answer)
                .unwrap()
                .into_usage()
        };
        let mut back = read(&answer("all_replicas", &usage)).unwrap().unwrap();
        // The answer lists days newest first.
        back.days.reverse();
        assert_eq!(back, usage);
        for r in [&keys()[0], &keys()[6]] {
            assert_eq!(
                output::show_text(r, NOW, Some(&back)),
                output::show_text(r, NOW, Some(&usage))
            );
            assert_eq!(
                output::key_json(r, NOW, Some(&back)),
                output::key_json(r, NOW, Some(&usage))
            );
        }
        let never = KeyUsage::default();
        assert_eq!(read(&answer("all_replicas", &never)), Ok(Some(never)));
        // Counted by one replica only: not shown, as on the store without REDIS_URL.
        assert_eq!(read(&answer("this_replica", &usage)), Ok(None));
        let odd = answer("all_replicas", &usage).replace(r#""date":""#, r#""date":"x"#);
        assert!(read(&odd).unwrap_err().starts_with("usage date: "));
    }

    #[test]
    fn a_rate_limit_that_does_not_read_is_refused() {
        let mut shown: serde_json::Value =
            serde_json::from_str(&public_json(&keys()[0], NOW)).unwrap();
        shown["rate_limit"] = "often".into();
        let shown: PublicKey = serde_json::from_str(&shown.to_string()).unwrap();
        let err = shown.into_record().unwrap_err();
        assert!(err.starts_with("key key_active: rate_limit "), "{err}");
    }
}
