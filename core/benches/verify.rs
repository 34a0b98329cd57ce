//! Nanoseconds per verification on a 1,000,000-key set: valid secrets; unknown ones of this
//! format (checksum right: checksum, SHA-256 and lookup) and of the earlier `sec_0…` form (no
//! checksum: SHA-256 and lookup); and secrets with a wrong checksum, refused before any
//! lookup. `cargo bench -p heare-auth-core --bench verify` (part of `make bench`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use heare_auth_core::{generate_id, generate_secret, hash_secret, KeySet, Outcome, Prefix};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const KEYS: usize = 1_000_000;
const NOW: i64 = 1_795_564_800_000;
/// No scopes demanded.
const NONE: &[&str] = &[];

/// A keys file of `KEYS` hashed keys and every 1000th secret.
fn key_file() -> (String, Vec<String>) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut json = String::with_capacity(KEYS * 220);
    let mut sample = Vec::new();
    json.push_str("{\"keys\":[");
    for i in 0..KEYS {
        let secret = generate_secret(&Prefix::secret(), &mut rng, NOW);
        let id = generate_id(&Prefix::id(), &mut rng, NOW);
        let sep = if i == 0 { "" } else { "," };
        write!(
            json,
            r#"{sep}{{"id":"{id}","secret_hash":"{}","name":"Service {i}","metadata":{{"team":"t{}"}}}}"#,
            hash_secret(&secret).to_hex(),
            i % 8
        )
        .unwrap();
        if i % 1000 == 0 {
            sample.push(secret);
        }
    }
    json.push_str("]}");
    (json, sample)
}

fn verify(c: &mut Criterion) {
    let (json, valid) = key_file();
    let (set, _) = KeySet::from_json(json.as_bytes()).unwrap();
    assert_eq!(set.len(), KEYS);
    let invalid: Vec<String> = {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        (0..valid.len())
            .map(|_| generate_secret(&Prefix::secret(), &mut rng, NOW))
            .collect()
    };
    // The same secrets, each with one character of its checksum changed.
    let bad_checksum: Vec<String> = invalid
        .iter()
        .map(|s| {
            let (body, last) = s.split_at(s.len() - 1);
            format!("{body}{}", if last == "x" { 'y' } else { 'x' })
        })
        .collect();
    // Unknown secrets of the earlier form: `sec_0`, then 59 base62 characters.
    let earlier: Vec<String> = invalid
        .iter()
        .map(|s| format!("sec_0{}00", &s[5..]))
        .collect();
    assert!(earlier.iter().all(|s| s.len() == 64));
    let mut group = c.benchmark_group("verify_1m_keys");
    let mut i = 0;
    group.bench_function("valid", |b| {
        b.iter(|| {
            i = (i + 1) % valid.len();
            let outcome = set.verify(black_box(&valid[i]), NOW, NONE);
            assert!(outcome.valid_key().is_some());
        })
    });
    group.bench_function("invalid", |b| {
        b.iter(|| {
            i = (i + 1) % invalid.len();
            let outcome = set.verify(black_box(&invalid[i]), NOW, NONE);
            assert!(matches!(outcome, Outcome::NotFound));
        })
    });
    group.bench_function("invalid_earlier", |b| {
        b.iter(|| {
            i = (i + 1) % earlier.len();
            let outcome = set.verify(black_box(&earlier[i]), NOW, NONE);
            assert!(matches!(outcome, Outcome::NotFound));
        })
    });
    group.bench_function("bad_checksum", |b| {
        b.iter(|| {
            i = (i + 1) % bad_checksum.len();
            let outcome = set.verify(black_box(&bad_checksum[i]), NOW, NONE);
            assert!(matches!(outcome, Outcome::BadChecksum));
        })
    });
    group.bench_function("valid_with_body", |b| {
        let mut body = String::with_capacity(256);
        b.iter(|| {
            i = (i + 1) % valid.len();
            body.clear();
            set.verify(black_box(&valid[i]), NOW, NONE)
                .write_json(&mut body, None);
            black_box(&body);
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
