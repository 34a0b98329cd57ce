//! `list`'s output written as the keys come, the same on the store and through a server: the
//! table (its head before the first key; its foot, or "no keys", at the end) or a JSON array on
//! one line.

use heare_auth_core::{KeyRecord, UnixMillis};

use crate::output;
use crate::usage::KeyUsage;

/// A listing under way: how it is printed, and how many keys it has shown.
#[derive(Debug)]
pub struct Listing {
    detailed: bool,
    json: bool,
    now: UnixMillis,
    shown: usize,
}

impl Listing {
    /// A listing with `--detailed` and `--json` as given, each key's status at `now`.
    pub fn new(detailed: bool, json: bool, now: UnixMillis) -> Listing {
        Listing {
            detailed,
            json,
            now,
            shown: 0,
        }
    }

    /// Whether it prints usage, when usage is known: with `--detailed` or `--json`.
    pub fn shows_usage(&self) -> bool {
        self.detailed || self.json
    }

    /// The text of the next key, with its `usage` when it is known.
    pub fn key(&mut self, record: &KeyRecord, usage: Option<&KeyUsage>) -> String {
        let first = self.shown == 0;
        self.shown += 1;
        match (self.json, first) {
            (true, true) => format!("[{}", output::key_json(record, self.now, usage)),
            (true, false) => format!(",{}", output::key_json(record, self.now, usage)),
            (false, true) => {
                output::list_header() + &output::list_row(record, self.detailed, self.now, usage)
            }
            (false, false) => output::list_row(record, self.detailed, self.now, usage),
        }
    }

    /// The text after the last key.
    pub fn end(&self) -> String {
        match (self.json, self.shown) {
            (true, 0) => "[]\n".into(),
            (true, _) => "]\n".into(),
            (false, 0) => output::NO_KEYS.into(),
            (false, n) => output::list_footer(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    const NOW: UnixMillis = 1_795_569_434_316;

    fn record(id: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            secret_hash: Some("ab".repeat(32)),
            name: format!("Key {id}"),
            created_at: Some("2026-11-25T01:17:14.316000Z".into()),
            metadata: RawValue::from_string("{}".into()).unwrap(),
            ..KeyRecord::default()
        }
    }

    fn listed(keys: &[KeyRecord], detailed: bool, json: bool) -> String {
        let mut listing = Listing::new(detailed, json, NOW);
        let mut out: String = keys.iter().map(|k| listing.key(k, None)).collect();
        out.push_str(&listing.end());
        out
    }

    #[test]
    fn the_table_and_the_array_as_list_prints_them() {
        let keys = [record("key_a"), record("key_b")];
        for n in 0..=2 {
            for detailed in [false, true] {
                assert_eq!(
                    listed(&keys[..n], detailed, false),
                    output::list_text(&keys[..n], detailed, NOW)
                );
            }
            assert_eq!(
                listed(&keys[..n], false, true),
                output::list_json(&keys[..n], NOW) + "\n"
            );
        }
    }

    #[test]
    fn usage_goes_with_detailed_and_json_only() {
        assert!(!Listing::new(false, false, NOW).shows_usage());
        assert!(Listing::new(true, false, NOW).shows_usage());
        assert!(Listing::new(false, true, NOW).shows_usage());
        let usage = KeyUsage::default();
        let mut json = Listing::new(false, true, NOW);
        let first = json.key(&record("key_a"), Some(&usage));
        assert!(
            first.ends_with(r#""last_used_at":null,"usage":{"today":{"valid":0,"refused":0},"last_30_days":{"valid":0,"refused":0}}}"#),
            "{first}"
        );
        let mut table = Listing::new(true, false, NOW);
        let row = table.key(&record("key_a"), Some(&usage));
        assert!(
            row.contains("\n    Last used: never\n    Usage: today 0 valid, 0 refused; last 30 days 0 valid, 0 refused\n    Metadata: {}\n"),
            "{row}"
        );
    }
}
