//! Names given by a person (a key's `name` or `id`): refused when they hold a control
//! character, since they are printed on terminals and written to logs.

use crate::{is_control, Error};

/// Checks text that names a key (its `name`, or its `id`) as given by a person: it must hold
/// no control character, since it is printed on terminals and written to logs. The error
/// names `field` and the first such character's position (1-based, in characters).
pub fn check_name(field: &'static str, text: &str) -> Result<(), Error> {
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
        assert_eq!(
            check_name("id", "é\u{202e}").unwrap_err().to_string(),
            "field `id` has a control character (\\u{202e}) at character 2"
        );
    }
}
