//! Key ids and secrets: a prefix (`key_`, `sec_`, or a deployment's own), a generation digit, a
//! base62 timestamp, then base62 CSPRNG output; a secret ends in its checksum (see
//! [`crate::form`]).

use rand_core::{CryptoRng, RngCore};

use crate::format::{checksum, Prefix, BASE62, RANDOM_LEN, TIME_LEN};
use crate::UnixMillis;

/// Random characters in an id.
const ID_RANDOM_LEN: usize = 16;

/// A new key id: the prefix, `0`, 8 base62 characters of `now`, 16 random base62 characters.
pub fn generate_id<R: RngCore + CryptoRng>(
    prefix: &Prefix,
    rng: &mut R,
    now: UnixMillis,
) -> String {
    generate(prefix.as_str(), b'0', now, ID_RANDOM_LEN, rng)
}

/// A new secret: the prefix, `1`, 8 base62 characters of `now`, 43 random ones (256 bits), and
/// the 6-character checksum of all that.
pub fn generate_secret<R: RngCore + CryptoRng>(
    prefix: &Prefix,
    rng: &mut R,
    now: UnixMillis,
) -> String {
    let mut secret = generate(
        prefix.as_str(),
        crate::format::GENERATION,
        now,
        RANDOM_LEN,
        rng,
    );
    let sum = checksum(secret.as_bytes());
    secret.extend(sum.iter().map(|&b| char::from(b)));
    secret
}

fn generate<R: RngCore + CryptoRng>(
    prefix: &str,
    generation: u8,
    now: UnixMillis,
    random: usize,
    rng: &mut R,
) -> String {
    let mut out = String::with_capacity(prefix.len() + 1 + TIME_LEN + random + 6);
    out.push_str(prefix);
    out.push(char::from(generation));
    let mut time = [b'0'; TIME_LEN];
    let mut t = now.max(0) as u64;
    for slot in time.iter_mut().rev() {
        *slot = BASE62[(t % 62) as usize];
        t /= 62;
    }
    out.extend(time.iter().map(|&b| char::from(b)));
    let mut filled = 0;
    let mut buf = [0u8; 64];
    while filled < random {
        rng.fill_bytes(&mut buf);
        // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248).take(random - filled) {
            out.push(char::from(BASE62[usize::from(b % 62)]));
            filled += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const NOW: UnixMillis = 1_795_569_434_316;

    #[test]
    fn layout_has_prefix_generation_time_random_and_checksum() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = generate_id(&Prefix::id(), &mut rng, NOW);
        let secret = generate_secret(&Prefix::secret(), &mut rng, NOW);
        assert_eq!(id.len(), 29);
        assert_eq!(secret.len(), 4 + crate::format::TAIL_LEN);
        assert!(id.starts_with("key_0"), "{id}");
        assert!(secret.starts_with("sec_1"), "{secret}");
        // The same instant gives the same time part, so ids sort by creation time.
        assert_eq!(id[5..13], secret[5..13]);
        assert_eq!(&id[5..13], "0VbwYMJg");
        assert!(secret[5..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(crate::form(&secret), crate::Form::Checksummed);
        let own = Prefix::parse("SECRET_PREFIX", "acme_sk_").unwrap();
        let theirs = generate_secret(&own, &mut rng, NOW);
        assert!(theirs.starts_with("acme_sk_10VbwYMJg"), "{theirs}");
        assert_eq!(crate::form(&theirs), crate::Form::Checksummed);
    }

    #[test]
    fn seeded_rng_is_deterministic_and_streams_differ() {
        let a = generate_secret(&Prefix::secret(), &mut ChaCha20Rng::seed_from_u64(1), NOW);
        let b = generate_secret(&Prefix::secret(), &mut ChaCha20Rng::seed_from_u64(1), NOW);
        let c = generate_secret(&Prefix::secret(), &mut ChaCha20Rng::seed_from_u64(2), NOW);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn characters_are_roughly_uniform() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut counts = [0u32; 128];
        for _ in 0..2000 {
            let secret = generate_secret(&Prefix::secret(), &mut rng, NOW);
            for b in secret[13..secret.len() - 6].bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        // 2000 * 43 draws over 62 symbols: about 1387 each.
        for &c in BASE62 {
            let n = counts[usize::from(c)];
            assert!(
                (1150..1650).contains(&n),
                "{} drawn {n} times",
                char::from(c)
            );
        }
    }
}
