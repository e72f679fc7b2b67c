//! cgroup v1 and v2 behind one interface.
//!
//! Callers (the runtime, later the engine for stats) never branch on the cgroup
//! version: they build a [`Cgroup`] with [`Cgroup::open`] and use the
//! [`CgroupManager`] trait. The version is detected from the mounts under the
//! cgroup root (`/sys/fs/cgroup` unless a test points elsewhere).
//!
//! Hybrid hosts (v1 controllers plus a cgroup2 mount at `<root>/unified`) are
//! driven as v1; the unified hierarchy is joined as well, and controllers that
//! exist only there (hugetlb on some hosts) are written there.
//!
//! Version detection ([`detect_version`]): a root whose filesystem is cgroup2
//! is v2; a root with cgroup v1 mounts at or below it (per
//! `/proc/self/mountinfo`) is v1; otherwise a root holding `cgroup.controllers`
//! is taken as v2, which lets tests point [`Cgroup::open_at`] at a plain
//! directory laid out like cgroup2. [`Cgroup::open_v1_at`] and
//! [`Cgroup::open_v2_at`] skip detection.
//!
//! `apply` errors: a limit whose controller or file the host lacks (net_cls
//! not mounted, a blkio weight without the BFQ/CFQ scheduler's weight file, a
//! huge page size the host does not have) is refused with
//! [`CgroupError::Unavailable`], naming the setting and what is missing, as
//! runc refuses it. Only settings that are safe to skip, as runc skips them,
//! give [`CgroupError::Unsupported`] *after* every other setting has been
//! written, so a caller may log it and carry on: kernelTCP without its file,
//! and device rules on cgroup v2 (v2 needs an eBPF program, which this crate
//! does not load; only rules that allow everything, the v2 default, pass).

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

mod error;
mod fs;
pub mod path;
pub mod resources;
pub use error::{CgroupError, Result};

/// Which cgroup layout a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller (possibly plus a cgroup2 `unified` mount).
    V1,
    /// The unified hierarchy only.
    V2,
}

/// One mounted hierarchy and where the container's cgroup sits in it.
/// The runtime uses this to mount cgroups inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Host mount point, e.g. `/sys/fs/cgroup/memory` or `/sys/fs/cgroup`.
    pub mount_point: PathBuf,
    /// Mount data for the hierarchy: `"memory"`, `"cpu"`, `"name=systemd"`;
    /// empty for cgroup2.
    pub options: String,
    /// `true` for a cgroup2 hierarchy.
    pub unified: bool,
    /// The container's cgroup directory on the host (`mount_point` + relative path).
    pub dir: PathBuf,
}

/// Freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    Frozen,
}

/// Resource usage figures, the subset both versions can report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub memory_max_usage: Option<u64>,
    pub oom_kills: u64,
    pub cpu_usage_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    /// `memory.stat`, as the kernel names its entries.
    pub memory_stat: std::collections::BTreeMap<String, u64>,
    /// Per-CPU usage (v1 `cpuacct.usage_percpu`; v2 has none).
    pub cpu_percpu_ns: Vec<u64>,
    pub cpu_periods: u64,
    pub cpu_throttled_periods: u64,
    pub cpu_throttled_ns: u64,
    /// Bytes and operations per device (v1 blkio, v2 io.stat).
    pub io_bytes: Vec<IoStat>,
    pub io_ops: Vec<IoStat>,
}

/// One block-device counter: `op` is `read`, `write` (v1 also `sync`,
/// `async`, `total`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IoStat {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// What every cgroup implementation offers.
pub trait CgroupManager {
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup directories (idempotent).
    fn create(&self) -> Result<()>;
    /// Moves `pid` into the cgroup (every hierarchy on v1).
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Writes the OCI resources. Unsupported settings give a clear error, not silence.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    /// Every pid in the cgroup (and its descendants).
    fn pids(&self) -> Result<Vec<i32>>;
    fn freeze(&self, state: FreezerState) -> Result<()>;
    fn stats(&self) -> Result<Stats>;
    /// Removes the cgroup directories; kills stragglers first; succeeds when already gone.
    fn destroy(&self) -> Result<()>;
    /// The hierarchies the cgroup lives in (for mounting inside the container).
    fn hierarchies(&self) -> Vec<Hierarchy>;
}

/// Concrete manager for the host's layout.
#[derive(Debug, Clone)]
pub enum Cgroup {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

pub mod join;
pub mod v1;
pub mod v2;

pub use join::Joiner;

/// Default cgroup root.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

impl Cgroup {
    /// Opens the cgroup named by an OCI `cgroupsPath` for container `id`.
    ///
    /// - absolute path: relative to each hierarchy's root;
    /// - relative path: relative to the calling process's own cgroup;
    /// - empty: `/berth/<id>`;
    /// - systemd style `slice:prefix:name`: mapped to `/<slice>/<prefix>-<name>.scope`.
    pub fn open(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        Self::open_at(Path::new(DEFAULT_ROOT), cgroups_path, id)
    }

    /// Same as [`Cgroup::open`] with another cgroup root (tests).
    pub fn open_at(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        match detect_version(root)? {
            CgroupVersion::V1 => Self::open_v1_at(root, cgroups_path, id),
            CgroupVersion::V2 => Self::open_v2_at(root, cgroups_path, id),
        }
    }

    /// The cgroup in the v1 hierarchies mounted under `root` (and the cgroup2
    /// mount among them on a hybrid host), without detection.
    pub fn open_v1_at(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        Ok(Cgroup::V1(v1::V1Cgroup::new(root, cgroups_path, id)?))
    }

    /// The cgroup in the cgroup2 hierarchy at `root`, without detection.
    pub fn open_v2_at(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        Ok(Cgroup::V2(v2::V2Cgroup::new(root, cgroups_path, id)?))
    }

    fn manager(&self) -> &dyn CgroupManager {
        match self {
            Cgroup::V1(c) => c,
            Cgroup::V2(c) => c,
        }
    }
}

impl CgroupManager for Cgroup {
    fn version(&self) -> CgroupVersion {
        self.manager().version()
    }
    fn create(&self) -> Result<()> {
        self.manager().create()
    }
    fn add_process(&self, pid: i32) -> Result<()> {
        self.manager().add_process(pid)
    }
    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.manager().apply(resources)
    }
    fn pids(&self) -> Result<Vec<i32>> {
        self.manager().pids()
    }
    fn freeze(&self, state: FreezerState) -> Result<()> {
        self.manager().freeze(state)
    }
    fn stats(&self) -> Result<Stats> {
        self.manager().stats()
    }
    fn destroy(&self) -> Result<()> {
        self.manager().destroy()
    }
    fn hierarchies(&self) -> Vec<Hierarchy> {
        self.manager().hierarchies()
    }
}

/// Which cgroup version drives `root` (see the crate docs for the rules).
pub fn detect_version(root: &Path) -> Result<CgroupVersion> {
    let stat = nix::sys::statfs::statfs(root).map_err(|e| CgroupError::Statfs {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    if stat.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        return Ok(CgroupVersion::V2);
    }
    let mountinfo = fs::read(Path::new("/proc/self/mountinfo"))?;
    if path::parse_mountinfo(&mountinfo, root)
        .iter()
        .any(|m| !m.unified)
    {
        return Ok(CgroupVersion::V1);
    }
    if root.join("cgroup.controllers").exists() {
        return Ok(CgroupVersion::V2);
    }
    Err(CgroupError::NoHierarchy(root.to_path_buf()))
}
