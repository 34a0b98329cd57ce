//! Finding secrets of the checksummed format in a stream of bytes: every `<prefix>1…` whose
//! checksum is right, with its line and column, fed a piece at a time so that neither a large
//! file nor a long line is ever held whole.

use std::fmt;

use heare_auth_core::{form, Form, Prefix, MAX_PREFIX_LEN};

use super::identify::mask;

/// What follows the prefix in a checksummed secret: the generation digit `1`, 8 base62
/// characters of time, 43 random ones and a 6-character checksum (core's `format.rs`).
pub const TAIL_LEN: usize = 58;

/// How much of a file's beginning tells whether it is binary.
pub const SNIFF_LEN: usize = 8192;

/// Whether a file beginning with `head` is binary: a NUL byte in its first [`SNIFF_LEN`]
/// bytes, as git and grep decide.
pub fn is_binary(head: &[u8]) -> bool {
    head[..head.len().min(SNIFF_LEN)].contains(&0)
}

/// A secret found in a stream. Shown only masked: its `Debug` hides it too.
#[derive(Clone, PartialEq, Eq)]
pub struct Found {
    /// The line it begins on, from 1.
    pub line: u64,
    /// The byte of that line it begins at, from 1.
    pub column: u64,
    secret: String,
    prefix_len: usize,
}

impl Found {
    /// The secret itself, to look it up; never to be printed.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Its prefix (`sec_`).
    pub fn prefix(&self) -> &str {
        &self.secret[..self.prefix_len]
    }

    /// The secret masked: its prefix and generation digit, and its length.
    pub fn masked(&self) -> String {
        mask(&self.secret[..=self.prefix_len], self.secret.len())
    }
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("line", &self.line)
            .field("column", &self.column)
            .field("secret", &self.masked())
            .finish()
    }
}

/// Finds secrets in a stream fed to it piece by piece: those under one prefix, or (`None`)
/// under any. Holds at most one piece and the few bytes before it that a secret straddling
/// two pieces needs.
#[derive(Debug)]
pub struct Finder {
    wanted: Option<Prefix>,
    /// The bytes not yet let go: the end of the previous pieces and the current one.
    buf: Vec<u8>,
    /// The position in `buf` of the next generation digit to look at.
    next: usize,
    /// The position in `buf` up to which lines are counted: each byte is counted once.
    counted: usize,
    /// The line `buf[counted]` is on, from 1.
    line: u64,
    /// How many bytes of that line precede `buf[counted]`.
    line_offset: u64,
}

impl Finder {
    /// A finder of the secrets under `wanted`, or under any prefix.
    pub fn new(wanted: Option<Prefix>) -> Finder {
        Finder {
            wanted,
            buf: Vec::new(),
            next: 1,
            counted: 0,
            line: 1,
            line_offset: 0,
        }
    }

    /// Feeds the next piece of the stream; the secrets it completes are pushed to `found`.
    pub fn feed(&mut self, piece: &[u8], found: &mut Vec<Found>) {
        self.buf.extend_from_slice(piece);
        let len = self.buf.len();
        // Every generation digit followed by a whole tail is looked at, once.
        while self.next + TAIL_LEN <= len {
            let end = len - TAIL_LEN + 1;
            let Some(at) = self.buf[self.next..end].iter().position(|&b| b == b'1') else {
                self.next = end;
                break;
            };
            let digit = self.next + at;
            self.next = digit + 1;
            if self.buf[digit - 1] != b'_' {
                continue;
            }
            if let Some(start) = self.secret_at(digit) {
                found.push(self.found(start, digit));
            }
        }
        // Keep what a generation digit not yet looked at may need before it.
        let keep_from = self.next.saturating_sub(MAX_PREFIX_LEN).min(len);
        self.let_go(keep_from);
    }

    /// Where the secret whose generation digit is at `digit` begins, if there is one: its
    /// tail is base62, and a prefix before it (the wanted one, or the longest that gives a
    /// right checksum) makes it one.
    fn secret_at(&self, digit: usize) -> Option<usize> {
        let tail = &self.buf[digit..digit + TAIL_LEN];
        if !tail.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let right = |start: usize| {
            std::str::from_utf8(&self.buf[start..digit + TAIL_LEN])
                .is_ok_and(|s| form(s) == Form::Checksummed)
        };
        match &self.wanted {
            Some(prefix) => {
                let start = digit.checked_sub(prefix.as_str().len())?;
                (&self.buf[start..digit] == prefix.as_str().as_bytes() && right(start))
                    .then_some(start)
            }
            None => {
                // The run of prefix characters before the digit, at most a prefix long.
                let mut first = digit - 1;
                while first > 0
                    && digit - (first - 1) <= MAX_PREFIX_LEN
                    && is_prefix_byte(self.buf[first - 1])
                {
                    first -= 1;
                }
                (first..digit - 1)
                    .filter(|&start| self.buf[start].is_ascii_lowercase())
                    .find(|&start| right(start))
            }
        }
    }

    /// The secret from `start` to the tail of the generation digit at `digit`, placed.
    fn found(&mut self, start: usize, digit: usize) -> Found {
        self.count_to(start);
        Found {
            line: self.line,
            column: self.line_offset + 1,
            secret: String::from_utf8_lossy(&self.buf[start..digit + TAIL_LEN]).into_owned(),
            prefix_len: digit - start,
        }
    }

    /// Counts the lines up to `to` in the buffer (secrets are found in order, so the count
    /// only moves forward).
    fn count_to(&mut self, to: usize) {
        if to <= self.counted {
            return;
        }
        let bytes = &self.buf[self.counted..to];
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(nl) => {
                self.line += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                self.line_offset = (bytes.len() - nl - 1) as u64;
            }
            None => self.line_offset += bytes.len() as u64,
        }
        self.counted = to;
    }

    /// Drops the first `n` bytes of the buffer, counting the lines they end.
    fn let_go(&mut self, n: usize) {
        self.count_to(n);
        self.buf.drain(..n);
        self.next -= n;
        self.counted -= n;
    }
}

/// Whether `b` may be part of a prefix: a lowercase letter, a digit or `_`.
fn is_prefix_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

/// Every secret in `bytes`, fed in pieces of `piece` bytes (any size finds the same).
pub fn find_all(wanted: Option<Prefix>, bytes: &[u8], piece: usize) -> Vec<Found> {
    let mut finder = Finder::new(wanted);
    let mut found = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        finder.feed(chunk, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::generate_secret;
    use rand_core::OsRng;

    const NOW: i64 = 1_795_569_434_316;

    fn prefix(text: &str) -> Prefix {
        Prefix::parse("SECRET_PREFIX", text).unwrap()
    }

    #[test]
    fn the_tail_is_as_long_as_cores() {
        let mut rng = OsRng;
        for p in ["sec_", "acme_sk_", "a_"] {
            let secret = generate_secret(&prefix(p), &mut rng, NOW);
            assert_eq!(secret.len(), p.len() + TAIL_LEN, "{p}");
        }
    }

    /// Where each secret found is, and which: (line, column, index in `secrets`).
    fn places(found: &[Found], secrets: &[String]) -> Vec<(u64, u64, usize)> {
        found
            .iter()
            .map(|f| {
                let i = secrets.iter().position(|s| s == f.secret()).unwrap();
                (f.line, f.column, i)
            })
            .collect()
    }

    #[test]
    fn finds_each_secret_with_its_line_and_column_in_pieces_of_any_size() {
        let mut rng = OsRng;
        let s: Vec<String> = (0..3)
            .map(|_| generate_secret(&Prefix::secret(), &mut rng, NOW))
            .collect();
        let text = format!(
            "token = \"{}\"\n\nx{}\n  é {} trailing\r\n{}",
            s[0], s[1], s[2], s[0]
        );
        let want = vec![(1, 10, 0), (3, 2, 1), (4, 6, 2), (5, 1, 0)];
        for piece in [1, 2, 7, 57, 58, 59, 81, 82, 83, 4096] {
            let found = find_all(Some(Prefix::secret()), text.as_bytes(), piece);
            assert_eq!(places(&found, &s), want, "pieces of {piece}");
        }
    }

    #[test]
    fn only_a_right_checksum_under_the_wanted_prefix_is_found() {
        let mut rng = OsRng;
        let ours = generate_secret(&Prefix::secret(), &mut rng, NOW);
        let theirs = generate_secret(&prefix("acme_sk_"), &mut rng, NOW);
        let mut typo = ours.clone().into_bytes();
        typo[30] = if typo[30] == b'Q' { b'R' } else { b'Q' };
        let typo = String::from_utf8(typo).unwrap();
        let near = [
            typo.clone(),
            ours.replacen("sec_1", "sec_2", 1),
            ours.replacen("sec_", "SEC_", 1),
            ours[..ours.len() - 1].to_string(),
            format!("sec_0{}", "a".repeat(59)),
        ];
        let text = format!("{}\n{theirs}\n{ours}\n", near.join("\n"));
        let all = [ours.clone(), theirs.clone()];
        let found = find_all(Some(Prefix::secret()), text.as_bytes(), 64);
        assert_eq!(places(&found, &all), [(7, 1, 0)]);
        let any = find_all(None, text.as_bytes(), 64);
        assert_eq!(places(&any, &all), [(6, 1, 1), (7, 1, 0)]);
        assert_eq!(any[0].prefix(), "acme_sk_");
        // Under its own prefix, the other deployment's secret is the one found.
        let acme = find_all(Some(prefix("acme_sk_")), text.as_bytes(), 64);
        assert_eq!(places(&acme, &all), [(6, 1, 1)]);
    }

    #[test]
    fn a_secret_is_found_inside_other_text_by_its_checksum() {
        let mut rng = OsRng;
        let ours = generate_secret(&Prefix::secret(), &mut rng, NOW);
        let acme = generate_secret(&prefix("acme_sk_"), &mut rng, NOW);
        // An escaped newline before it, and letters glued after it.
        let text = format!("{{\"log\": \"line\\n{ours}xyz\"}} id_{acme}");
        let all = [ours.clone(), acme.clone()];
        let found = find_all(None, text.as_bytes(), 16);
        assert_eq!(places(&found, &all), [(1, 16, 0), (1, 87, 1)]);
        assert_eq!(found[1].prefix(), "acme_sk_");
    }

    #[test]
    fn a_long_line_is_never_held_whole() {
        let secret = generate_secret(&Prefix::secret(), &mut OsRng, NOW);
        let mut finder = Finder::new(Some(Prefix::secret()));
        let mut found = Vec::new();
        let filler = vec![b'a'; 65536];
        for _ in 0..64 {
            finder.feed(&filler, &mut found);
            assert!(
                finder.buf.len() <= MAX_PREFIX_LEN + TAIL_LEN,
                "{}",
                finder.buf.len()
            );
        }
        finder.feed(format!(" {secret}\nnext").as_bytes(), &mut found);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (1, 64 * 65536 + 2));
    }

    #[test]
    fn a_finding_is_shown_masked_even_in_debug_output() {
        let secret = generate_secret(&Prefix::secret(), &mut OsRng, NOW);
        let found = find_all(Some(Prefix::secret()), secret.as_bytes(), 100);
        assert_eq!(found[0].masked(), "sec_1…(62 chars)");
        let debug = format!("{found:?}");
        assert!(!debug.contains(&secret[5..]), "{debug}");
        assert!(debug.contains("sec_1…(62 chars)"), "{debug}");
    }

    #[test]
    fn binary_is_a_nul_in_the_first_8_kib() {
        assert!(is_binary(b"PNG\x00\x01"));
        assert!(!is_binary(b"plain text\n"));
        assert!(!is_binary(b""));
        let mut late = vec![b'a'; SNIFF_LEN];
        late.push(0);
        assert!(!is_binary(&late));
        late[SNIFF_LEN - 1] = 0;
        assert!(is_binary(&late));
    }
}
