//! cgroup v2: one unified hierarchy.
//!
//! Also used for the cgroup2 `unified` mount of a hybrid host, where only the
//! controllers missing from v1 (hugetlb here) are driven through it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use crate::fs::{self, write_in};
use crate::path::{self, CgroupPath};
use crate::resources::{self, Skipped};
use crate::{CgroupError, CgroupManager, CgroupVersion, FreezerState, Hierarchy, Result, Stats};

/// The domain controllers a container cgroup gets, when the parent has them.
pub const CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

/// How long `freeze` waits for `cgroup.events` to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct V2Cgroup {
    /// Mount point of the cgroup2 hierarchy.
    root: PathBuf,
    /// The cgroup relative to `root`, without a leading `/`.
    rel: PathBuf,
    /// Controllers `create` enables on the way down from `root`.
    controllers: Vec<String>,
}

impl V2Cgroup {
    /// The cgroup for `cgroups_path` in the cgroup2 hierarchy mounted at
    /// `root`. Relative paths start at this process's own cgroup, read from
    /// `/proc/self/cgroup` (and `/proc/self/mountinfo` for a mounted sub-tree).
    pub fn new(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        let target = path::resolve(cgroups_path, id)?;
        let own = match &target {
            CgroupPath::Absolute(_) => PathBuf::from("/"),
            CgroupPath::Relative(_) => {
                let procs = path::parse_proc_cgroup(&fs::read(Path::new("/proc/self/cgroup"))?);
                let mountinfo = fs::read(Path::new("/proc/self/mountinfo"))?;
                let mount = path::parse_mountinfo(&mountinfo, root)
                    .into_iter()
                    .find(|m| m.unified && m.mount_point == root)
                    .unwrap_or(path::CgroupMount {
                        mount_point: root.to_path_buf(),
                        root: PathBuf::from("/"),
                        unified: true,
                        controllers: Vec::new(),
                    });
                path::own_cgroup(&procs, &mount)
            }
        };
        Ok(Self::with_own_cgroup(root, &own, &target))
    }

    /// The cgroup for an already resolved path, given this process's cgroup
    /// in the hierarchy. Enables every controller in [`CONTROLLERS`].
    pub fn with_own_cgroup(root: &Path, own: &Path, target: &CgroupPath) -> Self {
        V2Cgroup {
            root: root.to_path_buf(),
            rel: target.within(own),
            controllers: CONTROLLERS.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Limits the controllers `create` enables (a hybrid host's unified
    /// mount only needs the ones v1 lacks).
    pub fn with_controllers(mut self, controllers: &[&str]) -> Self {
        self.controllers = controllers.iter().map(|c| c.to_string()).collect();
        self
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.rel)
    }

    /// Controllers available in `dir` (its `cgroup.controllers`).
    fn available(dir: &Path) -> Result<Vec<String>> {
        Ok(fs::read_opt(&dir.join("cgroup.controllers"))?
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    /// Enables our controllers in `dir`'s `cgroup.subtree_control`, all in
    /// one write, else one by one. Failures are not errors here: a controller
    /// that stays off shows up when its files are written.
    fn enable_controllers(&self, dir: &Path) -> Result<()> {
        let available = Self::available(dir)?;
        let enabled = fs::read_opt(&dir.join("cgroup.subtree_control"))?.unwrap_or_default();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let wanted: Vec<String> = self
            .controllers
            .iter()
            .filter(|c| available.contains(c) && !enabled.contains(&c.as_str()))
            .map(|c| format!("+{c}"))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if write_in(dir, "cgroup.subtree_control", &wanted.join(" ")).is_err() {
            for c in &wanted {
                let _ = write_in(dir, "cgroup.subtree_control", c);
            }
        }
        Ok(())
    }

    /// The cgroup's directory; refused, naming `what` the caller wanted
    /// to set, unless `controller` is on for this cgroup.
    fn require(&self, controller: &str, what: &str) -> Result<PathBuf> {
        let dir = self.dir();
        if Self::available(&dir)?.iter().any(|c| c == controller) {
            Ok(dir)
        } else {
            Err(CgroupError::unavailable(
                what,
                format!(
                    "the {controller} controller is not enabled for {}",
                    dir.display()
                ),
            ))
        }
    }

    fn apply_memory(&self, mem: &LinuxMemory) -> Result<()> {
        let swap = resources::swap_to_v2(mem.swap(), mem.limit())?;
        if mem.limit().is_none() && mem.reservation().is_none() && swap.is_none() {
            return self.memory_v1_only(mem);
        }
        let dir = self.require("memory", "memory limits")?;
        if let Some(swap) = swap {
            if fs::exists(&dir, "memory.swap.max") {
                write_in(&dir, "memory.swap.max", &swap)?;
            } else if swap != "max" {
                return Err(CgroupError::unavailable(
                    "memory swap limit",
                    format!(
                        "no memory.swap.max in {} (swap accounting is off)",
                        dir.display()
                    ),
                ));
            }
        }
        if let Some(limit) = mem.limit() {
            write_in(&dir, "memory.max", &resources::v2_limit(limit))?;
        }
        if let Some(low) = mem.reservation() {
            write_in(&dir, "memory.low", &resources::v2_limit(low))?;
        }
        self.memory_v1_only(mem)
    }

    /// Memory settings that have no v2 file. The kernel memory limit is
    /// deprecated everywhere and ignored.
    fn memory_v1_only(&self, mem: &LinuxMemory) -> Result<()> {
        let mut unsupported = Vec::new();
        if mem.swappiness().is_some() {
            unsupported.push("memory.swappiness");
        }
        if mem.disable_oom_killer() == Some(true) {
            unsupported.push("memory.disableOOMKiller");
        }
        if mem.kernel_tcp().is_some() {
            unsupported.push("memory.kernelTCP");
        }
        if unsupported.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::unsupported(format!(
                "{} on cgroup v2",
                unsupported.join(", ")
            )))
        }
    }

    fn apply_cpu(&self, cpu: &LinuxCpu) -> Result<()> {
        let wants_cpu = cpu.shares().is_some_and(|s| s > 0)
            || cpu.quota().is_some_and(|q| q != 0)
            || cpu.period().is_some_and(|p| p != 0)
            || cpu.burst().is_some()
            || cpu.idle().is_some();
        if wants_cpu {
            let dir = self.require("cpu", "cpu limits")?;
            if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                let weight = resources::shares_to_weight(shares);
                write_in(&dir, "cpu.weight", &weight.to_string())?;
            }
            let quota = cpu.quota().unwrap_or(0);
            let period = cpu.period().unwrap_or(0);
            if quota != 0 || period != 0 {
                let mut max = if quota > 0 {
                    quota.to_string()
                } else {
                    "max".to_string()
                };
                if period != 0 {
                    max.push_str(&format!(" {period}"));
                }
                write_in(&dir, "cpu.max", &max)?;
            }
            // Newer files (5.14, 5.15): refused on kernels without them.
            for (file, value, what) in [
                (
                    "cpu.max.burst",
                    cpu.burst().map(|b| b.to_string()),
                    "cpu burst",
                ),
                ("cpu.idle", cpu.idle().map(|i| i.to_string()), "cpu idle"),
            ] {
                let Some(value) = value else { continue };
                if !fs::exists(&dir, file) {
                    return Err(CgroupError::unavailable(
                        what,
                        format!("no {file} in {}", dir.display()),
                    ));
                }
                write_in(&dir, file, &value)?;
            }
        }
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let dir = self.require("cpuset", "cpuset")?;
            if let Some(cpus) = cpus {
                write_in(&dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = mems {
                write_in(&dir, "cpuset.mems", mems)?;
            }
        }
        if cpu.realtime_runtime().is_some_and(|r| r != 0)
            || cpu.realtime_period().is_some_and(|p| p != 0)
        {
            return Err(CgroupError::unsupported("cpu.realtime* on cgroup v2"));
        }
        Ok(())
    }

    fn apply_io(&self, bio: &LinuxBlockIo) -> Result<()> {
        let lines = resources::io_max_lines(bio);
        let devices = bio.weight_device().as_deref().unwrap_or_default();
        if resources::set_weight(bio.weight()).is_none() && devices.is_empty() && lines.is_empty() {
            return self.io_v1_only(bio);
        }
        let dir = self.require("io", "blkio limits")?;
        // BFQ takes the v1 weight range as is; io.weight (iocost) is 1..10000.
        let bfq = fs::exists(&dir, "io.bfq.weight");
        let (file, convert): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            ("io.weight", resources::blkio_weight_to_io_weight)
        };
        if let Some(w) = resources::set_weight(bio.weight()) {
            write_in(&dir, file, &format!("default {}", convert(w)))?;
        }
        for dev in devices {
            if let Some(w) = resources::set_weight(dev.weight()) {
                let line = format!("{}:{} {}", dev.major(), dev.minor(), convert(w));
                write_in(&dir, file, &line)?;
            }
        }
        for line in &lines {
            write_in(&dir, "io.max", line)?;
        }
        self.io_v1_only(bio)
    }

    fn io_v1_only(&self, bio: &LinuxBlockIo) -> Result<()> {
        let leaf = resources::set_weight(bio.leaf_weight()).is_some()
            || bio
                .weight_device()
                .iter()
                .flatten()
                .any(|d| resources::set_weight(d.leaf_weight()).is_some());
        if leaf {
            Err(CgroupError::unsupported("blockIO leafWeight on cgroup v2"))
        } else {
            Ok(())
        }
    }

    /// Writes `hugetlb.<size>.max` (and `.rsvd.max` where the kernel has it).
    pub(crate) fn apply_hugetlb(&self, limits: &[LinuxHugepageLimit]) -> Result<()> {
        if limits.is_empty() {
            return Ok(());
        }
        let dir = self.require("hugetlb", "hugepage limits")?;
        for limit in limits {
            let size = resources::hugepage_size(limit)?;
            let max = format!("hugetlb.{size}.max");
            if !fs::exists(&dir, &max) {
                return Err(resources::no_page_size(size, &dir, &max));
            }
            let value = resources::v2_limit(limit.limit());
            write_in(&dir, &max, &value)?;
            let rsvd = format!("hugetlb.{size}.rsvd.max");
            if fs::exists(&dir, &rsvd) {
                write_in(&dir, &rsvd, &value)?;
            }
        }
        Ok(())
    }

    fn apply_unified(&self, unified: &std::collections::HashMap<String, String>) -> Result<()> {
        let dir = self.dir();
        let mut keys: Vec<_> = unified.keys().collect();
        keys.sort();
        for key in keys {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                return Err(CgroupError::invalid(
                    "unified",
                    format!("{key:?} is not a cgroup file name"),
                ));
            }
            write_in(&dir, key, &unified[key])?;
        }
        Ok(())
    }

    fn frozen(&self) -> Result<bool> {
        Ok(fs::keyed_u64(&self.dir().join("cgroup.events"), "frozen")? == 1)
    }
}

impl CgroupManager for V2Cgroup {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self) -> Result<()> {
        let mut dir = self.root.clone();
        for component in self.rel.components() {
            self.enable_controllers(&dir)?;
            dir.push(component);
            fs::mkdir_all(&dir)?;
        }
        fs::mkdir_all(&dir)
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        write_in(&self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        let mut skipped = Skipped::default();
        if let Some(mem) = r.memory() {
            skipped.step(self.apply_memory(mem))?;
        }
        if let Some(cpu) = r.cpu() {
            skipped.step(self.apply_cpu(cpu))?;
        }
        if let Some(pids) = r.pids() {
            let limited = self
                .require("pids", "pids limit")
                .and_then(|dir| write_in(&dir, "pids.max", &resources::pids_limit(pids.limit())));
            skipped.step(limited)?;
        }
        if let Some(bio) = r.block_io() {
            skipped.step(self.apply_io(bio))?;
        }
        if let Some(limits) = r.hugepage_limits() {
            skipped.step(self.apply_hugetlb(limits))?;
        }
        if let Some(devices) = r.devices()
            && !devices.iter().all(resources::is_allow_all)
        {
            skipped.step(Err(CgroupError::unsupported(
                "device rules on cgroup v2 (needs an eBPF program)",
            )))?;
        }
        if let Some(net) = r.network()
            && (net.class_id().is_some()
                || net.priorities().as_ref().is_some_and(|p| !p.is_empty()))
        {
            skipped.step(Err(CgroupError::unsupported(
                "network classID/priorities on cgroup v2",
            )))?;
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let limited = self.require("rdma", "rdma limits").and_then(|dir| {
                resources::rdma_lines(rdma)
                    .iter()
                    .try_for_each(|line| write_in(&dir, "rdma.max", line))
            });
            skipped.step(limited)?;
        }
        if let Some(unified) = r.unified() {
            self.apply_unified(unified)?;
        }
        skipped.finish()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::procs_recursive(&self.dir())
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        let dir = self.dir();
        if !fs::exists(&dir, "cgroup.freeze") {
            return Err(CgroupError::unsupported(format!(
                "freezer (no cgroup.freeze in {})",
                dir.display()
            )));
        }
        let want = state == FreezerState::Frozen;
        write_in(&dir, "cgroup.freeze", if want { "1" } else { "0" })?;
        if fs::wait_until(FREEZE_TIMEOUT, || Ok(self.frozen()? == want))? {
            Ok(())
        } else {
            Err(CgroupError::Timeout {
                path: dir.join("cgroup.events"),
                what: format!("waiting for frozen {}", u8::from(want)),
            })
        }
    }

    fn stats(&self) -> Result<Stats> {
        let dir = self.dir();
        let cpu_stat = dir.join("cpu.stat");
        let cpu = fs::keyed_all(&cpu_stat)?;
        let (io_bytes, io_ops) = fs::io_stat_v2(&dir.join("io.stat"))?;
        let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
        Ok(Stats {
            memory_usage: fs::read_u64_opt(&dir.join("memory.current"))?.unwrap_or(0),
            memory_limit: fs::read_u64_opt(&dir.join("memory.max"))?,
            memory_max_usage: fs::read_u64_opt(&dir.join("memory.peak"))?,
            oom_kills: fs::keyed_u64(&dir.join("memory.events"), "oom_kill")?,
            cpu_usage_ns: fs::keyed_u64(&cpu_stat, "usage_usec")? * 1000,
            cpu_user_ns: fs::keyed_u64(&cpu_stat, "user_usec")? * 1000,
            cpu_system_ns: fs::keyed_u64(&cpu_stat, "system_usec")? * 1000,
            pids_current: fs::read_u64_opt(&dir.join("pids.current"))?.unwrap_or(0),
            pids_limit: fs::read_u64_opt(&dir.join("pids.max"))?,
            memory_stat: fs::keyed_all(&dir.join("memory.stat"))?,
            cpu_percpu_ns: Vec::new(),
            cpu_periods: get("nr_periods"),
            cpu_throttled_periods: get("nr_throttled"),
            cpu_throttled_ns: get("throttled_usec") * 1000,
            io_bytes,
            io_ops,
        })
    }

    fn destroy(&self) -> Result<()> {
        let dir = self.dir();
        if self.rel.as_os_str().is_empty() {
            return Err(CgroupError::InvalidPath {
                path: dir.display().to_string(),
                reason: "refusing to remove a hierarchy root".into(),
            });
        }
        fs::remove_all(std::slice::from_ref(&dir), || {
            if fs::exists(&dir, "cgroup.kill") {
                match write_in(&dir, "cgroup.kill", "1") {
                    Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                    _ => return Ok(()),
                }
            }
            fs::kill_all(&dir)
        })
    }

    fn hierarchies(&self) -> Vec<Hierarchy> {
        vec![Hierarchy {
            mount_point: self.root.clone(),
            options: String::new(),
            unified: true,
            dir: self.dir(),
        }]
    }
}
