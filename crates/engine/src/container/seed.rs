//! Copying an image's directory into a fresh volume, keeping what Docker
//! keeps: owners, modes, times, xattrs, symlinks, hard links, device nodes
//! and fifos.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::fswalk;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmodat, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat};

/// Creates `path` (and its parents) inside `rootfs` as root-owned 0755
/// dirs, as Docker makes a missing `WorkingDir`: symlinks on the way are
/// resolved inside the rootfs (FollowSymlinkInScope: absolute targets and
/// `..` stop at its root), so `/work -> /srv/work` makes `/srv/work` even
/// when it is missing. Every step is an `O_NOFOLLOW` open or a `mkdirat`
/// relative to the directory fd before it: the kernel never follows a link,
/// so one swapped in meanwhile cannot lead outside.
pub(crate) fn mkdir_in(rootfs: &Path, path: &str) -> io::Result<()> {
    let dir = |at: BorrowedFd<'_>, name: &str| {
        openat(
            at,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)
    };
    let not_dir = || io::Error::other(format!("{path} is not a directory"));
    // The open dirs from the rootfs down: `..` pops, never past the root.
    let mut stack: Vec<OwnedFd> = vec![dir(AT_FDCWD, &rootfs.to_string_lossy())?];
    let mut todo: Vec<String> = path.split('/').rev().map(String::from).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        let cur = stack.last().expect("the root stays").as_fd();
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let next = match nix::sys::stat::fstatat(cur, c.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(nix::errno::Errno::ENOENT) => {
                match mkdirat(cur, c.as_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(errno(e)),
                }
                // mkdir applied the umask: chmod through an fd of the dir.
                let fd = openat(
                    cur,
                    c.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o755)).map_err(errno)?;
                fd
            }
            Err(e) => return Err(errno(e)),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                hops += 1;
                if hops > 40 {
                    return Err(errno(nix::errno::Errno::ELOOP));
                }
                let target = nix::fcntl::readlinkat(cur, c.as_str()).map_err(errno)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                todo.extend(target.split('/').rev().map(String::from));
                continue;
            }
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => dir(cur, &c)?,
            Ok(_) => return Err(not_dir()),
        };
        stack.push(next);
    }
    Ok(())
}

/// Copies the contents of the directory `src` into the existing directory
/// `dst` (both fds open for reading) and gives `dst` the owner, mode,
/// xattrs and times of `src`.
///
/// `dst` is a volume that another container may share, so everything is
/// created relative to directory fds: mkdirat, `O_CREAT | O_EXCL |
/// O_NOFOLLOW` files, symlinkat, mknodat; attributes are set through an fd
/// of what was just made or with calls that never follow a link. A link
/// planted in the volume while we copy (`foo -> /etc/cron.d/x`) makes the
/// copy fail; it is never written through. `src` is read with
/// [`berth_image::fswalk`], which never follows links either.
pub(crate) fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_children(src, dst, Path::new(""), &mut links)?;
    let md = fswalk::fstat(src)?;
    set_attrs(src, dst, &md)
}

fn copy_children(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    rel: &Path,
    links: &mut HashMap<(u64, u64), (OwnedFd, std::ffi::OsString)>,
) -> io::Result<()> {
    let at = |e: io::Error, n: &std::ffi::OsStr| {
        io::Error::new(e.kind(), format!("{}: {e}", rel.join(n).display()))
    };
    for name in fswalk::names(src)? {
        let (md, node) = fswalk::open_child(src, &name).map_err(|e| at(e, &name))?;
        let name = name.as_os_str();
        if !md.is_dir() && md.nlink() > 1 {
            if let Some((dir, first)) = links.get(&(md.dev(), md.ino())) {
                // linkat never follows `first`: at worst it links whatever
                // the volume now holds under that name, inside the volume.
                linkat(dir, first.as_os_str(), dst, name, AtFlags::empty())
                    .map_err(|e| at(errno(e), name))?;
                continue;
            }
            links.insert(
                (md.dev(), md.ino()),
                (dst.try_clone_to_owned()?, name.to_owned()),
            );
        }
        let r = match node {
            fswalk::Node::Dir(sfd) => (|| {
                mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(errno)?;
                let dfd = openat(
                    dst,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                copy_children(sfd.as_fd(), dfd.as_fd(), &rel.join(name), links)?;
                set_attrs(sfd.as_fd(), dfd.as_fd(), &md)
            })(),
            fswalk::Node::File(mut f) => (|| {
                let dfd = openat(
                    dst,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(errno)?;
                let mut out = std::fs::File::from(dfd);
                io::copy(&mut f, &mut out)?;
                set_attrs(f.as_fd(), out.as_fd(), &md)
            })(),
            fswalk::Node::Symlink(target) => (|| {
                symlinkat(target.as_path(), dst, name).map_err(errno)?;
                fchownat(
                    dst,
                    name,
                    Some(md.uid().into()),
                    Some(md.gid().into()),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno)?;
                set_times(dst, name, &md)
            })(),
            fswalk::Node::Other => (|| {
                // Device nodes, fifos, sockets.
                let kind = SFlag::from_bits_truncate(md.mode() & libc::S_IFMT);
                let perm = Mode::from_bits_truncate(md.mode() & 0o7777);
                mknodat(dst, name, kind, perm, md.rdev()).map_err(errno)?;
                // Through an O_PATH fd of the node (not a link swapped in
                // since): mknod applied the umask, and chown clears setuid.
                let fd = openat(
                    dst,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                let now = fswalk::fstat(fd.as_fd())?;
                if now.mode() & libc::S_IFMT != md.mode() & libc::S_IFMT {
                    return Err(io::Error::other("replaced while being copied"));
                }
                fchownat(
                    fd.as_fd(),
                    "",
                    Some(md.uid().into()),
                    Some(md.gid().into()),
                    AtFlags::AT_EMPTY_PATH,
                )
                .map_err(errno)?;
                let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                fchmodat(AT_FDCWD, proc.as_str(), perm, FchmodatFlags::FollowSymlink)
                    .map_err(errno)?;
                set_times(dst, name, &md)
            })(),
        };
        r.map_err(|e| at(e, name))?;
    }
    Ok(())
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Times of `md` on `dst`/`name`, never following a link.
fn set_times(
    dst: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    md: &std::fs::Metadata,
) -> io::Result<()> {
    let at = TimeSpec::new(md.atime(), md.atime_nsec());
    let mt = TimeSpec::new(md.mtime(), md.mtime_nsec());
    utimensat(dst, name, &at, &mt, UtimensatFlags::NoFollowSymlink).map_err(errno)
}

/// Owner, xattrs, mode (after chown, which clears setuid bits) and times,
/// all through the fd of what was made.
fn set_attrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, md: &std::fs::Metadata) -> io::Result<()> {
    nix::unistd::fchown(dst, Some(md.uid().into()), Some(md.gid().into())).map_err(errno)?;
    copy_xattrs(src, dst)?;
    nix::sys::stat::fchmod(dst, Mode::from_bits_truncate(md.mode() & 0o7777)).map_err(errno)?;
    let at = TimeSpec::new(md.atime(), md.atime_nsec());
    let mt = TimeSpec::new(md.mtime(), md.mtime_nsec());
    nix::sys::stat::futimens(dst, &at, &mt).map_err(errno)
}

fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let (s, d) = (src.as_raw_fd(), dst.as_raw_fd());
    let mut names = vec![0u8; 4096];
    // SAFETY: a valid fd and a buffer valid for its length.
    let n = unsafe { libc::flistxattr(s, names.as_mut_ptr().cast(), names.len()) };
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
        // SAFETY: a valid fd, name and buffer.
        let len = unsafe { libc::fgetxattr(s, name.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if len < 0 {
            continue;
        }
        // SAFETY: a valid fd, name and value of `len` bytes.
        let rc = unsafe { libc::fsetxattr(d, name.as_ptr(), val.as_ptr().cast(), len as usize, 0) };
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
    use std::os::unix::fs::PermissionsExt;

    fn cstr(p: &Path) -> io::Result<CString> {
        use std::os::unix::ffi::OsStrExt;
        CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
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
        assert!(mkdir_in(r, "/file/x").is_err());
        // A dangling link: its target is made (docker's -w /work with
        // /work -> /srv/work and no /srv/work).
        std::os::unix::fs::symlink("/srv/work", r.join("work")).unwrap();
        mkdir_in(r, "/work").unwrap();
        assert!(r.join("srv/work").is_dir());
        let mode = std::fs::metadata(r.join("srv")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        // Absolute targets and `..` stop at the rootfs' root.
        let outside = tempfile::tempdir().unwrap();
        let escape = format!("../../../../..{}/x", outside.path().display());
        std::os::unix::fs::symlink(&escape, r.join("real/esc")).unwrap();
        mkdir_in(r, "/real/esc").unwrap();
        assert!(
            r.join(outside.path().strip_prefix("/").unwrap())
                .join("x")
                .is_dir()
        );
        assert!(
            !outside.path().join("x").exists(),
            "made outside the rootfs"
        );
        std::os::unix::fs::symlink(outside.path(), r.join("abs")).unwrap();
        mkdir_in(r, "/abs/y").unwrap();
        assert!(
            !outside.path().join("y").exists(),
            "made outside the rootfs"
        );
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(mkdir_in(r, "/loop").is_err());
    }

    /// A container sharing the volume plants `foo -> /outside/x` between
    /// the emptiness check and the copy: the copy fails on that name and
    /// writes nothing through the link.
    #[test]
    fn copy_never_writes_through_planted_links() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst, out) = (t.path().join("s"), t.path().join("d"), t.path().join("out"));
        for d in [&src, &dst, &out] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(src.join("foo"), "seeded").unwrap();
        std::os::unix::fs::symlink(out.join("x"), dst.join("foo")).unwrap();
        let open = |p: &Path| {
            nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
        };
        let e = copy_tree(open(&src).as_fd(), open(&dst).as_fd()).unwrap_err();
        assert!(e.to_string().contains("foo"), "{e}");
        assert!(!out.join("x").exists(), "wrote through the planted link");
        // A link in the image is copied as a link, not followed.
        std::fs::remove_file(dst.join("foo")).unwrap();
        std::fs::remove_file(src.join("foo")).unwrap();
        std::fs::write(out.join("secret"), "host").unwrap();
        std::os::unix::fs::symlink(out.join("secret"), src.join("ln")).unwrap();
        copy_tree(open(&src).as_fd(), open(&dst).as_fd()).unwrap();
        assert!(
            dst.join("ln")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
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
        let open = |p: &Path| {
            nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
        };
        copy_tree(open(&src).as_fd(), open(&dst).as_fd()).unwrap();
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
