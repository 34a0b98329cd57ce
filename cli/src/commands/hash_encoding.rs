//! A secret's SHA-256 as other systems export it (hex in either case, base64 standard or
//! URL-safe, padded or not), read into the lowercase hex a keys file stores.

use std::fmt;

use base64::alphabet::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use heare_auth_core::SecretHash;

/// Bytes in a SHA-256.
const SHA256_BYTES: usize = 32;

/// Why a `secret_hash` is not a SHA-256; its text is never part of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashProblem {
    /// The field is empty.
    Empty,
    /// It decodes, as hex or base64, to this many bytes instead of 32.
    Length {
        /// `hex` or `base64`.
        encoding: &'static str,
        /// The bytes it decodes to.
        bytes: usize,
    },
    /// It is neither hex nor base64.
    Encoding,
}

impl fmt::Display for HashProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashProblem::Empty => f.write_str("is empty"),
            HashProblem::Length { encoding, bytes } => write!(
                f,
                "is {bytes} bytes of {encoding}; a SHA-256 is {SHA256_BYTES} bytes (64 hex \
                 digits, or 43 base64 characters and one optional =)"
            ),
            HashProblem::Encoding => f.write_str(
                "is neither hex nor base64: expected a SHA-256 as 64 hex digits, or 43 base64 \
                 characters and one optional =",
            ),
        }
    }
}

/// Base64 of `alphabet`, with or without its padding, and no stray bits after the last byte.
const fn base64(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// The SHA-256 written in `text` (ASCII whitespace around it ignored) as 64 lowercase hex
/// digits. Text of hex digits only, of an even length, is read as hex; anything else as base64,
/// URL-safe when it holds `-` or `_`. The two are never confused for a SHA-256: its hex is 64
/// digits, its base64 43 characters (an odd count) or 44 ending in `=`.
pub fn normalise_hash(text: &str) -> Result<String, HashProblem> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Err(HashProblem::Empty);
    }
    let is_hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return match SecretHash::from_hex(text) {
            Some(hash) => Ok(hash.to_hex()),
            None => Err(HashProblem::Length {
                encoding: "hex",
                bytes: text.len() / 2,
            }),
        };
    }
    let engine = match text.contains(['-', '_']) {
        true => base64(&URL_SAFE),
        false => base64(&STANDARD),
    };
    let bytes = engine.decode(text).map_err(|_| HashProblem::Encoding)?;
    match <[u8; SHA256_BYTES]>::try_from(bytes.as_slice()) {
        Ok(hash) => Ok(SecretHash(hash).to_hex()),
        Err(_) => Err(HashProblem::Length {
            encoding: "base64",
            bytes: bytes.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{
        STANDARD as STD_PADDED, STANDARD_NO_PAD, URL_SAFE as URL_PADDED, URL_SAFE_NO_PAD,
    };
    use heare_auth_core::hash_secret;

    /// A secret whose hash holds bytes that base64 writes as `+` and `/` (or `-` and `_`).
    fn hash() -> SecretHash {
        let hash = (0..)
            .map(|n| hash_secret(&format!("unkey_3ZbH{n}")))
            .find(|h| {
                let b64 = STD_PADDED.encode(h.0);
                b64.contains('+') && b64.contains('/')
            })
            .unwrap();
        hash
    }

    #[test]
    fn hex_of_either_case_is_made_lowercase() {
        let hash = hash();
        let hex = hash.to_hex();
        assert_eq!(normalise_hash(&hex), Ok(hex.clone()));
        assert_eq!(normalise_hash(&hex.to_uppercase()), Ok(hex.clone()));
        let mixed: String = hex
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(normalise_hash(&mixed), Ok(hex.clone()));
        assert_eq!(normalise_hash(&format!(" {hex}\n")), Ok(hex));
    }

    #[test]
    fn base64_standard_or_url_safe_padded_or_not_is_read() {
        let hash = hash();
        for engine in [STD_PADDED, STANDARD_NO_PAD, URL_PADDED, URL_SAFE_NO_PAD] {
            let text = engine.encode(hash.0);
            assert_eq!(normalise_hash(&text), Ok(hash.to_hex()), "{text}");
        }
        let padded = STD_PADDED.encode(hash.0);
        assert_eq!((padded.len(), padded.ends_with('=')), (44, true));
        assert_eq!(STANDARD_NO_PAD.encode(hash.0).len(), 43);
    }

    #[test]
    fn a_wrong_length_says_how_many_bytes() {
        let hash = hash();
        let hex = hash.to_hex();
        let cases = [
            (hex[..62].to_string(), "hex", 31),
            (format!("{hex}00"), "hex", 33),
            (STD_PADDED.encode(&hash.0[..31]), "base64", 31),
            (
                URL_SAFE_NO_PAD.encode([hash.0.as_slice(), &[7]].concat()),
                "base64",
                33,
            ),
            (STANDARD_NO_PAD.encode(&hash.0[..20]), "base64", 20),
        ];
        for (text, encoding, bytes) in cases {
            assert_eq!(
                normalise_hash(&text),
                Err(HashProblem::Length { encoding, bytes }),
                "{text}"
            );
        }
        assert_eq!(
            HashProblem::Length {
                encoding: "base64",
                bytes: 31
            }
            .to_string(),
            "is 31 bytes of base64; a SHA-256 is 32 bytes (64 hex digits, or 43 base64 \
             characters and one optional =)"
        );
    }

    #[test]
    fn anything_else_is_refused_without_its_text() {
        let hash = hash();
        let b64 = STD_PADDED.encode(hash.0);
        let url = URL_SAFE_NO_PAD.encode(hash.0);
        // URL-safe but for one `+`.
        let mixed = url.replacen('-', "+", 1);
        let not_canonical = {
            // The last character of 43 carries 4 bits and 2 stray ones, which must be 0.
            let mut t = STANDARD_NO_PAD.encode(hash.0).into_bytes();
            let last = STANDARD.as_str().find(t[42] as char).unwrap();
            t[42] = STANDARD.as_str().as_bytes()[last | 1];
            String::from_utf8(t).unwrap()
        };
        for text in [
            "sha256:abc".to_string(),
            format!("{b64}=="),
            format!("{}==", &url[..42]),
            mixed,
            not_canonical,
            format!("{}?", &b64[..43]),
            "é".repeat(32),
        ] {
            assert_eq!(normalise_hash(&text), Err(HashProblem::Encoding), "{text}");
        }
        assert_eq!(normalise_hash(""), Err(HashProblem::Empty));
        assert_eq!(normalise_hash("  "), Err(HashProblem::Empty));
        let message = HashProblem::Encoding.to_string();
        assert!(
            message.starts_with("is neither hex nor base64"),
            "{message}"
        );
    }
}
