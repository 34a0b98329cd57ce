//! Request ids: every answer carries `X-Request-Id`, the caller's when it is a sane token and one
//! made here otherwise, and every log line about the request names it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// The header, in requests and answers.
pub const HEADER: &str = "x-request-id";

/// The longest request id taken from a caller.
pub const MAX_LENGTH: usize = 128;

/// The request's id: the caller's `X-Request-Id` when it is 1 to [`MAX_LENGTH`] visible ASCII
/// characters (no space, no control character), else a new one.
pub fn of(headers: &HeaderMap) -> String {
    match headers.get(HEADER).map(|v| v.as_bytes()) {
        Some(id) if sane(id) => String::from_utf8_lossy(id).into_owned(),
        _ => new(),
    }
}

fn sane(id: &[u8]) -> bool {
    (1..=MAX_LENGTH).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

/// A new id: 24 hex digits, a per-process start (its clock and pid, mixed) then a counter, so
/// that no two answers of one process, and in practice of any two, share one.
fn new() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(nanos ^ (u64::from(std::process::id()) << 32))
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{start:016x}{:08x}", n & 0xffff_ffff)
}

/// SplitMix64's finaliser: spreads every bit of `x` over the whole word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(HEADER, v);
        }
        headers
    }

    #[test]
    fn a_sane_id_is_kept_and_any_other_replaced() {
        assert_eq!(of(&with(b"req-42_ab.CD:9")), "req-42_ab.CD:9");
        let longest = "a".repeat(MAX_LENGTH);
        assert_eq!(of(&with(longest.as_bytes())), longest);
        for insane in [
            "a".repeat(MAX_LENGTH + 1).into_bytes(),
            b"has space".to_vec(),
            b"tab\there".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            b"\xff\xfe".to_vec(),
            b"".to_vec(),
        ] {
            let id = of(&with(&insane));
            assert_eq!(id.len(), 24, "{insane:?} -> {id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert_eq!(of(&HeaderMap::new()).len(), 24);
    }

    #[test]
    fn new_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
