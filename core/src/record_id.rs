//! A record's id, read without the rest of the record.

use std::borrow::Cow;

use serde::Deserialize;

/// The `id` of one record of a keys file, given as its JSON text, read without the rest of it
/// (borrowed when it has no escapes): `None` when the record has no `id` that is a string. An
/// empty id is returned as it is.
pub fn record_id(record: &str) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<IdOnly>(record).ok()?.id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_string_id_is_read() {
        assert_eq!(
            record_id(r#"{"name": 7, "id": "key_a", "x": [1]}"#),
            Some("key_a".into())
        );
        assert_eq!(record_id(r#"{"id": "caf\u00e9"}"#), Some("café".into()));
        assert_eq!(record_id(r#"{"id": ""}"#), Some("".into()));
        for none in [
            r#"{"name": "a"}"#,
            r#"{"id": null}"#,
            r#"{"id": 7}"#,
            "5",
            "{",
        ] {
            assert_eq!(record_id(none), None, "{none}");
        }
    }
}
