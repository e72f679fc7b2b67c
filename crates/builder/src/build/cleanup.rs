//! Leftovers of builds that were killed (SIGKILL, a crash): step containers
//! still running, step overlay mounts, scratch dirs and half-written cache
//! entries. Every such name carries the builder process's pid
//! (`step-<pid>-<n>`, `berth-build-<pid>-<n>`, `.<key>.<pid>.tmp`), so
//! anything whose pid is gone is stale; a live build (this process or
//! another) is never touched.

use std::fs;
use std::path::{Path, PathBuf};

use berth_runtime::Runtime;

use crate::error::{IoContext, Result};

/// What a cleanup removed.
#[derive(Debug, Default, PartialEq)]
pub struct Cleaned {
    pub containers: usize,
    pub mounts: usize,
    pub dirs: usize,
}

/// The pid in `<prefix>-<pid>-<seq>`.
fn pid_of(name: &str) -> Option<i32> {
    let mut it = name.rsplitn(3, '-');
    let _seq = it.next()?.parse::<u64>().ok()?;
    it.next()?.parse().ok()
}

fn stale(pid: i32) -> bool {
    pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Mount points at or below `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes space, tab, newline and backslash as octal.
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// Cleans what dead builds left under `<root>/builder`.
pub fn cleanup_stale(root: &Path) -> Result<Cleaned> {
    let base = root.join("builder");
    let mut c = Cleaned::default();
    // Containers first: their rootfs is a step mount.
    let rt_root = base.join("runtime");
    if let Ok(rd) = fs::read_dir(&rt_root) {
        let rt = Runtime::new(&rt_root);
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("berth-build-") && pid_of(&name).is_some_and(stale) {
                // Force: kills whatever still runs in it, then drops its state.
                if rt.delete(&name, true).is_ok() {
                    c.containers += 1;
                }
            }
        }
    }
    let tmp = base.join("tmp");
    if let Ok(rd) = fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !pid_of(&name).is_some_and(stale) {
                continue;
            }
            let dir = e.path();
            for m in mounts_under(&dir) {
                if berth_image::rootfs::unmount(&m).is_ok() {
                    c.mounts += 1;
                }
            }
            fs::remove_dir_all(&dir).ctx("remove", &dir)?;
            c.dirs += 1;
        }
    }
    let cache = base.join("cache");
    if let Ok(rd) = fs::read_dir(&cache) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_suffix(".tmp")
                .and_then(|n| n.rsplit('.').next())
                .and_then(|p| p.parse().ok());
            if pid.is_some_and(stale) {
                let p = e.path();
                fs::remove_file(&p).ctx("remove", &p)?;
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_from_names() {
        assert_eq!(pid_of("step-123-4"), Some(123));
        assert_eq!(pid_of("berth-build-77-0"), Some(77));
        assert_eq!(pid_of("context-9-12"), Some(9));
        assert_eq!(pid_of("step-x-4"), None);
        assert_eq!(pid_of("layer.tar.gz"), None);
        assert!(!stale(std::process::id() as i32));
        assert!(!stale(1));
    }
}
