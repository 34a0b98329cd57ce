//! Structured logs: one JSON object per line on stderr (`timestamp`, `level`, `event`, fields).
//!
//! Events are logged as `log::info!(key_id = id; "verification_success")`: the message is the
//! event name and the key-values are its fields. `RUST_LOG` sets the level (default `info`).

use log::kv::{Error as KvError, Key, Value, VisitSource};
use std::io::Write;

use heare_auth_core::push_json_string;

/// Installs the JSON logger. Safe to call once per process.
pub fn init() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,s3=error"))
        .format(|buf, record| {
            let mut line = String::with_capacity(192);
            line.push_str("{\"timestamp\":\"");
            line.push_str(&buf.timestamp_micros().to_string());
            line.push_str("\",\"level\":\"");
            line.push_str(&record.level().as_str().to_ascii_lowercase());
            line.push_str("\",\"event\":");
            push_json_string(&mut line, &record.args().to_string());
            let _ = record.key_values().visit(&mut JsonFields(&mut line));
            line.push_str("}\n");
            buf.write_all(line.as_bytes())
        })
        .init();
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
