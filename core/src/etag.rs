//! A key's entity tag: changes whenever anything stored about the key does, so that a
//! conditional change (`If-Match`) applies only to the key as its writer last saw it.

use sha2::{Digest, Sha256};

use crate::KeyRecord;

impl KeyRecord {
    /// The key's strong entity tag, quoted (`"0f3a…"`): 16 hex digits of the SHA-256 of the
    /// record as written (field order, every field and secret hash included), so that it
    /// tells nothing of the secret.
    pub fn etag(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let mut tag = String::with_capacity(18);
        tag.push('"');
        for byte in &digest[..8] {
            tag.push_str(&format!("{byte:02x}"));
        }
        tag.push('"');
        tag
    }
}

#[cfg(test)]
mod tests {
    use crate::{hash_secret, KeyRecord};

    #[test]
    fn any_change_changes_the_tag_and_nothing_else_does() {
        let key = KeyRecord {
            id: "key_a".into(),
            name: "A".into(),
            secret_hash: Some(hash_secret("sec_a").to_hex()),
            ..KeyRecord::default()
        };
        let tag = key.etag();
        assert_eq!(tag.len(), 18);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_eq!(key.clone().etag(), tag);
        let renamed = KeyRecord {
            name: "B".into(),
            ..key.clone()
        };
        let rotated = KeyRecord {
            secret_hash: Some(hash_secret("sec_b").to_hex()),
            ..key.clone()
        };
        assert_ne!(renamed.etag(), tag);
        assert_ne!(rotated.etag(), tag);
    }
}
