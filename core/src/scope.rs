//! Scopes: what a key may be used for, named by the operator, demanded by a request.

/// The longest scope name accepted.
const MAX_SCOPE_LEN: usize = 128;

/// Why `name` cannot be a scope, or `None` when it can: 1 to 128 visible ASCII characters other
/// than `"`, `\` and `,` (scopes travel comma-separated in `X-Key-Scopes`), like OAuth's
/// scope tokens.
pub fn scope_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a scope must not be empty".into());
    }
    if name.len() > MAX_SCOPE_LEN {
        return Some(format!("a scope has at most {MAX_SCOPE_LEN} characters"));
    }
    let bad = name
        .chars()
        .find(|&c| !c.is_ascii_graphic() || matches!(c, '"' | '\\' | ','))?;
    Some(format!(
        "scope '{}' contains {}: use letters, digits and ASCII punctuation other than \" \\ ,",
        name.escape_debug(),
        match bad {
            ' ' => "a space".to_string(),
            c => format!("'{}'", c.escape_debug()),
        }
    ))
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
            assert_eq!(scope_problem(good), None, "{good}");
        }
        assert_eq!(scope_problem(""), Some("a scope must not be empty".into()));
        assert_eq!(
            scope_problem("read write"),
            Some("scope 'read write' contains a space: use letters, digits and ASCII punctuation other than \" \\ ,".into())
        );
        assert!(scope_problem("a,b").unwrap().contains("contains ','"));
        assert!(scope_problem("é").is_some());
        assert!(scope_problem(&"a".repeat(129)).is_some());
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
