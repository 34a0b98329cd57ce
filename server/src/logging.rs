//! Structured logs: one JSON object per line on stderr (`timestamp`, `level`, `event`, fields).
//!
//! Events are logged as `log::info!(key_id = id; "verification_success")`: the message is the
//! event name and the key-values are its fields. `RUST_LOG` sets the level (default `info`).
//!
//! Each line is formatted on the logging thread into a reused buffer (the timestamp's date and
//! time once a second) and copied into one shared buffer, which a `log-flusher` thread writes
//! every [`FLUSH_EVERY`] (or at once past [`FLUSH_AT`] bytes): a request costs a copy rather than
//! a system call under the stderr lock. [`flush`] writes what is pending.

use log::kv::{Error as KvError, Key, Value, VisitSource};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use heare_auth_core::push_json_string;

/// How long a log line may wait in memory.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes that trigger an immediate write.
const FLUSH_AT: usize = 64 * 1024;

/// Lines not yet written, and a lock held while writing so that lines keep their order.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static WRITING: Mutex<()> = Mutex::new(());

/// Writes every pending line to stderr.
pub fn flush() {
    let _writing = WRITING.lock();
    let lines = std::mem::take(&mut *PENDING.lock());
    if !lines.is_empty() {
        let _ = std::io::stderr().lock().write_all(&lines);
    }
}

/// Formats each record as one JSON line straight into [`PENDING`]; `RUST_LOG` filtering is
/// env_logger's.
struct JsonLines {
    filter: env_logger::Logger,
}

thread_local! {
    /// This thread's line being built, and the timestamp text up to the seconds' dot for the
    /// second it was made in (formatted once a second, not once a line).
    static LINE: RefCell<(String, u64, String)> = const { RefCell::new((String::new(), u64::MAX, String::new())) };
}

impl log::Log for JsonLines {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !self.filter.matches(record) {
            return;
        }
        LINE.with_borrow_mut(|(line, second, prefix)| {
            line.clear();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if now.as_secs() != *second {
                *second = now.as_secs();
                // "2026-11-25T15:04:39." of "2026-11-25T15:04:39.000000Z".
                let millis = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
                *prefix = heare_auth_core::format_timestamp(millis);
                prefix.truncate(20);
            }
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warn",
                log::Level::Info => "info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            line.push_str("{\"timestamp\":\"");
            line.push_str(prefix);
            let micros = now.subsec_micros();
            for div in [100_000, 10_000, 1000, 100, 10, 1] {
                line.push(char::from(b'0' + (micros / div % 10) as u8));
            }
            line.push_str("Z\",\"level\":\"");
            line.push_str(level);
            line.push_str("\",\"event\":");
            match record.args().as_str() {
                Some(event) => push_json_string(line, event),
                None => push_json_string(line, &record.args().to_string()),
            }
            let _ = record.key_values().visit(&mut JsonFields(line));
            line.push_str("}\n");
            let full = {
                let mut pending = PENDING.lock();
                pending.extend_from_slice(line.as_bytes());
                pending.len() >= FLUSH_AT
            };
            if full {
                flush();
            }
        });
    }

    fn flush(&self) {}
}

/// Installs the JSON logger and starts the flusher thread. Call once per process, and call
/// [`flush`] before exiting.
pub fn init() {
    let _ = std::thread::Builder::new()
        .name("log-flusher".into())
        .spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY);
            flush();
        });
    let filter = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,s3=error"),
    )
    .build();
    log::set_max_level(filter.filter());
    let _ = log::set_boxed_logger(Box::new(JsonLines { filter }));
}

/// Appends each key-value as `,"key":value`, numbers and booleans bare, the rest as strings.
struct JsonFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), KvError> {
        self.0.push(',');
        push_json_string(self.0, key.as_str());
        self.0.push(':');
        if let Some(n) = value.to_u64() {
            self.0.push_str(&n.to_string());
        } else if let Some(n) = value.to_i64() {
            self.0.push_str(&n.to_string());
        } else if let Some(b) = value.to_bool() {
            self.0.push_str(if b { "true" } else { "false" });
        } else if let Some(s) = value.to_borrowed_str() {
            push_json_string(self.0, s);
        } else {
            push_json_string(self.0, &value.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::kv::Source;

    #[test]
    fn fields_render_as_json() {
        let kvs: &[(&str, Value)] = &[
            ("n", Value::from(5u64)),
            ("neg", Value::from(-2i64)),
            ("ok", Value::from(true)),
            ("s", Value::from("a\"b")),
        ];
        let mut out = String::from("{\"event\":\"x\"");
        kvs.visit(&mut JsonFields(&mut out)).unwrap_or_default();
        out.push('}');
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"event": "x", "n": 5, "neg": -2, "ok": true, "s": "a\"b"})
        );
    }
}
