//! Real cgroups on this host. Root only: each test prints why it skips when
//! the host lacks what it needs. Every test cleans up through a Drop guard.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_cgroups::{
    Cgroup, CgroupManager, CgroupVersion, DEFAULT_ROOT, FreezerState, detect_version,
};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Destroys the cgroup and kills the child even when the test fails.
struct Guard {
    cg: Cgroup,
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Guard {
    fn new(cg: Cgroup) -> Self {
        let dirs = cg.hierarchies().into_iter().map(|h| h.dir).collect();
        Guard {
            cg,
            dirs,
            child: None,
        }
    }

    fn spawn_sleeper(&mut self) -> i32 {
        let child = Command::new("sleep").arg("300").spawn().unwrap();
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }

    /// A shell that burns some CPU once a line arrives on its stdin, then
    /// becomes `sleep` (same pid).
    fn spawn_worker(&mut self) -> i32 {
        let script = "read go; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 300";
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }

    fn start_work(&mut self) {
        let stdin = self.child.as_mut().unwrap().stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cg.freeze(FreezerState::Thawed);
        let _ = self.cg.destroy();
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The `State:` letter of a process.
fn proc_state(pid: i32) -> char {
    let status = read(&PathBuf::from(format!("/proc/{pid}/status")));
    let line = status.lines().find(|l| l.starts_with("State:")).unwrap();
    line["State:".len()..].trim().chars().next().unwrap()
}

/// Generous: on a loaded machine (load 10, CI beside other work) a frozen
/// worker was seen still reported running 2 s after FROZEN.
fn wait_for_state(pid: i32, want: char) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if proc_state(pid) == want {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    false
}

/// OCI page size names for the host's huge page sizes
/// (`hugepages-2048kB` is `2MB`).
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb.is_multiple_of(1 << 20) {
                format!("{}GB", kb >> 20)
            } else if kb.is_multiple_of(1024) {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    sizes.sort();
    sizes
}

fn controllers(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn v1_lifecycle() {
    if !is_root() {
        eprintln!("SKIP v1_lifecycle: needs root");
        return;
    }
    if detect_version(Path::new(DEFAULT_ROOT)).ok() != Some(CgroupVersion::V1) {
        eprintln!("SKIP v1_lifecycle: {DEFAULT_ROOT} is not cgroup v1");
        return;
    }
    let name = unique("berth-test");
    let cg = Cgroup::open(Some(Path::new(&format!("/{name}"))), "ignored").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V1);
    let mut guard = Guard::new(cg.clone());
    let hier = cg.hierarchies();
    let dir = |opt: &str| {
        hier.iter()
            .find(|h| h.options == opt)
            .map(|h| h.dir.clone())
    };
    let mem = dir("memory").expect("memory hierarchy");
    let cpu = dir("cpu")
        .or_else(|| dir("cpu,cpuacct"))
        .expect("cpu hierarchy");
    let cpuset = dir("cpuset").expect("cpuset hierarchy");
    let pids_dir = dir("pids").expect("pids hierarchy");
    let devices = dir("devices").expect("devices hierarchy");
    let freezer = dir("freezer").expect("freezer hierarchy");
    let blkio = dir("blkio").expect("blkio hierarchy");
    assert_eq!(mem, Path::new(DEFAULT_ROOT).join("memory").join(&name));

    cg.create().unwrap();
    for h in &hier {
        assert!(h.dir.is_dir(), "{} not created", h.dir.display());
    }
    // The new cpuset was filled from its parent.
    assert_eq!(
        read(&cpuset.join("cpuset.cpus")),
        read(&Path::new(DEFAULT_ROOT).join("cpuset/cpuset.cpus"))
    );
    assert!(!read(&cpuset.join("cpuset.mems")).is_empty());

    let swap_file = mem.join("memory.memsw.limit_in_bytes");
    let has_swap = swap_file.exists();
    let memory = |limit: i64, swap: i64| {
        let mut b = LinuxMemoryBuilder::default().limit(limit);
        if has_swap {
            b = b.swap(swap);
        }
        b.build().unwrap()
    };
    let unified = hier.iter().find(|h| h.unified).map(|h| h.dir.clone());
    let huge_v1 = dir("hugetlb");
    let huge_size = hugepage_sizes().into_iter().find(|s| s == "2MB");
    let huge_dir = huge_v1.clone().or_else(|| {
        unified
            .clone()
            .filter(|u| controllers(u.parent().unwrap()).contains(&"hugetlb".to_string()))
    });

    let mut builder = LinuxResourcesBuilder::default()
        .memory(memory(64 << 20, 128 << 20))
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(20_000)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rwm")
                .build()
                .unwrap(),
        ]);
    // A block I/O weight exists only with the BFQ (or, before 5.0, CFQ)
    // scheduler; a fresh machine often offers neither.
    let weight_file = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .map(|f| blkio.join(f))
        .find(|p| p.exists());
    let weight_300 = LinuxBlockIoBuilder::default()
        .weight(300u16)
        .build()
        .unwrap();
    if weight_file.is_some() {
        builder = builder.block_io(weight_300.clone());
    } else {
        eprintln!("note: no blkio weight file (no BFQ scheduler): the weight must be refused");
    }
    if let (Some(size), Some(_)) = (&huge_size, &huge_dir) {
        builder = builder.hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size(size.clone())
                .limit(4 << 21)
                .build()
                .unwrap(),
        ]);
    } else {
        eprintln!("note: no 2MB huge pages or hugetlb controller, hugetlb not checked");
    }
    cg.apply(&builder.build().unwrap()).unwrap();

    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    if has_swap {
        assert_eq!(read(&swap_file), "134217728");
    }
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read(&cpuset.join("cpuset.mems")), "0");
    assert_eq!(read(&pids_dir.join("pids.max")), "32");
    match &weight_file {
        Some(weight) => assert!(read(weight).ends_with("300"), "{}", read(weight)),
        None => {
            let r = LinuxResourcesBuilder::default()
                .block_io(weight_300)
                .build()
                .unwrap();
            let err = cg.apply(&r).unwrap_err();
            assert!(
                !err.is_unsupported(),
                "a missing weight must be refused: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.starts_with(
                    "cannot set blkio weight: neither blkio.weight nor blkio.bfq.weight in "
                ) && msg.contains(&blkio.display().to_string()),
                "{msg}"
            );
        }
    }
    assert_eq!(read(&devices.join("devices.list")), "c 1:3 rwm");
    if let (Some(size), Some(dir)) = (&huge_size, &huge_dir) {
        let file = if huge_v1.is_some() {
            format!("hugetlb.{size}.limit_in_bytes")
        } else {
            format!("hugetlb.{size}.max")
        };
        assert_eq!(read(&dir.join(file)), (4u64 << 21).to_string());
    }

    // Raising memory and swap needs memsw first; lowering needs the limit first.
    for (limit, swap) in [(256 << 20, 512 << 20), (32 << 20, 48 << 20)] {
        let r = LinuxResourcesBuilder::default()
            .memory(memory(limit, swap))
            .build()
            .unwrap();
        cg.apply(&r).unwrap();
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), limit.to_string());
        if has_swap {
            assert_eq!(read(&swap_file), swap.to_string());
        }
    }
    // A bad value names the file and the value.
    let bad = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().quota(1).build().unwrap())
        .build()
        .unwrap();
    let err = cg.apply(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "write 1 to {}",
            cpu.join("cpu.cfs_quota_us").display()
        )),
        "{err}"
    );

    let pid = guard.spawn_worker();
    cg.add_process(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);
    guard.start_work();
    let own = read(&PathBuf::from(format!("/proc/{pid}/cgroup")));
    assert!(own.contains(&format!(":memory:/{name}")), "{own}");
    if unified.is_some() {
        assert!(own.contains(&format!("0::/{name}")), "{own}");
    }

    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(read(&freezer.join("freezer.state")), "FROZEN");
    assert!(wait_for_state(pid, 'D'), "state {}", proc_state(pid));
    cg.freeze(FreezerState::Thawed).unwrap();
    assert_eq!(read(&freezer.join("freezer.state")), "THAWED");
    assert!(wait_for_state(pid, 'S'), "state {}", proc_state(pid));

    // The worker's loop is charged to the cgroup.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = cg.stats().unwrap();
        if stats.cpu_user_ns + stats.cpu_system_ns > 0 || Instant::now() > deadline {
            break stats;
        }
        sleep(Duration::from_millis(20));
    };
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
    assert!(stats.cpu_user_ns + stats.cpu_system_ns > 0, "{stats:?}");
    assert_eq!(stats.cpu_user_ns % 1_000_000, 0, "whole ticks: {stats:?}");
    assert_eq!(stats.pids_current, 1);
    assert_eq!(stats.pids_limit, Some(32));
    assert_eq!(stats.memory_limit, Some(32 << 20));
    assert!(stats.memory_max_usage.is_some_and(|m| m > 0), "{stats:?}");
    assert!(stats.memory_usage > 0, "{stats:?}");

    // Frozen with a live process inside: destroy thaws, kills and removes.
    cg.freeze(FreezerState::Frozen).unwrap();
    cg.destroy().unwrap();
    for h in &hier {
        assert!(!h.dir.exists(), "{} left behind", h.dir.display());
    }
    let status = guard.child.as_mut().unwrap().wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Gone already is fine.
    cg.destroy().unwrap();
}

#[test]
fn v1_relative_path_lands_under_own_cgroup() {
    if !is_root() {
        eprintln!("SKIP v1_relative_path_lands_under_own_cgroup: needs root");
        return;
    }
    if detect_version(Path::new(DEFAULT_ROOT)).ok() != Some(CgroupVersion::V1) {
        eprintln!("SKIP v1_relative_path_lands_under_own_cgroup: not cgroup v1");
        return;
    }
    let name = unique("berth-test-rel");
    let cg = Cgroup::open(Some(Path::new(&name)), "x").unwrap();
    let _guard = Guard::new(cg.clone());
    let own = read(Path::new("/proc/self/cgroup"));
    let own_mem = own
        .lines()
        .find_map(|l| l.strip_prefix_ext(":memory:"))
        .expect("memory line");
    let mem = cg
        .hierarchies()
        .into_iter()
        .find(|h| h.options == "memory")
        .unwrap();
    let want = Path::new(DEFAULT_ROOT)
        .join("memory")
        .join(own_mem.trim_start_matches('/'))
        .join(&name);
    assert_eq!(mem.dir, want);
    cg.create().unwrap();
    assert!(want.is_dir());
    cg.destroy().unwrap();
    assert!(!want.exists());
}

/// `"4:memory:/a"` -> `"/a"` for the given `":memory:"` marker.
trait StripExt {
    fn strip_prefix_ext(&self, marker: &str) -> Option<&str>;
}

impl StripExt for str {
    fn strip_prefix_ext(&self, marker: &str) -> Option<&str> {
        self.find(marker).map(|i| &self[i + marker.len()..])
    }
}

/// The cgroup2 hierarchy of this host: the root on a pure v2 host, the
/// `unified` mount on a hybrid one.
fn cgroup2_root() -> Option<PathBuf> {
    [
        PathBuf::from(DEFAULT_ROOT),
        Path::new(DEFAULT_ROOT).join("unified"),
    ]
    .into_iter()
    .find(|p| {
        nix::sys::statfs::statfs(p)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
    })
}

#[test]
fn v2_lifecycle() {
    if !is_root() {
        eprintln!("SKIP v2_lifecycle: needs root");
        return;
    }
    let Some(root) = cgroup2_root() else {
        eprintln!(
            "SKIP v2_lifecycle: no cgroup2 mount at {DEFAULT_ROOT} or {DEFAULT_ROOT}/unified"
        );
        return;
    };
    assert_eq!(detect_version(&root).unwrap(), CgroupVersion::V2);
    let name = unique("berth-test");
    let cg = Cgroup::open_at(&root, Some(Path::new(&format!("/{name}"))), "x").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V2);
    let mut guard = Guard::new(cg.clone());
    let dir = root.join(&name);
    assert_eq!(cg.hierarchies()[0].dir, dir);

    cg.create().unwrap();
    assert!(dir.is_dir());
    let root_controllers = controllers(&root);
    let leaf_controllers = controllers(&dir);
    for c in &root_controllers {
        if berth_cgroups::v2::CONTROLLERS.contains(&c.as_str()) {
            assert!(
                leaf_controllers.contains(c),
                "{c} not enabled for the cgroup"
            );
        }
    }

    let mut builder = LinuxResourcesBuilder::default();
    let mut checks: Vec<(String, String)> = Vec::new();
    if leaf_controllers.iter().any(|c| c == "hugetlb") {
        for size in hugepage_sizes() {
            checks.push((format!("hugetlb.{size}.max"), (2u64 << 30).to_string()));
        }
        let limits = hugepage_sizes()
            .into_iter()
            .map(|s| {
                LinuxHugepageLimitBuilder::default()
                    .page_size(s)
                    .limit(2i64 << 30)
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        builder = builder.hugepage_limits(limits);
    } else {
        eprintln!("note: hugetlb not available in {}", root.display());
    }
    if leaf_controllers.iter().any(|c| c == "pids") {
        builder = builder.pids(LinuxPidsBuilder::default().limit(16).build().unwrap());
        checks.push(("pids.max".into(), "16".into()));
    }
    if leaf_controllers.iter().any(|c| c == "memory") {
        builder = builder.memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .build()
                .unwrap(),
        );
        checks.push(("memory.max".into(), (64u64 << 20).to_string()));
    }
    assert!(
        !checks.is_empty(),
        "no controller to test in {}",
        root.display()
    );
    cg.apply(&builder.build().unwrap()).unwrap();
    for (file, want) in &checks {
        assert_eq!(&read(&dir.join(file)), want, "{file}");
    }

    let pid = guard.spawn_sleeper();
    cg.add_process(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);

    cg.freeze(FreezerState::Frozen).unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    // A v2-frozen task sleeps in the signal path (its State stays S).
    let wchan = read(&PathBuf::from(format!("/proc/{pid}/wchan")));
    if wchan != "0" {
        assert!(
            wchan.contains("signal") || wchan.contains("freez"),
            "frozen task waits in {wchan}"
        );
    }
    cg.freeze(FreezerState::Thawed).unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 0"));

    let stats = cg.stats().unwrap();
    if leaf_controllers.iter().any(|c| c == "pids") {
        assert_eq!(stats.pids_current, 1);
    }

    cg.destroy().unwrap();
    assert!(!dir.exists());
    let status = guard.child.as_mut().unwrap().wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}
