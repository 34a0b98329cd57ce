//! Whose a leaked secret is, without showing it: its shape (the checksummed format, an earlier
//! one, or another), and the key whose current or previous secret it is, found by its hash.

use std::collections::HashMap;

use heare_auth_core::{
    form, hash_secret, Expiry, Form, KeyRecord, Prefix, SecretHash, Status, UnixMillis,
    DEFAULT_SECRET_PREFIX,
};

/// The generation digit of the secrets made before the checksummed format.
const EARLIER: &str = "sec_0";
/// How long those secrets are: `sec_0`, then 59 base62 characters.
const EARLIER_LEN: usize = 64;

/// What a secret's characters say about it before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The checksummed format (`<prefix>1…`), its checksum right.
    Checksummed,
    /// The checksummed format, its checksum wrong: a typo, or a made-up secret.
    BadChecksum,
    /// `sec_0…`, 64 characters: made before the checksummed format, without a checksum.
    Earlier,
    /// Anything else: the original service's `sec_…` secrets, or imported ones.
    Other,
}

impl Shape {
    /// The shape in one word, as `--json` gives it.
    pub fn word(self) -> &'static str {
        match self {
            Shape::Checksummed => "checksummed",
            Shape::BadChecksum => "bad_checksum",
            Shape::Earlier => "earlier",
            Shape::Other => "other",
        }
    }
}

/// A secret as read for triage: everything about it that may be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Its shape.
    pub shape: Shape,
    /// The part that may be shown: the prefix and the generation digit (`sec_1`) of a
    /// secret in a known format, a known prefix (`sec_`) of another; empty when none is.
    pub shown: String,
    /// Its prefix when it is in the checksummed format (`sec_`, `acme_sk_`).
    pub prefix: Option<String>,
    /// Whether that prefix is this deployment's (`SECRET_PREFIX`).
    pub deployment: bool,
    /// How many characters it has.
    pub chars: usize,
}

impl Reading {
    /// Reads `secret`, `deployment` being this deployment's secret prefix.
    pub fn of(secret: &str, deployment: &Prefix) -> Reading {
        let chars = secret.chars().count();
        let shape = match form(secret) {
            Form::Checksummed => Shape::Checksummed,
            Form::BadChecksum => Shape::BadChecksum,
            Form::Other if is_earlier(secret) => Shape::Earlier,
            Form::Other => Shape::Other,
        };
        let prefix = match shape {
            // Up to its last `_`: what follows is base62.
            Shape::Checksummed | Shape::BadChecksum => {
                secret.rfind('_').map(|end| secret[..=end].to_string())
            }
            Shape::Earlier | Shape::Other => None,
        };
        let shown = match (&prefix, shape) {
            (Some(prefix), _) => format!("{prefix}1"),
            (None, Shape::Earlier) => EARLIER.to_string(),
            // Only a prefix known to be one: what follows it is the secret.
            (None, _) => [deployment.as_str(), DEFAULT_SECRET_PREFIX]
                .into_iter()
                .find(|p| secret.len() > p.len() && secret.starts_with(p))
                .unwrap_or_default()
                .to_string(),
        };
        Reading {
            shape,
            deployment: prefix.as_deref() == Some(deployment.as_str()),
            prefix,
            shown,
            chars,
        }
    }

    /// The secret masked: what may be shown of it, and its length (`sec_1…(62 chars)`).
    pub fn masked(&self) -> String {
        mask(&self.shown, self.chars)
    }
}

/// `shown…(N chars)`: a secret of `chars` characters of which only `shown` may be shown.
pub fn mask(shown: &str, chars: usize) -> String {
    format!("{shown}…({chars} chars)")
}

/// Whether `secret` is one made before the checksummed format: `sec_0` and 59 base62
/// characters.
fn is_earlier(secret: &str) -> bool {
    secret.len() == EARLIER_LEN
        && secret.starts_with(EARLIER)
        && secret[EARLIER.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Which of a key's secrets a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// Its secret (`secret_hash`, or a legacy plaintext `secret`).
    Current,
    /// The secret a rotation replaced (`previous_secret_hash`).
    Previous,
}

impl Matched {
    /// As `--json` gives it.
    pub fn word(self) -> &'static str {
        match self {
            Matched::Current => "current",
            Matched::Previous => "previous",
        }
    }
}

/// The keys of a keys file by the hashes of their secrets, current and previous, whether or
/// not those still verify: a leaked secret is worth knowing about in every state.
#[derive(Debug, Default)]
pub struct Owners {
    keys: Vec<KeyRecord>,
    by_hash: HashMap<SecretHash, (usize, Matched)>,
}

/// A key a secret belongs to, and which of its secrets it is.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    /// The key.
    pub record: &'a KeyRecord,
    /// Which of its secrets.
    pub matched: Matched,
}

impl Owners {
    /// The index of `keys`, as read from a keys file the server would load (so no two keys
    /// share a secret).
    pub fn of(keys: Vec<KeyRecord>) -> Owners {
        let mut by_hash = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let current = match (&key.secret_hash, &key.secret) {
                (Some(hex), _) => SecretHash::from_hex(hex),
                (None, Some(plain)) => Some(hash_secret(plain)),
                (None, None) => None,
            };
            let previous = key
                .previous_secret_hash
                .as_deref()
                .and_then(SecretHash::from_hex);
            if let Some(hash) = previous {
                by_hash.insert(hash, (i, Matched::Previous));
            }
            if let Some(hash) = current {
                by_hash.insert(hash, (i, Matched::Current));
            }
        }
        Owners { keys, by_hash }
    }

    /// The key whose secret `secret` is, if any.
    pub fn owner(&self, secret: &str) -> Option<Owner<'_>> {
        let &(i, matched) = self.by_hash.get(&hash_secret(secret))?;
        Some(Owner {
            record: &self.keys[i],
            matched,
        })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Owner<'_> {
    /// The key's status at `now`.
    pub fn status(&self, now: UnixMillis) -> Status {
        self.record.status(now)
    }

    /// Whether the grace period of a previous secret is over at `now` (false for a current
    /// one).
    pub fn grace_over(&self, now: UnixMillis) -> bool {
        let until = Expiry::parse(self.record.previous_expires_at.as_deref());
        self.matched == Matched::Previous && until.has_passed(now)
    }

    /// Whether the secret verifies at `now`: the key is active, and a previous secret is
    /// still in its grace period.
    pub fn verifies(&self, now: UnixMillis) -> bool {
        self.status(now).is_active() && !self.grace_over(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::{format_timestamp, generate_secret};
    use rand_core::OsRng;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn secret(prefix: &Prefix) -> String {
        generate_secret(prefix, &mut OsRng, NOW)
    }

    #[test]
    fn each_shape_is_told_and_masked_without_the_secret() {
        let sec = Prefix::secret();
        let acme = Prefix::parse("SECRET_PREFIX", "acme_sk_").unwrap();
        let good = secret(&sec);
        let r = Reading::of(&good, &sec);
        assert_eq!(
            (r.shape, r.prefix.as_deref(), r.deployment),
            (Shape::Checksummed, Some("sec_"), true)
        );
        assert_eq!(r.masked(), "sec_1…(62 chars)");
        // Another deployment's secret: the format, not the prefix.
        let theirs = Reading::of(&secret(&acme), &sec);
        assert_eq!(
            (theirs.shape, theirs.deployment, theirs.masked().as_str()),
            (Shape::Checksummed, false, "acme_sk_1…(66 chars)")
        );
        assert!(Reading::of(&secret(&acme), &acme).deployment);
        let mut typo = good.clone().into_bytes();
        typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(Reading::of(&typo, &sec).shape, Shape::BadChecksum);
        assert_eq!(Reading::of(&typo, &sec).masked(), "sec_1…(62 chars)");
        let earlier = format!("sec_0{}", "a".repeat(59));
        assert_eq!(Reading::of(&earlier, &sec).shape, Shape::Earlier);
        assert_eq!(Reading::of(&earlier, &sec).masked(), "sec_0…(64 chars)");
        // Legacy and imported secrets: a known prefix at most.
        let legacy = "sec_N3J8dNcKZqg-7bXk_Tr2f3fQh4Gf9t2vQxk3oXa1vQ0";
        assert_eq!(Reading::of(legacy, &sec).shape, Shape::Other);
        assert_eq!(Reading::of(legacy, &sec).masked(), "sec_…(47 chars)");
        assert_eq!(
            Reading::of("acme_sk_xyz", &acme).masked(),
            "acme_sk_…(11 chars)"
        );
        assert_eq!(
            Reading::of("ghp_16C7e42F292c", &sec).masked(),
            "…(16 chars)"
        );
        assert_eq!(Reading::of("sec_", &sec).masked(), "…(4 chars)");
        assert_eq!(Reading::of("é", &sec).masked(), "…(1 chars)");
        for (shape, word) in [
            (Shape::Checksummed, "checksummed"),
            (Shape::BadChecksum, "bad_checksum"),
            (Shape::Earlier, "earlier"),
            (Shape::Other, "other"),
        ] {
            assert_eq!(shape.word(), word);
        }
    }

    fn key(id: &str, secret: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some(hash_secret(secret).to_hex()),
            ..KeyRecord::default()
        }
    }

    #[test]
    fn a_secret_is_found_as_a_keys_current_or_previous_one_in_any_state() {
        let (a, b, old, legacy) = ("sec_a", "sec_b", "sec_old", "sec_legacy_plain");
        let rotated = KeyRecord {
            previous_secret_hash: Some(hash_secret(old).to_hex()),
            previous_expires_at: Some(format_timestamp(NOW)),
            ..key("key_b", b)
        };
        let plain = KeyRecord {
            id: "key_l".into(),
            secret: Some(legacy.into()),
            disabled: Some(true),
            ..KeyRecord::default()
        };
        let owners = Owners::of(vec![key("key_a", a), rotated, plain]);
        assert_eq!(owners.len(), 3);
        let found = |s: &str| owners.owner(s).map(|o| (o.record.id.as_str(), o.matched));
        assert_eq!(found(a), Some(("key_a", Matched::Current)));
        assert_eq!(found(b), Some(("key_b", Matched::Current)));
        assert_eq!(found(old), Some(("key_b", Matched::Previous)));
        assert_eq!(found(legacy), Some(("key_l", Matched::Current)));
        assert_eq!(found("sec_nobody"), None);
        assert_eq!(found(""), None);
        // The previous secret verifies up to and including the end of its grace period.
        let previous = owners.owner(old).unwrap();
        assert!(previous.verifies(NOW) && !previous.grace_over(NOW));
        assert!(!previous.verifies(NOW + 1) && previous.grace_over(NOW + 1));
        assert_eq!(previous.status(NOW + 1), Status::Active);
        let current = owners.owner(b).unwrap();
        assert!(current.verifies(NOW + 1) && !current.grace_over(NOW + 1));
        let disabled = owners.owner(legacy).unwrap();
        assert_eq!(disabled.status(NOW), Status::Disabled);
        assert!(!disabled.verifies(NOW));
        assert!(Owners::default().is_empty());
    }
}
