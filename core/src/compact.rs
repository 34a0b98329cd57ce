//! Strips insignificant whitespace from JSON text that is already known to be valid.

/// Returns `json` without whitespace outside strings. `json` must be valid JSON.
pub(crate) fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn keeps_whitespace_inside_strings_only() {
        assert_eq!(
            compact_json("{\n  \"a b\": [1, 2],\n  \"q\\\" \": \" x\\\\\" }"),
            "{\"a b\":[1,2],\"q\\\" \":\" x\\\\\"}"
        );
        assert_eq!(compact_json(" {} "), "{}");
    }
}
