//! Secret hashing: SHA-256 of the secret's UTF-8 bytes, stored as 64 lowercase hex digits.

use sha2::{Digest, Sha256};
use std::fmt;

/// The SHA-256 of a secret. Keys files store it in `secret_hash` as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash(pub [u8; 32]);

/// Hashes a presented or generated secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    SecretHash(Sha256::digest(secret.as_bytes()).into())
}

impl SecretHash {
    /// Parses 64 hex digits (either case). Returns `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<SecretHash> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(SecretHash(out))
    }

    /// The lowercase hex form written to `secret_hash`.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Deliberately does not print the hash: it identifies a secret.
impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_to_the_sha256_test_vector() {
        // FIPS 180-2, "abc".
        let h = hash_secret("abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(SecretHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(SecretHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
    }

    #[test]
    fn rejects_malformed_hex() {
        assert_eq!(SecretHash::from_hex(""), None);
        assert_eq!(SecretHash::from_hex(&"a".repeat(63)), None);
        assert_eq!(SecretHash::from_hex(&"g".repeat(64)), None);
        assert_eq!(format!("{:?}", hash_secret("x")), "SecretHash(..)");
    }
}
