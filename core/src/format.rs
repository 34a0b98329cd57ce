//! The secret format: `<prefix>1<time><random><checksum>`. A deployment's own prefix makes its
//! secrets easy to find in a leak; the generation digit `1` tells them from the `…0…` secrets
//! of earlier versions (and from every legacy secret), which verify as they always did; the
//! CRC32 checksum, six base62 characters, lets a verifier refuse a mistyped or made-up secret
//! without looking it up, and a scanner find real ones with almost no false positives.

use crate::Error;

/// The base62 alphabet of ids, secrets and checksums.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The generation digit of checksummed secrets.
pub const GENERATION: u8 = b'1';
/// Base62 characters of the creation time.
pub const TIME_LEN: usize = 8;
/// Random base62 characters of a secret: 43 x log2(62) = 256.03 bits.
pub const RANDOM_LEN: usize = 43;
/// Base62 characters of the checksum: 62^6 > 2^32, so every CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;
/// What follows the prefix in a checksummed secret: generation, time, random, checksum.
pub const TAIL_LEN: usize = 1 + TIME_LEN + RANDOM_LEN + CHECKSUM_LEN;
/// The secret prefix when `SECRET_PREFIX` is not set.
pub const DEFAULT_SECRET_PREFIX: &str = "sec_";
/// The id prefix when `ID_PREFIX` is not set.
pub const DEFAULT_ID_PREFIX: &str = "key_";
/// The longest prefix.
pub const MAX_PREFIX_LEN: usize = 24;

/// A deployment's prefix for secrets or ids (`acme_sk_`): a short run of lowercase letters,
/// digits and `_`, beginning with a letter and ending in `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Checks a prefix given as `setting` (`SECRET_PREFIX`, `ID_PREFIX`).
    pub fn parse(setting: &'static str, text: &str) -> Result<Prefix, Error> {
        let bytes = text.as_bytes();
        let valid = (2..=MAX_PREFIX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes.last() == Some(&b'_')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        match valid {
            true => Ok(Prefix(text.to_string())),
            false => Err(Error::Prefix {
                setting,
                text: text.to_string(),
            }),
        }
    }

    /// The default secret prefix, `sec_`.
    pub fn secret() -> Prefix {
        Prefix(DEFAULT_SECRET_PREFIX.to_string())
    }

    /// The default id prefix, `key_`.
    pub fn id() -> Prefix {
        Prefix(DEFAULT_ID_PREFIX.to_string())
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a presented secret's form says before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// This format, checksum right: look it up.
    Checksummed,
    /// This format, checksum wrong: a typo or a guess; refuse it unlooked-up.
    BadChecksum,
    /// Any other form (`sec_0…`, a legacy or an imported secret): look it up as always.
    Other,
}

/// The form of `secret`: this format when what follows its last `_` is [`TAIL_LEN`] base62
/// characters beginning with the generation digit, after a prefix of lowercase letters,
/// digits and `_`. No secret of an earlier version has that form (theirs begin `0`, or are
/// shorter), so none is refused by it.
pub fn form(secret: &str) -> Form {
    let bytes = secret.as_bytes();
    let Some(split) = bytes.len().checked_sub(TAIL_LEN) else {
        return Form::Other;
    };
    let (prefix, tail) = bytes.split_at(split);
    let shaped = prefix.len() >= 2
        && prefix.last() == Some(&b'_')
        && prefix
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && tail[0] == GENERATION
        && tail.iter().all(u8::is_ascii_alphanumeric);
    if !shaped {
        return Form::Other;
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    match checksum(body) == sum {
        true => Form::Checksummed,
        false => Form::BadChecksum,
    }
}

/// The checksum of `body`: its CRC32 (IEEE 802.3, as zlib and PNG compute it), in base62,
/// [`CHECKSUM_LEN`] characters, most significant first.
pub fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// CRC32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: a secret is short, and no
/// table keeps the WebAssembly package small.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_standard_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        assert_eq!(&checksum(b""), b"000000");
        assert_eq!(&checksum(b"123456789"), b"3jZRME");
    }

    fn secret(prefix: &str) -> String {
        let mut text = format!("{prefix}10VbwYMJg{}", "a".repeat(RANDOM_LEN));
        let sum = checksum(text.as_bytes());
        text.push_str(std::str::from_utf8(&sum).unwrap());
        text
    }

    #[test]
    fn a_secret_of_this_form_is_checked_and_no_other_is() {
        for prefix in ["sec_", "amp_live_", "acme_sk_", "a_"] {
            let good = secret(prefix);
            assert_eq!(form(&good), Form::Checksummed, "{good}");
            // One character changed anywhere: the checksum sees it.
            for i in prefix.len() + 1..good.len() {
                let mut typo = good.clone().into_bytes();
                typo[i] = if typo[i] == b'b' { b'c' } else { b'b' };
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(form(&typo), Form::BadChecksum, "{typo}");
            }
        }
        let earlier = [
            // Generation 0, and the original service's token_urlsafe(32).
            "sec_00VbwYMJgq7M3AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlM",
            "sec_N3J8dNcKZqg-7bXk_Tr2f3fQh4Gf9t2vQxk3oXa1vQ0",
            "sec_legacy_plain",
            // Imported, from other systems.
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "sk_live_51H8xyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz012345678",
        ];
        for other in earlier {
            assert_eq!(form(other), Form::Other, "{other}");
        }
        // The form needs its prefix's shape and the generation digit.
        let good = secret("sec_");
        assert_eq!(form(&good.replacen("sec_", "SEC_", 1)), Form::Other);
        assert_eq!(form(&good.replacen("_1", "_2", 1)), Form::Other);
        assert_eq!(form(&good[4..]), Form::Other);
        assert_eq!(form(&format!("{good}x")), Form::Other);
    }

    #[test]
    fn prefixes_are_short_lowercase_and_end_in_an_underscore() {
        for good in ["sec_", "amp_live_", "acme_sk_", "a1_"] {
            assert_eq!(Prefix::parse("SECRET_PREFIX", good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "_",
            "sec",
            "Sec_",
            "1sec_",
            "se-c_",
            "sec _",
            "é_",
            &"a".repeat(25),
        ] {
            let e = Prefix::parse("SECRET_PREFIX", bad).unwrap_err();
            assert!(e.to_string().contains("SECRET_PREFIX"), "{e}");
        }
    }
}
