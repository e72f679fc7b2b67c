//! Writing a COPY/ADD's files into a step's rootfs without ever leaving it.
//!
//! The rootfs comes from images and earlier steps, so any name in it may be
//! a symlink to `/etc` or `../../..`; the daemon writes as root, so a write
//! that follows one lands on the host. As in BuildKit, the destination
//! path itself is resolved with its links followed *inside* the rootfs
//! (`/app/sub -> /host/dir` means `<rootfs>/host/dir`, see
//! `copy_step::scoped`); below it everything is relative to a directory
//! fd: a directory is entered with `O_NOFOLLOW`, a file is created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` after its old entry is unlinked, and
//! owners, modes and times are set on the fd (or with `AT_SYMLINK_NOFOLLOW`
//! for links). A symlink or file where a directory has to be merged or
//! made is refused, as BuildKit refuses it ("cannot copy to non-directory").

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, fstatat, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use crate::error::{Error, Result};

pub(super) fn io(op: &'static str, path: &Path, e: Errno) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

/// A step's rootfs, open as a directory fd.
pub struct Dest {
    pub path: PathBuf,
    root: OwnedFd,
}

impl Dest {
    pub fn open(rootfs: &Path) -> Result<Dest> {
        let root = nix::fcntl::open(
            rootfs,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open", rootfs, e))?;
        Ok(Dest {
            path: rootfs.to_path_buf(),
            root,
        })
    }

    /// `path` (absolute in the image) with its links resolved inside the
    /// rootfs, as components relative to it. No component of the result
    /// is a link (unless one is swapped in later, which `dir` refuses).
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        let abs = super::copy_step::scoped(&self.path, path)?;
        Ok(abs
            .strip_prefix(&self.path)
            .map(Path::to_path_buf)
            .unwrap_or_default())
    }

    /// Opens the directory `rel` (as from `resolve`), making the missing
    /// ones 0755 and owned by `owner` (BuildKit's copy does the same).
    pub fn dir(&self, rel: &Path, owner: (u32, u32)) -> Result<OwnedFd> {
        let mut cur = self.root.try_clone().map_err(|e| Error::Io {
            op: "dup",
            path: self.path.clone(),
            source: e,
        })?;
        let mut shown = self.path.clone();
        for c in rel.components() {
            let name = c.as_os_str();
            shown.push(name);
            cur = child_dir(cur.as_fd(), name, &shown, |fd| {
                set_attrs(fd, &shown, owner, 0o755, None)
            })?
            .0;
        }
        Ok(cur)
    }
}

/// The directory `name` in `parent`, entered without following a link;
/// made (and `init` run on it) when missing; anything else there (a link,
/// a file) is an error. Also returns whether it was made.
pub fn child_dir(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    init: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<(OwnedFd, bool)> {
    let open = || {
        openat(
            parent,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
            return Ok((open().map_err(|e| io("open", shown, e))?, false));
        }
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
            return Err(Error::Invalid(format!(
                "cannot copy to non-directory: {} is a symlink",
                shown.display()
            )));
        }
        // BuildKit neither replaces a file with a directory nor makes one
        // below it ("not a directory"); checked against dockerd 20.10.
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "cannot copy to non-directory: {} is not a directory",
                shown.display()
            )));
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(io("stat", shown, e)),
    }
    match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {
            let fd = open().map_err(|e| io("open", shown, e))?;
            init(fd.as_fd())?;
            Ok((fd, true))
        }
        Err(e) => Err(io("create", shown, e)),
    }
}

/// Owner, then mode (a chown clears set-id bits), then mtime, on the fd.
pub fn set_attrs(
    fd: BorrowedFd<'_>,
    shown: &Path,
    owner: (u32, u32),
    mode: u32,
    mtime: Option<(i64, i64)>,
) -> Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )
    .map_err(|e| io("chown", shown, e))?;
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
        .map_err(|e| io("chmod", shown, e))?;
    if let Some((s, ns)) = mtime {
        let ts = TimeSpec::new(s, ns);
        nix::sys::stat::futimens(fd, &ts, &ts).map_err(|e| io("utimens", shown, e))?;
    }
    Ok(())
}

/// Removes what is at `name` (not a directory) so a new entry can be made.
fn clear(parent: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(Error::Invalid(format!(
            "cannot overwrite directory {} with a non-directory",
            shown.display()
        ))),
        Err(e) => Err(io("remove", shown, e)),
    }
}

/// A new regular file `name` in `parent`, replacing what was there (a
/// symlink is replaced, never written through).
pub fn create_file(parent: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<File> {
    clear(parent, name, shown)?;
    let fd = openat(
        parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| io("create", shown, e))?;
    Ok(File::from(fd))
}

/// A symlink `name -> target` in `parent` with the given owner and mtime.
pub fn create_symlink(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    target: &Path,
    shown: &Path,
    owner: (u32, u32),
    m: &Metadata,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    clear(parent, name, shown)?;
    nix::unistd::symlinkat(target, parent, name).map_err(|e| io("symlink", shown, e))?;
    nix::unistd::fchownat(
        parent,
        name,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io("chown", shown, e))?;
    let ts = TimeSpec::new(m.mtime(), m.mtime_nsec());
    nix::sys::stat::utimensat(parent, name, &ts, &ts, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io("utimens", shown, e))
}

/// Splits a resolved destination into its parent and last component
/// (the rootfs itself has none: an error naming `what`).
pub fn split<'a>(rel: &'a Path, what: &str) -> Result<(&'a Path, &'a OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) if !n.as_bytes().is_empty() => Ok((p, n)),
        _ => Err(Error::Invalid(format!(
            "{what}: cannot copy a file onto the root directory"
        ))),
    }
}
