//! One key as the admin CLI reads and writes it: every field it knows, typed, and every field it
//! does not know kept as the JSON text it was read as.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Expiry, Status, UnixMillis};

/// One key as stored. Fields this version does not know live in `extra` and are written back.
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
    /// When the key was last changed (RFC 3339).
    pub updated_at: Option<String>,
    /// When the key stops verifying (RFC 3339 or a date); absent means never.
    pub expires_at: Option<String>,
    /// Arbitrary JSON returned by `/verify` (an empty object when absent).
    pub metadata: Value,
    /// Fields this version does not know, in file order, as their JSON text.
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
            updated_at: None,
            expires_at: None,
            metadata: Value::Object(Map::new()),
            extra: Vec::new(),
        }
    }
}

/// Equal when every field is, unknown ones compared by their text.
impl PartialEq for KeyRecord {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self, other);
        (&a.id, &a.secret, &a.secret_hash, &a.name, &a.secret_type)
            == (&b.id, &b.secret, &b.secret_hash, &b.name, &b.secret_type)
            && (&a.created_at, &a.updated_at, &a.expires_at, &a.metadata)
                == (&b.created_at, &b.updated_at, &b.expires_at, &b.metadata)
            && a.extra.len() == b.extra.len()
            && a.extra
                .iter()
                .zip(&b.extra)
                .all(|((n, v), (m, w))| n == m && v.get() == w.get())
    }
}

impl KeyRecord {
    /// The key's expiry.
    pub fn expiry(&self) -> Expiry {
        Expiry::parse(self.expires_at.as_deref())
    }

    /// What the key is at `now`.
    pub fn status(&self, now: UnixMillis) -> Status {
        Status::of(self.expiry(), now)
    }

    /// A field this version does not know, by name.
    pub fn extra_field(&self, name: &str) -> Option<&RawValue> {
        self.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
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
            ("updated_at", &self.updated_at),
            ("expires_at", &self.expires_at),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("metadata", &self.metadata)?;
        for (name, value) in &self.extra {
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
            match field.as_ref() {
                "id" => id = Some(map.next_value::<String>()?),
                "secret" => record.secret = text(&mut map)?,
                "secret_hash" => record.secret_hash = text(&mut map)?,
                "name" => record.name = text(&mut map)?.unwrap_or_default(),
                "secret_type" => record.secret_type = text(&mut map)?,
                "created_at" => record.created_at = text(&mut map)?,
                "updated_at" => record.updated_at = text(&mut map)?,
                "expires_at" => record.expires_at = text(&mut map)?,
                "metadata" => record.metadata = map.next_value()?,
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
        let text = r#"{"id":"key_a","name":"A","scopes":[ "read" ],"metadata":{"t":1},"later":{"x": null}}"#;
        let record: KeyRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.extra_field("scopes").unwrap().get(), r#"[ "read" ]"#);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"id":"key_a","name":"A","metadata":{"t":1},"scopes":[ "read" ],"later":{"x": null}}"#
        );
    }

    #[test]
    fn legacy_nulls_and_absences_default() {
        let record: KeyRecord =
            serde_json::from_str(r#"{"id":"k","secret":"s","updated_at":null,"name":null}"#)
                .unwrap();
        assert_eq!(
            (record.name.as_str(), record.updated_at, &record.metadata),
            ("", None, &serde_json::json!({}))
        );
        let missing = serde_json::from_str::<KeyRecord>(r#"{"name":"x"}"#).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `id`"),
            "{missing}"
        );
    }
}
