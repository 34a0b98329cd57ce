//! Control characters in text meant for people: which characters a key's name or id may not
//! hold, and how such a character is shown when a file holds it anyway.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` changes how a terminal shows what follows rather than showing itself: a C0
/// control (`\n`, `\r`, `ESC`...), `DEL`, a C1 control, a line or paragraph separator, or a
/// bidirectional formatting character (Unicode's `Bidi_Control`, which can make text read in
/// an order other than the one it is stored in).
pub fn is_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character (see [`is_control`]) written visibly: `\n`, `\r`, `\t`,
/// `\x1b` for the others below U+0080, `\u{202e}` above. The one rendering of a name, id or
/// other text from a keys file in every line printed for people; JSON output needs none (its
/// own escapes show these characters).
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            visible("a\u{1b}]0;pwned\u{7}b\u{1b}[2J\r\n\t\u{7f}"),
            "a\\x1b]0;pwned\\x07b\\x1b[2J\\r\\n\\t\\x7f"
        );
        assert_eq!(
            visible("x\u{9b}y\u{202e}cod.exe\u{2066}\u{2069}\u{200f}"),
            "x\\u{9b}y\\u{202e}cod.exe\\u{2066}\\u{2069}\\u{200f}"
        );
        assert!(matches!(
            visible("Zoë ✓ key_a"),
            Cow::Borrowed("Zoë ✓ key_a")
        ));
    }
}
