//! Fuzzes the encrypted-file reader. Input: a storage secret, a file, and bytes for an IV, a
//! time and a position, apart by NUL. Whatever the file, reading it does not panic; a file that
//! decrypts is the one its plaintext encrypts to with its own IV and time; and the file taken as
//! plaintext encrypts to a token that decrypts back, with that secret only, and that no one-byte
//! change leaves readable.

#![no_main]

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use heare_auth_core::{decrypt_file, encrypt_file, is_encrypted};
use heare_auth_fuzz::fields;
use libfuzzer_sys::fuzz_target;

/// What an encrypted keys file starts with; the Fernet token follows.
const PREFIX: &[u8] = b"HEARE_ENCRYPTED_V1:";

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 3);
    let secret = String::from_utf8_lossy(parts[0].unwrap_or_default()).into_owned();
    let file = parts[1].unwrap_or_default();
    let knobs = parts[2].unwrap_or_default();

    read_any(file, &secret);
    round_trip(file, &secret, knobs);
});

/// Reading a file, encrypted or not, with or without a secret.
fn read_any(file: &[u8], secret: &str) {
    if !is_encrypted(file) {
        assert_eq!(decrypt_file(file, Some(secret)).as_deref(), Ok(file));
        assert_eq!(decrypt_file(file, None).as_deref(), Ok(file));
        return;
    }
    assert!(
        decrypt_file(file, None).is_err(),
        "decrypted without a secret"
    );
    let Ok(plain) = decrypt_file(file, Some(secret)) else {
        return;
    };
    // A token that decrypts is exactly what its plaintext encrypts to with its IV and time.
    let token = file[PREFIX.len()..].trim_ascii();
    let raw = URL_SAFE
        .decode(token)
        .expect("a token that decrypts is base64");
    let time = u64::from_be_bytes(raw[1..9].try_into().expect("8 bytes"));
    let iv: [u8; 16] = raw[9..25].try_into().expect("16 bytes");
    let again = encrypt_file(&plain, secret, iv, time);
    assert_eq!(
        again[PREFIX.len()..],
        *token,
        "decrypted, then encrypted with the same IV and time, gives another token"
    );
}

/// Encrypting `plain` and reading it back, with the right secret, a wrong one, and damage.
fn round_trip(plain: &[u8], secret: &str, knobs: &[u8]) {
    let mut bytes = [0u8; 32];
    let n = knobs.len().min(32);
    bytes[..n].copy_from_slice(&knobs[..n]);
    let iv: [u8; 16] = bytes[..16].try_into().expect("16 bytes");
    let time = u64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let at = u64::from_be_bytes(bytes[24..32].try_into().expect("8 bytes"));

    let file = encrypt_file(plain, secret, iv, time);
    assert!(is_encrypted(&file));
    assert_eq!(decrypt_file(&file, Some(secret)).as_deref(), Ok(plain));
    let wrong = format!("{secret}.");
    assert!(
        decrypt_file(&file, Some(&wrong)).is_err(),
        "decrypted with a wrong secret"
    );

    // One byte of the token changed, to any other byte.
    let token_len = (file.len() - PREFIX.len()) as u64;
    let i = PREFIX.len() + (at % token_len) as usize;
    let mut damaged = file.clone();
    damaged[i] = damaged[i].wrapping_add(1 + (at >> 56) as u8 % 255);
    assert!(
        decrypt_file(&damaged, Some(secret)).is_err(),
        "byte {i} changed from {:?} to {:?} and the file still decrypts",
        char::from(file[i]),
        char::from(damaged[i])
    );
    // Cut short anywhere in the token.
    let cut = PREFIX.len() + (at % token_len) as usize;
    assert!(
        decrypt_file(&file[..cut], Some(secret)).is_err(),
        "cut to {cut} bytes and still decrypts"
    );
}
