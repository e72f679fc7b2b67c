//! Joining a cgroup without the global cgroup lock.
//!
//! Writing a pid to `cgroup.procs` moves a whole thread group, which takes
//! `cgroup_threadgroup_rwsem` for writing; after a quiet spell that waits for
//! an RCU grace period (`rcu_sync_enter`, 10–15 ms on the test VM) — paid by
//! every container create and exec. Two ways in skip that lock: on cgroup v1
//! a single-threaded process writes `0` (itself) to each hierarchy's `tasks`
//! file, and on cgroup2 a process is cloned straight into the cgroup
//! (`CLONE_INTO_CGROUP`). A [`Joiner`] holds the descriptors for both,
//! opened before the clone so the child inherits them.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::{Cgroup, CgroupError, Result};

pub struct Joiner {
    /// v1 hierarchies' `tasks` files, opened for writing.
    tasks: Vec<(PathBuf, File)>,
    /// The cgroup2 directory (a v2 host's cgroup, or a hybrid host's
    /// `unified` one), for `CLONE_INTO_CGROUP`.
    v2_dir: Option<File>,
}

impl Joiner {
    /// Opens the join descriptors of `cg`, whose directories must exist.
    pub fn open(cg: &Cgroup) -> Result<Joiner> {
        let (v1_dirs, v2) = match cg {
            Cgroup::V1(c) => (c.dirs(), c.unified_dir()),
            Cgroup::V2(c) => (Vec::new(), Some(c.dir())),
        };
        let mut tasks = Vec::new();
        for d in v1_dirs {
            let p = d.join("tasks");
            let f = File::options()
                .write(true)
                .open(&p)
                .map_err(|source| CgroupError::Write {
                    path: p.clone(),
                    value: "0".into(),
                    source,
                })?;
            tasks.push((p, f));
        }
        let v2_dir = match v2 {
            Some(d) => Some(open_dir(&d)?),
            None => None,
        };
        Ok(Joiner { tasks, v2_dir })
    }

    /// The cgroup2 directory to pass to `clone3` with `CLONE_INTO_CGROUP`.
    pub fn clone_into(&self) -> Option<RawFd> {
        self.v2_dir.as_ref().map(|f| f.as_raw_fd())
    }

    /// Called by the (single-threaded) process that is to join: moves it
    /// into every v1 hierarchy. The cgroup2 part is the clone's.
    pub fn join_self(&self) -> Result<()> {
        for (p, f) in &self.tasks {
            // SAFETY: a one-byte write from a live buffer to our descriptor.
            let n = unsafe { libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(CgroupError::Write {
                    path: p.clone(),
                    value: "0".into(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(())
    }
}

fn open_dir(d: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(d)
        .map_err(|source| CgroupError::Read {
            path: d.to_path_buf(),
            source,
        })
}
