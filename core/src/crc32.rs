//! CRC32 (IEEE 802.3, as zlib and PNG compute it), the checksum of a secret: natively by
//! slicing by 4 (a 4 KiB table built at compile time), so that the CRC of a secret costs about
//! 20 ns rather than the 300 ns of a bit-by-bit loop; in WebAssembly by
//! nibbles (a 64-byte table), where every byte of the package counts and a verification takes
//! microseconds anyway.

/// The reflected polynomial.
const POLY: u32 = 0xEDB8_8320;

/// The CRC32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return by_slices(bytes);
    #[cfg(target_arch = "wasm32")]
    return by_nibbles(bytes);
}

/// `crc` after `bits` more zero bits.
const fn shifted(mut crc: u32, bits: u32) -> u32 {
    let mut k = 0;
    while k < bits {
        crc = (crc >> 1) ^ (POLY & (crc & 1).wrapping_neg());
        k += 1;
    }
    crc
}

/// Row 0: the CRC of each byte; row `s`: of each byte followed by `s` zero bytes.
#[cfg(any(test, not(target_arch = "wasm32")))]
static SLICES: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        t[0][i] = shifted(i as u32, 8);
        i += 1;
    }
    let mut s = 1;
    while s < 4 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
};

/// Four bytes at a time, through four tables looked up independently.
#[cfg(any(test, not(target_arch = "wasm32")))]
fn by_slices(bytes: &[u8]) -> u32 {
    let byte = |crc: u32, b: u8| (crc >> 8) ^ SLICES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    let mut crc = !0u32;
    let mut words = bytes.chunks_exact(4);
    for w in &mut words {
        let x = crc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        crc = SLICES[3][(x & 0xff) as usize]
            ^ SLICES[2][((x >> 8) & 0xff) as usize]
            ^ SLICES[1][((x >> 16) & 0xff) as usize]
            ^ SLICES[0][(x >> 24) as usize];
    }
    !words.remainder().iter().fold(crc, |crc, &b| byte(crc, b))
}

/// The CRC of each nibble.
#[cfg(any(test, target_arch = "wasm32"))]
static NIBBLES: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = shifted(i as u32, 4);
        i += 1;
    }
    t
};

/// Four bits at a time.
#[cfg(any(test, target_arch = "wasm32"))]
fn by_nibbles(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        crc = (crc >> 4) ^ NIBBLES[(crc & 15) as usize];
        crc = (crc >> 4) ^ NIBBLES[(crc & 15) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: one bit at a time.
    fn by_bits(bytes: &[u8]) -> u32 {
        !bytes
            .iter()
            .fold(!0u32, |crc, &b| shifted(crc ^ u32::from(b), 8))
    }

    #[test]
    fn every_way_gives_the_standard_crc() {
        for f in [crc32, by_slices, by_nibbles, by_bits] {
            assert_eq!(f(b"123456789"), 0xCBF4_3926);
            assert_eq!(f(b""), 0);
            assert_eq!(
                f(b"The quick brown fox jumps over the lazy dog"),
                0x414F_A339
            );
        }
        // Every length around the word size, every byte value.
        let bytes: Vec<u8> = (0..=255).collect();
        for end in 0..bytes.len() {
            let want = by_bits(&bytes[..end]);
            assert_eq!(by_slices(&bytes[..end]), want, "{end}");
            assert_eq!(by_nibbles(&bytes[..end]), want, "{end}");
        }
    }
}
