//! Strips insignificant whitespace from JSON text that is already known to be valid.

/// Appends `json` to `out` without whitespace outside strings. `json` must be valid JSON.
pub(crate) fn push_compact_json(out: &mut String, json: &str) {
    let (mut in_string, mut escaped) = (false, false);
    let mut run = 0;
    for (i, &b) in json.as_bytes().iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            // ASCII whitespace is a char boundary on both sides.
            out.push_str(&json[run..i]);
            run = i + 1;
        } else if b == b'"' {
            in_string = true;
        }
    }
    out.push_str(&json[run..]);
}

#[cfg(test)]
mod tests {
    use super::push_compact_json;

    fn compact_json(json: &str) -> String {
        let mut out = String::from("prefix:");
        push_compact_json(&mut out, json);
        out.split_off("prefix:".len())
    }

    #[test]
    fn keeps_whitespace_inside_strings_only() {
        assert_eq!(
            compact_json("{\n  \"a b\": [1, 2],\n  \"q\\\" \": \" x\\\\\" }"),
            "{\"a b\":[1,2],\"q\\\" \":\" x\\\\\"}"
        );
        assert_eq!(compact_json(" {} "), "{}");
    }
}
