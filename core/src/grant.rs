//! Who may manage keys: the `keys:` scopes of the key presented to the management API, and the
//! rule that no key gives what it does not hold.

/// Reads keys.
pub const KEYS_READ: &str = "keys:read";
/// Reads and changes keys that carry no `keys:` scope.
pub const KEYS_WRITE: &str = "keys:write";
/// Reads and changes any key, those that manage keys too.
pub const KEYS_ADMIN: &str = "keys:admin";

/// What a management request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Lists or shows keys.
    Read,
    /// Creates, changes or deletes a key.
    Write,
}

/// Why a key may not do what it asked; its message names the scope it lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied(pub String);

/// Whether a key with `scopes` may `access` keys at all: `keys:read` reads, `keys:write`
/// writes (and reads), `keys:admin` does both.
pub fn may(scopes: &[&str], access: Access) -> Result<(), Denied> {
    let holds = |scope: &str| scopes.contains(&scope);
    let allowed = match access {
        Access::Read => holds(KEYS_READ) || holds(KEYS_WRITE) || holds(KEYS_ADMIN),
        Access::Write => holds(KEYS_WRITE) || holds(KEYS_ADMIN),
    };
    match (allowed, access) {
        (true, _) => Ok(()),
        (false, Access::Read) => Err(Denied(format!(
            "the key needs the scope {KEYS_READ} (or {KEYS_WRITE} or {KEYS_ADMIN}) to read keys"
        ))),
        (false, Access::Write) => Err(Denied(format!(
            "the key needs the scope {KEYS_WRITE} (or {KEYS_ADMIN}) to change keys"
        ))),
    }
}

/// Whether a key with `scopes`, which may write, may give a key the scopes `after` in place of
/// `before` (`None`: a new key, or a change that leaves the scopes as they are): a key that
/// carries a `keys:` scope, before or after, is only a `keys:admin` key's to touch, so no key
/// can make or change one that manages keys as it does, or more.
pub fn may_touch<'s>(
    scopes: &[&str],
    before: impl IntoIterator<Item = &'s str>,
    after: impl IntoIterator<Item = &'s str>,
) -> Result<(), Denied> {
    if scopes.contains(&KEYS_ADMIN) {
        return Ok(());
    }
    let mut carried = before.into_iter().chain(after);
    match carried.find(|s| s.starts_with("keys:")) {
        None => Ok(()),
        Some(scope) => Err(Denied(format!(
            "only a key with the scope {KEYS_ADMIN} may create or change a key with a keys: \
             scope ({scope})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_and_admin_each_allow_what_they_say() {
        for scopes in [
            &[KEYS_READ][..],
            &[KEYS_WRITE],
            &[KEYS_ADMIN],
            &["x", KEYS_READ],
        ] {
            assert_eq!(may(scopes, Access::Read), Ok(()), "{scopes:?}");
        }
        assert!(may(&[KEYS_READ], Access::Write).is_err());
        assert!(may(&[], Access::Read).is_err());
        assert!(may(&["keys:reader", "read"], Access::Read).is_err());
        assert_eq!(may(&[KEYS_WRITE], Access::Write), Ok(()));
        assert_eq!(may(&[KEYS_ADMIN], Access::Write), Ok(()));
        let denied = may(&["read"], Access::Write).unwrap_err();
        assert!(denied.0.contains(KEYS_WRITE), "{denied:?}");
    }

    #[test]
    fn only_admin_touches_a_key_that_manages_keys() {
        let none: [&str; 0] = [];
        assert_eq!(may_touch(&[KEYS_WRITE], none, ["read", "billing"]), Ok(()));
        // No escalation: write cannot grant write, read or admin, nor change such a key.
        for granted in [KEYS_READ, KEYS_WRITE, KEYS_ADMIN, "keys:other"] {
            assert!(
                may_touch(&[KEYS_WRITE], none, [granted]).is_err(),
                "{granted}"
            );
            assert!(
                may_touch(&[KEYS_WRITE], [granted], none).is_err(),
                "{granted}"
            );
            assert!(may_touch(&[KEYS_WRITE, KEYS_READ], [granted], ["read"]).is_err());
            assert_eq!(may_touch(&[KEYS_ADMIN], [granted], [KEYS_ADMIN]), Ok(()));
        }
        let denied = may_touch(&[KEYS_WRITE], ["read"], [KEYS_ADMIN]).unwrap_err();
        assert!(denied.0.contains("keys:admin"), "{denied:?}");
    }
}
