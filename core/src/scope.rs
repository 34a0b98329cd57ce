//! Scopes: what a key may be used for, named by the operator, demanded by a request.

use crate::Error;

/// The longest scope name accepted.
const MAX_SCOPE_LEN: usize = 128;

/// Checks that `name` can be a scope: 1 to 128 visible ASCII characters other than `"`, `\`
/// and `,` (scopes travel comma-separated in `X-Key-Scopes`), like OAuth's scope tokens.
pub fn check_scope(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::EmptyScope);
    }
    if name.len() > MAX_SCOPE_LEN {
        return Err(Error::ScopeTooLong {
            length: name.len(),
            max: MAX_SCOPE_LEN,
        });
    }
    match name
        .chars()
        .find(|&c| !c.is_ascii_graphic() || matches!(c, '"' | '\\' | ','))
    {
        None => Ok(()),
        Some(character) => Err(Error::ScopeCharacter {
            scope: name.into(),
            character,
        }),
    }
}

/// Whether every scope in `required` is in `held` (comma-separated, as a key stores them).
pub fn holds_all<S: AsRef<str>>(held: &str, required: &[S]) -> bool {
    required
        .iter()
        .all(|r| held.split(',').any(|h| !h.is_empty() && h == r.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_visible_ascii_without_separators() {
        for good in ["read", "keys:write", "org/team.admin", "a-b_c~!"] {
            assert_eq!(check_scope(good), Ok(()), "{good}");
        }
        assert_eq!(check_scope(""), Err(Error::EmptyScope));
        assert_eq!(
            check_scope("read write"),
            Err(Error::ScopeCharacter {
                scope: "read write".into(),
                character: ' '
            })
        );
        assert_eq!(
            check_scope("read write").unwrap_err().to_string(),
            "scope 'read write' contains a space: use letters, digits and ASCII punctuation other than \" \\ ,"
        );
        assert_eq!(
            check_scope("a,b"),
            Err(Error::ScopeCharacter {
                scope: "a,b".into(),
                character: ','
            })
        );
        assert!(check_scope("a,b")
            .unwrap_err()
            .to_string()
            .contains("contains ','"));
        assert_eq!(
            check_scope("é"),
            Err(Error::ScopeCharacter {
                scope: "é".into(),
                character: 'é'
            })
        );
        assert_eq!(
            check_scope(&"a".repeat(129)),
            Err(Error::ScopeTooLong {
                length: 129,
                max: 128
            })
        );
        assert_eq!(
            Error::ScopeTooLong {
                length: 129,
                max: 128
            }
            .to_string(),
            "a scope has at most 128 characters"
        );
        assert_eq!(Error::EmptyScope.to_string(), "a scope must not be empty");
    }

    #[test]
    fn all_of() {
        assert!(holds_all("read,write", &["write", "read"]));
        assert!(holds_all("read", &[] as &[&str]));
        assert!(holds_all("", &[] as &[&str]));
        assert!(!holds_all("read", &["write"]));
        assert!(!holds_all("", &[""]));
        assert!(!holds_all("readwrite", &["read"]));
    }
}
