//! One key as the admin CLI reads and writes it: every field it knows, typed, and every field it
//! does not know (or cannot type) kept as the JSON text it was read as.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::compact::compact_json;
use crate::secret_field::SecretField;
use crate::{Credits, Expiry, RateLimit, State, Status, UnixMillis};

/// One key as stored. Fields this version does not know live in `extra` and are written back.
///
/// The verifier skips the bookkeeping fields (`secret_type`, `created_at`, `created_by`,
/// `updated_at`, `updated_by`, `disabled_at`), so a file may hold anything there: such a field
/// that is not a string (or null) is kept in `extra` as it was, not refused, and a value later
/// set in its typed field replaces the kept one.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    /// Public identifier, `key_…`; safe to log.
    pub id: String,
    /// Legacy plaintext secret, as the original service stored it. New keys never set it.
    pub secret: Option<String>,
    /// SHA-256 of the secret as 64 lowercase hex digits.
    pub secret_hash: Option<String>,
    /// Human-readable name.
    pub name: String,
    /// Free-form type label carried over from the original.
    pub secret_type: Option<String>,
    /// When the key was created (RFC 3339).
    pub created_at: Option<String>,
    /// Who created it (`HEARE_AUTH_ACTOR`, or user@host).
    pub created_by: Option<String>,
    /// When the key was last changed (RFC 3339).
    pub updated_at: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// When the key stops verifying (RFC 3339 or a date); absent means never.
    pub expires_at: Option<String>,
    /// What the key may be used for; requests can demand scopes.
    pub scopes: Option<Vec<String>>,
    /// At most this many verifications per period, per server instance; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    /// A balance each valid verification spends; `None`: no credits, unlimited use.
    pub credits: Option<Credits>,
    /// Disabled keys are kept but never verify.
    pub disabled: Option<bool>,
    /// When the key was disabled.
    pub disabled_at: Option<String>,
    /// After a rotation: the SHA-256 of the secret it replaced, which still verifies until
    /// `previous_expires_at`.
    pub previous_secret_hash: Option<String>,
    /// When the previous secret's grace period ends.
    pub previous_expires_at: Option<String>,
    /// Arbitrary JSON returned by `/verify` (`{}` when absent), as the JSON text it was read as
    /// and is written back as: no number is respelled and no member reordered.
    pub metadata: Box<RawValue>,
    /// Fields this version does not know, and bookkeeping fields it cannot type, in file order,
    /// as their JSON text.
    pub extra: Vec<(String, Box<RawValue>)>,
}

impl Default for KeyRecord {
    fn default() -> KeyRecord {
        KeyRecord {
            id: String::new(),
            secret: None,
            secret_hash: None,
            name: String::new(),
            secret_type: None,
            created_at: None,
            created_by: None,
            updated_at: None,
            updated_by: None,
            expires_at: None,
            scopes: None,
            rate_limit: None,
            credits: None,
            disabled: None,
            disabled_at: None,
            previous_secret_hash: None,
            previous_expires_at: None,
            metadata: empty_object(),
            extra: Vec::new(),
        }
    }
}

/// `{}`, the metadata of a key that has none.
fn empty_object() -> Box<RawValue> {
    #[expect(clippy::expect_used, reason = "`{}` is JSON")]
    RawValue::from_string("{}".into()).expect("`{}` is JSON")
}

/// The bookkeeping fields the verifier skips, typed here when they are strings.
const BOOKKEEPING: [&str; 6] = [
    "secret_type",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "disabled_at",
];

/// Equal when every field is, metadata and unknown ones compared by their text (a kept field
/// its typed one replaces left out, as it is when written).
impl PartialEq for KeyRecord {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self, other);
        (&a.id, &a.secret, &a.secret_hash, &a.name, &a.secret_type)
            == (&b.id, &b.secret, &b.secret_hash, &b.name, &b.secret_type)
            && (&a.created_at, &a.created_by, &a.updated_at, &a.updated_by)
                == (&b.created_at, &b.created_by, &b.updated_at, &b.updated_by)
            && (
                &a.expires_at,
                &a.scopes,
                &a.disabled,
                &a.disabled_at,
                a.metadata.get(),
            ) == (
                &b.expires_at,
                &b.scopes,
                &b.disabled,
                &b.disabled_at,
                b.metadata.get(),
            )
            && (
                &a.previous_secret_hash,
                &a.previous_expires_at,
                a.rate_limit,
                a.credits,
            ) == (
                &b.previous_secret_hash,
                &b.previous_expires_at,
                b.rate_limit,
                b.credits,
            )
            && a.kept()
                .map(|(n, v)| (n, v.get()))
                .eq(b.kept().map(|(n, v)| (n, v.get())))
    }
}

impl KeyRecord {
    /// The key's expiry.
    pub fn expiry(&self) -> Expiry {
        Expiry::parse(self.expires_at.as_deref())
    }

    /// What decides the key's status.
    pub fn state(&self) -> State {
        State {
            expiry: self.expiry(),
            disabled: self.disabled == Some(true),
            previous: self
                .previous_secret_hash
                .as_ref()
                .map(|_| Expiry::parse(self.previous_expires_at.as_deref())),
        }
    }

    /// What the key is at `now`.
    pub fn status(&self, now: UnixMillis) -> Status {
        Status::of(self.state(), now)
    }

    /// The key's scopes (none when absent).
    pub fn scope_list(&self) -> &[String] {
        self.scopes.as_deref().unwrap_or_default()
    }

    /// A field this version does not know (or a bookkeeping field it could not type), by name.
    pub fn extra_field(&self, name: &str) -> Option<&RawValue> {
        self.kept().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The metadata as compact JSON text, every token as it was read (as `/verify` answers it,
    /// but `null` kept), for output that must stay on one line.
    pub fn compact_metadata(&self) -> Box<RawValue> {
        compact_json(&self.metadata)
    }

    /// The bookkeeping field `name` as typed, `None` for any other name.
    fn typed(&self, name: &str) -> Option<&Option<String>> {
        match name {
            "secret_type" => Some(&self.secret_type),
            "created_at" => Some(&self.created_at),
            "created_by" => Some(&self.created_by),
            "updated_at" => Some(&self.updated_at),
            "updated_by" => Some(&self.updated_by),
            "disabled_at" => Some(&self.disabled_at),
            _ => None,
        }
    }

    /// The bookkeeping field `name` to set, `None` for any other name.
    fn typed_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "secret_type" => Some(&mut self.secret_type),
            "created_at" => Some(&mut self.created_at),
            "created_by" => Some(&mut self.created_by),
            "updated_at" => Some(&mut self.updated_at),
            "updated_by" => Some(&mut self.updated_by),
            "disabled_at" => Some(&mut self.disabled_at),
            _ => None,
        }
    }

    /// A bookkeeping field as read: `typed`, or `kept` as its text when it could not be typed.
    /// Of a name given twice the last wins, as in any JSON object.
    fn read_bookkeeping(&mut self, name: &str, typed: Option<String>, kept: Option<Box<RawValue>>) {
        if let Some(field) = self.typed_mut(name) {
            *field = typed;
        }
        self.extra.retain(|(n, _)| n != name);
        if let Some(kept) = kept {
            self.extra.push((name.to_string(), kept));
        }
    }

    /// The fields of `extra` that are written: all but a kept bookkeeping field whose typed
    /// field has a value now (the typed value replaces it; a file never gets a name twice).
    fn kept(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.extra
            .iter()
            .filter(|(name, _)| !self.typed(name).is_some_and(Option::is_some))
            .map(|(name, value)| (name.as_str(), &**value))
    }
}

/// Known fields first, in the original's order, then the unknown ones as they were read.
impl Serialize for KeyRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        let optional = [("secret", &self.secret), ("secret_hash", &self.secret_hash)];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("name", &self.name)?;
        let optional = [
            ("secret_type", &self.secret_type),
            ("created_at", &self.created_at),
            ("created_by", &self.created_by),
            ("updated_at", &self.updated_at),
            ("updated_by", &self.updated_by),
            ("expires_at", &self.expires_at),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        if let Some(scopes) = &self.scopes {
            map.serialize_entry("scopes", scopes)?;
        }
        if let Some(limit) = self.rate_limit {
            map.serialize_entry("rate_limit", &limit.to_stored())?;
        }
        if let Some(credits) = self.credits {
            map.serialize_entry("credits", &credits.to_stored())?;
        }
        if let Some(disabled) = self.disabled {
            map.serialize_entry("disabled", &disabled)?;
        }
        let optional = [
            ("disabled_at", &self.disabled_at),
            ("previous_secret_hash", &self.previous_secret_hash),
            ("previous_expires_at", &self.previous_expires_at),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("metadata", &self.metadata)?;
        for (name, value) in self.kept() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for KeyRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyRecord, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = KeyRecord;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyRecord, A::Error> {
        let mut record = KeyRecord::default();
        let mut id = None;
        while let Some(field) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let text = |map: &mut A| map.next_value::<Option<String>>();
            // A secret or hash of the wrong type is refused without its value.
            let secret = |map: &mut A, field| {
                let value = map.next_value_seed(SecretField(field))?;
                Ok::<_, A::Error>(value.map(std::borrow::Cow::into_owned))
            };
            match field.as_ref() {
                "id" => id = Some(map.next_value::<String>()?),
                "secret" => record.secret = secret(&mut map, "secret")?,
                "secret_hash" => record.secret_hash = secret(&mut map, "secret_hash")?,
                "name" => record.name = text(&mut map)?.unwrap_or_default(),
                "expires_at" => record.expires_at = text(&mut map)?,
                "scopes" => record.scopes = map.next_value()?,
                "rate_limit" => {
                    record.rate_limit = match map.next_value::<Option<Box<RawValue>>>()? {
                        None => None,
                        Some(json) => {
                            Some(RateLimit::from_stored(json.get()).map_err(|reason| {
                                de::Error::custom(format!("field `rate_limit` {reason}"))
                            })?)
                        }
                    }
                }
                "credits" => {
                    record.credits = match map.next_value::<Option<Box<RawValue>>>()? {
                        None => None,
                        Some(json) => Some(Credits::from_stored(json.get()).map_err(|reason| {
                            de::Error::custom(format!("field `credits` {reason}"))
                        })?),
                    }
                }
                "disabled" => record.disabled = map.next_value()?,
                "previous_secret_hash" => {
                    record.previous_secret_hash = secret(&mut map, "previous_secret_hash")?
                }
                "previous_expires_at" => record.previous_expires_at = text(&mut map)?,
                "metadata" => record.metadata = map.next_value()?,
                name if BOOKKEEPING.contains(&name) => {
                    let value = map.next_value::<Box<RawValue>>()?;
                    // Not a string or null, or a string no `String` holds (a lone surrogate
                    // escape): kept as it was.
                    match serde_json::from_str::<Option<String>>(value.get()) {
                        Ok(text) => record.read_bookkeeping(name, text, None),
                        Err(_) => record.read_bookkeeping(name, None, Some(value)),
                    }
                }
                _ => {
                    let value = map.next_value::<Box<RawValue>>()?;
                    record.extra.push((field.into_owned(), value));
                }
            }
        }
        record.id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_come_back_as_they_were() {
        let text =
            r#"{"id":"key_a","name":"A","tags":[ "read" ],"metadata":{"t":1},"later":{"x": null}}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.extra_field("tags").unwrap().get(), r#"[ "read" ]"#);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"id":"key_a","name":"A","metadata":{"t":1},"tags":[ "read" ],"later":{"x": null}}"#
        );
    }

    #[test]
    fn lifecycle_fields_round_trip_in_order() {
        let text = r#"{"id":"k","secret_hash":"h","name":"N","created_at":"c","created_by":"ann@host","updated_at":"u","updated_by":"bob@host","expires_at":"e","scopes":["read"],"disabled":true,"disabled_at":"d","previous_secret_hash":"p","previous_expires_at":"2020-01-01","metadata":{}}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
        assert_eq!(record.status(0), Status::Disabled);
        assert_eq!(record.scope_list(), ["read"]);
    }

    #[test]
    fn a_rate_limit_is_typed_and_written_in_its_place() {
        let text = r#"{"id":"k","secret_hash":"h","name":"N","scopes":["read"],"rate_limit":{"requests":100,"per_seconds":60},"disabled":true,"metadata":{}}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.rate_limit, RateLimit::parse("100/60s").ok());
        assert!(record.extra.is_empty());
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
        // Where a file put it, and how it wrote the period, does not matter.
        let moved: KeyRecord = serde_json::from_str(
            r#"{"rate_limit":{"per_seconds":0.5,"requests":10},"id":"k","name":"N"}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&moved).unwrap(),
            r#"{"id":"k","name":"N","rate_limit":{"requests":10,"per_seconds":0.5},"metadata":{}}"#
        );
        assert_ne!(
            moved,
            KeyRecord {
                rate_limit: None,
                ..moved.clone()
            }
        );
        let none: KeyRecord = serde_json::from_str(r#"{"id":"k","rate_limit":null}"#).unwrap();
        assert_eq!(none.rate_limit, None);
        let bad = serde_json::from_str::<KeyRecord>(
            r#"{"id":"k","rate_limit":{"requests":0,"per_seconds":1}}"#,
        )
        .unwrap_err();
        assert!(
            bad.to_string().starts_with(
                "field `rate_limit` is not valid: expected 1 to 4294967295 requests, got 0"
            ),
            "{bad}"
        );
    }

    #[test]
    fn legacy_nulls_and_absences_default() {
        let record: KeyRecord =
            serde_json::from_str(r#"{"id":"k","secret":"s","updated_at":null,"name":null}"#)
                .unwrap();
        assert_eq!(
            (
                record.name.as_str(),
                record.updated_at,
                record.metadata.get()
            ),
            ("", None, "{}")
        );
        let missing = serde_json::from_str::<KeyRecord>(r#"{"name":"x"}"#).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `id`"),
            "{missing}"
        );
    }

    #[test]
    fn bookkeeping_fields_that_are_not_strings_are_kept_as_they_were() {
        let text = r#"{"id":"k","created_at":1795564800,"secret_type":null,"updated_by":["a"],"disabled_at":"2026-11-01T0\ud8000Z","created_by":"ann"}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(
            (&record.created_at, &record.secret_type, &record.created_by),
            (&None, &None, &Some("ann".into()))
        );
        assert_eq!(
            record.extra_field("created_at").unwrap().get(),
            "1795564800"
        );
        assert_eq!(
            record.extra_field("disabled_at").unwrap().get(),
            r#""2026-11-01T0\ud8000Z""#
        );
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"id":"k","name":"","created_by":"ann","metadata":{},"created_at":1795564800,"updated_by":["a"],"disabled_at":"2026-11-01T0\ud8000Z"}"#
        );
    }

    #[test]
    fn a_typed_value_replaces_a_kept_one() {
        let mut record: KeyRecord =
            serde_json::from_str(r#"{"id":"k","updated_at":5,"tags":1}"#).unwrap();
        record.updated_at = Some("2026-11-25T01:17:14.316000Z".into());
        let written = serde_json::to_string(&record).unwrap();
        assert_eq!(
            written,
            r#"{"id":"k","name":"","updated_at":"2026-11-25T01:17:14.316000Z","metadata":{},"tags":1}"#
        );
        let again: KeyRecord = serde_json::from_str(&written).unwrap();
        assert_eq!(again, record);
        assert!(record.extra_field("updated_at").is_none());
        // Of a name given twice, the last wins, whichever can be typed.
        let twice: KeyRecord = serde_json::from_str(
            r#"{"id":"k","created_at":5,"created_at":"c","updated_at":"u","updated_at":[]}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&twice).unwrap(),
            r#"{"id":"k","name":"","created_at":"c","metadata":{},"updated_at":[]}"#
        );
    }

    #[test]
    fn metadata_is_written_back_as_it_was_read() {
        let text = r#"{"id":"k","name":"","metadata":{ "z": 12345678901234567890123, "a": 1.50 }}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
        assert_eq!(
            record.compact_metadata().get(),
            r#"{"z":12345678901234567890123,"a":1.50}"#
        );
        let respelled: KeyRecord = serde_json::from_str(
            r#"{"id":"k","name":"","metadata":{"z":12345678901234567890123,"a":1.5}}"#,
        )
        .unwrap();
        assert_ne!(record, respelled);
        let null: KeyRecord = serde_json::from_str(r#"{"id":"k","metadata":null}"#).unwrap();
        assert_eq!(null.metadata.get(), "null");
    }
}
