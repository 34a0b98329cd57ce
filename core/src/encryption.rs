//! Encrypted keys files as the original wrote them: `HEARE_ENCRYPTED_V1:` and a Fernet token
//! whose key is SHA-256 of `STORAGE_SECRET`.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::Error;

/// The bytes an encrypted keys file starts with.
const ENCRYPTED_PREFIX: &[u8] = b"HEARE_ENCRYPTED_V1:";

const FERNET_VERSION: u8 = 0x80;
const HEADER: usize = 1 + 8 + 16; // version, timestamp, IV
const MAC: usize = 32;

/// Whether `bytes` is an encrypted keys file.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(ENCRYPTED_PREFIX)
}

/// The Fernet signing and encryption keys for a storage secret: the two halves of its SHA-256
/// (the original passed `urlsafe_b64encode(sha256(secret))` to `Fernet`).
fn keys(storage_secret: &str) -> ([u8; 16], [u8; 16]) {
    let digest: [u8; 32] = Sha256::digest(storage_secret.as_bytes()).into();
    let (mut sign, mut enc) = ([0u8; 16], [0u8; 16]);
    sign.copy_from_slice(&digest[..16]);
    enc.copy_from_slice(&digest[16..]);
    (sign, enc)
}

/// Reads a keys file that may be encrypted. Plaintext files pass through unchanged (so files can
/// be migrated); an encrypted file needs `storage_secret`.
pub fn decrypt_file<'a>(
    bytes: &'a [u8],
    storage_secret: Option<&str>,
) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    let Some(token) = bytes.strip_prefix(ENCRYPTED_PREFIX) else {
        return Ok(bytes.into());
    };
    let secret = storage_secret.ok_or(Error::NoStorageSecret)?;
    let wrong = || Error::CannotDecrypt;
    let token = token.trim_ascii();
    let raw = URL_SAFE.decode(token).map_err(|_| wrong())?;
    if raw.len() < HEADER + MAC + 16
        || raw[0] != FERNET_VERSION
        || !(raw.len() - HEADER - MAC).is_multiple_of(16)
    {
        return Err(wrong());
    }
    let (sign_key, enc_key) = keys(secret);
    let (signed, tag) = raw.split_at(raw.len() - MAC);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&sign_key).map_err(|_| wrong())?;
    mac.update(signed);
    mac.verify_slice(tag).map_err(|_| wrong())?;
    let iv = &signed[9..HEADER];
    let plaintext = cbc::Decryptor::<aes::Aes128>::new(&enc_key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&signed[HEADER..])
        .map_err(|_| wrong())?;
    Ok(plaintext.into())
}

/// Encrypts a keys file for storage. `iv` must come from a CSPRNG; `now_secs` is the Fernet
/// timestamp (Unix seconds).
pub fn encrypt_file(
    plaintext: &[u8],
    storage_secret: &str,
    iv: [u8; 16],
    now_secs: u64,
) -> Vec<u8> {
    let (sign_key, enc_key) = keys(storage_secret);
    let mut raw = Vec::with_capacity(HEADER + plaintext.len() + 16 + MAC);
    raw.push(FERNET_VERSION);
    raw.extend_from_slice(&now_secs.to_be_bytes());
    raw.extend_from_slice(&iv);
    raw.extend(
        cbc::Encryptor::<aes::Aes128>::new(&enc_key.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
    );
    if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&sign_key) {
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
    }
    let mut out = ENCRYPTED_PREFIX.to_vec();
    out.extend_from_slice(URL_SAFE.encode(raw).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by Python's `cryptography` (tests/vectors/fernet.py).
    const VECTORS: &str = include_str!("../../tests/vectors/fernet.json");

    fn cases() -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        v["cases"].as_array().unwrap().clone()
    }

    fn iv(case: &serde_json::Value) -> [u8; 16] {
        let hex = case["iv_hex"].as_str().unwrap();
        let mut iv = [0u8; 16];
        for (i, b) in iv.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        iv
    }

    #[test]
    fn encrypts_byte_for_byte_like_python_fernet() {
        for case in cases() {
            let secret = case["storage_secret"].as_str().unwrap();
            let plaintext = case["plaintext"].as_str().unwrap();
            let ours = encrypt_file(
                plaintext.as_bytes(),
                secret,
                iv(&case),
                case["time"].as_u64().unwrap(),
            );
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                case["file_fixed_iv"].as_str().unwrap(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn decrypts_files_python_encrypted() {
        for case in cases() {
            let secret = case["storage_secret"].as_str().unwrap();
            for field in ["file_fixed_iv", "file_random_iv"] {
                let file = case[field].as_str().unwrap().as_bytes();
                assert!(is_encrypted(file));
                let plain = decrypt_file(file, Some(secret)).unwrap();
                assert_eq!(
                    &*plain,
                    case["plaintext"].as_str().unwrap().as_bytes(),
                    "{}",
                    case["name"]
                );
            }
        }
    }

    #[test]
    fn wrong_missing_secret_and_damage_are_clear_errors() {
        let case = &cases()[1];
        let file = case["file_random_iv"].as_str().unwrap().as_bytes();
        let err = |e: Result<_, Error>| e.err();
        assert_eq!(err(decrypt_file(file, None)), Some(Error::NoStorageSecret));
        assert_eq!(
            Error::NoStorageSecret.to_string(),
            "the keys file is encrypted but STORAGE_SECRET is not set"
        );
        let wrong = Some(Error::CannotDecrypt);
        assert_eq!(err(decrypt_file(file, Some("nope"))), wrong);
        let mut damaged = file.to_vec();
        let at = damaged.len() - 10;
        damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            err(decrypt_file(
                &damaged,
                Some(case["storage_secret"].as_str().unwrap())
            )),
            wrong
        );
        assert_eq!(err(decrypt_file(&file[..file.len() / 2], Some("x"))), wrong);
        assert_eq!(err(decrypt_file(b"HEARE_ENCRYPTED_V1:", Some("x"))), wrong);
        // Plaintext passes through, secret or not, for migration.
        assert_eq!(
            &*decrypt_file(b"{\"keys\": []}", Some("x")).unwrap(),
            b"{\"keys\": []}"
        );
        assert_eq!(
            Error::CannotDecrypt.to_string(),
            "cannot decrypt the keys file: wrong STORAGE_SECRET or a damaged file"
        );
    }

    #[test]
    fn round_trips() {
        let file = encrypt_file(b"{\"keys\": []}", "k", [7; 16], 1);
        assert_eq!(&*decrypt_file(&file, Some("k")).unwrap(), b"{\"keys\": []}");
    }
}
