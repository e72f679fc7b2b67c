//! `docker cp`: stat, read (tar) and write (untar) paths of a container.
//!
//! Every path is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)` from
//! the container's root, so a symlink in the container (`/x -> /`) resolves
//! inside it and never reaches the host. A running container's root is
//! `/proc/<pid>/root`, its full view with every mount (volumes, binds,
//! tmpfs); a stopped one's is its rootfs, with its bind and volume mounts
//! mapped to their host sources by path.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use serde::Serialize;

use super::model::Container;
use crate::Engine;
use crate::error::{EngineError, Result};
use crate::util::rfc3339_nano;

/// `X-Docker-Container-Path-Stat`: Go's `os.FileMode` bits in `mode`.
#[derive(Clone, Debug, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Unix mode → Go's `os.FileMode`.
pub fn go_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    m |= match mode & libc::S_IFMT {
        libc::S_IFDIR => 1 << 31,
        libc::S_IFLNK => 1 << 27,
        libc::S_IFBLK => 1 << 26,
        libc::S_IFCHR => (1 << 26) | (1 << 21),
        libc::S_IFIFO => 1 << 25,
        libc::S_IFSOCK => 1 << 24,
        _ => 0,
    };
    if mode & libc::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if mode & libc::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if mode & libc::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m
}

/// `/a/./b/../c` → `/a/c`, never above `/`.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n.to_str().unwrap_or("")),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    format!("/{}", out.join("/"))
}

/// The entry name Docker gives a copied path: its base name (`.` for a
/// path ending in `/.`, so the CLI copies a directory's contents).
fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let c = clean(path);
    match c.rsplit('/').next() {
        Some("") | None => ".".into(),
        Some(b) => b.to_string(),
    }
}

/// An opened container path: an `O_PATH` fd and how to name it for
/// calls that take paths (`/proc/self/fd/N`).
struct Opened {
    fd: OwnedFd,
    meta: std::fs::Metadata,
}

impl Opened {
    fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

fn not_found(path: &str, c: &Container) -> EngineError {
    EngineError::NotFound(format!(
        "Could not find the file {path} in container {}",
        c.short_name()
    ))
}

impl Engine {
    /// Where `path` of `c` lives on the host: (root, path inside it).
    fn fs_root(&self, c: &Container, path: &str) -> (PathBuf, String) {
        if c.state.running && c.state.pid > 0 {
            return (
                PathBuf::from(format!("/proc/{}/root", c.state.pid)),
                path.to_string(),
            );
        }
        let p = clean(path);
        let mut mounts: Vec<_> = c
            .mount_points
            .iter()
            .filter(|m| (m.typ == "bind" || m.typ == "volume") && !m.source.is_empty())
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.destination.len()));
        for m in mounts {
            let dest = clean(&m.destination);
            if let Some(rest) = p.strip_prefix(dest.as_str())
                && (rest.is_empty() || rest.starts_with('/') || dest == "/")
            {
                let mut inner = format!("/{}", rest.trim_start_matches('/'));
                if path.ends_with("/.") {
                    inner.push_str("/.");
                }
                return (PathBuf::from(&m.source), inner);
            }
        }
        (
            self.paths.container_dir(&c.id).join("rootfs"),
            path.to_string(),
        )
    }

    /// Opens `path` in `c` (the last component not followed unless the
    /// path ends in `/` or `/.`).
    fn open_in(&self, c: &Container, path: &str, follow: bool) -> Result<Opened> {
        if !path.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "path {path:?} is not absolute"
            )));
        }
        let (root, inner) = self.fs_root(c, path);
        let root_fd = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT => not_found(path, c),
            e => EngineError::Internal(format!("open {}: {e}", root.display())),
        })?;
        let follow = follow || inner.ends_with('/') || inner.ends_with("/.");
        let rel = inner.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if !follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(&root_fd, rel, how).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => not_found(path, c),
            e => EngineError::Internal(format!("open {path} in container {}: {e}", c.id)),
        })?;
        let meta = fstat(&fd).map_err(|e| EngineError::Internal(format!("stat {path}: {e}")))?;
        Ok(Opened { fd, meta })
    }

    /// HEAD/GET `archive`: what `path` is.
    pub fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat> {
        let c = self.inspect(key)?;
        let o = self.open_in(&c, path, false)?;
        let mut link_target = String::new();
        if o.meta.file_type().is_symlink() {
            let t = nix::fcntl::readlinkat(&o.fd, "")
                .map_err(|e| EngineError::Internal(format!("readlink {path}: {e}")))?;
            let t = t.to_string_lossy().into_owned();
            link_target = if t.starts_with('/') {
                clean(&t)
            } else {
                let parent = clean(path);
                let parent = parent.rsplit_once('/').map_or("", |x| x.0);
                clean(&format!("{parent}/{t}"))
            };
        }
        Ok(PathStat {
            name: base_name(path),
            size: o.meta.size() as i64,
            mode: go_mode(o.meta.mode()),
            mtime: rfc3339_nano(o.meta.modified().unwrap_or(std::time::UNIX_EPOCH)),
            link_target,
        })
    }

    /// GET `archive`: `path` as a tar stream (a directory with everything
    /// below it, named by its base name).
    pub fn archive_get(&self, key: &str, path: &str, out: &mut dyn Write) -> Result<()> {
        let c = self.inspect(key)?;
        let o = self.open_in(&c, path, false)?;
        let name = base_name(path);
        let failed = |e: std::io::Error| EngineError::Internal(format!("archive {path}: {e}"));
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        let ft = o.meta.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&o.meta, tar::HeaderMode::Complete);
        if ft.is_dir() {
            // Below the opened dir, only through dir fds: a running container
            // can swap any name for a symlink to the host while we walk.
            let dir =
                berth_image::fswalk::reopen(o.fd.as_fd(), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(failed)?;
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, &name, std::io::empty())
                .map_err(failed)?;
            let opts = berth_image::fswalk::TarOptions::default();
            berth_image::fswalk::append_tree(&mut tar, dir.as_fd(), Path::new(&name), &opts)
                .map_err(failed)?;
        } else if ft.is_symlink() {
            let target = nix::fcntl::readlinkat(&o.fd, "")
                .map_err(|e| EngineError::Internal(format!("readlink {path}: {e}")))?;
            h.set_size(0);
            tar.append_link(&mut h, &name, target).map_err(failed)?;
        } else if ft.is_file() {
            let f = std::fs::File::open(o.proc_path()).map_err(failed)?;
            tar.append_data(&mut h, &name, f).map_err(failed)?;
        } else {
            h.set_size(0);
            tar.append_data(&mut h, &name, std::io::empty())
                .map_err(failed)?;
        }
        tar.finish().map_err(failed)
    }

    /// PUT `archive`: extracts `tar` into the directory `path`. Without
    /// `copy_uid_gid` everything belongs to the container's root, as in
    /// Docker.
    pub fn archive_put(
        &self,
        key: &str,
        path: &str,
        tar: &mut dyn Read,
        copy_uid_gid: bool,
        no_overwrite_dir_non_dir: bool,
    ) -> Result<()> {
        let c = self.inspect(key)?;
        let o = self.open_in(&c, path, true)?;
        if !o.meta.is_dir() {
            return Err(EngineError::InvalidArgument(
                "extraction point is not a directory".into(),
            ));
        }
        let opts = berth_image::unpack::UnpackOptions {
            owner: (!copy_uid_gid).then_some((0, 0)),
            whiteouts: false,
            no_overwrite_dir_non_dir,
            ..Default::default()
        };
        berth_image::unpack::unpack_with(tar, &o.proc_path(), opts).map_err(|e| match e {
            berth_image::Error::Hostile { .. } | berth_image::Error::InvalidArchive(_) => {
                EngineError::InvalidArgument(e.to_string())
            }
            berth_image::Error::Stream(_) => {
                EngineError::InvalidArgument(format!("reading the archive: {e}"))
            }
            e => EngineError::Internal(format!("extracting into {path}: {e}")),
        })?;
        Ok(())
    }
}

/// fstat of an `O_PATH` fd (which the kernel allows), never following a
/// symlink the fd stands for.
fn fstat(fd: &OwnedFd) -> std::io::Result<std::fs::Metadata> {
    // std's fstat needs a File; a dup of the fd is cheap.
    std::fs::File::from(fd.try_clone()?).metadata()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_modes() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("/../.."), "/");
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), ".");
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(go_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(
            go_mode(libc::S_IFDIR | 0o1777),
            (1 << 31) | (1 << 20) | 0o777
        );
    }
}
