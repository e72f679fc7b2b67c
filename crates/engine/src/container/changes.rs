//! What a container changed: `docker diff` from the overlay upper dir
//! (whiteouts are deletions), and `docker export` of the merged rootfs.
//!
//! Paths the engine itself puts into the rootfs — the mount points of
//! /etc/hosts & co., /proc, /sys, /dev, and the container's binds and tmpfs
//! mounts — are not the container's changes; Docker keeps them in an "init"
//! layer and out of `diff` and `commit`. [`Engine::excluded_paths`] lists
//! them, so mounts added later (volumes) are honoured by adding them there.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::Container;
use crate::Engine;
use crate::error::{EngineError, Result, io_err};

/// Docker's change kinds.
pub const MODIFIED: u8 = 0;
pub const ADDED: u8 = 1;
pub const DELETED: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Always outside a container's changes (Docker's init layer).
const INIT_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
];

/// Is `path` one of `skip` or below one?
pub(crate) fn excluded(path: &str, skip: &BTreeSet<String>) -> bool {
    skip.iter().any(|s| {
        path == s
            || path
                .strip_prefix(s.as_str())
                .is_some_and(|r| r.starts_with('/'))
    })
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The changes recorded in `upper` against the image layers `lowers`.
/// A directory that existed below is reported as modified when something
/// under it changed or its own owner or mode did.
pub fn changes(upper: &Path, lowers: &[PathBuf], skip: &BTreeSet<String>) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, "", lowers, skip, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    lowers: &[PathBuf],
    skip: &BTreeSet<String>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_err("read", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let p = format!("{rel}/{}", name.to_string_lossy());
        if excluded(&p, skip) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io_err("stat", &path, e))?;
        if is_whiteout(&meta) {
            out.push(Change {
                path: p,
                kind: DELETED,
            });
            continue;
        }
        let below = lowers
            .iter()
            .rev()
            .find_map(|l| std::fs::symlink_metadata(l.join(p.trim_start_matches('/'))).ok())
            .filter(|m| !is_whiteout(m));
        if !meta.is_dir() {
            let kind = if below.is_some() { MODIFIED } else { ADDED };
            out.push(Change { path: p, kind });
            continue;
        }
        let at = out.len();
        walk(&path, &p, lowers, skip, out)?;
        let kind = match &below {
            None => Some(ADDED),
            Some(b)
                if out.len() > at
                    || b.mode() != meta.mode()
                    || b.uid() != meta.uid()
                    || b.gid() != meta.gid() =>
            {
                Some(MODIFIED)
            }
            Some(_) => None,
        };
        if let Some(kind) = kind {
            out.insert(at, Change { path: p, kind });
        }
    }
    Ok(())
}

impl Engine {
    /// Paths of `c`'s rootfs that are mounts, not its changes.
    pub(crate) fn excluded_paths(&self, c: &Container) -> BTreeSet<String> {
        let mut skip: BTreeSet<String> = INIT_PATHS.iter().map(|s| s.to_string()).collect();
        for m in &c.mount_points {
            skip.insert(m.destination.trim_end_matches('/').to_string());
        }
        // Older records (and `--tmpfs`) name mounts only in the HostConfig.
        for b in c.host_config.binds.iter().flatten() {
            if let Some(dst) = b.split(':').nth(1) {
                skip.insert(dst.trim_end_matches('/').to_string());
            }
        }
        for dst in c.host_config.tmpfs.iter().flatten().map(|(d, _)| d) {
            skip.insert(dst.trim_end_matches('/').to_string());
        }
        skip
    }

    /// The image layers under `c`'s rootfs, bottom first — from the
    /// container's lease, which holds them even after `rmi --force`.
    pub(crate) fn lower_dirs(&self, c: &Container) -> Result<Vec<PathBuf>> {
        let dir = self.paths.container_dir(&c.id);
        let canon = dir.canonicalize().map_err(|e| io_err("resolve", &dir, e))?;
        let lease = self
            .images
            .leases
            .get(&berth_image::lease::path_lease_id(&canon))?
            .ok_or_else(|| {
                EngineError::Internal(format!("container {} holds no image lease", c.id))
            })?;
        Ok(lease
            .chain_ids
            .iter()
            .map(|ch| self.images.layers.diff_dir(ch))
            .collect())
    }

    /// `docker diff`.
    pub fn changes(&self, key: &str) -> Result<Vec<Change>> {
        let c = self.inspect(key)?;
        let upper = self.paths.container_dir(&c.id).join("upper");
        changes(&upper, &self.lower_dirs(&c)?, &self.excluded_paths(&c))
    }

    /// `docker export`: the container's filesystem as one tar stream.
    pub fn export(&self, key: &str, out: &mut dyn Write) -> Result<()> {
        let c = self.inspect(key)?;
        let rootfs = self.paths.container_dir(&c.id).join("rootfs");
        let mut tar = tar::Builder::new(out);
        let failed = |e: std::io::Error| EngineError::Internal(format!("export {}: {e}", c.id));
        // Through dir fds and never following a symlink: the container may
        // be running and swapping names for links to the host.
        let dir = nix::fcntl::open(
            &rootfs,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io_err("open", &rootfs, std::io::Error::from_raw_os_error(e as i32)))?;
        let opts = berth_image::fswalk::TarOptions::default();
        berth_image::fswalk::append_tree(&mut tar, dir.as_fd(), Path::new(""), &opts)
            .map_err(failed)?;
        tar.finish().map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }

    #[test]
    fn kinds_from_an_upper_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
        touch(&lower.join("etc/passwd"));
        touch(&lower.join("etc/group"));
        touch(&lower.join("bin/sh"));
        std::fs::create_dir_all(lower.join("tmp")).unwrap();
        std::fs::create_dir_all(lower.join("var")).unwrap();
        // Changed, added, a new dir with a file, and engine mount points.
        touch(&upper.join("etc/passwd"));
        touch(&upper.join("etc/hostname"));
        touch(&upper.join("tmp/new/file"));
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::create_dir_all(upper.join("data")).unwrap();
        touch(&upper.join("data/x"));
        // A dir copied up without changes below it is not reported.
        std::fs::create_dir_all(upper.join("var")).unwrap();
        // A whiteout (needs root to mknod; skip that part otherwise).
        std::fs::create_dir_all(upper.join("bin")).unwrap();
        let wh = std::ffi::CString::new(upper.join("bin/sh").to_str().unwrap()).unwrap();
        // SAFETY: valid path; a 0:0 character device is overlay's whiteout.
        let whiteout = unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let skip: BTreeSet<String> = INIT_PATHS
            .iter()
            .map(|s| s.to_string())
            .chain(["/data".to_string()])
            .collect();
        let got = changes(&upper, std::slice::from_ref(&lower), &skip).unwrap();
        let got: Vec<String> = got
            .iter()
            .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
            .collect();
        let mut want = vec![];
        if whiteout {
            want.extend(["C /bin", "D /bin/sh"]);
        }
        want.extend([
            "C /etc",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/new",
            "A /tmp/new/file",
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn exclusion_is_by_path_component() {
        let skip: BTreeSet<String> = ["/data".to_string()].into();
        assert!(excluded("/data", &skip));
        assert!(excluded("/data/x", &skip));
        assert!(!excluded("/database", &skip));
    }
}
