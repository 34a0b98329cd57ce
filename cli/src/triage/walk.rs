//! Walking what `scan` is given: files read a piece at a time (binary ones skipped), directories
//! in name order, with the `.git` directories and symbolic links met on the way skipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use heare_auth_core::Prefix;

use crate::commands::scan::{is_binary, Finder, Found, SNIFF_LEN};

/// How much of a file is read at a time.
const PIECE: usize = 64 * 1024;

/// What the walk met, in order.
#[derive(Debug)]
pub enum Met<'a> {
    /// A file read to its end, and the secrets found in it (perhaps none).
    File(&'a Path, Vec<Found>),
    /// A binary file, skipped.
    Binary(&'a Path),
    /// A file or directory that could not be read, and the system's reason.
    Unreadable(&'a Path, String),
}

/// How to walk.
#[derive(Clone, Debug)]
pub struct Walk {
    /// The prefix whose secrets are looked for; `None`: any.
    pub wanted: Option<Prefix>,
    /// Whether to enter `.git` directories.
    pub include_git: bool,
}

impl Walk {
    /// Walks `path` as given on the command line: a directory is walked, anything else is
    /// read (a symbolic link named here is followed), and each thing met is handed to `on`,
    /// which may stop the walk with an error.
    pub fn path<E>(
        &self,
        path: &Path,
        on: &mut impl FnMut(Met<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => self.directory(path, on),
            Ok(_) => self.file(path, on),
            Err(e) => on(Met::Unreadable(path, e.to_string())),
        }
    }

    /// A directory's entries in name order: regular files read, directories walked (but
    /// `.git` unless asked for), symbolic links and special files passed by.
    fn directory<E>(
        &self,
        dir: &Path,
        on: &mut impl FnMut(Met<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return on(Met::Unreadable(dir, e.to_string())),
        };
        let mut children: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.path()),
                Err(e) => on(Met::Unreadable(dir, e.to_string()))?,
            }
        }
        children.sort();
        for child in children {
            let kind = match std::fs::symlink_metadata(&child) {
                Ok(meta) => meta.file_type(),
                Err(e) => {
                    on(Met::Unreadable(&child, e.to_string()))?;
                    continue;
                }
            };
            if kind.is_dir() {
                if self.include_git || child.file_name().is_none_or(|n| n != ".git") {
                    self.directory(&child, on)?;
                }
            } else if kind.is_file() {
                self.file(&child, on)?;
            }
        }
        Ok(())
    }

    /// A file, read a piece at a time; skipped as binary if its beginning says so.
    fn file<E>(&self, path: &Path, on: &mut impl FnMut(Met<'_>) -> Result<(), E>) -> Result<(), E> {
        match self.read(path) {
            Ok(Some(found)) => on(Met::File(path, found)),
            Ok(None) => on(Met::Binary(path)),
            Err(e) => on(Met::Unreadable(path, e.to_string())),
        }
    }

    /// The secrets in the file at `path`; `None` when it is binary.
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<Found>>> {
        let mut file = File::open(path)?;
        let mut finder = Finder::new(self.wanted.clone());
        let mut found = Vec::new();
        let mut piece = vec![0u8; PIECE.max(SNIFF_LEN)];
        // The first piece holds the whole beginning that tells a binary file, if the file has it.
        let mut first = 0;
        while first < SNIFF_LEN {
            match file.read(&mut piece[first..])? {
                0 => break,
                n => first += n,
            }
        }
        if is_binary(&piece[..first]) {
            return Ok(None);
        }
        finder.feed(&piece[..first], &mut found);
        loop {
            match file.read(&mut piece)? {
                0 => break,
                n => finder.feed(&piece[..n], &mut found),
            }
        }
        Ok(Some(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::generate_secret;
    use rand_core::OsRng;

    /// What a walk of `root` met, as lines: `found PATH LINE`, `binary PATH`, `unreadable
    /// PATH`, paths relative to `root`.
    fn walk(root: &Path, include_git: bool) -> Vec<String> {
        let walk = Walk {
            wanted: Some(Prefix::secret()),
            include_git,
        };
        let rel = |p: &Path| p.strip_prefix(root).unwrap().display().to_string();
        let mut met = Vec::new();
        walk.path(root, &mut |m: Met<'_>| {
            match m {
                Met::File(p, found) => {
                    met.extend(found.iter().map(|f| format!("found {} {}", rel(p), f.line)))
                }
                Met::Binary(p) => met.push(format!("binary {}", rel(p))),
                Met::Unreadable(p, _) => met.push(format!("unreadable {}", rel(p))),
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        met
    }

    #[test]
    fn walks_in_name_order_past_git_binaries_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let secret = generate_secret(&Prefix::secret(), &mut OsRng, 0);
        let write = |name: &str, bytes: &[u8]| {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        write("b.txt", format!("one\ntwo {secret}\n").as_bytes());
        write("a/deep/c.env", format!("KEY={secret}").as_bytes());
        write(".git/config", secret.as_bytes());
        write("sub/.git/objects/x", secret.as_bytes());
        write(
            "image.png",
            &[b"\x89PNG\0".as_slice(), secret.as_bytes()].concat(),
        );
        // A NUL past the first 8 KiB: text.
        let mut late = vec![b' '; SNIFF_LEN];
        late.extend_from_slice(secret.as_bytes());
        late.push(0);
        write("late-nul.log", &late);
        std::os::unix::fs::symlink(root.join("b.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("z-link-dir")).unwrap();
        assert_eq!(
            walk(root, false),
            [
                "found a/deep/c.env 1",
                "found b.txt 2",
                "binary image.png",
                "found late-nul.log 1",
            ]
        );
        assert_eq!(
            walk(root, true),
            [
                "found .git/config 1",
                "found a/deep/c.env 1",
                "found b.txt 2",
                "binary image.png",
                "found late-nul.log 1",
                "found sub/.git/objects/x 1",
            ]
        );
        // A link named on the command line is followed.
        let mut through_link = 0;
        let walk = Walk {
            wanted: None,
            include_git: false,
        };
        walk.path(&root.join("link.txt"), &mut |m: Met<'_>| {
            if let Met::File(_, found) = m {
                through_link += found.len();
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(through_link, 1);
    }

    #[test]
    fn a_missing_path_is_unreadable_and_the_walk_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(walk(&dir.path().join("nope"), false), ["unreadable "]);
    }
}
