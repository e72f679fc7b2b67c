//! Reading a tree that someone else may be changing at the same time — a
//! running container's rootfs, a volume it shares, a build context — without
//! ever leaving it.
//!
//! Walking by host path (`fs::metadata` then `File::open`) follows a symlink
//! that the container swapped in between the two calls, and the daemon then
//! reads host files (the CVE-2018-15664 class). Here every step is relative
//! to a directory fd: a child is opened `O_PATH | O_NOFOLLOW`, its type is
//! taken from `fstat` of that fd, and a file or directory is reopened
//! through the fd itself (`/proc/self/fd/N` names exactly that inode), so
//! what is read is what was stat'ed. Symlinks are reported as symlinks and
//! never followed. Paths given by name are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so `..` and absolute symlinks stay inside.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens the directory `path` (a path the daemon trusts) as an `O_PATH`
/// fd to resolve names under.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(errno(e).kind(), format!("open {}: {e}", path.display())))
}

/// Opens `rel` below `root` as if `root` were `/`: `..` stops at it and
/// absolute symlinks restart at it. `flags` may add `O_NOFOLLOW` (the last
/// component itself is not followed) or `O_DIRECTORY`.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let rel = rel
        .to_str()
        .map(|s| s.trim_start_matches('/'))
        .map(Path::new)
        .unwrap_or(rel);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // The kernel returns EAGAIN when a rename raced the lookup; retry a few
    // times as it asks rather than fail a build or a `cp`.
    let mut tries = 0;
    loop {
        match openat2(root, rel, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(errno),
        }
    }
}

/// fstat of any fd, `O_PATH` ones included (never follows: an `O_PATH |
/// O_NOFOLLOW` fd of a symlink stats as the symlink).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Metadata> {
    File::from(fd.try_clone_to_owned()?).metadata()
}

/// Reopens what `fd` stands for with real access (`flags`), through the fd
/// itself, so no path is looked up again.
pub fn reopen(fd: BorrowedFd<'_>, flags: OFlag) -> io::Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::fcntl::open(
        p.as_str(),
        flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(errno)
}

/// The regular file `rel` inside `root`, at most `max` bytes, read without
/// leaving `root`. Errors do not name the file: callers know how to. A symlink to `/dev/zero` or a FIFO is refused by type
/// before anything is read, so an image cannot make the daemon read forever.
pub fn read_file_in_root(root: &Path, rel: &Path, max: u64) -> io::Result<Vec<u8>> {
    let rootfd = open_root(root)?;
    let fd = open_in_root(rootfd.as_fd(), rel, OFlag::O_PATH)?;
    let meta = fstat(fd.as_fd())?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    let mut out = Vec::new();
    File::from(reopen(fd.as_fd(), OFlag::O_RDONLY)?)
        .take(max + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}

/// One child of a directory, opened without following it.
pub enum Node {
    /// A directory, open for reading (listing, xattrs, and as a base).
    Dir(OwnedFd),
    /// A regular file, open for reading.
    File(File),
    Symlink(PathBuf),
    /// Devices, fifos, sockets: described by the metadata only; never
    /// opened (opening a device or a fifo has effects or blocks).
    Other,
}

/// Opens the child `name` of the directory `dir`: its metadata and what
/// it is. `name` must be a single component.
pub fn open_child(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(Metadata, Node)> {
    if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let meta = fstat(fd.as_fd())?;
    let ft = meta.file_type();
    let node = if ft.is_dir() {
        Node::Dir(reopen(fd.as_fd(), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?)
    } else if ft.is_file() {
        Node::File(File::from(reopen(fd.as_fd(), OFlag::O_RDONLY)?))
    } else if ft.is_symlink() {
        let t = nix::fcntl::readlinkat(fd.as_fd(), "").map_err(errno)?;
        Node::Symlink(PathBuf::from(t))
    } else {
        Node::Other
    };
    Ok((meta, node))
}

/// The names in the directory `dir` (an fd open for reading), sorted.
pub fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let p = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut out = std::fs::read_dir(p)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    out.sort();
    Ok(out)
}

/// How [`append_tree`] writes entries.
pub struct TarOptions<'a> {
    /// Clamp mtimes to this (SOURCE_DATE_EPOCH).
    pub epoch: Option<i64>,
    /// The tree is an overlay upper dir: 0:0 char devices become
    /// `.wh.<name>` and opaque dirs get `.wh..wh..opq`.
    pub overlay: bool,
    /// Relative paths (to the walked dir) left out with all below them.
    pub skip: &'a dyn Fn(&Path) -> bool,
}

impl Default for TarOptions<'_> {
    fn default() -> Self {
        TarOptions {
            epoch: None,
            overlay: false,
            skip: &|_| false,
        }
    }
}

/// A tar header with the mode, owner and mtime of `meta` (no user or group
/// names, so output is the same on every host).
pub fn header(meta: &Metadata, epoch: Option<i64>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    let mtime = meta.mtime().max(0);
    h.set_mtime(match epoch {
        Some(e) => mtime.min(e.max(0)) as u64,
        None => mtime as u64,
    });
    h
}

fn opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 4];
    // SAFETY: a valid fd, C string and a buffer of the given length.
    let n = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// Appends one already-opened node as `name`; hard links to a file seen
/// before become link entries (`links` is keyed by dev and inode).
pub fn append_node<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &Path,
    meta: &Metadata,
    node: Node,
    epoch: Option<i64>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let mut h = header(meta, epoch);
    let ft = meta.file_type();
    match node {
        Node::Dir(_) => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, name, io::empty())
        }
        Node::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, name, target)
        }
        Node::File(f) => {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    return tar.append_link(&mut h, name, first);
                }
                links.insert(key, name.to_path_buf());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            // A file that shrank while being read would leave the tar short
            // and corrupt; pad to the size in the header instead.
            let data = f.take(meta.len()).chain(io::repeat(0)).take(meta.len());
            tar.append_data(&mut h, name, data)
        }
        Node::Other => {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else if ft.is_fifo() {
                tar::EntryType::Fifo
            } else {
                // Sockets have no tar form; Docker leaves them out too.
                return Ok(());
            };
            h.set_entry_type(kind);
            h.set_size(0);
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev))?;
            h.set_device_minor(libc::minor(rdev))?;
            tar.append_data(&mut h, name, io::empty())
        }
    }
}

/// Appends everything below the directory `dir` (an fd open for reading)
/// as `prefix/<relative path>`, sorted, depth first, never following a
/// symlink. The directory itself is not written (callers name it).
pub fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    prefix: &Path,
    opts: &TarOptions<'_>,
) -> io::Result<()> {
    let mut links = HashMap::new();
    append_children(tar, dir, prefix, Path::new(""), opts, &mut links)
}

fn append_children<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    prefix: &Path,
    rel: &Path,
    opts: &TarOptions<'_>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let at = |e: io::Error, rp: &Path| io::Error::new(e.kind(), format!("{}: {e}", rp.display()));
    for name in names(dir).map_err(|e| at(e, rel))? {
        let rp = rel.join(&name);
        if (opts.skip)(&rp) {
            continue;
        }
        let (meta, node) = match open_child(dir, &name) {
            Ok(x) => x,
            // Deleted since listed (a running container): nothing to copy.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(at(e, &rp)),
        };
        let out = prefix.join(&rp);
        if opts.overlay && meta.file_type().is_char_device() && meta.rdev() == 0 {
            let mut wh = header(&meta, opts.epoch);
            wh.set_entry_type(tar::EntryType::Regular);
            wh.set_size(0);
            wh.set_mode(0o644);
            let mut wname = OsString::from(".wh.");
            wname.push(&name);
            tar.append_data(&mut wh, prefix.join(rel).join(wname), io::empty())
                .map_err(|e| at(e, &rp))?;
            continue;
        }
        let sub = match &node {
            Node::Dir(fd) => Some(fd.try_clone()?),
            _ => None,
        };
        append_node(tar, &out, &meta, node, opts.epoch, links).map_err(|e| at(e, &rp))?;
        if let Some(fd) = sub {
            if opts.overlay && opaque(fd.as_fd()) {
                let mut wh = header(&meta, opts.epoch);
                wh.set_entry_type(tar::EntryType::Regular);
                wh.set_size(0);
                wh.set_mode(0o644);
                tar.append_data(&mut wh, out.join(".wh..wh..opq"), io::empty())
                    .map_err(|e| at(e, &rp))?;
            }
            append_children(tar, fd.as_fd(), prefix, &rp, opts, links)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(buf: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(buf);
        // Up to the first bad entry: the racy path-based walk (the test's
        // counter-check) can also write corrupt archives.
        a.entries()
            .unwrap()
            .map_while(|e| {
                let mut e = e.ok()?;
                let p = e.path().ok()?.to_string_lossy().into_owned();
                let t = e.header().entry_type();
                let mut d = Vec::new();
                e.read_to_end(&mut d).ok()?;
                Some((p, t, d))
            })
            .collect()
    }

    #[test]
    fn symlinks_are_archived_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("d")).unwrap();
        std::fs::write(r.join("d/f"), "in").unwrap();
        // Links out of the tree: a dir link and a file link to the host.
        std::os::unix::fs::symlink("/etc", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", r.join("d/h")).unwrap();
        let dir =
            nix::fcntl::open(&r, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        append_tree(
            &mut tar,
            dir.as_fd(),
            Path::new("x"),
            &TarOptions::default(),
        )
        .unwrap();
        let got = entries(&tar.into_inner().unwrap());
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["x/d", "x/d/f", "x/d/h", "x/etc"]);
        assert_eq!(got[1].2, b"in");
        assert_eq!(got[2].1, tar::EntryType::Symlink);
        assert_eq!(got[3].1, tar::EntryType::Symlink);
    }

    /// The race the walker exists for: a tree whose entries keep flipping
    /// between a real file/dir and a symlink to the host. A path-based walk
    /// (tar's `append_dir_all`) archives host content sooner or later; this
    /// one never may.
    #[test]
    fn swapped_symlinks_never_leak_host_files() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(&r).unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("f"), "HOST-SECRET").unwrap();
        std::fs::write(host.join("secret"), "HOST-SECRET").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (r, host, stop) = (r.clone(), host.clone(), stop.clone());
            std::thread::spawn(move || {
                let (d, f) = (r.join("d"), r.join("f"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::create_dir_all(&d).ok();
                    std::fs::write(d.join("secret"), "ok").ok();
                    std::fs::write(&f, "ok").ok();
                    std::fs::remove_dir_all(&d).ok();
                    std::fs::remove_file(&f).ok();
                    std::os::unix::fs::symlink(&host, &d).ok();
                    std::os::unix::fs::symlink(host.join("f"), &f).ok();
                    std::fs::remove_file(&d).ok();
                    std::fs::remove_file(&f).ok();
                }
            })
        };
        let dir =
            nix::fcntl::open(&r, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
        let mut runs = 0;
        while std::time::Instant::now() < deadline {
            let mut tar = tar::Builder::new(Vec::new());
            // Errors (a name vanishing mid-open) are fine; leaks are not.
            if append_tree(&mut tar, dir.as_fd(), Path::new(""), &TarOptions::default()).is_ok() {
                let buf = tar.into_inner().unwrap();
                for (p, _, d) in entries(&buf) {
                    assert_ne!(d, b"HOST-SECRET", "host file archived as {p}");
                }
            }
            runs += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flipper.join().unwrap();
        assert!(runs > 10);
    }

    #[test]
    fn reads_only_small_regular_files_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("passwd"), "inside").unwrap();
        std::fs::write(t.path().join("passwd"), "outside").unwrap();
        // Absolute and `..` links resolve in the root, not on the host.
        std::os::unix::fs::symlink("/passwd", r.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../../../passwd", r.join("etc/up")).unwrap();
        let read = |p: &str| read_file_in_root(&r, Path::new(p), 1 << 20);
        assert_eq!(read("/etc/abs").unwrap(), b"inside");
        assert_eq!(read("etc/up").unwrap(), b"inside");
        // /dev/zero inside the root (as an image would ship it).
        std::fs::create_dir_all(r.join("dev")).unwrap();
        nix::sys::stat::mknod(
            &r.join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", r.join("etc/zero")).unwrap();
        let e = read("/etc/zero").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read("/etc/missing").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        nix::unistd::mkfifo(&r.join("etc/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let e = read("/etc/fifo").unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::write(r.join("big"), vec![b'x'; 2000]).unwrap();
        let e = read_file_in_root(&r, Path::new("/big"), 1000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 1000 bytes"), "{e}");
    }
}
