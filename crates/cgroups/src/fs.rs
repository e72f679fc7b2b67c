//! File and directory operations on a cgroup filesystem, each error naming
//! its path (and value, for writes).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{CgroupError, Result};

/// Writes `value` with a single `write(2)` to an existing file (cgroup files
/// are never created by us; a missing one means a missing controller).
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

pub(crate) fn write_in(dir: &Path, file: &str, value: &str) -> Result<()> {
    write(&dir.join(file), value)
}

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Like [`read`], but a missing file is `None`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A file holding one number; `max` (and a missing file) is `None`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>> {
    let Some(text) = read_opt(path)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.to_string(),
    })
}

/// The value of `key` in a flat keyed file (`key value` per line), 0 when absent.
pub(crate) fn keyed_u64(path: &Path, key: &str) -> Result<u64> {
    let Some(text) = read_opt(path)? else {
        return Ok(0);
    };
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() == Some(key) {
            let v = it.next().unwrap_or_default();
            return v.parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.to_string(),
            });
        }
    }
    Ok(0)
}

/// Every `key value` line of a flat keyed file (`memory.stat`, `cpu.stat`);
/// lines that are not a name and a number are skipped; a missing file is empty.
pub(crate) fn keyed_all(path: &Path) -> Result<std::collections::BTreeMap<String, u64>> {
    let text = read_opt(path)?.unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect())
}

/// v1 `blkio.*_recursive` (`8:0 Read 4096` lines, then `Total n`).
pub(crate) fn blkio_v1(path: &Path) -> Result<Vec<crate::IoStat>> {
    let text = read_opt(path)?.unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = it.next()?.split_once(':')?;
            let op = it.next()?.to_string();
            Some(crate::IoStat {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op,
                value: it.next()?.parse().ok()?,
            })
        })
        .collect())
}

/// v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`):
/// (bytes, operations) per device as read/write entries.
pub(crate) fn io_stat_v2(path: &Path) -> Result<(Vec<crate::IoStat>, Vec<crate::IoStat>)> {
    let text = read_opt(path)?.unwrap_or_default();
    let (mut bytes, mut ops) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ops, "read"),
                "wios" => (&mut ops, "write"),
                _ => continue,
            };
            list.push(crate::IoStat {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok((bytes, ops))
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

pub(crate) fn mkdir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|source| CgroupError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// Child cgroup directories of `dir` (none when `dir` is gone).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Pids in `dir/cgroup.procs` and in every descendant cgroup, sorted, unique.
/// A cgroup that is gone has none.
pub(crate) fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    collect_procs(dir, &mut pids)?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

fn collect_procs(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let path = dir.join("cgroup.procs");
    let Some(text) = read_opt(&path)? else {
        return Ok(());
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        pids.push(line.parse().map_err(|_| CgroupError::Parse {
            path: path.clone(),
            content: line.to_string(),
        })?);
    }
    for sub in subdirs(dir)? {
        collect_procs(&sub, pids)?;
    }
    Ok(())
}

/// SIGKILLs every pid in `dir` and below; pids that already exited are fine.
pub(crate) fn kill_all(dir: &Path) -> Result<()> {
    for pid in procs_recursive(dir)? {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    source: io::Error::from(e),
                });
            }
        }
    }
    Ok(())
}

/// rmdir `dir` and its child cgroups, deepest first. Gone already is success.
fn remove_tree(dir: &Path) -> Result<()> {
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// How long [`remove_all`] keeps killing and retrying a busy cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Removes every directory tree in `dirs`. While one is busy (EBUSY: live
/// processes), calls `evict` to kill them and retries with a growing pause,
/// for about a second in all.
pub(crate) fn remove_all(dirs: &[PathBuf], mut evict: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        let mut busy = None;
        for dir in dirs {
            match remove_tree(dir) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => busy = Some(e),
                Err(e) => return Err(e),
            }
        }
        let Some(err) = busy else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(err);
        }
        evict()?;
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
pub(crate) fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_needs_an_existing_file_and_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write_in(tmp.path(), "memory.max", "100").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("write 100 to "), "{msg}");
        assert!(
            msg.ends_with("memory.max: No such file or directory"),
            "{msg}"
        );
        fs::write(tmp.path().join("memory.max"), "").unwrap();
        write_in(tmp.path(), "memory.max", "100").unwrap();
        assert_eq!(read(&tmp.path().join("memory.max")).unwrap(), "100");
    }

    #[test]
    fn numbers_and_keyed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fs::write(p.join("a"), "max\n").unwrap();
        fs::write(p.join("b"), "42\n").unwrap();
        fs::write(p.join("c"), "x\n").unwrap();
        fs::write(p.join("stat"), "usage_usec 10\nuser_usec 7\n").unwrap();
        assert_eq!(read_u64_opt(&p.join("a")).unwrap(), None);
        assert_eq!(read_u64_opt(&p.join("b")).unwrap(), Some(42));
        assert_eq!(read_u64_opt(&p.join("missing")).unwrap(), None);
        assert!(read_u64_opt(&p.join("c")).is_err());
        assert_eq!(keyed_u64(&p.join("stat"), "user_usec").unwrap(), 7);
        assert_eq!(keyed_u64(&p.join("stat"), "system_usec").unwrap(), 0);
    }

    #[test]
    fn procs_are_collected_from_descendants() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("cgroup.procs"), "5\n3\n").unwrap();
        fs::write(p.join("a/cgroup.procs"), "").unwrap();
        fs::write(p.join("a/b/cgroup.procs"), "9\n3\n").unwrap();
        assert_eq!(procs_recursive(p).unwrap(), [3, 5, 9]);
        assert!(procs_recursive(&p.join("gone")).unwrap().is_empty());
    }

    #[test]
    fn remove_all_removes_children_and_accepts_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fs::create_dir_all(p.join("x/a/b")).unwrap();
        fs::create_dir_all(p.join("x/c")).unwrap();
        remove_all(&[p.join("x"), p.join("never")], || Ok(())).unwrap();
        assert!(!p.join("x").exists());
    }
}
