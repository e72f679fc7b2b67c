//! Idmapped rootfs for user-namespaced containers: when the image files are
//! owned by ids the namespace does not map (typically host root), the rootfs
//! is attached through an idmapped mount, so the container's root owns its
//! files without anyone chowning the bundle.
//!
//! The parent (host root) builds the detached, idmapped mount after the
//! child's user namespace exists; the child attaches it onto the rootfs in
//! its own mount namespace.
//!
//! Also the builder's read-only binds: a detached tree read-only through
//! and through.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::Spec;

const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// True when the rootfs owner is outside the container's uid mapping, so the
/// container's root would see its own files as nobody's.
pub fn rootfs_needs_idmap(spec: &Spec, rootfs: &Path) -> bool {
    let Some(maps) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.uid_mappings().as_ref())
    else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(rootfs) else {
        return false;
    };
    let owner = meta.uid();
    !maps.iter().any(|m| {
        owner >= m.host_id() && u64::from(owner) < u64::from(m.host_id()) + u64::from(m.size())
    })
}

/// A detached recursive copy of `rootfs` idmapped with the user namespace of `pid`.
pub fn idmapped_tree(rootfs: &Path, pid: i32) -> io::Result<OwnedFd> {
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let path =
        CString::new(rootfs.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    let tree = clone_tree(libc::AT_FDCWD, &path, 0)?;
    set_attr(&tree, MOUNT_ATTR_IDMAP, userns.as_raw_fd() as u64)?;
    Ok(tree)
}

/// A detached recursive copy of the tree at `src` (an open fd, so no path
/// is walked again), every mount in it read-only, nosuid and nodev: a
/// plain `ro` bind covers the top mount only, and a submount under it
/// (a host directory bound into a build context) would stay writable.
pub fn readonly_tree(src: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let tree = clone_tree(src.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint)?;
    set_attr(
        &tree,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        0,
    )?;
    Ok(tree)
}

/// open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) of `path` below `dirfd`.
fn clone_tree(dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: open_tree with a valid fd and path; the result is a
    // descriptor we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE | flags,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor from open_tree.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// mount_setattr(AT_RECURSIVE) on every mount of a detached tree.
fn set_attr(tree: &OwnedFd, attr_set: u64, userns_fd: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    // SAFETY: mount_setattr on our detached tree with a valid attr struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches a detached tree onto `target` in the current mount namespace.
pub fn attach(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let empty = CString::new("").expect("no NUL");
    let to =
        CString::new(target.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    // SAFETY: move_mount from our detached tree to a valid path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
