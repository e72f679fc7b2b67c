//! Copying an image's directory into a fresh volume, keeping what Docker
//! keeps: owners, modes, times, xattrs, symlinks, hard links, device nodes
//! and fifos.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `path` inside `rootfs`, with symlinks resolved against the rootfs (not
/// the host), or None when it does not exist.
pub(crate) fn resolve_in(rootfs: &Path, path: &str) -> Option<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(String::from)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        let host = rootfs.join(next.strip_prefix("/").ok()?);
        let md = std::fs::symlink_metadata(&host).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            let t = target.to_string_lossy().into_owned();
            todo.extend(
                t.split('/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(String::from),
            );
        } else {
            cur = next;
        }
    }
    Some(rootfs.join(cur.strip_prefix("/").ok()?))
}

/// Creates `path` (and its parents) inside `rootfs` as root-owned 0755
/// dirs, following existing symlinks within the rootfs: Docker creates a
/// missing `WorkingDir`.
pub(crate) fn mkdir_in(rootfs: &Path, path: &str) -> io::Result<()> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut base = rootfs.to_path_buf();
    let mut start = 0;
    // The longest prefix that exists, resolved in the rootfs.
    for i in (0..=comps.len()).rev() {
        let prefix = format!("/{}", comps[..i].join("/"));
        if let Some(p) = resolve_in(rootfs, &prefix) {
            base = p;
            start = i;
            break;
        }
    }
    for c in &comps[start..] {
        if *c == ".." || *c == "." {
            return Err(io::Error::other(format!(
                "working dir {path:?} is not clean"
            )));
        }
        base.push(c);
        std::fs::create_dir(&base)?;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755))?;
    }
    if !base.is_dir() {
        return Err(io::Error::other(format!("{path} is not a directory")));
    }
    Ok(())
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Copies the contents of `src` into the existing dir `dst` and gives
/// `dst` the owner, mode and xattrs of `src`.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_children(src, dst, &mut links)?;
    copy_attrs(src, dst, &std::fs::symlink_metadata(src)?)
}

fn copy_children(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let md = std::fs::symlink_metadata(&s)?;
        let ft = md.file_type();
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                std::fs::hard_link(first, &d)?;
                continue;
            }
            links.insert((md.dev(), md.ino()), d.clone());
        }
        if ft.is_dir() {
            std::fs::create_dir(&d)?;
            copy_children(&s, &d, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            std::fs::copy(&s, &d)?;
        } else {
            // Device nodes, fifos, sockets.
            let c = cstr(&d)?;
            // SAFETY: valid path; mode and rdev from the source's stat.
            check(unsafe {
                libc::mknod(
                    c.as_ptr(),
                    md.mode() as libc::mode_t,
                    md.rdev() as libc::dev_t,
                )
            })?;
        }
        copy_attrs(&s, &d, &md)?;
    }
    Ok(())
}

/// Owner, xattrs, mode (after chown, which clears setuid bits) and times.
fn copy_attrs(src: &Path, dst: &Path, md: &std::fs::Metadata) -> io::Result<()> {
    let d = cstr(dst)?;
    // SAFETY: valid path; lchown never follows the link.
    check(unsafe { libc::lchown(d.as_ptr(), md.uid(), md.gid()) })?;
    copy_xattrs(src, dst)?;
    if !md.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    let times = [
        libc::timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec(),
        },
        libc::timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec(),
        },
    ];
    // SAFETY: valid path and a two-element timespec array.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            d.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        // A filesystem without xattrs has nothing to copy.
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(()),
            _ => Err(e),
        };
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).map_err(io::Error::other)?;
        let mut val = vec![0u8; 65536];
        // SAFETY: valid name and buffer.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                name.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: valid name and value of `len` bytes.
        let rc = unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                name.as_ptr(),
                val.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        // overlayfs-private attributes cannot be set on the volume's
        // filesystem; everything else must arrive.
        if rc < 0 && !name.to_bytes().starts_with(b"trusted.overlay.") {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_in_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../real", r.join("real/up")).unwrap();
        assert_eq!(resolve_in(r, "/abs/dir"), Some(r.join("real/dir")));
        // `..` past the root stays at the root, as in the container.
        assert_eq!(resolve_in(r, "/real/up/dir"), Some(r.join("real/dir")));
        assert_eq!(resolve_in(r, "/missing"), None);
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve_in(r, "/loop"), None);
    }

    #[test]
    fn workdir_made_inside_rootfs() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("ln")).unwrap();
        mkdir_in(r, "/ln/a/b").unwrap();
        assert!(r.join("real/a/b").is_dir());
        mkdir_in(r, "/real/a").unwrap();
        std::fs::write(r.join("file"), "").unwrap();
        assert!(mkdir_in(r, "/file").is_err());
    }

    #[test]
    fn copy_keeps_modes_links_and_owners() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("s"), t.path().join("d"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(src.join("sub/f"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("ln")).unwrap();
        std::fs::set_permissions(&src, PermissionsExt::from_mode(0o1777)).unwrap();
        // An xattr, where the test filesystem takes user attributes.
        let f = cstr(&src.join("sub/f")).unwrap();
        // SAFETY: valid path, name and value.
        let xattr = unsafe {
            libc::lsetxattr(
                f.as_ptr(),
                c"user.berth".as_ptr(),
                b"v1".as_ptr().cast(),
                2,
                0,
            )
        } == 0;
        copy_tree(&src, &dst).unwrap();
        if xattr {
            let d = cstr(&dst.join("sub/f")).unwrap();
            let mut buf = [0u8; 8];
            // SAFETY: valid path, name and buffer.
            let n = unsafe {
                libc::lgetxattr(
                    d.as_ptr(),
                    c"user.berth".as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            assert_eq!(&buf[..n.max(0) as usize], b"v1");
        }
        let md = std::fs::metadata(dst.join("sub/f")).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_to_string(dst.join("ln")).unwrap(), "x");
        assert_eq!(std::fs::metadata(dst.join("hard")).unwrap().ino(), md.ino());
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o1777);
    }
}
