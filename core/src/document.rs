//! The keys file as an editable document: every field kept, known or not, for lossless rewrites.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, KeySet};

/// A whole keys file. Top-level fields other than `keys` are kept as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFile {
    /// The keys, in file order.
    pub keys: Vec<KeyRecord>,
    /// Top-level fields this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One key as stored. Fields this version does not know live in `extra` and are written back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public identifier, `key_…`; safe to log.
    pub id: String,
    /// Legacy plaintext secret, as the original service stored it. New keys never set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// SHA-256 of the secret as 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Free-form type label carried over from the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    /// When the key was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the key was last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// When the key stops verifying (RFC 3339 or a date); absent means never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Arbitrary JSON returned by `/verify`.
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// Fields this version does not know, kept for the next writer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl KeyFile {
    /// Parses and validates a keys file: it must be one the verifier accepts.
    pub fn from_json(bytes: &[u8]) -> Result<KeyFile, Error> {
        KeySet::from_json(bytes)?;
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Serialises as the original did (two-space indentation) and checks that the result is a
    /// file the verifier accepts, so a writer can never store a file the server would reject.
    pub fn to_json(&self) -> Result<String, Error> {
        let mut text = serde_json::to_string_pretty(self).map_err(Error::from)?;
        text.push('\n');
        KeySet::from_json(text.as_bytes())?;
        Ok(text)
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Removes and returns the key with this id.
    pub fn remove(&mut self, id: &str) -> Option<KeyRecord> {
        let i = self.keys.iter().position(|k| k.id == id)?;
        Some(self.keys.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let text = r#"{"version": 3, "keys": [{"id": "key_a", "secret_hash": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "name": "A", "scopes": ["read"], "disabled": false, "metadata": {"team": "x"}}]}"#;
        let file = KeyFile::from_json(text.as_bytes()).unwrap();
        assert_eq!(file.keys[0].extra["scopes"], serde_json::json!(["read"]));
        let again = KeyFile::from_json(file.to_json().unwrap().as_bytes()).unwrap();
        assert_eq!(again, file);
        let v: Value = serde_json::from_str(&file.to_json().unwrap()).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["keys"][0]["disabled"], false);
    }

    #[test]
    fn legacy_fields_default() {
        let file = KeyFile::from_json(br#"{"keys": [{"id": "k", "secret": "s"}]}"#).unwrap();
        assert_eq!(file.keys[0].name, "");
        assert_eq!(file.keys[0].metadata, serde_json::json!({}));
        assert_eq!(file.get("k").map(|k| k.secret.as_deref()), Some(Some("s")));
    }

    #[test]
    fn refuses_to_serialise_an_invalid_file() {
        let mut file = KeyFile::default();
        for id in ["a", "a"] {
            file.keys.push(KeyRecord {
                id: id.into(),
                secret_hash: Some("00".repeat(32)),
                ..KeyRecord::default()
            });
        }
        assert_eq!(file.to_json(), Err(Error::DuplicateId { id: "a".into() }));
    }
}
