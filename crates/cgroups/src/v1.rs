//! cgroup v1: one hierarchy per controller (or per group of controllers).
//!
//! The cgroup is made in every v1 hierarchy under the root and, on a hybrid
//! host, in the cgroup2 `unified` mount too; controllers v1 lacks (hugetlb on
//! some hosts) are driven there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use crate::fs::{self, write_in};
use crate::path::{self, CgroupMount};
use crate::resources::{self, Skipped};
use crate::v2::V2Cgroup;
use crate::{CgroupError, CgroupManager, CgroupVersion, FreezerState, Hierarchy, Result, Stats};

/// How long `freeze` waits for `freezer.state` to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Memory limits at or above this read back as "no limit".
const UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone)]
struct Subsystem {
    mount: CgroupMount,
    /// The container's cgroup directory in this hierarchy.
    dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct V1Cgroup {
    subsystems: Vec<Subsystem>,
    /// The cgroup in the hybrid host's cgroup2 mount, if there is one.
    unified: Option<V2Cgroup>,
}

impl V1Cgroup {
    /// The cgroup for `cgroups_path` in the hierarchies mounted under `root`,
    /// read from this process's `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn new(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Self> {
        let mountinfo = fs::read(Path::new("/proc/self/mountinfo"))?;
        let own = fs::read(Path::new("/proc/self/cgroup"))?;
        Self::from_proc(root, &mountinfo, &own, cgroups_path, id)
    }

    /// Same as [`V1Cgroup::new`] with the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup` given (tests lay out hierarchies in a temp dir).
    pub fn from_proc(
        root: &Path,
        mountinfo: &str,
        proc_cgroup: &str,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Self> {
        let target = path::resolve(cgroups_path, id)?;
        let procs = path::parse_proc_cgroup(proc_cgroup);
        let mut subsystems: Vec<Subsystem> = Vec::new();
        let mut unified_mount = None;
        for mount in path::parse_mountinfo(mountinfo, root) {
            if mount.unified {
                unified_mount.get_or_insert(mount);
                continue;
            }
            // The same hierarchy mounted twice is one hierarchy.
            if subsystems
                .iter()
                .any(|s| s.mount.controllers == mount.controllers)
            {
                continue;
            }
            let own = path::own_cgroup(&procs, &mount);
            let dir = mount.mount_point.join(target.within(&own));
            subsystems.push(Subsystem { mount, dir });
        }
        if subsystems.is_empty() {
            return Err(CgroupError::NoHierarchy(root.to_path_buf()));
        }
        let v1_hugetlb = subsystems.iter().any(|s| s.has("hugetlb"));
        let unified = unified_mount.map(|m| {
            let own = path::own_cgroup(&procs, &m);
            let wanted: &[&str] = if v1_hugetlb { &[] } else { &["hugetlb"] };
            V2Cgroup::with_own_cgroup(&m.mount_point, &own, &target).with_controllers(wanted)
        });
        Ok(V1Cgroup {
            subsystems,
            unified,
        })
    }

    /// The container's directory in each v1 hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.subsystems.iter().map(|s| s.dir.clone()).collect()
    }

    /// Its directory in a hybrid host's cgroup2 mount, if there is one.
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.unified.as_ref().map(V2Cgroup::dir)
    }

    /// The cgroup directory in the hierarchy holding `controller`.
    fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.subsystems
            .iter()
            .find(|s| s.has(controller))
            .map(|s| s.dir.as_path())
    }

    /// The directory of `controller`'s hierarchy; refused, naming `what`
    /// the caller wanted to set, when the controller is not mounted.
    fn require(&self, controller: &str, what: &str) -> Result<&Path> {
        self.dir_of(controller).ok_or_else(|| {
            CgroupError::unavailable(what, format!("the {controller} controller is not mounted"))
        })
    }

    /// A new cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and
    /// adding a task to it fails (ENOSPC): fill each empty level from its parent.
    fn fill_cpuset(sub: &Subsystem) -> Result<()> {
        let Ok(rel) = sub.dir.strip_prefix(&sub.mount.mount_point) else {
            return Ok(());
        };
        let mut parent = sub.mount.mount_point.clone();
        for component in rel.components() {
            let dir = parent.join(component);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(&dir.join(file))?.trim().is_empty() {
                    let inherited = fs::read(&parent.join(file))?;
                    write_in(&dir, file, inherited.trim())?;
                }
            }
            parent = dir;
        }
        Ok(())
    }

    fn apply_memory(&self, mem: &LinuxMemory) -> Result<()> {
        let swap = mem.swap().filter(|s| *s != 0);
        let any = mem.limit().is_some()
            || mem.reservation().is_some()
            || swap.is_some()
            || mem.kernel_tcp().is_some()
            || mem.swappiness().is_some()
            || mem.disable_oom_killer().is_some()
            || mem.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let dir = self.require("memory", "memory limits")?;
        let memsw = "memory.memsw.limit_in_bytes";
        let mut swap = swap.map(resources::v1_limit);
        if swap.is_some() && !fs::exists(dir, memsw) {
            if swap.as_deref() != Some("-1") {
                return Err(CgroupError::unavailable(
                    "memory swap limit",
                    format!("no {memsw} in {} (swap accounting is off)", dir.display()),
                ));
            }
            swap = None;
        }
        let limit = mem.limit().map(resources::v1_limit);
        match (limit, swap) {
            // memory <= memory+swap must hold after each write: raising both
            // needs memsw first, lowering both needs the limit first.
            (Some(limit), Some(swap)) => match write_in(dir, "memory.limit_in_bytes", &limit) {
                Ok(()) => write_in(dir, memsw, &swap)?,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    write_in(dir, memsw, &swap)?;
                    write_in(dir, "memory.limit_in_bytes", &limit)?;
                }
                Err(e) => return Err(e),
            },
            (Some(limit), None) => write_in(dir, "memory.limit_in_bytes", &limit)?,
            (None, Some(swap)) => write_in(dir, memsw, &swap)?,
            (None, None) => {}
        }
        if let Some(r) = mem.reservation() {
            write_in(dir, "memory.soft_limit_in_bytes", &resources::v1_limit(r))?;
        }
        if let Some(tcp) = mem.kernel_tcp() {
            let file = "memory.kmem.tcp.limit_in_bytes";
            if !fs::exists(dir, file) {
                return Err(CgroupError::unsupported(format!("kernelTCP (no {file})")));
            }
            write_in(dir, file, &resources::v1_limit(tcp))?;
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(CgroupError::invalid(
                    "memory.swappiness",
                    format!("{s} is above 100"),
                ));
            }
            write_in(dir, "memory.swappiness", &s.to_string())?;
        }
        if let Some(disable) = mem.disable_oom_killer() {
            write_in(dir, "memory.oom_control", if disable { "1" } else { "0" })?;
        }
        if let Some(h) = mem.use_hierarchy() {
            write_in(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
        }
        Ok(())
    }

    fn apply_cpu(&self, cpu: &LinuxCpu) -> Result<()> {
        let shares = cpu.shares().filter(|s| *s > 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        let rt_period = cpu.realtime_period().filter(|p| *p != 0);
        let rt_runtime = cpu.realtime_runtime().filter(|r| *r != 0);
        let wants_cpu = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || rt_period.is_some()
            || rt_runtime.is_some()
            || cpu.burst().is_some()
            || cpu.idle().is_some();
        if wants_cpu {
            let dir = self.require("cpu", "cpu limits")?;
            if let Some(shares) = shares {
                write_in(dir, "cpu.shares", &shares.to_string())?;
            }
            // A shorter period can be refused (EINVAL) while the old quota
            // stands; then set the quota first and the period again.
            let mut period_pending = None;
            if let Some(p) = period {
                match write_in(dir, "cpu.cfs_period_us", &p.to_string()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                        period_pending = Some(p);
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(q) = quota {
                write_in(dir, "cpu.cfs_quota_us", &resources::v1_limit(q))?;
            }
            if let Some(p) = period_pending {
                write_in(dir, "cpu.cfs_period_us", &p.to_string())?;
            }
            if let Some(burst) = cpu.burst() {
                self.optional_file(dir, "cpu.cfs_burst_us", &burst.to_string(), "cpu burst")?;
            }
            if let Some(p) = rt_period {
                write_in(dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(r) = rt_runtime {
                write_in(dir, "cpu.rt_runtime_us", &r.to_string())?;
            }
            if let Some(idle) = cpu.idle() {
                self.optional_file(dir, "cpu.idle", &idle.to_string(), "cpu idle")?;
            }
        }
        let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let dir = self.require("cpuset", "cpuset")?;
            if let Some(cpus) = cpus {
                write_in(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = mems {
                write_in(dir, "cpuset.mems", mems)?;
            }
        }
        Ok(())
    }

    /// Writes a file only some kernels or schedulers have; refused, naming
    /// `what` and the file, when it is missing.
    fn optional_file(&self, dir: &Path, file: &str, value: &str, what: &str) -> Result<()> {
        if !fs::exists(dir, file) {
            return Err(CgroupError::unavailable(
                what,
                format!("no {file} in {}", dir.display()),
            ));
        }
        write_in(dir, file, value)
    }

    fn apply_blkio(&self, bio: &LinuxBlockIo) -> Result<()> {
        let devices = bio.weight_device().as_deref().unwrap_or_default();
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                bio.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                bio.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                bio.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                bio.throttle_write_iops_device(),
            ),
        ];
        let any_throttle = throttles
            .iter()
            .any(|(_, l)| l.as_ref().is_some_and(|l| !l.is_empty()));
        if resources::set_weight(bio.weight()).is_none()
            && resources::set_weight(bio.leaf_weight()).is_none()
            && devices.is_empty()
            && !any_throttle
        {
            return Ok(());
        }
        let dir = self.require("blkio", "blkio limits")?;
        // CFQ offers blkio.weight; with BFQ only blkio.bfq.weight exists;
        // with neither scheduler (none, mq-deadline, kyber) there is no
        // weight at all, and a weight is refused as runc refuses it.
        let (weight, weight_device) = if fs::exists(dir, "blkio.weight") {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        let no_weight = |what: &str| {
            CgroupError::unavailable(
                what,
                format!(
                    "neither blkio.weight nor blkio.bfq.weight in {} (block I/O weights \
                     need the BFQ or CFQ I/O scheduler)",
                    dir.display()
                ),
            )
        };
        let any_device_weight = devices
            .iter()
            .any(|d| resources::set_weight(d.weight()).is_some());
        if !fs::exists(dir, weight) {
            if resources::set_weight(bio.weight()).is_some() {
                return Err(no_weight("blkio weight"));
            }
            if any_device_weight {
                return Err(no_weight("blkio weight_device"));
            }
        }
        if let Some(w) = resources::set_weight(bio.weight()) {
            self.optional_file(dir, weight, &w.to_string(), "blkio weight")?;
        }
        if let Some(w) = resources::set_weight(bio.leaf_weight()) {
            self.optional_file(
                dir,
                "blkio.leaf_weight",
                &w.to_string(),
                "blkio leaf weight",
            )?;
        }
        for dev in devices {
            let line = |w: u16| format!("{}:{} {w}", dev.major(), dev.minor());
            if let Some(w) = resources::set_weight(dev.weight()) {
                self.optional_file(dir, weight_device, &line(w), "blkio weight_device")?;
            }
            if let Some(w) = resources::set_weight(dev.leaf_weight()) {
                self.optional_file(
                    dir,
                    "blkio.leaf_weight_device",
                    &line(w),
                    "blkio leaf weight_device",
                )?;
            }
        }
        for (file, list) in throttles {
            for dev in list.iter().flatten() {
                let line = format!("{}:{} {}", dev.major(), dev.minor(), dev.rate());
                write_in(dir, file, &line)?;
            }
        }
        Ok(())
    }

    fn apply_hugetlb(&self, limits: &[LinuxHugepageLimit]) -> Result<()> {
        if limits.is_empty() {
            return Ok(());
        }
        let Some(dir) = self.dir_of("hugetlb") else {
            return match &self.unified {
                Some(unified) => unified.apply_hugetlb(limits),
                None => Err(CgroupError::unavailable(
                    "hugepage limits",
                    "the hugetlb controller is not mounted",
                )),
            };
        };
        for limit in limits {
            let size = resources::hugepage_size(limit)?;
            let file = format!("hugetlb.{size}.limit_in_bytes");
            if !fs::exists(dir, &file) {
                return Err(resources::no_page_size(size, dir, &file));
            }
            let value = resources::v1_limit(limit.limit());
            write_in(dir, &file, &value)?;
            let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
            if fs::exists(dir, &rsvd) {
                write_in(dir, &rsvd, &value)?;
            }
        }
        Ok(())
    }

    fn apply_devices(&self, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        if rules.is_empty() {
            return Ok(());
        }
        let dir = self.require("devices", "device rules")?;
        for rule in rules {
            let line = resources::device_rule_line(rule)?;
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write_in(dir, file, &line)?;
        }
        Ok(())
    }

    fn apply_network(&self, net: &oci_spec::runtime::LinuxNetwork) -> Result<()> {
        if let Some(id) = net.class_id() {
            write_in(
                self.require("net_cls", "network classID")?,
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        let priorities = net.priorities().as_deref().unwrap_or_default();
        if !priorities.is_empty() {
            let dir = self.require("net_prio", "network priorities")?;
            for p in priorities {
                let line = format!("{} {}", p.name(), p.priority());
                write_in(dir, "net_prio.ifpriomap", &line)?;
            }
        }
        Ok(())
    }

    fn freezer_state(dir: &Path) -> Result<String> {
        Ok(fs::read(&dir.join("freezer.state"))?.trim().to_string())
    }

    /// Every cgroup directory, the unified one included.
    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.subsystems.iter().map(|s| s.dir.clone()).collect();
        dirs.extend(self.unified.as_ref().map(V2Cgroup::dir));
        dirs
    }
}

impl Subsystem {
    fn has(&self, controller: &str) -> bool {
        self.mount.controllers.iter().any(|c| c == controller)
    }
}

impl CgroupManager for V1Cgroup {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self) -> Result<()> {
        for sub in &self.subsystems {
            fs::mkdir_all(&sub.dir)?;
            if sub.has("cpuset") {
                Self::fill_cpuset(sub)?;
            }
        }
        if let Some(unified) = &self.unified {
            unified.create()?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for sub in &self.subsystems {
            write_in(&sub.dir, "cgroup.procs", &pid.to_string())?;
        }
        if let Some(unified) = &self.unified {
            unified.add_process(pid)?;
        }
        Ok(())
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
                .and_then(|dir| write_in(dir, "pids.max", &resources::pids_limit(pids.limit())));
            skipped.step(limited)?;
        }
        if let Some(bio) = r.block_io() {
            skipped.step(self.apply_blkio(bio))?;
        }
        if let Some(limits) = r.hugepage_limits() {
            skipped.step(self.apply_hugetlb(limits))?;
        }
        if let Some(rules) = r.devices() {
            skipped.step(self.apply_devices(rules))?;
        }
        if let Some(net) = r.network() {
            skipped.step(self.apply_network(net))?;
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let limited = self.require("rdma", "rdma limits").and_then(|dir| {
                resources::rdma_lines(rdma)
                    .iter()
                    .try_for_each(|line| write_in(dir, "rdma.max", line))
            });
            skipped.step(limited)?;
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::unavailable(
                "unified (cgroup v2 files)",
                "this is a cgroup v1 host",
            ));
        }
        skipped.finish()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .dir_of("pids")
            .or_else(|| self.dir_of("memory"))
            .unwrap_or(&self.subsystems[0].dir);
        fs::procs_recursive(dir)
    }

    fn freeze(&self, state: FreezerState) -> Result<()> {
        let dir = self.require("freezer", "freezer state")?;
        let want = match state {
            FreezerState::Frozen => "FROZEN",
            FreezerState::Thawed => "THAWED",
        };
        write_in(dir, "freezer.state", want)?;
        // FREEZING is transient; a task forked meanwhile can hold it there,
        // so the request is repeated now and then.
        let mut polls = 0u32;
        let settled = fs::wait_until(FREEZE_TIMEOUT, || {
            polls += 1;
            if Self::freezer_state(dir)? == want {
                return Ok(true);
            }
            if polls.is_multiple_of(10) {
                write_in(dir, "freezer.state", want)?;
            }
            Ok(false)
        })?;
        if settled {
            return Ok(());
        }
        if state == FreezerState::Frozen {
            let _ = write_in(dir, "freezer.state", "THAWED");
        }
        Err(CgroupError::Timeout {
            path: dir.join("freezer.state"),
            what: format!("waiting for {want}"),
        })
    }

    fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        if let Some(dir) = self.dir_of("memory") {
            stats.memory_usage = fs::read_u64_opt(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0);
            stats.memory_limit =
                fs::read_u64_opt(&dir.join("memory.limit_in_bytes"))?.filter(|l| *l < UNLIMITED);
            stats.memory_max_usage = fs::read_u64_opt(&dir.join("memory.max_usage_in_bytes"))?;
            stats.oom_kills = fs::keyed_u64(&dir.join("memory.oom_control"), "oom_kill")?;
            stats.memory_stat = fs::keyed_all(&dir.join("memory.stat"))?;
        }
        if let Some(dir) = self.dir_of("cpuacct") {
            stats.cpu_usage_ns = fs::read_u64_opt(&dir.join("cpuacct.usage"))?.unwrap_or(0);
            // cpuacct.stat counts USER_HZ ticks.
            // SAFETY: sysconf has no preconditions.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            let ns_per_tick = 1_000_000_000 / u64::try_from(hz).unwrap_or(100).max(1);
            let stat = dir.join("cpuacct.stat");
            stats.cpu_user_ns = fs::keyed_u64(&stat, "user")? * ns_per_tick;
            stats.cpu_system_ns = fs::keyed_u64(&stat, "system")? * ns_per_tick;
            let percpu = fs::read_opt(&dir.join("cpuacct.usage_percpu"))?.unwrap_or_default();
            stats.cpu_percpu_ns = percpu
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        if let Some(dir) = self.dir_of("cpu") {
            let cpu = fs::keyed_all(&dir.join("cpu.stat"))?;
            let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
            stats.cpu_periods = get("nr_periods");
            stats.cpu_throttled_periods = get("nr_throttled");
            stats.cpu_throttled_ns = get("throttled_time");
        }
        if let Some(dir) = self.dir_of("blkio") {
            // The CFQ files when the scheduler keeps them, else the
            // throttle layer's (which counts every bio).
            let pick = |cfq: &str, throttle: &str| -> Result<Vec<crate::IoStat>> {
                let v = fs::blkio_v1(&dir.join(cfq))?;
                if v.is_empty() {
                    fs::blkio_v1(&dir.join(throttle))
                } else {
                    Ok(v)
                }
            };
            stats.io_bytes = pick(
                "blkio.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            )?;
            stats.io_ops = pick(
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            )?;
        }
        if let Some(dir) = self.dir_of("pids") {
            stats.pids_current = fs::read_u64_opt(&dir.join("pids.current"))?.unwrap_or(0);
            stats.pids_limit = fs::read_u64_opt(&dir.join("pids.max"))?;
        }
        Ok(stats)
    }

    fn destroy(&self) -> Result<()> {
        if let Some(h) = self.hierarchies().iter().find(|h| h.dir == h.mount_point) {
            return Err(CgroupError::InvalidPath {
                path: h.dir.display().to_string(),
                reason: "refusing to remove a hierarchy root".into(),
            });
        }
        let dirs = self.all_dirs();
        fs::remove_all(&dirs, || {
            // Frozen tasks do not die until thawed.
            if let Some(dir) = self.dir_of("freezer")
                && fs::exists(dir, "freezer.state")
            {
                match write_in(dir, "freezer.state", "THAWED") {
                    Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                    _ => {}
                }
            }
            dirs.iter().try_for_each(|d| fs::kill_all(d))
        })
    }

    fn hierarchies(&self) -> Vec<Hierarchy> {
        let mut out: Vec<Hierarchy> = self
            .subsystems
            .iter()
            .map(|s| Hierarchy {
                mount_point: s.mount.mount_point.clone(),
                options: s.mount.options(),
                unified: false,
                dir: s.dir.clone(),
            })
            .collect();
        if let Some(unified) = &self.unified {
            out.extend(unified.hierarchies());
        }
        out
    }
}
