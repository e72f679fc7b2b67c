//! Resolving container paths inside the rootfs without escaping it.
//!
//! A mount destination like `/etc/x` may cross symlinks in the image
//! (`/etc -> /tmp/../..`). Every symlink is resolved as if the rootfs were `/`,
//! so the result always lies under the rootfs, whatever the image contains.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 255;

/// Joins `unsafe_path` onto `root`, resolving symlinks with `root` as `/`.
/// Missing components are kept literally (they will be created).
pub fn secure_join(root: &Path, unsafe_path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, in reverse order (a stack).
    let mut pending: Vec<OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("too many symlinks resolving {}", unsafe_path.display()),
                    ));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_and_missing_paths() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert_eq!(secure_join(r, Path::new("/a/b")).unwrap(), r.join("a/b"));
        assert_eq!(secure_join(r, Path::new("a/./b/")).unwrap(), r.join("a/b"));
    }

    #[test]
    fn dotdot_cannot_escape() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert_eq!(
            secure_join(r, Path::new("/../../etc")).unwrap(),
            r.join("etc")
        );
    }

    #[test]
    fn symlinks_resolve_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        symlink("/real", r.join("abs")).unwrap();
        symlink("../../../../real/dir", r.join("rel")).unwrap();
        symlink("/etc/passwd", r.join("host")).unwrap();
        assert_eq!(
            secure_join(r, Path::new("/abs/dir")).unwrap(),
            r.join("real/dir")
        );
        assert_eq!(
            secure_join(r, Path::new("/rel/x")).unwrap(),
            r.join("real/dir/x")
        );
        assert_eq!(
            secure_join(r, Path::new("/host")).unwrap(),
            r.join("etc/passwd")
        );
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let d = tempfile::tempdir().unwrap();
        symlink("/b", d.path().join("a")).unwrap();
        symlink("/a", d.path().join("b")).unwrap();
        assert!(secure_join(d.path(), Path::new("/a/x")).is_err());
    }
}
