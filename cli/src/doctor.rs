//! `heare-auth doctor`: what the store holds and whether it can be written safely, checked and
//! reported without changing the keys file.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use heare_auth_core::{decrypt_file, is_encrypted, visible, KeySet};
use heare_auth_store::{Error, Location, S3Backend, StoreConfig};

use crate::CliError;

/// How far the store's clock may be from ours before it is worth a warning: S3 refuses
/// requests signed more than 15 minutes off, and expiry is judged by the server's clock.
const CLOCK_SKEW_LIMIT: Duration = Duration::from_secs(60);

/// What `doctor` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Where the keys file is.
    pub location: String,
    /// Whether it exists (a missing one means zero keys).
    pub present: bool,
    /// Its size in bytes as stored.
    pub bytes: Option<usize>,
    /// Whether it is stored encrypted.
    pub encrypted: Option<bool>,
    /// Whether `STORAGE_SECRET` is set (writes encrypt).
    pub storage_secret_set: bool,
    /// Keys loaded.
    pub keys: Option<usize>,
    /// Of which active now.
    pub active: Option<usize>,
    /// Of which expired now (including unreadable expiries).
    pub expired: Option<usize>,
    /// Of which disabled.
    pub disabled: Option<usize>,
    /// Changes stored beside the keys file and not yet folded into it.
    pub changes: Option<usize>,
    /// How writes are protected: "lock file", "conditional writes honoured", ...
    pub writes: String,
    /// The store's clock minus ours, in milliseconds, when the store tells its time.
    pub clock_skew_ms: Option<i64>,
    /// Everything that is wrong, one sentence each.
    pub problems: Vec<String>,
}

/// The keys of the snapshot `plain` with the changes after it applied; counts them in
/// `report`.
fn current_keys(
    store: &heare_auth_store::Store,
    plain: &[u8],
    report: &mut Report,
) -> Result<(KeySet, Vec<heare_auth_core::Warning>), CliError> {
    let keys = CliError::keys(store.location());
    let (set, mut warnings) = KeySet::from_json(plain).map_err(&keys)?;
    let next = heare_auth_store::next_change(plain).map_err(&keys)?;
    let Some(changes) = store.changes_after(next)? else {
        return Err(CliError::Store(Error::unavailable(
            store.location(),
            "changes the keys file does not hold were removed while doctor read them; run it again",
        )));
    };
    let changing: Vec<_> = changes.iter().filter(|c| !c.is_note()).collect();
    report.changes = Some(changing.len());
    if changing.is_empty() {
        return Ok((set, warnings));
    }
    let state = heare_auth_store::State {
        snapshot: heare_auth_store::Snapshot {
            bytes: Some(plain.to_vec()),
            version: None,
            next,
        },
        changes,
    };
    let folded = state.folded().map_err(&keys)?;
    let (set, more) = KeySet::from_json(&folded).map_err(&keys)?;
    warnings = more;
    Ok((set, warnings))
}

/// Reads the store and probes its writes; never fails, it reports.
pub fn examine(config: &StoreConfig, now: SystemTime) -> Report {
    let mut report = Report {
        storage_secret_set: config.storage_secret.is_some(),
        ..Report::default()
    };
    let store = match config.open() {
        Ok(store) => store,
        Err(e) => {
            report.location = location(config);
            report.problems.push(e.to_string());
            return report;
        }
    };
    report.location = store.location().to_string();
    match store.backend().get() {
        Err(e) => report.problems.push(e.to_string()),
        Ok(None) => report.keys = Some(0),
        Ok(Some(object)) => {
            report.present = true;
            report.bytes = Some(object.bytes.len());
            report.encrypted = Some(is_encrypted(&object.bytes));
            report.clock_skew_ms = object
                .date
                .as_deref()
                .and_then(|d| httpdate::parse_http_date(d).ok())
                .map(|theirs| skew_ms(theirs, now));
            let loaded = decrypt_file(&object.bytes, config.storage_secret.as_deref())
                .map_err(CliError::keys(store.location()))
                .and_then(|plain| current_keys(&store, &plain, &mut report));
            match loaded {
                Err(e) => report.problems.push(e.to_string()),
                Ok((keys, warnings)) => {
                    let now_ms = heare_auth_core::unix_millis(now);
                    let active = keys.keys().filter(|k| k.status(now_ms).is_active()).count();
                    let disabled = keys.keys().filter(|k| k.is_disabled()).count();
                    report.keys = Some(keys.len());
                    report.active = Some(active);
                    report.expired = Some(keys.len() - active - disabled);
                    report.disabled = Some(disabled);
                    report
                        .problems
                        .extend(warnings.iter().map(ToString::to_string));
                }
            }
        }
    }
    if let Some(skew) = report.clock_skew_ms {
        if skew.unsigned_abs() > CLOCK_SKEW_LIMIT.as_millis() as u64 {
            report.problems.push(format!(
                "the store's clock is {:.1} s {} this machine's",
                skew.unsigned_abs() as f64 / 1000.0,
                if skew > 0 { "ahead of" } else { "behind" }
            ));
        }
    }
    report.writes = match &config.location {
        Location::File(_) => "local file: written under a lock file, replaced atomically".into(),
        Location::S3(s3) => {
            let probed = S3Backend::new(&heare_auth_store::S3Config {
                unsafe_writes: false,
                ..s3.clone()
            })
            .and_then(|backend| heare_auth_store::Backend::check_writes(&backend));
            let unsafe_note = if s3.unsafe_writes {
                " (S3_UNSAFE_WRITES=1: not used)"
            } else {
                ""
            };
            match probed {
                Ok(()) => format!("conditional writes honoured{unsafe_note}"),
                Err(e) => {
                    if !s3.unsafe_writes {
                        report.problems.push(e.to_string());
                    }
                    match e {
                        Error::ConditionsIgnored { .. } => {
                            format!("conditional writes ignored by the store{unsafe_note}")
                        }
                        Error::ConditionsRejected { status, .. } => format!(
                            "conditional writes rejected by the store (HTTP {status}){unsafe_note}"
                        ),
                        _ => "unknown: the probe failed".into(),
                    }
                }
            }
        }
    };
    report
}

fn location(config: &StoreConfig) -> String {
    match &config.location {
        Location::File(path) => path.clone(),
        Location::S3(s3) => s3.location(),
    }
}

/// `theirs - ours` in milliseconds.
fn skew_ms(theirs: SystemTime, ours: SystemTime) -> i64 {
    match theirs.duration_since(ours) {
        Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as one JSON object (with `ok`).
    pub fn to_json(&self) -> String {
        crate::doctor::json_with_ok(self.ok(), self)
    }

    /// The report as lines for a person.
    pub fn to_text(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut out = format!("\nStore:      {}\n", visible(&self.location));
        out.push_str(&match (self.present, self.bytes) {
            (true, Some(n)) => format!("Keys file:  present ({n} bytes)\n"),
            _ if self.keys == Some(0) => "Keys file:  not there yet (zero keys)\n".into(),
            _ => "Keys file:  unreadable\n".into(),
        });
        if let Some(encrypted) = self.encrypted {
            out.push_str(&format!(
                "Encrypted:  {} (STORAGE_SECRET {})\n",
                yes_no(encrypted),
                if self.storage_secret_set {
                    "set"
                } else {
                    "not set"
                }
            ));
        }
        if let (Some(keys), Some(active), Some(expired)) = (self.keys, self.active, self.expired) {
            let disabled = match self.disabled {
                Some(n) if n > 0 => format!(", {n} disabled"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "Keys:       {keys} ({active} active, {expired} expired{disabled})\n"
            ));
        }
        if let Some(n) = self.changes.filter(|n| *n > 0) {
            out.push_str(&format!(
                "Changes:    {} beside the keys file, not yet folded into it (`heare-auth \
                 compact` folds them)\n",
                crate::plural::count(n, "change")
            ));
        }
        out.push_str(&format!("Writes:     {}\n", self.writes));
        out.push_str(&match self.clock_skew_ms {
            Some(ms) => format!("Clock:      the store's is {ms:+} ms from this machine's\n"),
            None => "Clock:      not visible from this store\n".into(),
        });
        if self.ok() {
            out.push_str("\n✓ No problems found.\n");
        } else {
            out.push_str(&format!("\n✗ {} problem(s):\n", self.problems.len()));
            for problem in &self.problems {
                out.push_str(&format!("  - {}\n", visible(problem)));
            }
        }
        out
    }
}

/// A report as one JSON object, its fields after `ok` (the store's and the server's doctor).
pub fn json_with_ok(ok: bool, report: &impl Serialize) -> String {
    #[derive(Serialize)]
    struct WithOk<'a, R: Serialize> {
        ok: bool,
        #[serde(flatten)]
        report: &'a R,
    }
    serde_json::to_string(&WithOk { ok, report }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_local_file_is_reported_and_ok() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(
            &path,
            r#"{"keys": [{"id": "a", "secret": "x"}, {"id": "b", "secret": "y", "expires_at": "2020-01-01"},
                {"id": "c", "secret": "z", "expires_at": "2020-01-01", "disabled": true}]}"#,
        )
        .unwrap();
        let report = examine(
            &StoreConfig::file(path.to_str().unwrap()),
            SystemTime::now(),
        );
        assert!(report.ok(), "{report:?}");
        assert_eq!(
            (
                report.present,
                report.encrypted,
                report.keys,
                report.active,
                report.expired,
                report.disabled
            ),
            (true, Some(false), Some(3), Some(1), Some(1), Some(1))
        );
        assert!(report
            .to_text()
            .contains("Keys:       3 (1 active, 1 expired, 1 disabled)"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            (json["ok"].as_bool(), json["keys"].as_u64()),
            (Some(true), Some(3))
        );
    }

    #[test]
    fn a_broken_file_is_a_problem_and_a_missing_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let config = StoreConfig::file(path.to_str().unwrap());
        let missing = examine(&config, SystemTime::now());
        assert!(missing.ok() && !missing.present && missing.keys == Some(0));
        std::fs::write(&path, r#"{"keys": [{"id": "a"}]}"#).unwrap();
        let broken = examine(&config, SystemTime::now());
        assert_eq!(
            broken.problems,
            [format!(
                "{}: key a: missing field `secret_hash`",
                path.display()
            )]
        );
    }

    #[test]
    fn skew_is_signed() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(skew_ms(t + Duration::from_millis(1500), t), 1500);
        assert_eq!(skew_ms(t, t + Duration::from_secs(2)), -2000);
    }
}
