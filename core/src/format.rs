//! The secret format: `<prefix>1<time><random><checksum>`. A deployment's own prefix makes its
//! secrets easy to find in a leak; the generation digit `1` tells them from the `…0…` secrets
//! of earlier versions (and from every legacy secret), which verify as they always did; the
//! CRC32 checksum, six base62 characters, lets a verifier refuse a mistyped or made-up secret
//! without looking it up, and a scanner find real ones with almost no false positives.

use crate::crc32::crc32;
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
        match is_prefix(text.as_bytes()) {
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

/// A deployment's two prefixes: of the secrets it makes (`SECRET_PREFIX`, `sec_` by default) and
/// of the ids (`ID_PREFIX`, `key_`). A change of either applies to the keys made after it; the
/// keys made before keep verifying, since a secret is looked up by its hash, whatever its prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefixes {
    /// The secrets' prefix.
    pub secret: Prefix,
    /// The ids' prefix.
    pub id: Prefix,
}

impl Default for Prefixes {
    fn default() -> Prefixes {
        Prefixes {
            secret: Prefix::secret(),
            id: Prefix::id(),
        }
    }
}

impl Prefixes {
    /// The prefixes `SECRET_PREFIX` and `ID_PREFIX` set, as `env` reads them; unset or empty,
    /// the defaults. A bad one is an error naming its setting.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Prefixes, Error> {
        let read = |setting: &'static str, default: Prefix| match env(setting) {
            Some(text) if !text.is_empty() => Prefix::parse(setting, &text),
            _ => Ok(default),
        };
        Ok(Prefixes {
            secret: read("SECRET_PREFIX", Prefix::secret())?,
            id: read("ID_PREFIX", Prefix::id())?,
        })
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

/// Whether `bytes` has a prefix's shape: 2 to [`MAX_PREFIX_LEN`] lowercase letters, digits and
/// `_`, beginning with a letter and ending in `_`.
fn is_prefix(bytes: &[u8]) -> bool {
    (2..=MAX_PREFIX_LEN).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.last() == Some(&b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The form of `secret`: this format when what follows its last `_` is [`TAIL_LEN`] base62
/// characters beginning with the generation digit, after what could be a prefix (the shape
/// [`Prefix::parse`] accepts, at most [`MAX_PREFIX_LEN`] bytes, so that no longer input costs a
/// longer checksum). No secret of an earlier version has that form (theirs begin `0`, or are
/// shorter), so none is refused by it.
pub fn form(secret: &str) -> Form {
    let bytes = secret.as_bytes();
    let Some(split) = bytes.len().checked_sub(TAIL_LEN) else {
        return Form::Other;
    };
    let (prefix, tail) = bytes.split_at(split);
    // The cheap tests first: most other secrets fail one of them.
    let shaped = tail[0] == GENERATION
        && prefix.last() == Some(&b'_')
        && is_prefix(prefix)
        // Every byte, without stopping early, so that the loop is vectorised: stopping at the
        // first byte that is not base62 made this check cost three times the checksum.
        && tail
            .iter()
            .fold(true, |ok, &b| ok & b.is_ascii_alphanumeric());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_crc32_in_base62() {
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
        // Nor is anything with a longer prefix than a deployment may have, or one that begins
        // with a digit, checked: a long body costs no long checksum.
        let long = format!("{}_", "a".repeat(MAX_PREFIX_LEN));
        assert_eq!(form(&secret(&long)), Form::Other);
        assert_eq!(form(&secret(&long[1..])), Form::Checksummed);
        assert_eq!(form(&secret("1a_")), Form::Other);
    }

    #[test]
    fn the_prefixes_come_from_their_settings_or_are_the_defaults() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Prefixes::from_env(env(&[])), Ok(Prefixes::default()));
        assert_eq!(
            Prefixes::from_env(env(&[("SECRET_PREFIX", ""), ("ID_PREFIX", "")])),
            Ok(Prefixes::default())
        );
        let set = Prefixes::from_env(env(&[
            ("SECRET_PREFIX", "amp_live_"),
            ("ID_PREFIX", "amp_"),
        ]));
        let set = set.unwrap();
        assert_eq!(
            (set.secret.as_str(), set.id.as_str()),
            ("amp_live_", "amp_")
        );
        let refused = |setting: &'static str, text: &str| {
            Err(Error::Prefix {
                setting,
                text: text.into(),
            })
        };
        assert_eq!(
            Prefixes::from_env(env(&[("SECRET_PREFIX", "AMP_")])),
            refused("SECRET_PREFIX", "AMP_")
        );
        assert_eq!(
            Prefixes::from_env(env(&[("ID_PREFIX", "amp")])),
            refused("ID_PREFIX", "amp")
        );
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
