//! Lays out JSON text that is already known to be valid: compact, or indented, every token as it
//! was.

use serde_json::value::RawValue;

use crate::MAX_METADATA_DEPTH;

/// `json` without whitespace outside strings, every token as it was (no number respelled, no
/// member reordered, unlike a round trip through `serde_json::Value`).
pub fn compact_json(json: &RawValue) -> Box<RawValue> {
    let mut out = String::with_capacity(json.get().len());
    push_compact_json(&mut out, json.get());
    // Removing whitespace between tokens leaves JSON; should it not, the text as it was.
    RawValue::from_string(out).unwrap_or_else(|_| json.to_owned())
}

/// `json` indented by two spaces a level, as `serde_json::to_string_pretty` lays out a value,
/// every token as it was; levels past [`MAX_METADATA_DEPTH`] are indented no further, so that
/// the output stays within a fixed multiple of the input (indenting each of `n` nested levels
/// by its depth would print on the order of `n²` spaces).
pub fn pretty_json(json: &RawValue) -> String {
    let compact = compact_json(json);
    let text = compact.get();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(2 * text.len());
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth.min(MAX_METADATA_DEPTH)));
    };
    let (mut depth, mut run) = (0, 0);
    // Every byte matched below is ASCII, so a char boundary on both sides.
    for (i, b) in outside_strings(text) {
        match b {
            b'{' | b'[' if !matches!(bytes.get(i + 1), Some(b'}' | b']')) => {
                out.push_str(&text[run..=i]);
                run = i + 1;
                depth += 1;
                newline(&mut out, depth);
            }
            b'}' | b']' if !matches!(bytes[..i].last(), Some(b'{' | b'[')) => {
                out.push_str(&text[run..i]);
                run = i;
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
            }
            b',' => {
                out.push_str(&text[run..=i]);
                run = i + 1;
                newline(&mut out, depth);
            }
            b':' => {
                out.push_str(&text[run..=i]);
                out.push(' ');
                run = i + 1;
            }
            _ => {}
        }
    }
    out.push_str(&text[run..]);
    out
}

/// Appends `json` to `out` without whitespace outside strings. `json` must be valid JSON.
pub(crate) fn push_compact_json(out: &mut String, json: &str) {
    let bytes = json.as_bytes();
    let is_space = |b: &u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    // Strings are skipped whole and whitespace a run at a time: a loader compacts the metadata
    // of every key.
    let (mut run, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        // Every escape is a backslash and one ASCII character (or `u` and
                        // four digits, which need no skipping).
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            _ if is_space(&b) => {
                // ASCII whitespace is a char boundary on both sides.
                out.push_str(&json[run..i]);
                i += bytes[i..].iter().take_while(|b| is_space(b)).count();
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&json[run..]);
}

/// The bytes of `json` outside its strings (the quotes of a string are inside it), with their
/// positions.
fn outside_strings(json: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    json.bytes().enumerate().filter(move |&(_, b)| {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            false
        } else {
            in_string = b == b'"';
            !in_string
        }
    })
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
        assert_eq!(
            compact_json("{\n    \"t\": \"\\u00e9 é\\\\\",\r\n\t\"n\" :\n [ 1 ,\"\"] }\n"),
            "{\"t\":\"\\u00e9 é\\\\\",\"n\":[1,\"\"]}"
        );
        assert_eq!(compact_json("\"a \\\" b\""), "\"a \\\" b\"");
        assert_eq!(compact_json(""), "");
    }

    #[test]
    fn pretty_is_laid_out_as_serde_json_lays_out_a_value() {
        for text in [
            r#"{"e":{},"n":[1,{"a":null},[]],"s":"a{b}:[c],d\"e","team":"core"}"#,
            "[]",
            "{}",
            "7",
            r#"[[[]]]"#,
        ] {
            let raw: Box<super::RawValue> = serde_json::from_str(text).unwrap();
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                super::pretty_json(&raw),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }
        let huge: Box<super::RawValue> = serde_json::from_str("{\"z\": 1.50e400}").unwrap();
        assert_eq!(super::pretty_json(&huge), "{\n  \"z\": 1.50e400\n}");
    }

    #[test]
    fn pretty_output_grows_linearly_however_deep_the_nesting() {
        for levels in [1_000, 20_000] {
            let text = "[".repeat(levels) + &"]".repeat(levels);
            let raw: Box<super::RawValue> = serde_json::from_str(&text).unwrap();
            let pretty = super::pretty_json(&raw);
            let lines = 2 * levels - 1;
            assert_eq!(pretty.lines().count(), lines);
            assert!(
                pretty.len() <= lines * (2 * super::MAX_METADATA_DEPTH + 2),
                "{levels} levels: {} bytes",
                pretty.len()
            );
        }
    }

    #[test]
    fn a_raw_value_keeps_its_numbers_and_order() {
        let json: Box<super::RawValue> =
            serde_json::from_str("{ \"z\": 12345678901234567890123,\n \"a\": [1.50, 1e2] }")
                .unwrap();
        assert_eq!(
            super::compact_json(&json).get(),
            r#"{"z":12345678901234567890123,"a":[1.50,1e2]}"#
        );
    }
}
