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
        let bytes: &[u8; 64] = hex.as_bytes().try_into().ok()?;
        let mut out = [0u8; 32];
        // Without a branch per digit: a loader reads a million of these.
        let mut invalid = 0;
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
            invalid |= high | low;
            *byte = (high << 4) | (low & 0x0f);
        }
        (invalid & NOT_HEX == 0).then_some(SecretHash(out))
    }

    /// The lowercase hex form written to `secret_hash`.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

/// Set in [`NIBBLES`] for a byte that is not a hex digit.
const NOT_HEX: u8 = 0x80;

/// The value of each byte as a hex digit (either case), or [`NOT_HEX`].
const NIBBLES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

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
        // One bad digit anywhere, in either place of its pair.
        let good = hash_secret("abc").to_hex();
        for at in [0, 1, 31, 62, 63] {
            for bad in ["g", "G", " ", "\0", "\u{7f}", "/", ":", "@", "`"] {
                let hex = format!("{}{bad}{}", &good[..at], &good[at + 1..]);
                assert_eq!(SecretHash::from_hex(&hex), None, "{hex:?}");
            }
        }
        // A multi-byte character makes 64 bytes of fewer characters.
        assert_eq!(SecretHash::from_hex(&format!("é{}", &good[2..])), None);
        assert_eq!(format!("{:?}", hash_secret("x")), "SecretHash(..)");
    }
}
