//! Names given by a person (a key's `name` or `id`): refused when they hold a control
//! character, since they are printed on terminals and written to logs, or are too long to be
//! a name.

use crate::{is_control, Error};

/// The longest name (or id) a person may give a key, in characters. Keys files written
/// otherwise still load: only new names are checked.
pub const MAX_NAME_CHARS: usize = 256;

/// Checks text that names a key (its `name`, or its `id`) as given by a person: it must hold
/// no control character, since it is printed on terminals and written to logs, and at most
/// [`MAX_NAME_CHARS`] characters. The error names `field` and the first such character's
/// position (1-based, in characters), or the length.
pub fn check_name(field: &'static str, text: &str) -> Result<(), Error> {
    let chars = text.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Error::NameTooLong { field, chars });
    }
    match text.chars().enumerate().find(|&(_, c)| is_control(c)) {
        None => Ok(()),
        Some((i, character)) => Err(Error::ControlCharacter {
            field,
            position: i + 1,
            character,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_control_character_is_refused_naming_where() {
        assert_eq!(check_name("name", "Billing ✓"), Ok(()));
        assert_eq!(
            check_name("name", "ab\u{1b}[2J"),
            Err(Error::ControlCharacter {
                field: "name",
                position: 3,
                character: '\u{1b}'
            })
        );
        assert_eq!(check_name("name", &"é".repeat(MAX_NAME_CHARS)), Ok(()));
        assert_eq!(
            check_name("name", &"é".repeat(MAX_NAME_CHARS + 1))
                .unwrap_err()
                .to_string(),
            "field `name` is 257 characters long; at most 256 are allowed"
        );
        assert_eq!(
            check_name("id", "é\u{202e}").unwrap_err().to_string(),
            "field `id` has a control character (\\u{202e}) at character 2"
        );
    }
}
