//! `heare-auth check`: every reason the server would refuse a keys file, and what in it deserves
//! a look, one finding per line, as pure functions of the file's plaintext and the time.

use std::collections::HashMap;

use serde::Serialize;

use heare_auth_core::{
    record_id, visible, CheckError, Document, Error, Expiry, KeyRecord, KeySet, UnixMillis, Warning,
};

use crate::plural::count;

/// Keys expired longer ago than this are worth deleting.
const LONG_EXPIRED_MS: UnixMillis = 90 * 86_400_000;

/// How much a finding matters: errors make the server refuse the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The server would refuse the file.
    Error,
    /// The file loads, but this deserves a look.
    Warning,
}

/// One finding, about one key (`None`: the whole file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The key's id, or `keys[N]` when it has none.
    pub key: Option<String>,
    /// What was found, naming the key.
    pub message: String,
}

/// What `check` found in one keys file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where the file is.
    pub location: String,
    /// Keys in the file.
    pub keys: usize,
    /// Errors first, then warnings, each in file order.
    pub findings: Vec<Finding>,
}

/// Checks a keys file's plaintext at `now`: every error the server's loader has (not only the
/// first), then warnings key by key.
pub fn check(location: &str, bytes: &[u8], now: UnixMillis) -> Report {
    let checked = KeySet::check(bytes);
    let mut findings: Vec<Finding> = checked
        .errors
        .iter()
        .map(|e| Finding {
            severity: Severity::Error,
            key: e.key.clone(),
            message: error_message(e),
        })
        .collect();
    let mut loader_warnings: HashMap<String, Vec<String>> = HashMap::new();
    let mut order = Vec::new();
    for w in &checked.warnings {
        let id = warning_id(w).to_string();
        if !loader_warnings.contains_key(&id) {
            order.push(id.clone());
        }
        loader_warnings.entry(id).or_default().push(w.to_string());
    }
    let warning = |key: &str, message: String| Finding {
        severity: Severity::Warning,
        key: Some(key.to_string()),
        message,
    };
    // The first error of each record, by position.
    let mut errored: HashMap<usize, Option<&str>> = HashMap::new();
    for e in &checked.errors {
        if let Some(i) = e.index {
            errored.entry(i).or_insert(e.key.as_deref());
        }
    }
    let file = Document::parse(bytes).ok();
    let mut ids = None;
    for (i, record) in file.iter().flat_map(|f| f.records()).enumerate() {
        let key = match (&record, errored.get(&i)) {
            (Ok(r), _) if !r.id.is_empty() => r.id.clone(),
            (_, Some(Some(key))) => key.to_string(),
            (Ok(_), _) => format!("keys[{i}]"),
            (Err(_), _) => ids
                .get_or_insert_with(|| record_ids(bytes))
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| format!("keys[{i}]")),
        };
        for message in loader_warnings.remove(&key).unwrap_or_default() {
            findings.push(warning(&key, message));
        }
        match record {
            Ok(record) => findings.extend(
                record_warnings(&record, now)
                    .into_iter()
                    .map(|m| warning(&key, format!("key {key}: {m}"))),
            ),
            // Loaded by the server, but not by the commands that read keys one by one.
            Err(e) if !errored.contains_key(&i) => findings.push(warning(
                &key,
                format!("key {key}: the server loads it, but list, show and changes cannot read it: {e}"),
            )),
            Err(_) => {}
        }
    }
    for id in order {
        for message in loader_warnings.remove(&id).unwrap_or_default() {
            findings.push(warning(&id, message));
        }
    }
    Report {
        location: location.to_string(),
        keys: checked.records,
        findings,
    }
}

/// Each record's id, where it is a string that is not empty.
fn record_ids(bytes: &[u8]) -> Vec<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Keys<'a> {
        #[serde(borrow)]
        keys: Vec<&'a serde_json::value::RawValue>,
    }
    let Ok(file) = serde_json::from_slice::<Keys>(bytes) else {
        return Vec::new();
    };
    file.keys
        .iter()
        .map(|record| {
            record_id(record.get())
                .filter(|id| !id.is_empty())
                .map(String::from)
        })
        .collect()
}

/// The key a loader warning is about.
fn warning_id(w: &Warning) -> &str {
    match w {
        Warning::UnparseableExpiry { id, .. } | Warning::UnparseablePreviousExpiry { id, .. } => id,
        _ => "",
    }
}

/// What deserves a look in a key the server loads (without the key's name).
fn record_warnings(r: &KeyRecord, now: UnixMillis) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(secret) = &r.secret {
        out.push(
            "plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with \
             its hash"
                .to_string(),
        );
        // Header values reach /auth trimmed, so this secret can never match there.
        if secret.trim() != secret {
            out.push(
                "its plaintext `secret` begins or ends with whitespace: it verifies on /verify, \
                 but never on /auth, which trims the header it comes in"
                    .to_string(),
            );
        }
    }
    if let (Expiry::At(t), Some(at)) = (r.expiry(), &r.expires_at) {
        if now.saturating_sub(t) > LONG_EXPIRED_MS {
            out.push(format!("expired more than 90 days ago ({at})"));
        }
    }
    if r.disabled == Some(true) {
        out.push(match &r.disabled_at {
            Some(at) => format!("disabled since {at}"),
            None => "disabled".to_string(),
        });
    }
    // An unreadable end is the loader's warning already.
    if let (Some(_), Some(until)) = (&r.previous_secret_hash, &r.previous_expires_at) {
        let end = Expiry::parse(Some(until));
        if matches!(end, Expiry::At(_)) && end.has_passed(now) {
            out.push(format!(
                "the grace period of its previous secret ended at {until}; \
                 previous_secret_hash no longer verifies"
            ));
        }
    }
    out
}

/// A checker error as one line naming its key.
pub fn error_message(e: &CheckError) -> String {
    match (&e.key, &e.error) {
        (Some(key), Error::Json { .. }) => format!("key {key}: {}", e.error),
        _ => e.error.to_string(),
    }
}

impl Report {
    /// How many findings of this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether the server would load the file.
    pub fn ok(&self) -> bool {
        self.count(Severity::Error) == 0
    }

    /// One line per finding, then a summary, every text from the file shown through
    /// [`visible`].
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!("{severity}: {}\n", visible(&f.message)));
        }
        let (errors, warnings) = (self.count(Severity::Error), self.count(Severity::Warning));
        let keys = count(self.keys, "key");
        let location = visible(&self.location);
        out.push_str(&match (errors, warnings) {
            (0, 0) => format!("✓ {location}: {keys}, no problems found\n"),
            (0, w) => format!("✓ {location}: {keys}, no errors, {}\n", count(w, "warning")),
            (e, w) => format!(
                "✗ {location}: {keys}, {}, {}: the server would refuse this file\n",
                count(e, "error"),
                count(w, "warning")
            ),
        });
        out
    }

    /// The report as one JSON object, with counts.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Counted<'a> {
            location: &'a str,
            ok: bool,
            keys: usize,
            errors: usize,
            warnings: usize,
            findings: &'a [Finding],
        }
        serde_json::to_string(&Counted {
            location: &self.location,
            ok: self.ok(),
            keys: self.keys,
            errors: self.count(Severity::Error),
            warnings: self.count(Severity::Warning),
            findings: &self.findings,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::hash_secret;

    const NOW: UnixMillis = 1_795_569_434_316; // 2026-11-25T01:17:14.316Z

    fn lines(report: &Report) -> Vec<(Severity, Option<&str>, &str)> {
        report
            .findings
            .iter()
            .map(|f| (f.severity, f.key.as_deref(), f.message.as_str()))
            .collect()
    }

    #[test]
    fn every_error_then_every_warning() {
        let old = hash_secret("sec_old").to_hex();
        let json = format!(
            r#"{{"keys": [
  {{"id": "plain", "secret": "sec_TOPSECRET"}},
  {{"secret": "sec_x"}},
  {{"id": "odd", "secret": "sec_y", "expires_at": "soon", "disabled": true}},
  {{"id": "stale", "secret": "sec_z", "expires_at": "2026-08-26"}},
  {{"id": "recent", "secret": "sec_w", "expires_at": "2026-08-28"}},
  {{"id": "off", "secret_hash": "{old}", "disabled": true, "disabled_at": "2026-01-01T00:00:00Z"}},
  {{"id": "graceover", "secret": "sec_g", "previous_secret_hash": "{}", "previous_expires_at": "2026-11-25T01:17:14.315Z"}},
  {{"id": "graceon", "secret": "sec_h", "previous_secret_hash": "{}", "previous_expires_at": "2026-11-25T01:17:14.316Z"}},
  {{"id": "nextday", "secret": "sec_i", "previous_secret_hash": "{}", "previous_expires_at": "later"}},
  {{"id": "typed", "secret": "sec_j", "created_at": 5}},
  {{"id": "plain", "secret": "sec_k", "scopes": "read"}}
]}}"#,
            hash_secret("sec_g0").to_hex(),
            hash_secret("sec_h0").to_hex(),
            hash_secret("sec_i0").to_hex(),
        );
        let report = check("keys.json", json.as_bytes(), NOW);
        use Severity::{Error as E, Warning as W};
        assert_eq!(
            lines(&report),
            [
                (E, Some("keys[1]"), "key keys[1]: missing field `id`"),
                (
                    E,
                    Some("plain"),
                    "key plain: field `scopes` is not an array of strings"
                ),
                (
                    W,
                    Some("plain"),
                    "key plain: plaintext `secret` in the file; `heare-auth migrate \
                     --hash-secrets` replaces it with its hash"
                ),
                (
                    W,
                    Some("odd"),
                    "key odd: expires_at 'soon' is not a timestamp; the key is treated as expired"
                ),
                (W, Some("odd"), "key odd: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                (W, Some("odd"), "key odd: disabled"),
                (W, Some("stale"), "key stale: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                (
                    W,
                    Some("stale"),
                    "key stale: expired more than 90 days ago (2026-08-26)"
                ),
                (W, Some("recent"), "key recent: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                (
                    W,
                    Some("off"),
                    "key off: disabled since 2026-01-01T00:00:00Z"
                ),
                (W, Some("graceover"), "key graceover: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                (
                    W,
                    Some("graceover"),
                    "key graceover: the grace period of its previous secret ended at \
                     2026-11-25T01:17:14.315Z; previous_secret_hash no longer verifies"
                ),
                (W, Some("graceon"), "key graceon: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                (
                    W,
                    Some("nextday"),
                    "key nextday: previous_expires_at 'later' is not a timestamp; the previous \
                     secret no longer verifies"
                ),
                (W, Some("nextday"), "key nextday: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
                // A bookkeeping field that is not a string is kept, not refused.
                (W, Some("typed"), "key typed: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"),
            ]
        );
        assert_eq!(report.keys, 11);
        assert!(!report.ok());
        let text = report.to_text();
        assert!(text.starts_with("error: key keys[1]: missing field `id`\nerror: key plain: "));
        assert!(
            text.ends_with("\n✗ keys.json: 11 keys, 2 errors, 14 warnings: the server would refuse this file\n"),
            "{text}"
        );
        assert!(!text.contains("TOPSECRET") && !text.contains(&hash_secret("sec_old").to_hex()));
    }

    #[test]
    fn a_file_with_warnings_only_is_ok() {
        let report = check(
            "k.json",
            br#"{"keys": [{"id": "a", "secret": "x", "disabled": true}]}"#,
            NOW,
        );
        assert!(report.ok());
        assert_eq!(
            report.to_text(),
            "warning: key a: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` \
             replaces it with its hash\nwarning: key a: disabled\n\
             ✓ k.json: 1 key, no errors, 2 warnings\n"
        );
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "location": "k.json", "ok": true, "keys": 1, "errors": 0, "warnings": 2,
                "findings": [
                    {"severity": "warning", "key": "a", "message": "key a: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash"},
                    {"severity": "warning", "key": "a", "message": "key a: disabled"},
                ]
            })
        );
        let clean = check(
            "k.json",
            format!(
                r#"{{"keys": [{{"id": "a", "secret_hash": "{}"}}]}}"#,
                hash_secret("x")
            )
            .as_bytes(),
            NOW,
        );
        assert_eq!(clean.to_text(), "✓ k.json: 1 key, no problems found\n");
    }

    #[test]
    fn a_file_that_is_not_json_is_one_error_of_the_whole_file() {
        let report = check("k.json", b"{\"keys\": [", NOW);
        assert_eq!(
            lines(&report),
            [(
                Severity::Error,
                None,
                "invalid JSON at line 1, column 10: EOF while parsing a list"
            )]
        );
        assert_eq!(
            report.to_text(),
            "error: invalid JSON at line 1, column 10: EOF while parsing a list\n\
             ✗ k.json: 0 keys, 1 error, 0 warnings: the server would refuse this file\n"
        );
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            (v["ok"].as_bool(), v["errors"].as_u64()),
            (Some(false), Some(1))
        );
        assert_eq!(v["findings"][0]["key"], serde_json::Value::Null);
    }

    #[test]
    fn a_plaintext_secret_with_spaces_at_its_ends_is_named_never_shown() {
        let report = check(
            "k.json",
            br#"{"keys": [{"id": "a", "secret": " sec_SPACED"}, {"id": "b", "secret": "sec_TABBED\t"},
                         {"id": "c", "secret": "sec_in side"}]}"#,
            NOW,
        );
        let spaced = "its plaintext `secret` begins or ends with whitespace: it verifies on \
                      /verify, but never on /auth, which trims the header it comes in";
        let warned: Vec<&str> = lines(&report)
            .into_iter()
            .filter(|(_, _, m)| m.contains("whitespace"))
            .map(|(_, key, _)| key.unwrap())
            .collect();
        assert_eq!(warned, ["a", "b"]);
        assert!(report.findings.contains(&Finding {
            severity: Severity::Warning,
            key: Some("a".into()),
            message: format!("key a: {spaced}"),
        }));
        let all = report.to_text() + &report.to_json();
        assert!(!all.contains("SPACED") && !all.contains("TABBED"), "{all}");
    }

    #[test]
    fn a_secret_of_any_type_is_never_in_the_report() {
        for value in [
            "98765432101234",
            "[98765432101234]",
            r#"{"s": "98765432101234"}"#,
            "98765432101234.5",
            "false",
        ] {
            for field in ["secret", "secret_hash", "previous_secret_hash"] {
                let json = format!(
                    r#"{{"keys": [{{"id": "k", "{field}": {value}}}, {{"id": "j", "secret": "x"}}]}}"#
                );
                let report = check("k.json", json.as_bytes(), NOW);
                let message = &report.findings[0].message;
                assert!(
                    message.starts_with("key k: invalid JSON at line 1, column ")
                        && message.ends_with(&format!(
                            ": invalid type for field `{field}`: expected a string"
                        )),
                    "{json}: {message}"
                );
                let all = report.to_text() + &report.to_json() + &format!("{report:?}");
                assert!(!all.contains("98765"), "{all}");
            }
        }
    }

    #[test]
    fn control_characters_in_the_file_are_shown_in_the_text_report() {
        let json = "{\"keys\": [{\"id\": \"k\\u001b[2J\", \"secret\": \"x\", \"disabled\": true,\n \
                    \"disabled_at\": \"\\r\\u202e\"}, {\"id\": \"k\\u001b[2J\", \"secret\": \"y\"}]}";
        let report = check("k\u{1b}.json", json.as_bytes(), NOW);
        assert_eq!(
            report.to_text(),
            "error: duplicate key id k\\x1b[2J\n\
             warning: key k\\x1b[2J: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash\n\
             warning: key k\\x1b[2J: disabled since \\r\\u{202e}\n\
             warning: key k\\x1b[2J: plaintext `secret` in the file; `heare-auth migrate --hash-secrets` replaces it with its hash\n\
             ✗ k\\x1b.json: 2 keys, 1 error, 3 warnings: the server would refuse this file\n"
        );
        // JSON keeps the key as it is.
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["findings"][0]["key"], "k\u{1b}[2J");
    }
}
