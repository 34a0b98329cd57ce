//! The admin key the management API is called with: read from the environment or a file
//! (warning, as ssh does, when others may read the file), and never shown.

use std::fmt;
use std::io::Read;

use crate::CliError;

/// An admin key's secret: visible ASCII, so that it can only ever go out as one header value.
/// Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(String);

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey(..)")
    }
}

impl AdminKey {
    /// The key `text` holds, whitespace around it removed; `None` when nothing is left. `from`
    /// names where it came from in the refusal of a character a header cannot carry (the
    /// refusal says where the character is, never what the key is).
    pub fn new(text: &str, from: &str) -> Result<Option<AdminKey>, CliError> {
        let key = text.trim();
        if key.is_empty() {
            return Ok(None);
        }
        if let Some(at) = key.chars().position(|c| !c.is_ascii_graphic()) {
            return Err(CliError::Usage(format!(
                "the admin key in {from} holds a character an HTTP header cannot carry, at \
                 position {}",
                at + 1
            )));
        }
        Ok(Some(AdminKey(key.to_string())))
    }

    /// The `Authorization` header's value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Reads the key from the file at `path`, warning on stderr when its mode lets its group
    /// or others read it. An empty file holds no key: a usage error.
    pub fn from_file(path: &str) -> Result<AdminKey, CliError> {
        let unreadable = |reason: String| CliError::AdminKeyFile {
            path: path.to_string(),
            reason,
        };
        let mut file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let mode = file.metadata().map_err(|e| unreadable(e.to_string()))?;
        if let Some(warning) = exposure(path, permissions(&mode)) {
            eprintln!("{warning}");
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into()))?;
        AdminKey::new(&text, path)?.ok_or_else(|| {
            CliError::Usage(format!(
                "the admin key file {path} is empty: it holds no key"
            ))
        })
    }
}

/// The permission bits of a file.
fn permissions(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

/// The warning for a key file of `mode` that its group or others may read, if they may.
pub fn exposure(path: &str, mode: u32) -> Option<String> {
    let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (true, true) => "its group and every user",
        (true, false) => "its group",
        (false, true) => "every user",
        (false, false) => return None,
    };
    Some(format!(
        "Warning: the admin key file {path} can be read by {who} (mode {mode:04o}); make it \
         readable by its owner alone: chmod 600 {path}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_trimmed_and_never_shown() {
        let key = AdminKey::new("  sec_admin\r\n", "X").unwrap().unwrap();
        assert_eq!(key.bearer(), "Bearer sec_admin");
        assert_eq!(format!("{key:?}"), "AdminKey(..)");
        assert_eq!(AdminKey::new(" \n\t", "X"), Ok(None));
        let err = AdminKey::new("sec_a b", "HEARE_AUTH_ADMIN_KEY").unwrap_err();
        assert_eq!(
            err,
            CliError::Usage(
                "the admin key in HEARE_AUTH_ADMIN_KEY holds a character an HTTP header \
                 cannot carry, at position 6"
                    .into()
            )
        );
        assert!(!err.to_string().contains("sec_a"));
        assert!(AdminKey::new("sec_é", "X").is_err());
    }

    #[test]
    fn a_file_others_may_read_is_named_with_its_mode() {
        assert_eq!(exposure("/k", 0o600), None);
        assert_eq!(exposure("/k", 0o400), None);
        assert_eq!(exposure("/k", 0o700), None);
        assert_eq!(
            exposure("/k", 0o644).as_deref(),
            Some(
                "Warning: the admin key file /k can be read by its group and every user \
                 (mode 0644); make it readable by its owner alone: chmod 600 /k"
            )
        );
        assert!(exposure("/k", 0o640)
            .unwrap()
            .contains("by its group (mode 0640)"));
        assert!(exposure("/k", 0o604)
            .unwrap()
            .contains("by every user (mode 0604)"));
    }

    #[test]
    fn a_file_is_read_trimmed_and_refused_when_empty_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.key");
        let path_text = path.to_str().unwrap();
        std::fs::write(&path, "sec_admin\n").unwrap();
        let key = AdminKey::from_file(path_text).unwrap();
        assert_eq!(key.bearer(), "Bearer sec_admin");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            AdminKey::from_file(path_text),
            Err(CliError::Usage(format!(
                "the admin key file {path_text} is empty: it holds no key"
            )))
        );
        let missing = dir.path().join("nope");
        let err = AdminKey::from_file(missing.to_str().unwrap()).unwrap_err();
        assert!(
            matches!(&err, CliError::AdminKeyFile { reason, .. } if reason.contains("No such file")),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 1);
    }
}
