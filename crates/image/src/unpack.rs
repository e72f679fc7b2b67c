//! Safe, fast layer extraction.
//!
//! The `tar` crate only parses the stream; every file is created here relative
//! to a directory fd. Parent directories are opened with `openat2(RESOLVE_BENEATH)`,
//! so a symlink planted by the layer (`a -> /`) can never steer a later entry
//! (`a/etc/passwd`) outside the layer root: the kernel refuses the walk with
//! EXDEV. Final components are created with `*at` calls that never follow them.
//! `..` and absolute names are refused outright.
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.NAME` → a 0:0 char device
//! NAME, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmodat, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat};
use tar::EntryType;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// The default cap on what one archive may expand to: the sum of its files'
/// apparent sizes, holes of sparse files included. Holes cost no disk, but
/// the tar reader hands them over as zeros, so a 10 KB layer declaring a
/// 1 TiB sparse file would keep a core busy for minutes. 256 GiB is far
/// beyond any real layer (the largest CUDA/ML layers are ~10 GiB) and
/// expands in under half a minute (10 GB/s of holes measured in a release
/// build; the old byte-wise zero check managed 0.5 GB/s); `--max-layer-size`
/// (berthd) moves it.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 30;
/// Files at least this big get their writeback started as soon as written.
const EARLY_WRITEBACK_MIN: u64 = 64 * 1024;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    /// Bytes of file content written (the layer's apparent size).
    pub bytes: u64,
}

/// How an archive is extracted. Layers ([`unpack`]) keep the archive's
/// owners and turn OCI whiteouts into overlay ones; `docker cp` into a
/// container takes plain files and may own them all by one user.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Every entry owned by this (uid, gid) instead of the archive's.
    pub owner: Option<(u32, u32)>,
    /// `.wh.` names are OCI whiteouts (layers), not plain files.
    pub whiteouts: bool,
    /// Refuse to replace a directory by a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// The most the archive may expand to (apparent sizes, see
    /// [`DEFAULT_MAX_SIZE`]); an entry that would go past it is refused,
    /// by name, before any of its data is read.
    pub max_size: u64,
    /// Checked between entries and between chunks of a file's data.
    pub cancel: Option<Cancel>,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            owner: None,
            whiteouts: true,
            no_overwrite_dir_non_dir: false,
            max_size: DEFAULT_MAX_SIZE,
            cancel: None,
        }
    }
}

/// Extracts a tar stream into `target` (an existing, empty directory).
pub fn unpack(reader: impl Read, target: &Path) -> Result<UnpackStats> {
    unpack_with(reader, target, UnpackOptions::default())
}

/// [`unpack`] with options; `target` may hold files already (a later entry
/// replaces an existing one, as tar does).
pub fn unpack_with(reader: impl Read, target: &Path, opts: UnpackOptions) -> Result<UnpackStats> {
    let root = nix::fcntl::open(
        target,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", target, e))?;
    let mut u = Unpacker {
        root,
        target,
        opts,
        parent_cache: None,
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
        buf: vec![0u8; 256 * 1024],
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        if let Some(c) = &u.opts.cancel {
            c.check()?;
        }
        let entry = entry?;
        u.entry(entry)?;
    }
    u.finish()?;
    Ok(u.stats)
}

struct Unpacker<'a> {
    root: OwnedFd,
    target: &'a Path,
    opts: UnpackOptions,
    /// Entries arrive grouped by directory; caching the last parent fd saves one
    /// openat2 per entry.
    parent_cache: Option<(Vec<u8>, OwnedFd)>,
    /// Directory mtimes are applied last: creating children would change them.
    dir_times: Vec<(Vec<u8>, i64)>,
    stats: UnpackStats,
    buf: Vec<u8>,
}

fn io_err(op: &'static str, path: impl AsRef<Path>, e: Errno) -> Error {
    Error::Io {
        op,
        path: path.as_ref().to_path_buf(),
        source: io::Error::from(e),
    }
}

fn hostile(path: &[u8], reason: impl Into<String>) -> Error {
    Error::Hostile {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Splits an archive path into clean components, refusing escapes.
fn clean(path: &[u8]) -> Result<Vec<&[u8]>> {
    if path.first() == Some(&b'/') {
        return Err(hostile(path, "absolute path"));
    }
    let mut parts = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(hostile(path, "path contains '..'")),
            c => parts.push(c),
        }
    }
    Ok(parts)
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            return Ok(());
        }
        let parts = clean(&raw_path)?;
        let Some((&name, parent)) = parts.split_last() else {
            return Ok(()); // the root itself: the layer dir's attributes are ours
        };
        // The apparent size: for a GNU sparse file the tar reader's size is
        // the real one with its holes, the header's only the stored data.
        let size = entry.size();
        let total = self.stats.bytes.saturating_add(size);
        if total > self.opts.max_size {
            return Err(Error::TooLarge {
                path: String::from_utf8_lossy(&raw_path).into_owned(),
                total,
                limit: self.opts.max_size,
            });
        }
        self.stats.entries += 1;
        let parent_path = parent.join(&b'/');
        let pfd = self.parent(&parent_path, &raw_path)?;

        if self.opts.no_overwrite_dir_non_dir {
            self.check_dir_non_dir(&pfd, name, kind == EntryType::Directory, &raw_path)?;
        }
        if name == OPAQUE && self.opts.whiteouts {
            let dir = openat(
                &pfd,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("open", self.target.join(bytes_path(&parent_path)), e))?;
            return set_xattr(&dir, b"trusted.overlay.opaque", b"y")
                .map_err(|e| self.err("setxattr", &parent_path, e));
        }
        if let Some(rest) = name
            .strip_prefix(WHITEOUT_PREFIX)
            .filter(|_| self.opts.whiteouts)
        {
            if rest.starts_with(WHITEOUT_PREFIX) {
                return Ok(()); // other aufs metadata (.wh..wh.plnk etc.) has no overlay meaning
            }
            if rest.is_empty() || rest == b"." || rest == b".." {
                return Err(hostile(&raw_path, "malformed whiteout"));
            }
            self.remove_existing(&pfd, rest, &raw_path)?;
            mknodat(&pfd, rest, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| self.err("mknod whiteout", &raw_path, e))?;
            return Ok(());
        }

        let hdr = entry.header().clone();
        let mode = Mode::from_bits_truncate(hdr.mode()? & 0o7777);
        // Empty numeric fields (some writers leave them NUL) mean 0, as GNU tar reads them.
        let (mut uid, mut gid) = (hdr.uid().unwrap_or(0), hdr.gid().unwrap_or(0));
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let key = ext.key_bytes();
                if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((x.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"uid" {
                    uid = parse_num(ext.value_bytes()).unwrap_or(uid);
                } else if key == b"gid" {
                    gid = parse_num(ext.value_bytes()).unwrap_or(gid);
                }
            }
        }
        if let Some((u, g)) = self.opts.owner {
            (uid, gid) = (u64::from(u), u64::from(g));
        }
        let owner = (
            Some(Uid::from_raw(uid as u32)),
            Some(Gid::from_raw(gid as u32)),
        );
        let mtime = TimeSpec::new(hdr.mtime().unwrap_or(0) as i64, 0);

        match kind {
            EntryType::Directory => {
                let dir = match self.open_dir(&pfd, name) {
                    Ok(d) => d,
                    Err(_) => {
                        self.remove_existing(&pfd, name, &raw_path)?;
                        mkdirat(&pfd, name, Mode::from_bits_truncate(0o700))
                            .map_err(|e| self.err("mkdir", &raw_path, e))?;
                        self.open_dir(&pfd, name)
                            .map_err(|e| self.err("open", &raw_path, e))?
                    }
                };
                self.set_attrs(&dir, owner, mode, &xattrs, None, &raw_path)?;
                self.dir_times.push((parts.join(&b'/'), mtime.tv_sec()));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.remove_existing(&pfd, name, &raw_path)?;
                let fd = openat(
                    &pfd,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.err("create", &raw_path, e))?;
                let mut file = File::from(fd);
                let sparse = kind == EntryType::GNUSparse;
                let cancel = self.opts.cancel.as_ref();
                let written = copy_data(&mut entry, &mut file, &mut self.buf, sparse, cancel)
                    .map_err(|e| match cancel {
                        Some(c) if c.is_cancelled() => Error::Cancelled,
                        _ => Error::Io {
                            op: "write",
                            path: self.target.join(bytes_path(&raw_path)),
                            source: e,
                        },
                    })?;
                self.stats.bytes += written;
                self.set_attrs(&file, owner, mode, &xattrs, Some(mtime), &raw_path)?;
                if written >= EARLY_WRITEBACK_MIN {
                    // Start writeback now, asynchronously, so the syncfs before
                    // the layer is renamed into place finds little left to do.
                    // SAFETY: advisory syscall on an fd we own.
                    unsafe {
                        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
                    };
                }
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&raw_path, "symlink without target"))?
                    .into_owned();
                self.remove_existing(&pfd, name, &raw_path)?;
                symlinkat(link.as_slice(), &pfd, name)
                    .map_err(|e| self.err("symlink", &raw_path, e))?;
                fchownat(&pfd, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| self.err("chown", &raw_path, e))?;
                utimensat(&pfd, name, &mtime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| self.err("utimes", &raw_path, e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&raw_path, "hard link without target"))?
                    .into_owned();
                let lparts = clean(&link)
                    .map_err(|_| hostile(&raw_path, "hard link target escapes the layer root"))?;
                let Some((&lname, lparent)) = lparts.split_last() else {
                    return Err(hostile(&raw_path, "hard link to the layer root"));
                };
                let lpfd = self.open_beneath(&lparent.join(&b'/'), &raw_path)?;
                self.remove_existing(&pfd, name, &raw_path)?;
                linkat(&lpfd, lname, &pfd, name, AtFlags::empty())
                    .map_err(|e| self.err("link", &raw_path, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let dev = libc::makedev(device_number(&hdr, 329)?, device_number(&hdr, 337)?);
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.remove_existing(&pfd, name, &raw_path)?;
                mknodat(&pfd, name, sflag, mode, dev)
                    .map_err(|e| self.err("mknod", &raw_path, e))?;
                fchownat(&pfd, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| self.err("chown", &raw_path, e))?;
                // mknod applied the umask. The target may be a running
                // container's volume, where the new name can be swapped for
                // a link to a host file before a chmod by name follows it:
                // chmod through an O_PATH fd of the node instead.
                let fd = openat(
                    &pfd,
                    name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.err("open", &raw_path, e))?;
                let ft = crate::fswalk::fstat(fd.as_fd())
                    .map_err(|e| {
                        self.err(
                            "stat",
                            &raw_path,
                            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                        )
                    })?
                    .file_type();
                if ft.is_symlink() {
                    return Err(self.err("chmod", &raw_path, Errno::ELOOP));
                }
                let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                fchmodat(AT_FDCWD, proc.as_str(), mode, FchmodatFlags::FollowSymlink)
                    .map_err(|e| self.err("chmod", &raw_path, e))?;
                utimensat(&pfd, name, &mtime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(|e| self.err("utimes", &raw_path, e))?;
            }
            other => {
                return Err(hostile(
                    &raw_path,
                    format!("unsupported tar entry type {other:?}"),
                ));
            }
        }
        Ok(())
    }

    /// `noOverwriteDirNonDir`: an existing entry must keep its kind.
    fn check_dir_non_dir(
        &self,
        pfd: &OwnedFd,
        name: &[u8],
        want_dir: bool,
        entry: &[u8],
    ) -> Result<()> {
        let st = match nix::sys::stat::fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(self.err("stat", entry, e)),
        };
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let path = String::from_utf8_lossy(entry);
        match (is_dir, want_dir) {
            (true, false) => Err(Error::InvalidArchive(format!(
                "cannot overwrite directory {path:?} with non-directory"
            ))),
            (false, true) => Err(Error::InvalidArchive(format!(
                "cannot overwrite non-directory {path:?} with directory"
            ))),
            _ => Ok(()),
        }
    }

    fn err(&self, op: &'static str, path: &[u8], e: Errno) -> Error {
        io_err(op, self.target.join(bytes_path(path)), e)
    }

    fn open_dir(&self, pfd: &OwnedFd, name: &[u8]) -> nix::Result<OwnedFd> {
        openat(
            pfd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// Opens `rel` (clean components) beneath the root, never leaving it.
    fn open_beneath(&self, rel: &[u8], entry: &[u8]) -> Result<OwnedFd> {
        let path: &[u8] = if rel.is_empty() { b"." } else { rel };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(&self.root, path, how).map_err(|e| match e {
            Errno::EXDEV | Errno::ELOOP => hostile(
                entry,
                "path resolves outside the layer root (through a symlink)",
            ),
            e => self.err("open", rel, e),
        })
    }

    /// The parent dir of an entry, created (0755, like tar) if the layer did not
    /// list it.
    fn parent(&mut self, rel: &[u8], entry: &[u8]) -> Result<OwnedFd> {
        if let Some((p, fd)) = &self.parent_cache
            && p == rel
        {
            return fd.try_clone().map_err(Error::Stream);
        }
        let fd = match self.open_beneath(rel, entry) {
            Ok(fd) => fd,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                self.mkdir_all(rel, entry)?
            }
            Err(e) => return Err(e),
        };
        self.parent_cache = Some((rel.to_vec(), fd.try_clone()?));
        Ok(fd)
    }

    fn mkdir_all(&mut self, rel: &[u8], entry: &[u8]) -> Result<OwnedFd> {
        let mut cur = self.open_beneath(b"", entry)?;
        let mut done: Vec<u8> = Vec::new();
        for c in rel.split(|&b| b == b'/') {
            if !done.is_empty() {
                done.push(b'/');
            }
            done.extend_from_slice(c);
            match mkdirat(&cur, c, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(self.err("mkdir", &done, e)),
            }
            cur = self.open_beneath(&done, entry)?;
        }
        Ok(cur)
    }

    /// Makes room for a new entry: a later entry of the same name replaces an
    /// earlier one, as in tar. Directories are removed only when empty.
    fn remove_existing(&mut self, pfd: &OwnedFd, name: &[u8], entry: &[u8]) -> Result<()> {
        match unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => {
                // The cached parent might be (inside) the dir going away.
                self.parent_cache = None;
                unlinkat(pfd, name, UnlinkatFlags::RemoveDir)
                    .map_err(|e| self.err("rmdir", entry, e))
            }
            Err(e) => Err(self.err("unlink", entry, e)),
        }
    }

    fn set_attrs(
        &self,
        fd: &impl AsFd,
        owner: (Option<Uid>, Option<Gid>),
        mode: Mode,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        mtime: Option<TimeSpec>,
        entry: &[u8],
    ) -> Result<()> {
        let raw = fd.as_fd().as_raw_fd();
        let (u, g) = (
            owner.0.map_or(u32::MAX, |u| u.as_raw()),
            owner.1.map_or(u32::MAX, |g| g.as_raw()),
        );
        // SAFETY: plain syscalls on an fd we hold. chown before chmod: chown clears setuid.
        if unsafe { libc::fchown(raw, u, g) } != 0 {
            return Err(self.err("chown", entry, Errno::last()));
        }
        if unsafe { libc::fchmod(raw, mode.bits()) } != 0 {
            return Err(self.err("chmod", entry, Errno::last()));
        }
        for (k, v) in xattrs {
            set_xattr(fd, k, v).map_err(|e| self.err("setxattr", entry, e))?;
        }
        if let Some(t) = mtime {
            nix::sys::stat::futimens(fd, &t, &t).map_err(|e| self.err("utimes", entry, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.parent_cache = None;
        for (path, secs) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let t = TimeSpec::new(secs, 0);
            let how = OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            // A later entry may have replaced the dir; then its time is not ours to set.
            if let Ok(fd) = openat2(&self.root, path.as_slice(), how) {
                nix::sys::stat::futimens(&fd, &t, &t).map_err(|e| self.err("utimes", &path, e))?;
            }
        }
        Ok(())
    }
}

fn set_xattr(fd: &impl AsFd, key: &[u8], value: &[u8]) -> nix::Result<()> {
    let key = CString::new(key).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid fd, NUL-terminated key, value pointer/len from a slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

fn parse_num(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

fn bytes_path(b: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(b))
}

/// Is the block all zeros? OR-folding fixed chunks vectorises, where a
/// short-circuiting `all` goes byte by byte; a sparse file's holes arrive
/// as zeros from the tar reader, so this bounds what a hole costs.
fn is_zero(b: &[u8]) -> bool {
    b.chunks(4096)
        .all(|c| c.iter().fold(0u8, |acc, &x| acc | x) == 0)
}

/// Copies file data; for sparse entries, all-zero blocks become holes
/// (a seek, no write). Stops with an error once `cancel` is set.
fn copy_data(
    src: &mut impl Read,
    dst: &mut File,
    buf: &mut [u8],
    sparse: bool,
    cancel: Option<&Cancel>,
) -> io::Result<u64> {
    let mut total = 0u64;
    let mut hole = false;
    loop {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = match src.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if sparse && is_zero(&buf[..n]) {
            dst.seek(SeekFrom::Current(n as i64))?;
            hole = true;
        } else {
            dst.write_all(&buf[..n])?;
            hole = false;
        }
        total += n as u64;
    }
    if hole {
        dst.set_len(total)?;
    }
    Ok(total)
}

/// The device major (at 329) or minor (at 337) of a header: a blank field
/// (all NULs or spaces, as GNU tar writes for FIFOs) is 0; anything else
/// must be octal.
fn device_number(hdr: &tar::Header, at: usize) -> std::io::Result<u32> {
    let field = &hdr.as_bytes()[at..at + 8];
    if field.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(0);
    }
    let parsed = if at == 329 {
        hdr.device_major()
    } else {
        hdr.device_minor()
    };
    Ok(parsed?.unwrap_or(0))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
