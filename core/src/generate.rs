//! Key ids and secrets: `key_0…` / `sec_0…`, a base62 timestamp, then base62 CSPRNG output.

use rand_core::{CryptoRng, RngCore};

use crate::UnixMillis;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Width of the base62 millisecond timestamp after the generation digit.
const TIME_LEN: usize = 8;
/// Random characters in an id.
const ID_RANDOM_LEN: usize = 16;
/// Total length of a generated secret: 51 random base62 characters, about 303 bits.
const SECRET_LEN: usize = 64;

/// A new key id: `key_0`, 8 base62 characters of `now`, 16 random base62 characters.
pub fn generate_id<R: RngCore + CryptoRng>(rng: &mut R, now: UnixMillis) -> String {
    generate("key", now, ID_RANDOM_LEN, rng)
}

/// A new secret, 64 characters: `sec_0`, 8 base62 characters of `now`, 51 random ones.
pub fn generate_secret<R: RngCore + CryptoRng>(rng: &mut R, now: UnixMillis) -> String {
    generate("sec", now, SECRET_LEN - 5 - TIME_LEN, rng)
}

fn generate<R: RngCore + CryptoRng>(
    prefix: &str,
    now: UnixMillis,
    random: usize,
    rng: &mut R,
) -> String {
    let mut out = String::with_capacity(prefix.len() + 2 + TIME_LEN + random);
    out.push_str(prefix);
    out.push_str("_0");
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
    fn layout_matches_the_original() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = generate_id(&mut rng, NOW);
        let secret = generate_secret(&mut rng, NOW);
        assert_eq!(id.len(), 29);
        assert_eq!(secret.len(), SECRET_LEN);
        assert!(id.starts_with("key_0"), "{id}");
        assert!(secret.starts_with("sec_0"), "{secret}");
        // The same instant gives the same time part, so ids sort by creation time.
        assert_eq!(id[5..13], secret[5..13]);
        assert_eq!(&id[5..13], "0VbwYMJg");
        assert!(secret[5..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn seeded_rng_is_deterministic_and_streams_differ() {
        let a = generate_secret(&mut ChaCha20Rng::seed_from_u64(1), NOW);
        let b = generate_secret(&mut ChaCha20Rng::seed_from_u64(1), NOW);
        let c = generate_secret(&mut ChaCha20Rng::seed_from_u64(2), NOW);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn characters_are_roughly_uniform() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut counts = [0u32; 128];
        for _ in 0..2000 {
            for b in generate_secret(&mut rng, NOW)[13..].bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        // 2000 * 51 draws over 62 symbols: about 1645 each.
        for &c in BASE62 {
            let n = counts[usize::from(c)];
            assert!(
                (1400..1900).contains(&n),
                "{} drawn {n} times",
                char::from(c)
            );
        }
    }
}
