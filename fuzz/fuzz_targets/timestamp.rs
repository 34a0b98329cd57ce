//! Fuzzes the timestamp parser and formatter. Input: text to parse. Whatever parses formats to a
//! timestamp that parses to the same instant, and so does every instant of the supported range
//! (the years 0000 to 9999; the input's first 8 bytes pick one); an error quotes the input.

#![no_main]

use heare_auth_core::{format_timestamp, parse_timestamp, Error, Expiry, UnixMillis};
use libfuzzer_sys::fuzz_target;

/// 0000-01-01T00:00:00Z.
const FIRST: UnixMillis = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z.
const LAST: UnixMillis = 253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_timestamp(&text) {
        Ok(t) => {
            let formatted = format_timestamp(t);
            assert_eq!(
                parse_timestamp(&formatted),
                Ok(t),
                "{text:?} formats as {formatted}"
            );
            assert_eq!(Expiry::parse(Some(&text)), Expiry::At(t));
        }
        Err(e) => {
            assert_eq!(
                e,
                Error::Timestamp {
                    value: text.to_string()
                }
            );
            assert_eq!(Expiry::parse(Some(&text)), Expiry::Unreadable);
        }
    }

    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    let any = i64::from_le_bytes(word);
    // Outside the range it must not panic (it gives the epoch).
    format_timestamp(any);
    let span = (LAST - FIRST + 1) as u64;
    let t = FIRST + (any as u64 % span) as i64;
    let formatted_t = format_timestamp(t);
    assert_eq!(
        parse_timestamp(&formatted_t),
        Ok(t),
        "{t} formats as {formatted_t}"
    );
    assert_eq!(formatted_t.len(), "2026-11-25T01:17:14.316000Z".len());
});
